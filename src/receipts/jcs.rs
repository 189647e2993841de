//! RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string a JSON value is written as.
//!
//! A receipt is signed (Ed25519) over its canonical JSON, and whoever verifies it, with our
//! verify endpoint or offline with any Ed25519 library and any JCS implementation, recomputes
//! that form from the JSON it holds. So the form cannot be "whatever serde_json prints": it is
//! the RFC's, which is ECMAScript's `JSON.stringify` with object members sorted: no whitespace;
//! members ordered by their names compared as UTF-16 code units; strings escaped only where
//! `JSON.stringify` escapes them; every number written as the IEEE 754 double it is, the way
//! ECMAScript's `Number.prototype.toString` writes it.

use serde_json::{Map, Number, Value};

/// The canonical JSON of `value`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The canonical JSON of `value` as the UTF-8 bytes a signature is made over.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    canonical(value).into_bytes()
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => write_object(out, members),
    }
}

/// Members sorted by name as UTF-16 code units (RFC 8785 §3.2.3), which is not UTF-8 byte
/// order: a name above U+FFFF (two surrogates, 0xD800..0xDFFF) sorts before one in
/// U+E000..U+FFFF.
fn write_object(out: &mut String, members: &Map<String, Value>) {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    sorted.sort_unstable_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// A string as `JSON.stringify` writes it (RFC 8785 §3.2.2.2): `"` and `\` escaped, the five
/// controls with a short escape use it, the other controls below U+0020 are `\u00xx` in
/// lowercase hex, and everything else (`/`, non-ASCII, U+2028 and U+2029) is written as is.
fn write_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let code = c as usize;
                out.push_str("\\u00");
                out.push(HEX[code >> 4] as char);
                out.push(HEX[code & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// 2^53: every integer up to it in magnitude is a double exactly, and prints as its digits.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// A number as the double it is (RFC 8785 §3.2.2.3): serde_json keeps integers as u64 or
/// i64, but a verifier in any language reads them as doubles, so one beyond 2^53 is written
/// as the double it rounds to (9007199254740993 as 9007199254740992).
fn write_number(out: &mut String, number: &Number) {
    if let Some(n) = number.as_u64().filter(|n| *n <= MAX_EXACT_INTEGER) {
        out.push_str(&n.to_string());
    } else if let Some(n) = number
        .as_i64()
        .filter(|n| n.unsigned_abs() <= MAX_EXACT_INTEGER)
    {
        out.push_str(&n.to_string());
    } else if let Some(n) = number.as_u64() {
        // `as` rounds to the nearest double, ties to even, as parsing the digits would.
        write_double(out, n as f64);
    } else if let Some(n) = number.as_i64() {
        write_double(out, n as f64);
    } else {
        write_double(out, number.as_f64().unwrap_or(f64::NAN));
    }
}

/// A double as ECMAScript's Number::toString writes it.
///
/// The digits are Ryū's (the `ryu` crate): its proof (Adams, PLDI 2018) is that it gives the
/// fewest decimal digits that read back as the same double and, of those, the ones closest to
/// its exact value: what ECMAScript asks for (Number::toString, with the closest-digits rule of
/// its note 2, which V8 and RFC 8785 follow). Only the layout around the digits differs, so
/// Ryū's text is read back into digits and exponent and laid out again.
fn write_double(out: &mut String, x: f64) {
    if x == 0.0 {
        // Both 0 and -0.
        out.push('0');
        return;
    }
    if !x.is_finite() {
        // serde_json holds no NaN or infinity; `JSON.stringify` would write null.
        out.push_str("null");
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    let mut buffer = ryu::Buffer::new();
    let (digits, n) = decimal_digits(buffer.format_finite(x.abs()));
    write_es_layout(out, &digits, n);
}

/// The significant digits d1…dk (no leading or trailing zeros) and the exponent n of a
/// positive number printed by Ryū ("12340000000.0", "12.34", "0.001234", "1e30", "1.234e33",
/// "5e-324"), such that it is 0.d1…dk × 10^n.
fn decimal_digits(printed: &str) -> (String, i32) {
    let (mantissa, exponent) = match printed.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent = exponent
                .parse::<i32>()
                .expect("ryu writes a decimal exponent");
            (mantissa, exponent)
        }
        None => (printed, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut n = integer.len() as i32 + exponent;
    let mut digits = String::with_capacity(17);
    for digit in integer.chars().chain(fraction.chars()) {
        if digits.is_empty() && digit == '0' {
            n -= 1;
        } else {
            digits.push(digit);
        }
    }
    let significant = digits.trim_end_matches('0').len();
    digits.truncate(significant);
    (digits, n)
}

/// ECMAScript's Number::toString steps 6 to 10 for a positive 0.d1…dk × 10^n.
fn write_es_layout(out: &mut String, digits: &str, n: i32) {
    let k = digits.len() as i32;
    if (k..=21).contains(&n) {
        // A whole number below 10^21: its digits and n - k zeros.
        out.push_str(digits);
        push_zeros(out, n - k);
    } else if (1..=21).contains(&n) {
        // Below 10^21 with a fraction, at least 1: the point after the first n digits.
        let (whole, fraction) = digits.split_at(n as usize);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else if (-5..=0).contains(&n) {
        // Below 1, at least 10^-6: "0.", -n zeros, the digits.
        out.push_str("0.");
        push_zeros(out, -n);
        out.push_str(digits);
    } else {
        // Exponential: d1[.d2…dk]e±|n - 1|.
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).unsigned_abs().to_string());
    }
}

fn push_zeros(out: &mut String, count: i32) {
    for _ in 0..count {
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn double(bits: u64) -> Value {
        Value::Number(Number::from_f64(f64::from_bits(bits)).expect("a finite double"))
    }

    /// RFC 8785 §3.2.2, the structures example.
    #[test]
    fn rfc_structures_example() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let mut value: Value = serde_json::from_str(input).unwrap();
        // serde_json (without its float_roundtrip feature) reads 333333333.33333329 one unit
        // in the last place off (as 333333333.33333325); Rust's own parsing is correctly
        // rounded, as the RFC's input means.
        let numbers = [
            "333333333.33333329",
            "1E30",
            "4.50",
            "2e-3",
            "0.000000000000000000000000001",
        ];
        value["numbers"] = numbers
            .iter()
            .map(|n| Value::from(n.parse::<f64>().unwrap()))
            .collect();
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canonical(&value), expected);
        assert_eq!(canonical_bytes(&value), expected.as_bytes());
        // What a verifier does: the canonical form read back is its own canonical form.
        let reread: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(canonical(&reread), expected);
    }

    /// RFC 8785 §3.2.3, the sorting example: UTF-16 code units, not UTF-8 bytes (in which
    /// U+FB33 would come before the emoji).
    #[test]
    fn rfc_sorting_example() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let expected = concat!(
            "{\"\\r\":\"Carriage Return\",",
            "\"1\":\"One\",",
            "\"\u{80}\":\"Control\",",
            "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",",
            "\"\u{20ac}\":\"Euro Sign\",",
            "\"\u{1f600}\":\"Emoji: Grinning Face\",",
            "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
        );
        assert_eq!(canonical(&value), expected);
    }

    /// RFC 8785 Appendix B, number serialization samples (IEEE 754 bits → text).
    #[test]
    fn rfc_number_samples() {
        let samples: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in samples {
            assert_eq!(canonical(&double(bits)), expected, "{bits:#018x}");
        }
    }

    #[test]
    fn numbers_in_every_layout() {
        let samples: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (0.1, "0.1"),
            (123e-20, "1.23e-18"),
            (1e-7, "1e-7"),
            (1.5e300, "1.5e+300"),
            (1e21, "1e+21"),
            (1.2345678901234568e20, "123456789012345680000"),
        ];
        for &(x, expected) in samples {
            assert_eq!(canonical(&json!(x)), expected, "{x:e}");
        }
    }

    #[test]
    fn receipt_integers_print_plainly() {
        let value = json!({
            "number": 1,
            "amount": 185000,
            "year": 2026,
            "biller": {"tax_code": null, "code": "EVN_HN"},
            "items": [{"name": "Tiền điện", "amount": 185000}],
        });
        assert_eq!(
            canonical(&value),
            r#"{"amount":185000,"biller":{"code":"EVN_HN","tax_code":null},"items":[{"amount":185000,"name":"Tiền điện"}],"number":1,"year":2026}"#
        );
    }

    /// Beyond 2^53 an integer is written as the double it is read as.
    #[test]
    fn large_integers_print_as_their_double() {
        assert_eq!(canonical(&json!(9007199254740992u64)), "9007199254740992");
        assert_eq!(canonical(&json!(9007199254740993u64)), "9007199254740992");
        assert_eq!(canonical(&json!(9007199254740995u64)), "9007199254740996");
        assert_eq!(canonical(&json!(u64::MAX)), "18446744073709552000");
        assert_eq!(canonical(&json!(-9007199254740992i64)), "-9007199254740992");
        assert_eq!(canonical(&json!(-9007199254740993i64)), "-9007199254740992");
        assert_eq!(canonical(&json!(i64::MIN)), "-9223372036854776000");
        let parsed: Value = serde_json::from_str("9007199254740993").unwrap();
        assert_eq!(canonical(&parsed), "9007199254740992");
    }

    #[test]
    fn negative_zero_prints_as_zero() {
        assert_eq!(canonical(&double((-0.0f64).to_bits())), "0");
        let parsed: Value = serde_json::from_str("-0").unwrap();
        assert_eq!(canonical(&parsed), "0");
        assert_eq!(canonical(&json!(0)), "0");
    }

    #[test]
    fn strings_escape_as_json_stringify_does() {
        let value =
            json!("\u{0}\u{1}\u{1f}\u{8}\t\n\u{b}\u{c}\r\u{7f}\u{80}\u{2028}\u{2029}/\"\\é");
        assert_eq!(
            canonical(&value),
            "\"\\u0000\\u0001\\u001f\\b\\t\\n\\u000b\\f\\r\u{7f}\u{80}\u{2028}\u{2029}/\\\"\\\\é\""
        );
    }

    #[test]
    fn no_whitespace_and_nested_structures_sorted() {
        let value: Value =
            serde_json::from_str(r#" { "b" : [ 1 , { "z" : [ ] , "a" : { } } ] , "a" : "" } "#)
                .unwrap();
        assert_eq!(canonical(&value), r#"{"a":"","b":[1,{"a":{},"z":[]}]}"#);
    }
}
