//! Demo billers with the API keys the README lists — Huế's power, water and sanitation
//! companies and a lower secondary school — and bills for the demo citizens' customer codes,
//! already linked to their billing accounts so `GET /v1/bills` shows them at once. Dates are
//! relative to the day the demo is loaded: last month's electricity bill is overdue, the others
//! fall due in the coming days.
//!
//! A biller, its bills and its links are created together, once: a biller whose code exists is
//! left alone with everything of it, so a link someone has since removed stays removed.

use chrono::{Datelike, Days, Months, NaiveDate};
use sqlx::PgConnection;
use uuid::Uuid;

use super::billers::{self, NewBiller};
use super::{BillItem, BillKind, NewBill};
use crate::crypto::sha256;
use crate::domain::{Money, Phone};
use crate::wallet::LimitCategory;

/// (code, name, kind, limit category, API key). The keys are published: production refuses to
/// start while any of them is stored (`ops::start_checks`).
pub(crate) const BILLERS: &[(&str, &str, BillKind, LimitCategory, &str)] = &[
    (
        "EVNHUE",
        "Điện lực Huế",
        BillKind::Electricity,
        LimitCategory::Utility,
        "bk_demo_evnhue_2026",
    ),
    (
        "HUEWACO",
        "Cấp nước Huế",
        BillKind::Water,
        LimitCategory::Utility,
        "bk_demo_huewaco_2026",
    ),
    (
        "HEPCO",
        "Môi trường đô thị Huế",
        BillKind::Sanitation,
        LimitCategory::Utility,
        "bk_demo_hepco_2026",
    ),
    (
        "THCSNTP",
        "Trường THCS Nguyễn Tri Phương",
        BillKind::Tuition,
        LimitCategory::Education,
        "bk_demo_thcsntp_2026",
    ),
];

/// A demo citizen's customer code at a biller, linked under `label`.
pub(crate) struct DemoCustomer {
    pub biller: &'static str,
    /// The demo citizen's phone (`accounts::demo`).
    pub phone: &'static str,
    pub customer_code: &'static str,
    pub label: &'static str,
}

pub(crate) const CUSTOMERS: &[DemoCustomer] = &[
    DemoCustomer {
        biller: "EVNHUE",
        phone: "0912345678",
        customer_code: "PE0400123456",
        label: "Điện nhà",
    },
    DemoCustomer {
        biller: "HUEWACO",
        phone: "0912345678",
        customer_code: "HW0012345",
        label: "Nước nhà",
    },
    DemoCustomer {
        biller: "HEPCO",
        phone: "0912345678",
        customer_code: "MT190234",
        label: "Rác nhà",
    },
    DemoCustomer {
        biller: "THCSNTP",
        phone: "0912345678",
        customer_code: "HS08A017",
        label: "Minh Khang lớp 8A",
    },
    DemoCustomer {
        biller: "EVNHUE",
        phone: "0987654321",
        customer_code: "PE0400654321",
        label: "Điện nhà",
    },
];

/// A demo bill: `{month}` in a reference or an item's name is the billed month (`MM/YYYY` in
/// names, `YYYY-MM` in references), `months_ago` months before today's.
struct DemoBill {
    biller: &'static str,
    customer_code: &'static str,
    payer_name: &'static str,
    /// The biller's reference, before `-{month}-{customer code}`.
    reference_prefix: &'static str,
    months_ago: u32,
    /// From today; negative is overdue.
    due_in_days: i64,
    items: &'static [(&'static str, i64)],
}

