//! Paying a bill, once. From the wallet: one transaction with the PIN check, the wallet's
//! one debit function (counted against the biller's limit category), the bill marked paid,
//! its payment recorded, `bill.paid` in the outbox and a fee bill's dossier moved by
//! `(bill paid)`. Through a provider: a payment opened at the provider with the bill on it;
//! its notification ([`pay_by_provider`], called by `payments::settle`) pays the bill in the
//! transaction that takes it.
//!
//! A bill is paid once. Two payments racing take turns on the bill's row; the second finds it
//! paid: from the wallet it is refused (409 `already_paid`, nothing moves), but money that
//! already reached a provider cannot be refused, so a provider payment of a paid (or
//! cancelled) bill is accepted and sent back to the payer's wallet in the same transaction, a
//! refund of a double payment in both the payer's and the biller's history.
//!
//! Locks, in this order everywhere: the payer's wallet row (its PIN check), the dossier of a
//! fee bill, then the bill, then the wallet's ledger account. A dossier's move locks the
//! dossier before its bill, so a payment must too, or the two could deadlock.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Bill, BillKey, BillRow, BillStatus, PaidVia};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::auth::client_addr::ClientAddr;
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{self, EntryKind, NewEntry, Posting};
use crate::payments::settings::{OpenPayment, Providers};
use crate::state::AppState;
use crate::wallet::pin::{self, PinChecked};
use crate::wallet::{self, Debit, LimitCategory};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pay_bill))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Wallet,
    Provider,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayBillRequest {
    /// `wallet` (the default; needs `X-Payment-Pin`) or `provider`.
    #[serde(default)]
    pub source: Source,
    /// With `provider`: `sandbox` (development) or `vnpay`.
    pub provider: Option<String>,
}

/// A bill's payment opened at a provider: open `payment_url` to pay.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderBillPayment {
    pub id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub provider: String,
    /// `pending` until the provider's notification.
    pub status: String,
    pub payment_url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub bill_id: Uuid,
}

/// Pay a bill: from the wallet (`Idempotency-Key` and `X-Payment-Pin`) or through a provider
/// (`{"source": "provider", "provider": "sandbox"}`, `Idempotency-Key`).
#[utoipa::path(post, path = "/v1/bills/{id}/pay", tag = "bills", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header),
           ("X-Payment-Pin" = Option<String>, Header, description = "Required to pay from the wallet")),
    request_body = PayBillRequest,
    responses(
        (status = 200, body = Bill, description = "Paid from the wallet"),
        (status = 201, body = ProviderBillPayment, description = "Opened at the provider"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`already_paid`, `bill_cancelled`, `insufficient_funds`, `limit_exceeded`, `wallet_not_verified`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`payment_pin_locked`"),
    ))]
async fn pay_bill(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    ClientAddr(client): ClientAddr,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    request: Idempotent<PayBillRequest>,
) -> Response {
    let payer = caller.account_id;
    if request.body().source == Source::Provider {
        let providers = state.providers.clone();
        let client_ip = client.to_string();
        return request
            .run(&state.db, payer, move |conn, body| {
                Box::pin(async move {
                    let opened = open_at_provider(conn, &providers, payer, id, body, &client_ip);
                    Answer::of(StatusCode::CREATED, &opened.await?)
                })
            })
            .await;
    }
    let pin_check = match pin::guard(state.wallet.pepper(), &headers, payer) {
        Ok(guard) => guard,
        Err(refusal) => return refusal.into_response(),
    };
    request
        .run_guarded(&state.db, payer, pin_check, move |conn, body, checked| {
            Box::pin(async move {
                if body.provider.is_some() {
                    return Err(ApiError::invalid_field(
                        "provider",
                        Message::FieldInvalidValue,
                    ));
                }
                let bill = pay_from_wallet(conn, &checked, id).await?;
                Answer::of(StatusCode::OK, &bill)
            })
        })
        .await
}

/// The bill locked for its payment, with where its money goes; 404 when there is none.
struct Payable {
    bill: BillRow,
    biller_account: Uuid,
    limit_category: LimitCategory,
    /// A disabled biller's bills are not paid any more (money that still reaches one through a
    /// provider is refunded).
    biller_disabled: bool,
}

