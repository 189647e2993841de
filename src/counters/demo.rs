//! Demo counter data: Phú Xuân collects Huế's water and power bills, and its officer (Trần Thị
//! Bích, 0900000002) has a shift of the day behind her — two water bills of a walk-in customer
//! taken in cash and counted out exactly — so the day's remittance has something to show.
//! Written through the same functions the API uses, so its ledger entries, receipts and events
//! are those of real collections. Loaded once: an officer with any shift is left alone.

use sqlx::PgConnection;

use super::Officer;
use super::collections::{CollectRequest, collect_bill};
use super::shifts::{CloseShiftRequest, CollectionMethod, close, open_shift};
use crate::bills::{BillItem, NewBill};
use crate::domain::{Money, Phone};

const UNIT: &str = "19753";
const OFFICER_PHONE: &str = "0900000002";
/// The billers whose bills Phú Xuân's counter takes.
const COLLECTED_BILLERS: &[&str] = &["HUEWACO", "EVNHUE"];
const FLOAT: i64 = 500_000;
/// (reference, item, amount) of the walk-in customer's water bills.
const WALK_IN_BILLS: &[(&str, &str, i64)] = &[
    ("DEMO-QUAY-2026-10", "Tiền nước tháng 10/2026", 96_000),
    ("DEMO-QUAY-2026-11", "Tiền nước tháng 11/2026", 104_000),
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    let phone = Phone::parse(OFFICER_PHONE).expect("the demo officer's phone is valid");
    let officer_id =
        sqlx::query_scalar!("SELECT id FROM accounts WHERE phone = $1", phone.as_str())
            .fetch_one(&mut *conn)
            .await?;
    let has_shifts = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM counter_shifts WHERE officer_id = $1) AS "exists!""#,
        officer_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if has_shifts {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO collection_points (biller_id, unit_code)
         SELECT id, $1 FROM merchants WHERE code = ANY($2) AND role = 'biller'
         ON CONFLICT DO NOTHING",
        UNIT,
        COLLECTED_BILLERS as &[&str],
    )
    .execute(&mut *conn)
    .await?;
    let officer = Officer {
        account_id: officer_id,
        unit_code: UNIT.to_owned(),
    };
    shift_of_the_day(conn, &officer)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn shift_of_the_day(
    conn: &mut PgConnection,
    officer: &Officer,
) -> crate::http::ApiResult<()> {
    let water = sqlx::query_scalar!("SELECT id FROM merchants WHERE code = 'HUEWACO'")
        .fetch_one(&mut *conn)
        .await?;
    let shift = open_shift(conn, officer, FLOAT).await?;
    let mut collected = 0;
    for (reference, item, amount) in WALK_IN_BILLS {
        let amount = Money::payable(*amount).expect("demo amounts are payable");
        let bill = NewBill {
            biller_id: water,
            reference: (*reference).to_owned(),
            customer_code: Some("HW0098765".to_owned()),
            payer_name: "Võ Thị Hoa".to_owned(),
            payer_account_id: None,
            items: vec![BillItem {
                name: (*item).to_owned(),
                amount,
            }],
            due_date: None,
            dossier_id: None,
            request_hash: None,
        };
        let id = crate::bills::insert(conn, &bill).await?;
        let code = sqlx::query_scalar!("SELECT code FROM bills WHERE id = $1", id)
            .fetch_one(&mut *conn)
            .await?;
        let request = CollectRequest {
            bill_code: code,
            method: CollectionMethod::Cash,
        };
        collect_bill(conn, officer, &request).await?;
        collected += amount.dong();
    }
    let count = CloseShiftRequest {
        counted_cash: FLOAT + collected,
        difference_reason: None,
    };
    close(conn, officer, shift.id, &count).await?;
    Ok(())
}
