//! Bills (DESIGN.md, "Bills"): money a citizen owes a biller — a commune's dossier fee, the
//! power or water company, sanitation, a school. Billers push their bills through the biller
//! API ([`biller_api`]); dossier fees are billed from the procedure's fee schedule ([`fees`]);
//! citizens see every bill they owe in one list and look bills up by code ([`citizen`]), and
//! pay them from the wallet or through a provider ([`pay`]), once: a second payment arriving
//! by another channel is refunded in the transaction that takes it.
//!
//! A biller is a merchant row of role `biller` ([`billers`]), so its `bk_` keys, their
//! rotation, its webhook secret and its `bill.paid` / `bill.cancelled` callbacks are the
//! merchants' own machinery.
//!
//! This feature sits below dossiers and payments: they call it (a dossier bills its fee and
//! cancels it; a provider's notification pays a bill), and it reaches back only through the
//! one hook dossiers register, [`on_fee_paid`], to move a dossier when its fee is paid.

pub mod biller_api;
pub mod billers;
pub mod citizen;
pub mod demo;
pub mod fees;
pub mod pay;
pub mod settlement;

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::domain::Money;
use crate::http::{ApiError, ApiResult};
use crate::outbox::{self, Audience};
use crate::state::AppState;
use crate::vietnam_time::vietnam;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(billers::routes())
        .merge(biller_api::routes())
        .merge(citizen::routes())
        .merge(pay::routes())
        .merge(settlement::routes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum BillKind {
    DossierFee,
    Electricity,
    Water,
    Sanitation,
    Tuition,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum BillStatus {
    Unpaid,
    Paid,
    Cancelled,
}

/// How a bill was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum PaidVia {
    Wallet,
    Provider,
    Cash,
    CounterQr,
}

impl PaidVia {
    pub fn as_str(self) -> &'static str {
        match self {
            PaidVia::Wallet => "wallet",
            PaidVia::Provider => "provider",
            PaidVia::Cash => "cash",
            PaidVia::CounterQr => "counter_qr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BillItem {
    pub name: String,
    #[schema(value_type = i64)]
    pub amount: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillerRef {
    pub code: String,
    pub name: String,
}

/// A bill as its payer, its biller and staff see it (DESIGN.md, "Bills").
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Bill {
    pub id: Uuid,
    /// Short and printable (no 0/O, 1/I/L): the payment reference.
    #[schema(example = "BK7M2Q9XH4TZ")]
    pub code: String,
    pub biller: BillerRef,
    pub kind: BillKind,
    /// The biller's own id for the bill.
    pub reference: String,
    pub customer_code: Option<String>,
    /// Masked (`Ng*** V** A`) for a citizen unless the bill is addressed to them.
    pub payer_name: String,
    pub items: Vec<BillItem>,
    /// The total of the items.
    #[schema(value_type = i64)]
    pub amount: Money,
    pub due_date: Option<NaiveDate>,
    /// Unpaid past its due date (Vietnam time).
    pub overdue: bool,
    pub status: BillStatus,
    pub paid_at: Option<DateTime<Utc>>,
    pub paid_via: Option<PaidVia>,
    /// Its receipt (`GET /v1/receipts/{id}`), once paid.
    pub receipt_id: Option<Uuid>,
    /// The dossier whose fee it is.
    pub dossier_code: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When a paid bill cancelled with its dossier had its money sent back.
    pub refunded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A bill's row as `bill_details` has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillRow {
    pub id: Uuid,
    pub code: String,
    pub biller_id: Uuid,
    pub biller_code: String,
    pub biller_name: String,
    pub kind: BillKind,
    pub reference: String,
    pub customer_code: Option<String>,
    pub payer_account_id: Option<Uuid>,
    pub payer_name: String,
    pub items: SqlJson<Vec<BillItem>>,
    pub amount: Money,
    pub due_date: Option<NaiveDate>,
    pub status: BillStatus,
    pub paid_at: Option<DateTime<Utc>>,
    pub paid_via: Option<PaidVia>,
    pub paid_by: Option<Uuid>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub dossier_id: Option<Uuid>,
    pub dossier_code: Option<String>,
    pub request_hash: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub receipt_id: Option<Uuid>,
}

/// Whose eyes a bill is shown to: only its own payer (or a biller, or staff) reads the payer's
/// name in full.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// The biller, or staff in scope.
    Issuer,
    /// A signed-in citizen: the bill's own payer, or someone else (a relative paying by code).
    Citizen { own: bool },
}

impl BillRow {
    /// The bill as a signed-in citizen reads it: the payer's name in full only on a bill
    /// addressed to them (a dossier's applicant; a biller's bill is addressed to nobody's
    /// account, so it is masked for everyone but the biller).
    pub fn view_for(self, account_id: Uuid) -> Bill {
        let own = self.payer_account_id == Some(account_id);
        self.view(Reader::Citizen { own })
    }

    pub fn view(self, reader: Reader) -> Bill {
        let overdue =
            self.status == BillStatus::Unpaid && self.due_date.is_some_and(|due| due < today());
        let payer_name = match reader {
            Reader::Issuer | Reader::Citizen { own: true } => self.payer_name,
            Reader::Citizen { own: false } => masked_name(&self.payer_name),
        };
        Bill {
            id: self.id,
            code: self.code,
            biller: BillerRef {
                code: self.biller_code,
                name: self.biller_name,
            },
            kind: self.kind,
            reference: self.reference,
            customer_code: self.customer_code,
            payer_name,
            items: self.items.0,
            amount: self.amount,
            due_date: self.due_date,
            overdue,
            status: self.status,
            paid_at: self.paid_at,
            paid_via: self.paid_via,
            receipt_id: self.receipt_id,
            dossier_code: self.dossier_code,
            cancelled_at: self.cancelled_at,
            refunded_at: self.refunded_at,
            created_at: self.created_at,
        }
    }
}

/// Today in Vietnam.
pub fn today() -> NaiveDate {
    Utc::now().with_timezone(&vietnam()).date_naive()
}

pub use crate::domain::masked_name;

/// Whether the citizen linked the bill's customer code: the bill is then in their list. A link
/// proves nothing (anyone may type a customer code printed on a bill), so it shows the bill,
/// never the payer's name: only a bill addressed to the citizen ([`BillRow::view_for`]) does.
pub async fn linked_to(
    conn: &mut PgConnection,
    bill: &BillRow,
    account_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let Some(customer_code) = &bill.customer_code else {
        return Ok(false);
    };
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM billing_accounts
                          WHERE account_id = $1 AND biller_id = $2 AND customer_code = $3) AS "linked!""#,
        account_id,
        bill.biller_id,
        customer_code,
    )
    .fetch_one(conn)
    .await
}