async fn lock_payable(conn: &mut PgConnection, bill_id: Uuid) -> ApiResult<Payable> {
    lock_dossier_of(conn, bill_id).await?;
    let bill = super::find(conn, BillKey::Id(bill_id), true)
        .await?
        .ok_or_else(|| ApiError::not_found(Message::BillNotFound))?;
    let biller = sqlx::query!(
        r#"SELECT ledger_account_id, limit_category AS "limit_category: LimitCategory",
                  disabled_at IS NOT NULL AS "disabled!"
           FROM merchants WHERE id = $1"#,
        bill.biller_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Payable {
        bill,
        biller_account: biller.ledger_account_id,
        limit_category: biller.limit_category,
        biller_disabled: biller.disabled,
    })
}

/// Locks the dossier of a fee bill, first (see the module's lock order).
async fn lock_dossier_of(conn: &mut PgConnection, bill_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT d.id FROM dossiers d JOIN bills b ON b.dossier_id = d.id WHERE b.id = $1 FOR UPDATE OF d",
        bill_id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// 409 unless the bill is still unpaid (404 for a disabled biller's).
fn refuse_unless_unpaid(bill: &BillRow, biller_disabled: bool) -> ApiResult<()> {
    if biller_disabled {
        return Err(ApiError::not_found(Message::BillNotFound));
    }
    match bill.status {
        BillStatus::Unpaid => Ok(()),
        BillStatus::Paid => {
            Err(ApiError::new(ErrorCode::AlreadyPaid).with_detail(Message::BillAlreadyPaid))
        }
        BillStatus::Cancelled => Err(ApiError::new(ErrorCode::BillCancelled)),
    }
}

async fn pay_from_wallet(
    conn: &mut PgConnection,
    checked: &PinChecked,
    bill_id: Uuid,
) -> ApiResult<Bill> {
    let payable = lock_payable(conn, bill_id).await?;
    refuse_unless_unpaid(&payable.bill, payable.biller_disabled)?;
    let payer = checked.verified_wallet()?;
    let payer_id = payer.account_id();
    let bill = &payable.bill;
    let debited = wallet::debit(
        conn,
        Debit {
            payer,
            amount: bill.amount,
            limit_category: payable.limit_category,
            kind: EntryKind::BillPayment,
            reference: bill.code.clone(),
            note: None,
            payee: Some(bill.biller_name.clone()),
            credits: vec![Posting {
                account_id: payable.biller_account,
                amount: bill.amount.dong(),
                counterparty: Some(bill.code.clone()),
            }],
        },
    )
    .await?;
    let payment = Payment {
        via: PaidVia::Wallet,
        payer: Some(payer_id),
        amount: bill.amount.dong(),
        entry_id: debited.entry_id,
    };
    let paid = settle_unpaid(conn, bill, &payment).await?;
    Ok(paid.view_for(payer_id))
}

/// A payment that reached a bill.
#[derive(Clone, Copy)]
struct Payment {
    via: PaidVia,
    /// Whose wallet paid (directly or through a provider); none for cash at a counter.
    payer: Option<Uuid>,
    /// What it brought, in đồng.
    amount: i64,
    entry_id: Uuid,
}

/// A payment sent back at once: the refund's entry, and why.
type RefundedAtOnce = Option<(Uuid, RefundReason)>;

/// Records a payment of the bill (with its refund, for one sent back at once). At most one
/// payment of a bill is ever kept unrefunded (a unique index holds it).
async fn record_payment(
    conn: &mut PgConnection,
    bill: &BillRow,
    payment: &Payment,
    refund: RefundedAtOnce,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO bill_payments (id, bill_id, via, amount, payer_account_id, entry_id, refund_entry_id, refund_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Uuid::new_v4(),
        bill.id,
        payment.via as PaidVia,
        payment.amount,
        payment.payer,
        payment.entry_id,
        refund.map(|(entry, _)| entry),
        refund.map(|(_, reason)| reason.as_str()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The first payment of an unpaid bill, whose money is already on the biller's account: the
/// bill paid, its payment recorded, its receipt written (numbered after commit), a fee bill's
/// dossier moved, `bill.paid` announced. A payment from the app of a bill that a counter shows
/// as a QR code completes that collection and counts as `counter_qr`. A double payment gets no
/// receipt: its refund is recorded against the bill's payments. Answers the bill as the
/// transaction left it.
async fn settle_unpaid(
    conn: &mut PgConnection,
    bill: &BillRow,
    payment: &Payment,
) -> ApiResult<BillRow> {
    let receipt_id = Uuid::new_v4();
    let at_counter =
        payment.via != PaidVia::Cash && super::counter_qr_paid(conn, bill.id, receipt_id).await?;
    let payment = Payment {
        via: if at_counter {
            PaidVia::CounterQr
        } else {
            payment.via
        },
        ..*payment
    };
    let paid_at = sqlx::query_scalar!(
        r#"UPDATE bills SET status = 'paid', paid_at = now(), paid_via = $2, paid_by = $3
           WHERE id = $1 AND status = 'unpaid' RETURNING paid_at AS "paid_at!""#,
        bill.id,
        payment.via as PaidVia,
        payment.payer,
    )
    .fetch_optional(&mut *conn)
    .await?
    // The bill is locked and was read unpaid after the lock: never none, unless that changes.
    .ok_or_else(|| ApiError::new(ErrorCode::AlreadyPaid).with_detail(Message::BillAlreadyPaid))?;
    record_payment(conn, bill, &payment, None).await?;
    let receipt = crate::receipts::NewReceipt {
        id: receipt_id,
        bill_id: bill.id,
        biller_id: bill.biller_id,
        method: payment.via.as_str(),
        paid_at,
    };
    crate::receipts::issue(conn, &receipt).await?;
    if let Some(dossier_id) = bill.dossier_id {
        super::fee_paid(conn, dossier_id).await?;
    }
    super::announce(conn, bill.id, "bill.paid").await
}

/// Cash taken for a bill at a counter, as the counter hands it over.
pub struct CashPaid {
    pub bill_id: Uuid,
    /// The shift's drawer account, debited: the cash is now held at the counter.
    pub drawer_account: Uuid,
    pub officer: Uuid,
}

/// A bill paid in cash: the bill as paid, and the cash's journal entry.
pub struct PaidInCash {
    pub bill: BillRow,
    pub entry_id: Uuid,
}

/// Pays an unpaid bill in cash in the caller's transaction: one entry from the counter's drawer
/// to the biller, then the bill settled as every payment is (receipt, dossier, `bill.paid`).
/// Refused as a wallet payment is when the bill is not unpaid; nothing moves then.
pub async fn pay_in_cash(conn: &mut PgConnection, cash: &CashPaid) -> ApiResult<PaidInCash> {
    let payable = lock_payable(conn, cash.bill_id).await?;
    refuse_unless_unpaid(&payable.bill, payable.biller_disabled)?;
    let bill = &payable.bill;
    let movement = CashMovement {
        kind: EntryKind::BillPayment,
        note: "Thu tiền mặt tại Bộ phận một cửa",
        drawer_account: cash.drawer_account,
        biller_account: payable.biller_account,
        amount: bill.amount.dong(),
        officer: cash.officer,
    };
    let entry_id = post_cash(conn, bill, &movement, true).await?;
    let payment = Payment {
        via: PaidVia::Cash,
        payer: None,
        amount: bill.amount.dong(),
        entry_id,
    };
    let bill = settle_unpaid(conn, bill, &payment).await?;
    Ok(PaidInCash { bill, entry_id })
}

/// Cash moving between a counter's drawer and a biller.
struct CashMovement {
    kind: EntryKind,
    note: &'static str,
    drawer_account: Uuid,
    biller_account: Uuid,
    amount: i64,
    officer: Uuid,
}

/// Posts `movement` into the biller (`into_biller`) or back out of it to the drawer. Cash
/// going back is refused when the biller's account no longer holds it (paid out meanwhile).
async fn post_cash(
    conn: &mut PgConnection,
    bill: &BillRow,
    movement: &CashMovement,
    into_biller: bool,
) -> ApiResult<Uuid> {
    let amount = if into_biller {
        movement.amount
    } else {
        -movement.amount
    };
    let entry = ledger::post(
        conn,
        NewEntry {
            kind: movement.kind,
            reference: bill.code.clone(),
            note: Some(movement.note.to_owned()),
            created_by: Some(movement.officer),
            postings: vec![
                Posting {
                    account_id: movement.drawer_account,
                    amount: -amount,
                    counterparty: Some(bill.biller_name.clone()),
                },
                Posting {
                    account_id: movement.biller_account,
                    amount,
                    counterparty: Some(bill.code.clone()),
                },
            ],
        },
    )
    .await
    .map_err(|error| error.answered_as(ErrorCode::InsufficientMerchantBalance))?;
    Ok(entry.entry_id)
}

/// A cash collection to undo, as the counter's approved void hands it over.
pub struct CashVoid {
    pub bill_id: Uuid,
    /// The collection's entry: the payment it made is the one undone.
    pub entry_id: Uuid,
    pub drawer_account: Uuid,
    /// The supervisor who approved it.
    pub approved_by: Uuid,
}

/// Undoes a cash payment taken by mistake, in the caller's transaction: a reversing entry from
/// the biller back to the drawer, the payment marked voided, the bill unpaid again, its receipt
/// cancelled (it keeps its number), and the biller told (`bill.payment_voided`). Answers the
/// reversing entry. 409 when the payment is no longer the bill's (refunded with its dossier).
pub async fn void_cash_payment(conn: &mut PgConnection, void: &CashVoid) -> ApiResult<Uuid> {
    let payable = lock_payable(conn, void.bill_id).await?;
    let back = CashBack {
        payment_entry: Some(void.entry_id),
        bill_status: BillStatus::Paid,
        kind: EntryKind::Void,
        note: "Hủy khoản thu tiền mặt (đã được phê duyệt)",
        reason: "voided",
        drawer_account: void.drawer_account,
        officer: void.approved_by,
    };
    let (_, entry_id) = give_cash_back(conn, &payable, &back)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidTransition).with_detail(Message::CollectionNotVoidable)
        })?;
    sqlx::query!(
        "UPDATE bills SET status = 'unpaid', paid_at = NULL, paid_via = NULL, paid_by = NULL WHERE id = $1",
        payable.bill.id
    )
    .execute(&mut *conn)
    .await?;
    crate::receipts::cancel(conn, payable.bill.id).await?;
    super::announce(conn, payable.bill.id, "bill.payment_voided").await?;
    Ok(entry_id)
}

/// A cash refund to pay out at a counter, as the counter hands it over.
pub struct CashRefund {
    pub bill_id: Uuid,
    pub drawer_account: Uuid,
    pub officer: Uuid,
}

/// Cash paid back for a bill: how much, and the entry.
pub struct RefundedInCash {
    pub amount: i64,
    pub entry_id: Uuid,
}

/// Pays back out of a counter's drawer the cash payment of a bill cancelled with its dossier
/// (a wallet's money went back to the wallet then; cash can only go back at a counter), in the
/// caller's transaction; the bill is then marked refunded. 409 `no_refund_owed` otherwise.
pub async fn refund_in_cash(
    conn: &mut PgConnection,
    refund: &CashRefund,
) -> ApiResult<RefundedInCash> {
    let payable = lock_payable(conn, refund.bill_id).await?;
    let back = CashBack {
        payment_entry: None,
        bill_status: BillStatus::Cancelled,
        kind: EntryKind::Refund,
        note: RefundReason::DossierClosed.note(),
        reason: RefundReason::DossierClosed.as_str(),
        drawer_account: refund.drawer_account,
        officer: refund.officer,
    };
    let (amount, entry_id) = give_cash_back(conn, &payable, &back)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NoRefundOwed))?;
    sqlx::query!(
        "UPDATE bills SET refunded_at = now() WHERE id = $1",
        payable.bill.id
    )
    .execute(&mut *conn)
    .await?;
    Ok(RefundedInCash { amount, entry_id })
}

