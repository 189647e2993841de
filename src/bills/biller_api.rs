//! The biller API (DESIGN.md, "Bills"): a biller pushes its bills one at a time or in batches
//! of up to 10,000, cancels them while they are unpaid and reads them back by its own
//! reference.
//!
//! A bill is idempotent on the biller's reference: the request's fingerprint (SHA-256 of the
//! parsed request, so key order and spacing do not matter) is stored with the bill, and the
//! same request again names the bill it wrote, while another request under the reference is a
//! conflict. Both routes write through one path, `place`: one `INSERT … SELECT FROM UNNEST`
//! for every new bill, `ON CONFLICT DO NOTHING`, then one read of the references that were
//! taken. Two identical requests at once thus both succeed with one bill: the second insert
//! waits for the first to commit and then finds its bill. A batch is all or nothing, and a
//! refused batch names every bad row at once (`errors[].index`).

use std::collections::{HashMap, HashSet};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::billers::BillerCaller;
use super::{Bill, BillItem, BillKey, BillRow, BillStatus, NewBill, Reader};
use crate::domain::Money;
use crate::http::error::{FieldChecks, FieldError, Problem, length_within};
use crate::http::extract::parse_json;
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::outbox;
use crate::state::AppState;

/// The most bills one batch may carry.
pub const MAX_BATCH_BILLS: usize = 10_000;
/// The batch route's body limit, above the server's default: 10,000 bills of a few items
/// each are about 2 MiB.
pub const BATCH_BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;
/// The most items one bill may list (the `bills_items_shape` constraint).
const MAX_ITEMS: usize = 50;
/// A refused batch names every bad row, with at most this many of each row's errors (a row of
/// 50 bad items would have 100), so the answer stays within bounds.
const MAX_ERRORS_PER_ROW: usize = 10;
/// [`place`] draws a bill's code again when it was taken, about once in 10^14 bills; more
/// rounds than this mean something else keeps a bill out.
const MAX_PLACING_ROUNDS: usize = 4;

pub fn routes() -> OpenApiRouter<AppState> {
    // Only the batch route takes bodies over the server-wide limit.
    let batch = OpenApiRouter::new()
        .routes(routes!(create_bill_batch))
        .layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT_BYTES));
    OpenApiRouter::new()
        .routes(routes!(create_bill, list_bills))
        .routes(routes!(get_bill))
        .routes(routes!(cancel_bill))
        .merge(batch)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBillItem {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Tiền điện tháng 11")]
    pub name: String,
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
}

/// A bill as its biller sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBillRequest {
    /// The biller's own id for the bill, unique per biller: 1 to 64 characters, not all blank.
    #[schema(min_length = 1, max_length = 64, example = "HD-2026-11-000123")]
    pub reference: String,
    /// The customer code citizens link to see their bills: 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64, example = "PE04000123456")]
    pub customer_code: Option<String>,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Nguyễn Văn An")]
    pub payer_name: String,
    /// 1 to 50 lines.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<NewBillItem>,
    /// In đồng: the total of the items (422 naming `amount` otherwise).
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// YYYY-MM-DD, in the years 2000 to 2100.
    #[serde(default, deserialize_with = "crate::http::dates::opt_date")]
    pub due_date: Option<NaiveDate>,
}

/// Bills to write all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBillBatch {
    /// 1 to 10,000 bills. Each is read on its own, so a refusal names every bad one.
    #[schema(value_type = Vec<NewBillRequest>, min_items = 1, max_items = 10_000)]
    pub bills: Vec<Box<RawValue>>,
}

/// A bill of a batch: enough to match it with the biller's own records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchedBill {
    pub reference: String,
    pub id: Uuid,
    #[schema(example = "BK7M2Q9XH4TZ")]
    pub code: String,
}

/// What a batch wrote.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// Bills written now.
    pub created: usize,
    /// Rows sent before with the same content: their bills, unchanged.
    pub existing: usize,
    /// Every row's bill, in the order of the rows.
    pub bills: Vec<BatchedBill>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillFilter {
    pub status: Option<BillStatus>,
    /// Only bills due before this day (YYYY-MM-DD, in the years 2000 to 2100); bills without
    /// a due date are left out.
    #[serde(default, deserialize_with = "crate::http::dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub due_before: Option<NaiveDate>,
}

/// What tells a repeat of the creating request from another request under its reference.
fn fingerprint(request: &NewBillRequest) -> Vec<u8> {
    let canonical = serde_json::to_vec(request).expect("a bill request always serializes");
    Sha256::digest(canonical).to_vec()
}

