//! One-stop counters (DESIGN.md, "Counters"): an officer's shift at their unit's counter, the
//! bills collected there in cash or by QR, voids approved by a supervisor, cash refunds paid out
//! of the drawer, and the unit's cash of the day deposited at the State Treasury.
//!
//! Money: each shift has a drawer account in the ledger. Cash collected posts drawer → biller in
//! the transaction that pays the bill ([`crate::bills::pay::pay_in_cash`]), so a collection, its
//! ledger entry, the bill paid, its receipt and `bill.paid` are one commit. A drawer goes
//! negative by the cash it holds (cash is money outside civicpay, as a provider's clearing
//! account is); closing hands its balance to the unit's cash account, which a Treasury deposit
//! brings back. The float is change money, recorded on the shift and not in the ledger.
//!
//! A QR collection waits for the citizen's payment in the app: the paying transaction completes
//! it through the hook bills call ([`qr_paid_hook`]), so the counter and the bill never
//! disagree.
//!
//! Locks, in this order: a void request, the shift, a collection, then the bill's (dossier,
//! bill, wallet; see `bills::pay`). A payment from the app locks the bill before the collection
//! it completes, and nothing here locks a collection and then waits for a bill.

mod collections;
pub mod demo;
mod points;
mod refunds;
mod remittances;
mod shifts;
mod void_requests;
mod voids;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Officers;
use crate::bills::{BillKind, BillRow};
use crate::http::error::ConstraintRule;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "counter_remittances_slip_key",
        code: ErrorCode::AlreadyExists,
        field: "slip_number",
    },
    // Two void requests of one collection at once: the second finds the first.
    ConstraintRule {
        constraint: "counter_void_requests_one_per_collection",
        code: ErrorCode::AlreadyExists,
        field: "collection_id",
    },
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(shifts::routes())
        .merge(collections::routes())
        .merge(voids::routes())
        .merge(refunds::routes())
        .merge(remittances::routes())
        .merge(points::routes())
}

/// What the bills feature calls when a bill is paid from the app: the collection waiting for
/// that bill's QR payment completes with the receipt (see [`crate::bills::CounterQrHook`]).
pub fn qr_paid_hook(
    conn: &mut PgConnection,
    bill_id: Uuid,
    receipt_id: Uuid,
) -> BoxFuture<'_, ApiResult<bool>> {
    Box::pin(async move {
        let completed = sqlx::query_scalar!(
            "UPDATE counter_collections SET status = 'completed', completed_at = now(), receipt_id = $2
             WHERE bill_id = $1 AND status = 'pending' RETURNING id",
            bill_id,
            receipt_id,
        )
        .fetch_optional(conn)
        .await?;
        Ok(completed.is_some())
    })
}

/// An officer at work: their account and unit (the database forbids an officer without one).
#[derive(Debug, Clone)]
pub struct Officer {
    pub account_id: Uuid,
    pub unit_code: String,
}

impl FromRequestParts<AppState> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::<Officers>::from_request_parts(parts, state).await?;
        let unit_code = caller
            .unit_code
            .ok_or_else(|| ApiError::new(ErrorCode::Forbidden))?;
        Ok(Officer {
            account_id: caller.account_id,
            unit_code,
        })
    }
}

/// The officer's open shift, held (`FOR SHARE`) until the caller's transaction ends so it
/// cannot close meanwhile; 409 `no_open_shift` without one.
pub struct OpenShift {
    pub id: Uuid,
    pub drawer_account: Uuid,
}

async fn hold_open_shift(conn: &mut PgConnection, officer: &Officer) -> ApiResult<OpenShift> {
    let shift = sqlx::query!(
        "SELECT id, drawer_account_id FROM counter_shifts
         WHERE officer_id = $1 AND status = 'open' FOR SHARE",
        officer.account_id,
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NoOpenShift))?;
    Ok(OpenShift {
        id: shift.id,
        drawer_account: shift.drawer_account_id,
    })
}

/// The bill with this code as a counter sees it: a dossier fee of a unit in the officer's
/// subtree (another unit's is 404, as its dossier is), or any other bill (anyone with its code
/// may look it up). An unknown code is 404.
async fn bill_in_reach(
    conn: &mut PgConnection,
    officer: &Officer,
    code: &str,
) -> ApiResult<BillRow> {
    let not_found = || ApiError::not_found(Message::BillNotFound);
    let bill = crate::bills::find(conn, crate::bills::BillKey::Code(code), false)
        .await?
        .ok_or_else(not_found)?;
    if bill.kind == BillKind::DossierFee {
        let unit = sqlx::query_scalar!(
            r#"SELECT unit_code AS "unit_code!" FROM billers WHERE id = $1"#,
            bill.biller_id
        )
        .fetch_one(&mut *conn)
        .await?;
        if !crate::units::is_within(&mut *conn, &unit, &officer.unit_code).await? {
            return Err(not_found());
        }
    }
    Ok(bill)
}

/// The bill with this code as a counter may take money for it: [`bill_in_reach`], and for any
/// bill but a dossier fee, a biller that made the officer's unit a collection point (403
/// otherwise: the bill exists, this counter just may not take it).
async fn bill_at_counter(
    conn: &mut PgConnection,
    officer: &Officer,
    code: &str,
) -> ApiResult<BillRow> {
    let bill = bill_in_reach(conn, officer, code).await?;
    if bill.kind == BillKind::DossierFee {
        return Ok(bill);
    }
    let collects = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM collection_points WHERE biller_id = $1 AND unit_code = $2) AS "collects!""#,
        bill.biller_id,
        officer.unit_code,
    )
    .fetch_one(&mut *conn)
    .await?;
    if !collects {
        return Err(ApiError::new(ErrorCode::Forbidden).with_detail(Message::NotCollectionPoint));
    }
    Ok(bill)
}