/// Cash going back from a biller to a counter's drawer: which payment (the one of
/// `payment_entry`, or the bill's cash payment not yet returned), when, and how it is written.
struct CashBack {
    payment_entry: Option<Uuid>,
    /// The state the locked bill must be in.
    bill_status: BillStatus,
    kind: EntryKind,
    note: &'static str,
    /// Recorded against the payment (`bill_payments.refund_reason`).
    reason: &'static str,
    drawer_account: Uuid,
    officer: Uuid,
}

/// Sends the bill's cash payment back to the drawer and records it against the payment, in the
/// caller's transaction (which holds the bill's lock); answers the amount and the entry, or
/// `None` when the bill is not in `bill_status` or has no such payment (nothing moves).
async fn give_cash_back(
    conn: &mut PgConnection,
    payable: &Payable,
    back: &CashBack,
) -> ApiResult<Option<(i64, Uuid)>> {
    let bill = &payable.bill;
    if bill.status != back.bill_status {
        return Ok(None);
    }
    let kept = sqlx::query!(
        "SELECT id, amount FROM bill_payments
         WHERE bill_id = $1 AND via = 'cash' AND refund_entry_id IS NULL
           AND ($2::uuid IS NULL OR entry_id = $2)",
        bill.id,
        back.payment_entry,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(kept) = kept else {
        return Ok(None);
    };
    let movement = CashMovement {
        kind: back.kind,
        note: back.note,
        drawer_account: back.drawer_account,
        biller_account: payable.biller_account,
        amount: kept.amount,
        officer: back.officer,
    };
    let entry_id = post_cash(conn, bill, &movement, false).await?;
    mark_refunded(conn, kept.id, entry_id, back.reason).await?;
    Ok(Some((kept.amount, entry_id)))
}

/// Writes a bill payment's refund (or void): the entry that sent it back, and why.
async fn mark_refunded(
    conn: &mut PgConnection,
    payment_id: Uuid,
    entry_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE bill_payments SET refund_entry_id = $2, refund_reason = $3 WHERE id = $1",
        payment_id,
        entry_id,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn open_at_provider(
    conn: &mut PgConnection,
    providers: &Providers,
    payer: Uuid,
    bill_id: Uuid,
    request: PayBillRequest,
    client_ip: &str,
) -> ApiResult<ProviderBillPayment> {
    let mut checks = FieldChecks::new();
    let provider = checks.parse(
        request
            .provider
            .as_deref()
            .and_then(|name| providers.get(name)),
        "provider",
        if request.provider.is_none() {
            Message::FieldRequired
        } else {
            Message::ProviderNotEnabled
        },
    );
    let provider = checks.finish_with(provider)?;
    let bill = super::find(conn, BillKey::Id(bill_id), false)
        .await?
        .ok_or_else(|| ApiError::not_found(Message::BillNotFound))?;
    let biller_disabled = sqlx::query_scalar!(
        r#"SELECT disabled_at IS NOT NULL AS "disabled!" FROM merchants WHERE id = $1"#,
        bill.biller_id
    )
    .fetch_one(&mut *conn)
    .await?;
    refuse_unless_unpaid(&bill, biller_disabled)?;
    // A double payment is sent back to the payer's wallet, so only a verified one may pay
    // through a provider.
    wallet::verified(conn, payer).await?;
    let opened = providers
        .open_payment(
            conn,
            OpenPayment {
                account_id: payer,
                amount: bill.amount.dong(),
                provider: provider.as_ref(),
                client_ip,
                bill_id: Some(bill.id),
            },
        )
        .await?;
    Ok(ProviderBillPayment {
        id: opened.id,
        amount: bill.amount,
        provider: provider.name().to_owned(),
        status: "pending".to_owned(),
        payment_url: opened.payment_url,
        created_at: opened.created_at,
        bill_id: bill.id,
    })
}

/// A provider's confirmed payment of a bill, as `payments::settle` hands it over.
pub struct ProviderPaid<'a> {
    pub bill_id: Uuid,
    pub payer: Uuid,
    pub amount: i64,
    pub provider: &'a str,
    /// The provider's clearing account, debited.
    pub clearing_account: Uuid,
}

/// Takes a provider's money for a bill in the caller's transaction: onto the biller's account,
/// then either the bill is paid, or (already paid, or cancelled meanwhile) the money goes
/// straight back to the payer's wallet as a refund of a double payment. Answers the payment's
/// journal entry.
pub async fn pay_by_provider(conn: &mut PgConnection, paid: ProviderPaid<'_>) -> ApiResult<Uuid> {
    let payable = lock_payable(conn, paid.bill_id).await?;
    let bill = &payable.bill;
    let entry = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::BillPayment,
            reference: bill.code.clone(),
            note: Some(paid.provider.to_owned()),
            created_by: None,
            postings: vec![
                Posting {
                    account_id: paid.clearing_account,
                    amount: -paid.amount,
                    counterparty: None,
                },
                Posting {
                    account_id: payable.biller_account,
                    amount: paid.amount,
                    counterparty: Some(bill.code.clone()),
                },
            ],
        },
    )
    .await
    .map_err(|e| ApiError::internal(format!("posting a provider's bill payment: {e:?}")))?;
    let payment = Payment {
        via: PaidVia::Provider,
        payer: Some(paid.payer),
        amount: paid.amount,
        entry_id: entry.entry_id,
    };
    let payable_now = !payable.biller_disabled && bill.status == BillStatus::Unpaid;
    if payable_now && bill.amount.dong() == paid.amount {
        settle_unpaid(conn, bill, &payment).await?;
        return Ok(entry.entry_id);
    }
    tracing::warn!(
        bill = %bill.code,
        provider = paid.provider,
        "a provider's payment of a bill that is no longer unpaid; refunding it to the payer's wallet"
    );
    let reason = RefundReason::DoublePayment;
    let back = Back {
        payer: paid.payer,
        amount: paid.amount,
        biller_account: payable.biller_account,
    };
    let refund_entry = post_refund(conn, bill, &back, reason).await?;
    record_payment(conn, bill, &payment, Some((refund_entry, reason))).await?;
    Ok(entry.entry_id)
}