/// How a bill is found.
#[derive(Debug, Clone, Copy)]
pub enum BillKey<'a> {
    Id(Uuid),
    Code(&'a str),
    /// The biller's own reference.
    Reference {
        biller_id: Uuid,
        reference: &'a str,
    },
}

/// The bill, read (or, with `lock`, locked for a change: `FOR UPDATE` of its row).
///
/// A locked bill is read in a statement after the one that locks it: a statement that waited
/// for the lock still reads from the snapshot it started with, so one that locked and read at
/// once would see the bill as it was before the transaction it waited for (a payment, say)
/// committed.
pub async fn find(
    conn: &mut PgConnection,
    key: BillKey<'_>,
    lock: bool,
) -> Result<Option<BillRow>, sqlx::Error> {
    let (by_id, by_code, biller_id, reference) = match key {
        BillKey::Id(id) => (Some(id), None, None, None),
        BillKey::Code(code) => (None, Some(code), None, None),
        BillKey::Reference {
            biller_id,
            reference,
        } => (None, None, Some(biller_id), Some(reference)),
    };
    let filter = "($1::uuid IS NULL OR id = $1) AND ($2::text IS NULL OR code = $2)
                  AND ($3::uuid IS NULL OR (biller_id = $3 AND reference = $4))";
    let by_id = if lock {
        let locked: Option<Uuid> =
            sqlx::query_scalar(&format!("SELECT id FROM bills WHERE {filter} FOR UPDATE"))
                .bind(by_id)
                .bind(by_code)
                .bind(biller_id)
                .bind(reference)
                .fetch_optional(&mut *conn)
                .await?;
        match locked {
            Some(id) => Some(id),
            None => return Ok(None),
        }
    } else {
        by_id
    };
    sqlx::query_as(&format!("SELECT * FROM bill_details WHERE {filter}"))
        .bind(by_id)
        .bind(by_code)
        .bind(biller_id)
        .bind(reference)
        .fetch_optional(conn)
        .await
}

/// A bill to write: from a biller's request or a dossier's fee schedule.
#[derive(Debug, Clone)]
pub struct NewBill {
    pub biller_id: Uuid,
    pub reference: String,
    pub customer_code: Option<String>,
    pub payer_account_id: Option<Uuid>,
    pub payer_name: String,
    pub items: Vec<BillItem>,
    pub due_date: Option<NaiveDate>,
    pub dossier_id: Option<Uuid>,
    pub request_hash: Option<Vec<u8>>,
}

impl NewBill {
    /// The total of the items, or `None` past what one bill may ask.
    pub fn total(&self) -> Option<Money> {
        self.items
            .iter()
            .try_fold(Money::ZERO, |sum, item| sum.checked_add(item.amount))
            .and_then(Money::if_payable)
    }
}

/// Writes a new unpaid bill under a fresh code and answers its id. A code already taken (one
/// chance in about 10^14 per bill) is drawn again.
pub async fn insert(conn: &mut PgConnection, bill: &NewBill) -> ApiResult<Uuid> {
    let amount = bill
        .total()
        .ok_or_else(|| ApiError::internal("a bill's total was not checked"))?;
    let id = Uuid::new_v4();
    loop {
        let inserted = sqlx::query!(
            "INSERT INTO bills (id, code, biller_id, reference, customer_code, payer_account_id, payer_name,
                                items, amount, due_date, dossier_id, request_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (code) DO NOTHING",
            id,
            new_code(),
            bill.biller_id,
            bill.reference,
            bill.customer_code,
            bill.payer_account_id,
            bill.payer_name.trim(),
            SqlJson(&bill.items) as _,
            amount.dong(),
            bill.due_date,
            bill.dossier_id,
            bill.request_hash,
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(id);
        }
    }
}