/// Whether `text` is 1 to `max` characters and not all blank.
fn text_within(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// The request checked and made a bill of `biller_id`, every invalid field named at once.
fn checked(biller_id: Uuid, request: NewBillRequest) -> ApiResult<NewBill> {
    let request_hash = fingerprint(&request);
    let items_counted = (1..=MAX_ITEMS).contains(&request.items.len());
    let checks = FieldChecks::new()
        .check(
            text_within(&request.reference, 64),
            "reference",
            Message::TextLength { min: 1, max: 64 },
        )
        .check(
            request
                .customer_code
                .as_deref()
                .is_none_or(|code| text_within(code, 64)),
            "customer_code",
            Message::TextLength { min: 1, max: 64 },
        )
        .check(
            length_within(&request.payer_name, 1, 200),
            "payer_name",
            Message::TextLength { min: 1, max: 200 },
        )
        .check(
            items_counted,
            "items",
            Message::ListLength {
                min: 1,
                max: MAX_ITEMS,
            },
        );
    let (mut checks, items_valid) = if items_counted {
        check_items(checks, &request.items)
    } else {
        (checks, false)
    };
    let amount = checks.parse(
        request.amount.if_payable(),
        "amount",
        Message::AmountNotPayable,
    );
    let bill = NewBill {
        biller_id,
        reference: request.reference,
        customer_code: request.customer_code,
        payer_account_id: None,
        payer_name: request.payer_name.trim().to_owned(),
        items: request
            .items
            .into_iter()
            .map(|item| BillItem {
                name: item.name,
                amount: item.amount,
            })
            .collect(),
        due_date: request.due_date,
        dossier_id: None,
        request_hash: Some(request_hash),
    };
    // The total is worth comparing only once the items and the amount are valid themselves.
    let totals_match = !items_valid || amount.is_none() || bill.total() == amount;
    checks
        .check(totals_match, "amount", Message::BillAmountNotItemsTotal)
        .finish_with(Some(bill))
}

/// Each item's name and amount checked; also answers whether all were valid.
fn check_items(mut checks: FieldChecks, items: &[NewBillItem]) -> (FieldChecks, bool) {
    let mut all_valid = true;
    for (index, item) in items.iter().enumerate() {
        let name_ok = length_within(&item.name, 1, 200);
        let amount_ok = item.amount.if_payable().is_some();
        all_valid &= name_ok && amount_ok;
        checks = checks
            .check(
                name_ok,
                &format!("items[{index}].name"),
                Message::TextLength { min: 1, max: 200 },
            )
            .check(
                amount_ok,
                &format!("items[{index}].amount"),
                Message::AmountNotPayable,
            );
    }
    (checks, all_valid)
}

/// Every row of a batch read and checked on its own, so that one answer names every bad row:
/// the bills of the good rows with their index, and the errors of the others.
fn checked_rows(
    biller_id: Uuid,
    rows: &[Box<RawValue>],
) -> (Vec<(usize, NewBill)>, Vec<FieldError>) {
    let mut bills = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut references = HashSet::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let request = match parse_json::<NewBillRequest>(row.get().as_bytes()) {
            Ok(request) => request,
            Err(error) => {
                errors.extend(row_errors(&error, index));
                continue;
            }
        };
        let repeated = !references.insert(request.reference.clone());
        if repeated {
            errors.push(
                FieldError::new("reference", Message::ReferenceRepeatedInBatch).at_index(index),
            );
        }
        match checked(biller_id, request) {
            Ok(bill) if !repeated => bills.push((index, bill)),
            Ok(_) => {}
            Err(error) => errors.extend(row_errors(&error, index)),
        }
    }
    (bills, errors)
}

/// A row's refusal as field errors of that row (the first [`MAX_ERRORS_PER_ROW`]).
fn row_errors(error: &ApiError, index: usize) -> Vec<FieldError> {
    match error.field_errors() {
        [] => vec![FieldError::new("", Message::FieldInvalidValue).at_index(index)],
        fields => fields
            .iter()
            .take(MAX_ERRORS_PER_ROW)
            .map(|field| field.clone().at_index(index))
            .collect(),
    }
}

/// A bill as a batch answer lists it, and as [`place`] finds it.
#[derive(Debug, Clone)]
struct Written {
    id: Uuid,
    code: String,
}

/// What became of a bill a request asked for.
#[derive(Debug, Clone)]
enum Placed {
    /// Written now.
    Created(Written),
    /// The same request came before: the bill it wrote.
    Existing(Written),
    /// The reference names a bill made from another request.
    Conflict,
}

