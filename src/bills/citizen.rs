//! The citizen's side of bills: billing accounts (links to a biller's customer code), the one
//! list of every bill the citizen owes, one bill, and the lookup by code that lets anyone
//! signed in pay a relative's bill.
//!
//! A bill is the caller's own when it is addressed to them (`payer_account_id`, a dossier's
//! applicant) or carries a customer code they linked; only then is the payer's name shown in
//! full. Someone who paid a bill they do not own still reads it, masked. Lookups by code are
//! limited per account: codes carry about 54 random bits, and each code that names no bill
//! counts against the account (`auth::login_limits::SubjectLimit`), so a guessing loop is soon
//! answered 429 whatever it asks.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Bill, BillKey, BillRow, BillStatus, BillerRef, find, looks_like_code};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::auth::client_addr::ClientAddr;
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(link_billing_account, list_billing_accounts))
        .routes(routes!(unlink_billing_account))
        .routes(routes!(list_own_bills))
        // A static segment wins over `{id}` in the router, whatever the order they are added.
        .routes(routes!(look_up_bill))
        .routes(routes!(get_own_bill))
}

/// The most billing accounts one citizen may have: the list is shown whole, unpaginated.
const MAX_BILLING_ACCOUNTS: i64 = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBillingAccount {
    /// The biller's code. Not a unit's dossier-fee biller: fee bills reach their applicant
    /// without a link.
    #[schema(example = "CNHUE")]
    pub biller_code: String,
    /// The citizen's code at the biller, as its bills print it: 1-64 characters once trimmed.
    /// When the biller has sent bills with customer codes, it must be one of them.
    #[schema(example = "PX0012345", min_length = 1, max_length = 64)]
    pub customer_code: String,
    /// The citizen's own name for it ("Nhà bà nội"), 1-100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100)]
    pub label: Option<String>,
}

/// A citizen's link to a customer code of a biller: its bills show in the citizen's list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillingAccount {
    pub id: Uuid,
    pub biller: BillerRef,
    pub customer_code: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
}