/// Why a bill's payment went back to its payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// It arrived after the bill was paid (or cancelled).
    DoublePayment,
    /// The bill was cancelled with its dossier (refused, withdrawn, rejected).
    DossierClosed,
}

impl RefundReason {
    fn as_str(self) -> &'static str {
        match self {
            RefundReason::DoublePayment => "double_payment",
            RefundReason::DossierClosed => "dossier_closed",
        }
    }

    /// The note on the refund, as the payer's history shows it.
    fn note(self) -> &'static str {
        match self {
            RefundReason::DoublePayment => "Hoàn tiền thanh toán trùng hóa đơn",
            RefundReason::DossierClosed => "Hoàn phí, lệ phí của hồ sơ không được giải quyết",
        }
    }
}

/// Sends every payment of the bill not yet refunded back to the wallet it came from, in the
/// caller's transaction (which holds the bill's lock). Cash cannot go back to a wallet: it is
/// paid out at a counter ([`refund_in_cash`]). Answers whether nothing is left owed.
pub async fn refund_payments(
    conn: &mut PgConnection,
    bill: &BillRow,
    reason: RefundReason,
) -> ApiResult<bool> {
    let biller_account = sqlx::query_scalar!(
        "SELECT ledger_account_id FROM merchants WHERE id = $1",
        bill.biller_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let unrefunded = sqlx::query!(
        r#"SELECT id, amount, payer_account_id FROM bill_payments
           WHERE bill_id = $1 AND refund_entry_id IS NULL ORDER BY created_at"#,
        bill.id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut all_back = true;
    for payment in unrefunded {
        let Some(payer) = payment.payer_account_id else {
            all_back = false;
            continue;
        };
        let back = Back {
            payer,
            amount: payment.amount,
            biller_account,
        };
        let entry = post_refund(conn, bill, &back, reason).await?;
        mark_refunded(conn, payment.id, entry, reason.as_str()).await?;
    }
    Ok(all_back)
}

/// Money going back from a biller to the wallet of whoever paid.
struct Back {
    payer: Uuid,
    amount: i64,
    biller_account: Uuid,
}

/// Posts a refund of a bill's payment from the biller to the payer's wallet; answers its entry.
async fn post_refund(
    conn: &mut PgConnection,
    bill: &BillRow,
    back: &Back,
    reason: RefundReason,
) -> ApiResult<Uuid> {
    let wallet_account = wallet::ledger_account(conn, back.payer).await?;
    let entry = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::Refund,
            reference: bill.code.clone(),
            note: Some(reason.note().to_owned()),
            created_by: None,
            postings: vec![
                Posting {
                    account_id: back.biller_account,
                    amount: -back.amount,
                    counterparty: Some(bill.code.clone()),
                },
                Posting {
                    account_id: wallet_account,
                    amount: back.amount,
                    counterparty: Some(bill.biller_name.clone()),
                },
            ],
        },
    )
    .await
    // The biller's account holds at least what this bill brought it, unless it was paid out
    // meanwhile: then nothing is refunded and the whole move is refused.
    .map_err(|error| error.answered_as(ErrorCode::InsufficientMerchantBalance))?;
    Ok(entry.entry_id)
}