const BILLS: &[DemoBill] = &[
    DemoBill {
        biller: "EVNHUE",
        customer_code: "PE0400123456",
        payer_name: "Nguyễn Văn An",
        reference_prefix: "EVN",
        months_ago: 1,
        due_in_days: -12,
        items: &[
            ("Tiền điện tháng {month} (186 kWh)", 452_780),
            ("Thuế GTGT 8%", 36_222),
        ],
    },
    DemoBill {
        biller: "EVNHUE",
        customer_code: "PE0400123456",
        payer_name: "Nguyễn Văn An",
        reference_prefix: "EVN",
        months_ago: 0,
        due_in_days: 10,
        items: &[
            ("Tiền điện tháng {month} (203 kWh)", 502_150),
            ("Thuế GTGT 8%", 40_172),
        ],
    },
    DemoBill {
        biller: "HUEWACO",
        customer_code: "HW0012345",
        payer_name: "Nguyễn Văn An",
        reference_prefix: "NUOC",
        months_ago: 0,
        due_in_days: 7,
        items: &[
            ("Tiền nước tháng {month} (18 m³)", 216_000),
            ("Phí bảo vệ môi trường 10%", 21_600),
            ("Thuế GTGT 5%", 10_800),
        ],
    },
    DemoBill {
        biller: "HEPCO",
        customer_code: "MT190234",
        payer_name: "Nguyễn Văn An",
        reference_prefix: "VS",
        months_ago: 0,
        due_in_days: 15,
        items: &[("Phí vệ sinh hộ gia đình tháng {month}", 40_000)],
    },
    DemoBill {
        biller: "THCSNTP",
        customer_code: "HS08A017",
        payer_name: "Nguyễn Minh Khang",
        reference_prefix: "HP",
        months_ago: 0,
        due_in_days: 20,
        items: &[
            ("Tiền ăn bán trú tháng {month}", 650_000),
            ("Bảo hiểm y tế học sinh (12 tháng)", 884_520),
        ],
    },
    DemoBill {
        biller: "EVNHUE",
        customer_code: "PE0400654321",
        payer_name: "Hoàng Thị Mai",
        reference_prefix: "EVN",
        months_ago: 0,
        due_in_days: 5,
        items: &[
            ("Tiền điện tháng {month} (142 kWh)", 331_920),
            ("Thuế GTGT 8%", 26_554),
        ],
    },
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    let today = super::today();
    for (code, name, kind, limit_category, api_key) in BILLERS {
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM merchants WHERE code = $1) AS "exists!""#,
            code
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists {
            continue;
        }
        let biller = NewBiller {
            name: (*name).to_owned(),
            code: (*code).to_owned(),
            kind: *kind,
            limit_category: *limit_category,
            callback_url: None,
            events: crate::callbacks::BILLER_EVENTS
                .iter()
                .map(|(event_type, _)| (*event_type).to_owned())
                .collect(),
            tax_code: None,
        };
        let biller_id = billers::insert(conn, &biller, None).await?.biller.id;
        // The demo key is a known one, so the README can show it.
        let key_hash = sha256(api_key.as_bytes());
        sqlx::query!(
            "UPDATE merchant_api_keys SET key_hash = $2 WHERE merchant_id = $1",
            biller_id,
            key_hash.as_slice()
        )
        .execute(&mut *conn)
        .await?;
        for bill in BILLS.iter().filter(|bill| bill.biller == *code) {
            super::insert(conn, &new_bill(biller_id, bill, today)?).await?;
        }
        for customer in CUSTOMERS.iter().filter(|c| c.biller == *code) {
            link(conn, biller_id, customer).await?;
        }
    }
    Ok(())
}

/// The bill of `demo` as of `today`.
fn new_bill(biller_id: Uuid, demo: &DemoBill, today: NaiveDate) -> anyhow::Result<NewBill> {
    let month = today
        .with_day(1)
        .and_then(|first| first.checked_sub_months(Months::new(demo.months_ago)))
        .ok_or_else(|| anyhow::anyhow!("no billed month for {today}"))?;
    let due_date = if demo.due_in_days < 0 {
        today.checked_sub_days(Days::new(demo.due_in_days.unsigned_abs()))
    } else {
        today.checked_add_days(Days::new(demo.due_in_days.unsigned_abs()))
    };
    let label = month.format("%m/%Y").to_string();
    let items = demo
        .items
        .iter()
        .map(|(name, amount)| {
            Ok(BillItem {
                name: name.replace("{month}", &label),
                amount: Money::payable(*amount)
                    .ok_or_else(|| anyhow::anyhow!("a demo amount is not payable"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(NewBill {
        biller_id,
        reference: format!(
            "{}-{}-{}",
            demo.reference_prefix,
            month.format("%Y-%m"),
            demo.customer_code
        ),
        customer_code: Some(demo.customer_code.to_owned()),
        payer_account_id: None,
        payer_name: demo.payer_name.to_owned(),
        items,
        due_date,
        dossier_id: None,
        request_hash: None,
    })
}

/// Links the demo citizen to the customer code, as `POST /v1/me/billing-accounts` would.
async fn link(
    conn: &mut PgConnection,
    biller_id: Uuid,
    customer: &DemoCustomer,
) -> anyhow::Result<()> {
    let phone = Phone::parse(customer.phone).expect("demo phones are valid");
    sqlx::query!(
        "INSERT INTO billing_accounts (id, account_id, biller_id, customer_code, label)
         SELECT $1, a.id, $2, $3, $4 FROM accounts a WHERE a.phone = $5
         ON CONFLICT DO NOTHING",
        Uuid::new_v4(),
        biller_id,
        customer.customer_code,
        customer.label,
        phone.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
