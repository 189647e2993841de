//! Dossier fees (DESIGN.md, "Dossiers" and "Bills"): a dossier has at most one fee bill, issued
//! by the dossier-fee biller of the unit handling it, from the procedure's fee schedule, when
//! the dossier is received (`on_receipt`) or when an officer asks for payment
//! (`request_payment`). When the dossier is refused, withdrawn or rejected the bill closes with
//! it: cancelled while unpaid, refunded to whoever paid it once paid.
//!
//! Dossiers call these in the transaction that moves the dossier, so a dossier and its bill
//! never disagree. Bills sit below dossiers: what they need of a dossier they read from its row.

use sqlx::PgConnection;
use uuid::Uuid;

use super::pay::{RefundReason, refund_payments};
use super::{BillItem, BillKey, BillStatus, NewBill, announce, billers, find, insert};
use crate::domain::Money;
use crate::http::{ApiError, ApiResult};

/// A line of a procedure's fee schedule (a phí or a lệ phí), as its bill lists it.
pub type FeeLine = BillItem;

/// The line a postal delivery of the result adds to the bill.
pub const POSTAL_FEE_NAME: &str = "Phí chuyển phát kết quả qua bưu chính";

/// Bills a dossier's fee: each line of `fees`, plus `postal_fee` when the applicant chose to
/// receive the result by post, addressed to the applicant, with the dossier's code as the
/// biller's reference. The bill has no due date: the dossier itself waits for it (its result
/// is not returned while the fee is unpaid).
///
/// A dossier is billed once: when it has its bill already (paid, unpaid or cancelled), that
/// bill is the answer and nothing is written. A free procedure (no lines) gets no bill, even
/// when the result goes by post: free means the citizen owes nothing (`None`).
pub async fn bill_dossier(
    conn: &mut PgConnection,
    dossier_id: Uuid,
    fees: &[FeeLine],
    postal_fee: Option<Money>,
) -> ApiResult<Option<Uuid>> {
    if let Some(id) = fee_bill_id(conn, dossier_id).await? {
        return Ok(Some(id));
    }
    if fees.is_empty() {
        return Ok(None);
    }
    let dossier = sqlx::query!(
        r#"SELECT code, unit_code, applicant_id, applicant_name,
                  result_delivery = 'postal' AS "postal!"
           FROM dossiers WHERE id = $1"#,
        dossier_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut items = fees.to_vec();
    items.extend(postal_fee.filter(|_| dossier.postal).map(|amount| FeeLine {
        name: POSTAL_FEE_NAME.to_owned(),
        amount,
    }));
    let bill = NewBill {
        biller_id: billers::of_unit(conn, &dossier.unit_code).await?,
        reference: dossier.code,
        customer_code: None,
        payer_account_id: dossier.applicant_id,
        payer_name: dossier.applicant_name,
        items,
        due_date: None,
        dossier_id: Some(dossier_id),
        request_hash: None,
    };
    if bill.total().is_none() {
        return Err(ApiError::internal(
            "a procedure's fees add up past what one bill may ask",
        ));
    }
    insert(conn, &bill).await.map(Some)
}

/// Whether the dossier has a fee bill still unpaid: what `return_result` refuses to pass.
pub async fn fee_unpaid(conn: &mut PgConnection, dossier_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM bills WHERE dossier_id = $1 AND status = 'unpaid') AS "unpaid!""#,
        dossier_id
    )
    .fetch_one(conn)
    .await
}

/// Closes the fee bill of a dossier refused, withdrawn or rejected, in the transaction that
/// moves it: an unpaid bill is cancelled; a paid one has every payment sent back to where it
/// came from, and is cancelled and marked refunded (keeping when and how it was paid; cash is
/// refunded at a counter, and marked then). Either
/// way the biller hears `bill.cancelled`. A cancelled bill, or none, is left alone.
pub async fn close_with_dossier(conn: &mut PgConnection, dossier_id: Uuid) -> ApiResult<()> {
    let Some(id) = fee_bill_id(conn, dossier_id).await? else {
        return Ok(());
    };
    let bill = find(conn, BillKey::Id(id), true)
        .await?
        .ok_or_else(|| ApiError::internal("a dossier's fee bill vanished"))?;
    match bill.status {
        BillStatus::Cancelled => return Ok(()),
        BillStatus::Unpaid => {
            sqlx::query!(
                "UPDATE bills SET status = 'cancelled', cancelled_at = now() WHERE id = $1",
                id
            )
            .execute(&mut *conn)
            .await?;
        }
        BillStatus::Paid => {
            // Cash paid at a counter is owed until a counter pays it out (then refunded_at).
            let all_back = refund_payments(conn, &bill, RefundReason::DossierClosed).await?;
            sqlx::query!(
                "UPDATE bills SET status = 'cancelled', cancelled_at = now(),
                                  refunded_at = CASE WHEN $2 THEN now() END
                 WHERE id = $1",
                id,
                all_back,
            )
            .execute(&mut *conn)
            .await?;
            crate::receipts::cancel(conn, id).await?;
        }
    }
    announce(conn, id, "bill.cancelled").await?;
    Ok(())
}

/// Addresses to `account_id` the fee bills of its dossiers that were billed to a name only: a
/// counter dossier filed before its applicant was known to have an account, just claimed. Its
/// bill then shows among the citizen's own.
pub async fn address_to_applicant(
    conn: &mut PgConnection,
    account_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE bills b SET payer_account_id = d.applicant_id
         FROM dossiers d
         WHERE d.id = b.dossier_id AND d.applicant_id = $1 AND b.payer_account_id IS NULL",
        account_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes every unit the biller of its own dossier fees, as a unit is when it is created: for
/// the units the demo data writes, and any unit made before bills existed. A unit that is one
/// already is left as it is. (A unit first billing a fee would become one then anyway.)
pub async fn bill_for_every_unit(conn: &mut PgConnection) -> ApiResult<()> {
    let units = sqlx::query_scalar!(
        "SELECT code FROM units u
         WHERE NOT EXISTS (SELECT 1 FROM billers b WHERE b.unit_code = u.code)
         ORDER BY code"
    )
    .fetch_all(&mut *conn)
    .await?;
    for code in units {
        billers::of_unit(conn, &code).await?;
    }
    Ok(())
}

/// The dossier's fee bill, if it has one (one at most: `bills.dossier_id` is unique).
async fn fee_bill_id(
    conn: &mut PgConnection,
    dossier_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT id FROM bills WHERE dossier_id = $1", dossier_id)
        .fetch_optional(conn)
        .await
}
