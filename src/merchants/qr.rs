//! EMVCo merchant-presented QR payloads in the VietQR layout (DESIGN.md, "QR codes"): ASCII
//! only, every field within its EMVCo length, private template 26 carrying the order code
//! (dynamic, with amount) or the merchant code (static), CRC-16/CCITT-FALSE last. No NAPAS tag 38
//! yet: only the civicpay app pays these codes.

pub const GUID: &str = "vn.civicpay";

pub enum Presented<'a> {
    /// An order with its amount (point of initiation `12`).
    Order {
        code: &'a str,
        amount: i64,
        purpose: &'a str,
    },
    /// A merchant's printed code; the payer types the amount (point of initiation `11`).
    Merchant { code: &'a str },
}

pub struct MerchantInfo<'a> {
    pub category_code: &'a str,
    pub name: &'a str,
    pub city: &'a str,
}

pub fn payload(presented: &Presented, merchant: &MerchantInfo) -> String {
    let (initiation, code, amount, purpose) = match presented {
        Presented::Order {
            code,
            amount,
            purpose,
        } => ("12", *code, Some(*amount), ascii(purpose, 25)),
        Presented::Merchant { code } => ("11", *code, None, "Thanh toan".to_owned()),
    };
    let mut out = String::new();
    tlv(&mut out, "00", "01");
    tlv(&mut out, "01", initiation);
    let mut account = String::new();
    tlv(&mut account, "00", GUID);
    tlv(&mut account, "01", code);
    tlv(&mut out, "26", &account);
    tlv(&mut out, "52", merchant.category_code);
    tlv(&mut out, "53", "704");
    if let Some(amount) = amount {
        tlv(&mut out, "54", &amount.to_string());
    }
    tlv(&mut out, "58", "VN");
    tlv(&mut out, "59", &ascii(merchant.name, 25));
    tlv(&mut out, "60", &ascii(merchant.city, 15));
    let mut additional = String::new();
    tlv(&mut additional, "05", code);
    if !purpose.is_empty() {
        tlv(&mut additional, "08", &purpose);
    }
    tlv(&mut out, "62", &additional);
    out.push_str("6304");
    let crc = crc16_ccitt_false(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    out
}

fn tlv(out: &mut String, id: &str, value: &str) {
    assert!(value.len() <= 99, "EMV field {id} is too long");
    out.push_str(id);
    out.push_str(&format!("{:02}", value.len()));
    out.push_str(value);
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no final xor.
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in data {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Vietnamese text as plain printable ASCII (diacritics dropped, `đ` as `d`), at most `max`
/// characters.
pub fn ascii(text: &str, max: usize) -> String {
    const GROUPS: &[(&str, char)] = &[
        ("àáạảãâầấậẩẫăằắặẳẵ", 'a'),
        ("ÀÁẠẢÃÂẦẤẬẨẪĂẰẮẶẲẴ", 'A'),
        ("èéẹẻẽêềếệểễ", 'e'),
        ("ÈÉẸẺẼÊỀẾỆỂỄ", 'E'),
        ("ìíịỉĩ", 'i'),
        ("ÌÍỊỈĨ", 'I'),
        ("òóọỏõôồốộổỗơờớợởỡ", 'o'),
        ("ÒÓỌỎÕÔỒỐỘỔỖƠỜỚỢỞỠ", 'O'),
        ("ùúụủũưừứựửữ", 'u'),
        ("ÙÚỤỦŨƯỪỨỰỬỮ", 'U'),
        ("ỳýỵỷỹ", 'y'),
        ("ỲÝỴỶỸ", 'Y'),
        ("đ", 'd'),
        ("Đ", 'D'),
    ];
    text.chars()
        .filter_map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                return Some(c);
            }
            GROUPS
                .iter()
                .find(|(group, _)| group.contains(c))
                .map(|(_, plain)| *plain)
        })
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_matches_the_standard_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn vietnamese_names_become_ascii() {
        assert_eq!(ascii("Cà phê Đông Ba – Huế", 25), "Ca phe Dong Ba  Hue");
        assert_eq!(ascii("Chợ Đông Ba quầy số 12 bán bún bò", 25).len(), 25);
    }
}