/// Writes the bills of `biller_id` whose references are new and tells, for each bill in
/// order, what became of it. A reference already taken, earlier or by a request committed
/// meanwhile, names the existing bill if that bill's request was the same, and is a conflict
/// otherwise. A bill left out for its code (already some other bill's) is drawn a new one.
async fn place(
    conn: &mut PgConnection,
    biller_id: Uuid,
    bills: &[NewBill],
) -> ApiResult<Vec<Placed>> {
    let mut placed: Vec<Option<Placed>> = vec![None; bills.len()];
    let mut pending: Vec<usize> = (0..bills.len()).collect();
    for _ in 0..MAX_PLACING_ROUNDS {
        if pending.is_empty() {
            break;
        }
        let mut inserted = insert_new(conn, biller_id, bills, &mut pending).await?;
        let mut missed = Vec::new();
        for index in pending.drain(..) {
            match inserted.remove(&bills[index].reference) {
                Some(written) => placed[index] = Some(Placed::Created(written)),
                None => missed.push(index),
            }
        }
        if missed.is_empty() {
            break;
        }
        // Taken by a bill committed before the insert (it waits for one in flight) or, rarely,
        // a code taken: the first are found under their references, the others go again.
        let existing = existing_bills(conn, biller_id, bills, &missed).await?;
        for index in missed {
            let bill = &bills[index];
            placed[index] = match existing.get(&bill.reference) {
                Some((written, hash)) if *hash == bill.request_hash => {
                    Some(Placed::Existing(written.clone()))
                }
                Some(_) => Some(Placed::Conflict),
                None => {
                    pending.push(index);
                    None
                }
            };
        }
    }
    placed
        .into_iter()
        .map(|placed| placed.ok_or_else(|| ApiError::internal("a bill was left unplaced")))
        .collect()
}

/// Inserts the bills at `rows` in one statement, each under a fresh id and code, skipping any
/// whose reference or code is taken; answers the inserted ones by reference. The rows go in
/// the order of their references, so two batches sharing references wait for each other
/// instead of deadlocking.
async fn insert_new(
    conn: &mut PgConnection,
    biller_id: Uuid,
    bills: &[NewBill],
    rows: &mut [usize],
) -> ApiResult<HashMap<String, Written>> {
    rows.sort_unstable_by(|a, b| bills[*a].reference.cmp(&bills[*b].reference));
    let count = rows.len();
    let mut ids = Vec::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    let mut references = Vec::with_capacity(count);
    let mut customer_codes = Vec::with_capacity(count);
    let mut payer_names = Vec::with_capacity(count);
    let mut items = Vec::with_capacity(count);
    let mut amounts = Vec::with_capacity(count);
    let mut due_dates = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for &index in rows.iter() {
        let bill = &bills[index];
        let amount = bill
            .total()
            .ok_or_else(|| ApiError::internal("a bill's total was not checked"))?;
        ids.push(Uuid::new_v4());
        codes.push(super::new_code());
        references.push(bill.reference.as_str());
        customer_codes.push(bill.customer_code.as_deref());
        payer_names.push(bill.payer_name.as_str());
        items.push(SqlJson(&bill.items));
        amounts.push(amount.dong());
        due_dates.push(bill.due_date);
        hashes.push(bill.request_hash.as_deref());
    }
    let inserted = sqlx::query!(
        "INSERT INTO bills (id, code, biller_id, reference, customer_code, payer_name, items,
                            amount, due_date, request_hash)
         SELECT t.id, t.code, $1, t.reference, t.customer_code, t.payer_name, t.items, t.amount,
                t.due_date, t.request_hash
         FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                     $8::int8[], $9::date[], $10::bytea[])
              AS t (id, code, reference, customer_code, payer_name, items, amount, due_date,
                    request_hash)
         ON CONFLICT DO NOTHING
         RETURNING id, code, reference",
        biller_id,
        &ids,
        &codes,
        &references as _,
        &customer_codes as _,
        &payer_names as _,
        &items as _,
        &amounts,
        &due_dates as _,
        &hashes as _,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(inserted
        .into_iter()
        .map(|row| {
            let written = Written {
                id: row.id,
                code: row.code,
            };
            (row.reference, written)
        })
        .collect())
}