struct BillingAccountRow {
    id: Uuid,
    biller_code: String,
    biller_name: String,
    customer_code: String,
    label: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<BillingAccountRow> for BillingAccount {
    fn from(row: BillingAccountRow) -> Self {
        BillingAccount {
            id: row.id,
            biller: BillerRef {
                code: row.biller_code,
                name: row.biller_name,
            },
            customer_code: row.customer_code,
            label: row.label,
            created_at: row.created_at,
        }
    }
}

/// Link a biller's customer code: its bills join the caller's list. The biller must know the
/// code if it has sent bills with customer codes; one that has sent none yet takes any, and
/// its bills appear once it sends them. Linking a code again answers the existing link.
#[utoipa::path(post, path = "/v1/me/billing-accounts", tag = "bills", security(("bearer" = [])),
    request_body = NewBillingAccount,
    responses(
        (status = 201, body = BillingAccount, description = "Linked, or already linked: the link"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed`: an unknown `biller_code`, a `customer_code` the biller does not know, or 50 links already"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`rate_limited`: too many customer codes or bill codes that named nothing; see `Retry-After`"),
    ))]
async fn link_billing_account(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    ClientAddr(client): ClientAddr,
    Json(request): Json<NewBillingAccount>,
) -> ApiResult<(StatusCode, Json<BillingAccount>)> {
    let customer_code = request.customer_code.trim();
    let label = request.label.as_deref().map(str::trim);
    FieldChecks::new()
        .check(
            length_within(customer_code, 1, 64),
            "customer_code",
            Message::TextLength { min: 1, max: 64 },
        )
        .check(
            label.is_none_or(|label| length_within(label, 1, 100)),
            "label",
            Message::TextLength { min: 1, max: 100 },
        )
        .finish()?;
    let account_id = caller.account_id;
    // An unknown customer code says which codes exist, so trying codes counts against the
    // same limit as looking bills up by code.
    let limit = &state.auth.bill_lookups;
    let subject = account_id.to_string();
    limit
        .check(&mut *state.db.acquire().await?, &subject)
        .await?;
    let mut tx = state.db.begin().await?;
    let biller_id = linkable_biller(&mut tx, &request.biller_code).await?;
    // The caller's links are written one at a time, so the count below stays true.
    sqlx::query!(
        "SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
        account_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(existing) = link_of(&mut tx, account_id, biller_id, customer_code).await? {
        return Ok((StatusCode::CREATED, Json(existing)));
    }
    if let Err(unknown) = check_customer_code(&mut tx, biller_id, customer_code).await {
        drop(tx);
        let mut conn = state.db.acquire().await?;
        limit.record_failure(&mut conn, &subject, client).await?;
        return Err(unknown);
    }
    check_room(&mut tx, account_id).await?;
    sqlx::query!(
        "INSERT INTO billing_accounts (id, account_id, biller_id, customer_code, label)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT billing_accounts_link_key DO NOTHING",
        Uuid::new_v4(),
        account_id,
        biller_id,
        customer_code,
        label,
    )
    .execute(&mut *tx)
    .await?;
    let link = link_of(&mut tx, account_id, biller_id, customer_code)
        .await?
        .ok_or_else(|| ApiError::internal("a billing account vanished"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// The id of the biller a citizen may link by this code: an enabled biller of bills other than
/// dossier fees. Anything else is 422 naming `biller_code`.
async fn linkable_biller(conn: &mut PgConnection, biller_code: &str) -> ApiResult<Uuid> {
    let code = biller_code.trim().to_ascii_uppercase();
    sqlx::query_scalar!(
        "SELECT b.id FROM billers b JOIN merchants m ON m.id = b.id
         WHERE m.code = $1 AND m.role = 'biller' AND m.disabled_at IS NULL
           AND b.kind <> 'dossier_fee'",
        code
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::invalid_field("biller_code", Message::BillerUnknown))
}

/// A biller that has sent bills with customer codes knows its customers: the code must be one
/// of theirs. One that has sent none yet cannot tell, and the link waits for its bills.
async fn check_customer_code(
    conn: &mut PgConnection,
    biller_id: Uuid,
    customer_code: &str,
) -> ApiResult<()> {
    let codes = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM bills WHERE biller_id = $1 AND customer_code IS NOT NULL) AS "any_known!",
                  EXISTS (SELECT 1 FROM bills WHERE biller_id = $1 AND customer_code = $2) AS "this_known!""#,
        biller_id,
        customer_code,
    )
    .fetch_one(conn)
    .await?;
    if codes.any_known && !codes.this_known {
        return Err(ApiError::invalid_field(
            "customer_code",
            Message::CustomerCodeUnknown,
        ));
    }
    Ok(())
}

/// 422 when the caller already has [`MAX_BILLING_ACCOUNTS`] links.
async fn check_room(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<()> {
    let links = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM billing_accounts WHERE account_id = $1"#,
        account_id
    )
    .fetch_one(conn)
    .await?;
    if links >= MAX_BILLING_ACCOUNTS {
        return Err(ApiError::new(ErrorCode::ValidationFailed).with_detail(
            Message::BillingAccountsFull {
                max: MAX_BILLING_ACCOUNTS,
            },
        ));
    }
    Ok(())
}

/// The caller's link to this customer code of this biller, if they made it.
async fn link_of(
    conn: &mut PgConnection,
    account_id: Uuid,
    biller_id: Uuid,
    customer_code: &str,
) -> ApiResult<Option<BillingAccount>> {
    let row = sqlx::query_as!(
        BillingAccountRow,
        "SELECT a.id, m.code AS biller_code, m.name AS biller_name, a.customer_code, a.label,
                a.created_at
         FROM billing_accounts a JOIN merchants m ON m.id = a.biller_id
         WHERE a.account_id = $1 AND a.biller_id = $2 AND a.customer_code = $3",
        account_id,
        biller_id,
        customer_code,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(BillingAccount::from))
}

/// The caller's billing accounts, oldest first, all of them (at most 50): `next_cursor` is
/// always `null`.
#[utoipa::path(get, path = "/v1/me/billing-accounts", tag = "bills", security(("bearer" = [])),
    responses((status = 200, body = Page<BillingAccount>)))]
async fn list_billing_accounts(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
) -> ApiResult<Json<Page<BillingAccount>>> {
    let rows = sqlx::query_as!(
        BillingAccountRow,
        "SELECT a.id, m.code AS biller_code, m.name AS biller_name, a.customer_code, a.label,
                a.created_at
         FROM billing_accounts a JOIN merchants m ON m.id = a.biller_id
         WHERE a.account_id = $1
         ORDER BY a.created_at, a.id",
        caller.account_id,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page {
        data: rows.into_iter().map(BillingAccount::from).collect(),
        next_cursor: None,
    }))
}

/// Unlink a customer code: its bills leave the caller's list (a bill the caller paid stays
/// readable by its id).
#[utoipa::path(delete, path = "/v1/me/billing-accounts/{id}", tag = "bills", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No billing account of the caller has this id"),
    ))]
async fn unlink_billing_account(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let deleted = sqlx::query!(
        "DELETE FROM billing_accounts WHERE id = $1 AND account_id = $2",
        id,
        caller.account_id
    )
    .execute(&state.db)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillFilter {
    /// `unpaid` (the default), `paid` or `cancelled`.
    pub status: Option<BillStatus>,
}

/// The caller's bills of one status in one list: those addressed to them (their dossiers'
/// fees) and every bill of the customer codes they linked. Soonest due first (bills without a
/// due date last), `overdue` flagged.
#[utoipa::path(get, path = "/v1/bills", tag = "bills", security(("bearer" = [])),
    params(BillFilter, PageQuery),
    responses((status = 200, body = Page<Bill>)))]
async fn list_own_bills(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Query(filter): Query<BillFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Bill>>> {
    let limit = page.limit()?;
    // The due date (`null` for none, sorted last) and the code of the previous page's last bill.
    let after: Option<(Option<NaiveDate>, String)> = page.after()?;
    let (after_due, after_code) = after.unzip();
    let status = filter.status.unwrap_or(BillStatus::Unpaid);
    let rows: Vec<BillRow> = sqlx::query_as(
        "WITH own AS (
             SELECT id FROM bills WHERE payer_account_id = $1 AND status = $2
             UNION
             SELECT b.id FROM billing_accounts a
             JOIN bills b ON b.biller_id = a.biller_id AND b.customer_code = a.customer_code
             WHERE a.account_id = $1 AND b.status = $2
         )
         SELECT d.* FROM bill_details d JOIN own ON own.id = d.id
         WHERE $4::text IS NULL
            OR (COALESCE(d.due_date, DATE '9999-12-31'), d.code)
               > (COALESCE($3::date, DATE '9999-12-31'), $4::text)
         ORDER BY COALESCE(d.due_date, DATE '9999-12-31'), d.code
         LIMIT $5",
    )
    .bind(caller.account_id)
    .bind(status)
    .bind(after_due.flatten())
    .bind(after_code)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let bills = rows
        .into_iter()
        .map(|row| row.view_for(caller.account_id))
        .collect();
    Ok(Json(Page::from_rows(bills, limit, |bill: &Bill| {
        (bill.due_date, bill.code.clone())
    })))
}

/// One of the caller's bills; also one they paid for someone else, the payer's name masked.
#[utoipa::path(get, path = "/v1/bills/{id}", tag = "bills", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Bill),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No bill of the caller's, or paid by them, has this id"),
    ))]
async fn get_own_bill(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Bill>> {
    let mut conn = state.db.acquire().await?;
    let bill = find(&mut conn, BillKey::Id(id), false)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let account = caller.account_id;
    let visible = bill.payer_account_id == Some(account)
        || bill.paid_by == Some(account)
        || super::linked_to(&mut conn, &bill, account).await?;
    if !visible {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    Ok(Json(bill.view_for(account)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The bill's code, as printed on it or sent (letter case and surrounding spaces do not
    /// matter).
    #[param(example = "BK7M2Q9XH4TZ")]
    pub code: String,
}

/// Find any bill by its code, to pay it for a relative: answered whatever its status (so the
/// app can say it is already paid), the payer's name masked unless the bill is the caller's
/// own. Each code that names no bill counts against the caller; past
/// `CIVICPAY_BILL_LOOKUP_FAILURES_PER_ACCOUNT` of them within `CIVICPAY_BILL_LOOKUP_WINDOW_SECS`,
/// every lookup by the caller answers 429 with `Retry-After`, right codes included, until the
/// oldest failure leaves the window.
#[utoipa::path(get, path = "/v1/bills/lookup", tag = "bills", security(("bearer" = [])),
    params(LookupQuery),
    responses(
        (status = 200, body = Bill),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No bill has this code"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`rate_limited`: too many codes that named no bill; see `Retry-After`"),
    ))]
async fn look_up_bill(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    ClientAddr(client): ClientAddr,
    Query(query): Query<LookupQuery>,
) -> ApiResult<Json<Bill>> {
    let limit = &state.auth.bill_lookups;
    let subject = caller.account_id.to_string();
    let mut conn = state.db.acquire().await?;
    limit.check(&mut conn, &subject).await?;
    let code = query.code.trim().to_ascii_uppercase();
    // Text that cannot be a code costs no query, but counts like a wrong code.
    let found = if looks_like_code(&code) {
        find(&mut conn, BillKey::Code(&code), false).await?
    } else {
        None
    };
    let Some(bill) = found else {
        limit.record_failure(&mut conn, &subject, client).await?;
        return Err(ApiError::not_found(Message::BillNotFound));
    };
    Ok(Json(bill.view_for(caller.account_id)))
}