/// The characters of a bill code: no 0/O and no 1/I/L, which a person reading a code aloud or
/// typing it would confuse (the same alphabet as dossier tracking keys).
const CODE_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// `B` and 11 random characters: about 54 bits, so codes cannot be guessed.
const CODE_RANDOM_LEN: usize = 11;

/// A fresh bill code from the operating system's CSPRNG, each character equally likely.
pub fn new_code() -> String {
    let alphabet_len = CODE_ALPHABET.len() as u8;
    let unbiased_below = u8::MAX - u8::MAX % alphabet_len;
    let mut code = String::with_capacity(CODE_RANDOM_LEN + 1);
    code.push('B');
    while code.len() < CODE_RANDOM_LEN + 1 {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        for byte in bytes {
            if byte < unbiased_below && code.len() < CODE_RANDOM_LEN + 1 {
                code.push(CODE_ALPHABET[usize::from(byte % alphabet_len)] as char);
            }
        }
    }
    code
}

/// Whether text could be a bill code (checked before any lookup, so junk costs no query).
pub fn looks_like_code(text: &str) -> bool {
    text.len() == CODE_RANDOM_LEN + 1
        && text.starts_with('B')
        && text.bytes().skip(1).all(|b| CODE_ALPHABET.contains(&b))
}

/// Records `bill.paid` or `bill.cancelled` for the biller, with the bill as the biller API
/// returns it, in the caller's transaction. Re-reads the bill, so the event carries what the
/// transaction wrote; answers that read, for the caller's own answer.
pub async fn announce(
    conn: &mut PgConnection,
    bill_id: Uuid,
    event_type: &str,
) -> ApiResult<BillRow> {
    let bill = find(conn, BillKey::Id(bill_id), false)
        .await?
        .ok_or_else(|| ApiError::internal("an announced bill vanished"))?;
    let data =
        serde_json::to_value(bill.clone().view(Reader::Issuer)).map_err(ApiError::internal)?;
    outbox::record(conn, event_type, &data, Audience::Merchant(bill.biller_id)).await?;
    Ok(bill)
}

/// What the dossiers feature does, in the paying transaction, when a dossier's fee bill is
/// paid: the `(bill paid)` transition. Dossiers sit above bills, so they hand it down once at
/// start ([`on_fee_paid`]) instead of bills calling up.
pub type FeePaidHook = for<'c> fn(&'c mut PgConnection, Uuid) -> BoxFuture<'c, ApiResult<bool>>;

static FEE_PAID: OnceLock<FeePaidHook> = OnceLock::new();

/// Installs the `(bill paid)` transition (once per process; later calls are ignored).
pub fn on_fee_paid(hook: FeePaidHook) {
    let _ = FEE_PAID.set(hook);
}

/// Moves the dossier of a paid fee bill. Without the hook installed a fee bill is not paid at
/// all (the whole transaction fails): a paid fee must never leave its dossier waiting.
async fn fee_paid(conn: &mut PgConnection, dossier_id: Uuid) -> ApiResult<()> {
    let hook = FEE_PAID
        .get()
        .ok_or_else(|| ApiError::internal("the (bill paid) hook is not installed"))?;
    hook(conn, dossier_id).await?;
    Ok(())
}

/// What the counters feature does, in the transaction that pays a bill from the app: a
/// collection waiting for that bill's QR payment is completed, with the receipt about to be
/// written (`receipt id`), and the hook answers whether there was one. Counters sit above
/// bills, so they hand it down once at start ([`on_counter_qr_paid`]).
pub type CounterQrHook =
    for<'c> fn(&'c mut PgConnection, Uuid, Uuid) -> BoxFuture<'c, ApiResult<bool>>;

static COUNTER_QR_PAID: OnceLock<CounterQrHook> = OnceLock::new();

/// Installs the counters' QR completion (once per process; later calls are ignored).
pub fn on_counter_qr_paid(hook: CounterQrHook) {
    let _ = COUNTER_QR_PAID.set(hook);
}

/// Completes the counter collection waiting for this bill's payment, if any (see
/// [`CounterQrHook`]). Without the hook a bill is not paid at all: a counter must never wait
/// for a payment that happened.
async fn counter_qr_paid(
    conn: &mut PgConnection,
    bill_id: Uuid,
    receipt_id: Uuid,
) -> ApiResult<bool> {
    let hook = COUNTER_QR_PAID
        .get()
        .ok_or_else(|| ApiError::internal("the counter QR hook is not installed"))?;
    hook(conn, bill_id, receipt_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_are_recognised() {
        for _ in 0..1_000 {
            let code = new_code();
            assert!(looks_like_code(&code), "{code}");
            assert!(!code[1..].contains(['0', 'O', '1', 'I', 'L']));
        }
        assert!(!looks_like_code("B0000000000O"));
        assert!(!looks_like_code("BABC"));
    }
}