/// The biller's bills under the references of the bills at `rows`, with their request hashes.
async fn existing_bills(
    conn: &mut PgConnection,
    biller_id: Uuid,
    bills: &[NewBill],
    rows: &[usize],
) -> ApiResult<HashMap<String, (Written, Option<Vec<u8>>)>> {
    let references: Vec<&str> = rows
        .iter()
        .map(|&index| bills[index].reference.as_str())
        .collect();
    let existing = sqlx::query!(
        "SELECT id, code, reference, request_hash FROM bills
         WHERE biller_id = $1 AND reference = ANY($2::text[])",
        biller_id,
        &references as _,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(existing
        .into_iter()
        .map(|row| {
            let written = Written {
                id: row.id,
                code: row.code,
            };
            (row.reference, (written, row.request_hash))
        })
        .collect())
}

/// Create a bill. The same `reference` and body again answers the existing bill (200).
#[utoipa::path(post, path = "/v1/biller/bills", tag = "bills", security(("biller_key" = [])),
    request_body = NewBillRequest,
    responses(
        (status = 201, body = Bill),
        (status = 200, body = Bill, description = "The same request again: the existing bill"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`bill_ref_conflict`: the reference names a bill made from another request"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed`, `amount` when it is not the total of the items"),
    ))]
async fn create_bill(
    State(state): State<AppState>,
    caller: BillerCaller,
    Json(request): Json<NewBillRequest>,
) -> ApiResult<(StatusCode, Json<Bill>)> {
    let bill = checked(caller.biller_id(), request)?;
    let mut conn = state.db.acquire().await?;
    let placed = place(&mut conn, caller.biller_id(), std::slice::from_ref(&bill)).await?;
    let (status, id) = match placed.into_iter().next() {
        Some(Placed::Created(written)) => (StatusCode::CREATED, written.id),
        Some(Placed::Existing(written)) => (StatusCode::OK, written.id),
        Some(Placed::Conflict) => return Err(ApiError::new(ErrorCode::BillRefConflict)),
        None => return Err(ApiError::internal("a bill was left unplaced")),
    };
    let bill = super::find(&mut conn, BillKey::Id(id), false)
        .await?
        .ok_or_else(|| ApiError::internal("a bill just written vanished"))?;
    Ok((status, Json(bill.view(Reader::Issuer))))
}

/// Create up to 10,000 bills at once, all or none. Rows sent before with the same content
/// are their existing bills. A refusal names every bad row: `errors[].index` is the row.
#[utoipa::path(post, path = "/v1/biller/bills/batch", tag = "bills", security(("biller_key" = [])),
    request_body = NewBillBatch,
    responses(
        (status = 201, body = BatchResult),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`body_too_large`: the body is over 16 MiB"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed`: `bills` when there are none or over 10,000; otherwise every invalid field of every bad row, with the row's `index` (a reference repeated in the batch, or naming a bill made from other content, among them)"),
    ))]
async fn create_bill_batch(
    State(state): State<AppState>,
    caller: BillerCaller,
    Json(batch): Json<NewBillBatch>,
) -> ApiResult<(StatusCode, Json<BatchResult>)> {
    if !(1..=MAX_BATCH_BILLS).contains(&batch.bills.len()) {
        return Err(ApiError::invalid_field(
            "bills",
            Message::ListLength {
                min: 1,
                max: MAX_BATCH_BILLS,
            },
        ));
    }
    let biller_id = caller.biller_id();
    let (rows, mut errors) = checked_rows(biller_id, &batch.bills);
    // The rows as sent are not needed past here.
    drop(batch);
    if !errors.is_empty() {
        errors.extend(taken_references(&state, biller_id, rows).await?);
        errors.sort_by_key(|error| error.index);
        return Err(ApiError::invalid_fields(errors));
    }
    let bills: Vec<NewBill> = rows.into_iter().map(|(_, bill)| bill).collect();
    let mut tx = state.db.begin().await?;
    let placed = place(&mut tx, biller_id, &bills).await?;
    let conflicts: Vec<FieldError> = placed
        .iter()
        .enumerate()
        .filter(|(_, placed)| matches!(placed, Placed::Conflict))
        .map(|(index, _)| taken_reference(index))
        .collect();
    if !conflicts.is_empty() {
        // Dropping the transaction takes back the rows it wrote.
        return Err(ApiError::invalid_fields(conflicts));
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(batch_result(bills, placed))))
}

fn taken_reference(index: usize) -> FieldError {
    FieldError::new("reference", Message::BillReferenceTaken).at_index(index)
}

/// The good rows of a refused batch whose references name bills of other content, so that
/// the refusal names every bad row, these too.
async fn taken_references(
    state: &AppState,
    biller_id: Uuid,
    rows: Vec<(usize, NewBill)>,
) -> ApiResult<Vec<FieldError>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (indexes, bills): (Vec<usize>, Vec<NewBill>) = rows.into_iter().unzip();
    let all: Vec<usize> = (0..bills.len()).collect();
    let mut conn = state.db.acquire().await?;
    let existing = existing_bills(&mut conn, biller_id, &bills, &all).await?;
    Ok(bills
        .iter()
        .zip(indexes)
        .filter(|(bill, _)| {
            existing
                .get(&bill.reference)
                .is_some_and(|(_, hash)| *hash != bill.request_hash)
        })
        .map(|(_, index)| taken_reference(index))
        .collect())
}

fn batch_result(bills: Vec<NewBill>, placed: Vec<Placed>) -> BatchResult {
    let mut result = BatchResult {
        created: 0,
        existing: 0,
        bills: Vec::with_capacity(bills.len()),
    };
    for (bill, placed) in bills.into_iter().zip(placed) {
        let written = match placed {
            Placed::Created(written) => {
                result.created += 1;
                written
            }
            Placed::Existing(written) => {
                result.existing += 1;
                written
            }
            Placed::Conflict => continue,
        };
        result.bills.push(BatchedBill {
            reference: bill.reference,
            id: written.id,
            code: written.code,
        });
    }
    result
}

/// The calling biller's bills, newest first.
#[utoipa::path(get, path = "/v1/biller/bills", tag = "bills", security(("biller_key" = [])),
    operation_id = "list_biller_bills",
    params(BillFilter, PageQuery),
    responses((status = 200, body = Page<Bill>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_bills(
    State(state): State<AppState>,
    caller: BillerCaller,
    Query(filter): Query<BillFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Bill>>> {
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    // Without a cursor the key bound is past every row, so the index serves both cases.
    let rows: Vec<BillRow> = sqlx::query_as(
        "SELECT * FROM bill_details
         WHERE biller_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::date IS NULL OR due_date < $3)
           AND (created_at, id) < (COALESCE($4, 'infinity'::timestamptz),
                                   COALESCE($5, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
         ORDER BY created_at DESC, id DESC LIMIT $6",
    )
    .bind(caller.biller_id())
    .bind(filter.status)
    .bind(filter.due_before)
    .bind(after.map(|(created_at, _)| created_at))
    .bind(after.map(|(_, id)| id))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let rows = Page::from_rows(rows, limit, |row| (row.created_at, row.id));
    Ok(Json(Page {
        data: rows
            .data
            .into_iter()
            .map(|row| row.view(Reader::Issuer))
            .collect(),
        next_cursor: rows.next_cursor,
    }))
}

/// One of the calling biller's bills, by its reference; another biller's does not exist.
#[utoipa::path(get, path = "/v1/biller/bills/{reference}", tag = "bills", security(("biller_key" = [])),
    operation_id = "get_biller_bill",
    params(("reference" = String, Path)),
    responses((status = 200, body = Bill), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_bill(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(reference): Path<String>,
) -> ApiResult<Json<Bill>> {
    let mut conn = state.db.acquire().await?;
    let key = BillKey::Reference {
        biller_id: caller.biller_id(),
        reference: &reference,
    };
    let bill = super::find(&mut conn, key, false)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(bill.view(Reader::Issuer)))
}

/// Cancel an unpaid bill; `bill.cancelled` is sent. Cancelling it again answers it as it is.
#[utoipa::path(post, path = "/v1/biller/bills/{reference}/cancel", tag = "bills", security(("biller_key" = [])),
    operation_id = "cancel_biller_bill",
    params(("reference" = String, Path)),
    responses(
        (status = 200, body = Bill),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`bill_not_unpaid`: the bill is paid"),
    ))]
async fn cancel_bill(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(reference): Path<String>,
) -> ApiResult<Json<Bill>> {
    let mut tx = state.db.begin().await?;
    let key = BillKey::Reference {
        biller_id: caller.biller_id(),
        reference: &reference,
    };
    let bill = super::find(&mut tx, key, true)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    match bill.status {
        BillStatus::Unpaid => {}
        BillStatus::Cancelled => return Ok(Json(bill.view(Reader::Issuer))),
        BillStatus::Paid => {
            let paid = ApiError::new(ErrorCode::BillNotUnpaid);
            return Err(paid.with_detail(Message::BillAlreadyPaid));
        }
    }
    // The bill is locked and was read unpaid after the lock; the status in the WHERE keeps it
    // so should that ever change.
    let changed = sqlx::query!(
        "UPDATE bills SET status = 'cancelled', cancelled_at = now() WHERE id = $1 AND status = 'unpaid'",
        bill.id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(ApiError::new(ErrorCode::BillNotUnpaid));
    }
    let cancelled = super::announce(&mut tx, bill.id, "bill.cancelled")
        .await?
        .view(Reader::Issuer);
    tx.commit().await?;
    outbox::committed();
    Ok(Json(cancelled))
}
