//! Withdrawals to the citizen's own bank account (Circular 40/2024 allows no other): the wallet
//! is debited into the provider's clearing account at once, in the request's transaction; a
//! worker asks the provider for the payout after commit, keyed by the withdrawal id so a crash
//! and a retry never pay twice; a refused payout puts the money back in the wallet.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::clearing_account;
use super::provider::{Payout, PayoutResult, Provider};
use super::settings::Providers;
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::background::BackgroundTasks;
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{self, EntryKind, NewEntry, Posting};
use crate::outbox::{self, Audience};
use crate::state::AppState;
use crate::wallet::pin::{self, PinChecked};
use crate::wallet::{self, Debit, LimitCategory};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_withdrawal))
        .routes(routes!(get_withdrawal))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// The bank's short code, e.g. `VCB`: 2 to 20 capital letters or digits.
    #[schema(example = "VCB", pattern = "^[A-Z0-9]{2,20}$")]
    pub bank_code: String,
    /// 6 to 20 digits.
    #[schema(pattern = "^[0-9]{6,20}$")]
    pub account_number: String,
    /// The name on the bank account, as the bank writes it; must be the wallet holder's own
    /// name (compared in capitals without diacritics).
    #[schema(example = "NGUYEN VAN AN")]
    pub account_name: String,
    /// Defaults to the first provider that pays out; only `sandbox` pays out.
    #[schema(pattern = "^sandbox$")]
    pub provider: Option<String>,
}

/// Where a withdrawal stands: `pending` until its payout is answered, then `succeeded`, or
/// `failed` with the money back in the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum WithdrawalStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Withdrawal {
    pub id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub provider: String,
    pub bank_code: String,
    pub account_number: String,
    /// The name on the bank account, as given.
    pub account_name: String,
    /// `pending`, `succeeded` or `failed` (the money is back in the wallet).
    #[schema(value_type = String)]
    pub status: WithdrawalStatus,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// Send money to your own bank account. Needs `Idempotency-Key` and `X-Payment-Pin`.
#[utoipa::path(post, path = "/v1/wallet/withdrawals", tag = "wallet", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header), ("X-Payment-Pin" = String, Header)),
    request_body = WithdrawalRequest,
    responses(
        (status = 201, body = Withdrawal, description = "Debited; the payout follows"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`insufficient_funds`, `limit_exceeded`, `wallet_not_verified`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed` (e.g. another person's account), `payment_pin_invalid`"),
    ))]
async fn create_withdrawal(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    headers: HeaderMap,
    request: Idempotent<WithdrawalRequest>,
) -> Response {
    let citizen = caller.account_id;
    let pin_check = match pin::guard(state.wallet.pepper(), &headers, citizen) {
        Ok(guard) => guard,
        Err(refusal) => return refusal.into_response(),
    };
    let providers = state.providers.clone();
    request
        .run_guarded(&state.db, citizen, pin_check, move |conn, body, checked| {
            Box::pin(async move { withdraw(conn, &providers, citizen, checked, body).await })
        })
        .await
}

async fn withdraw(
    conn: &mut PgConnection,
    providers: &Providers,
    citizen: Uuid,
    checked: PinChecked,
    request: WithdrawalRequest,
) -> ApiResult<Answer> {
    // An unverified wallet has no verified name and is refused below.
    let verified_name = wallet::verified_name(conn, citizen).await?;
    let (amount, provider) = check_request(&request, providers, verified_name.as_deref())?;
    let payer = checked.verified_wallet()?;
    let id = Uuid::new_v4();
    let clearing = clearing_account(conn, provider.name()).await?;
    let bank_account = format!("{} {}", request.bank_code, request.account_number);
    let debited = wallet::debit(
        conn,
        Debit {
            payer,
            amount,
            limit_category: LimitCategory::General,
            kind: EntryKind::Withdrawal,
            reference: id.to_string(),
            note: Some(bank_account.clone()),
            payee: Some(bank_account),
            credits: vec![Posting {
                account_id: clearing,
                amount: amount.dong(),
                counterparty: None,
            }],
        },
    )
    .await?;
    let withdrawal = sqlx::query_as!(
        Withdrawal,
        r#"INSERT INTO withdrawals (id, account_id, provider, amount, bank_code, account_number, account_holder, entry_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id, amount AS "amount: Money", provider, bank_code, account_number, account_holder AS account_name,
                     status AS "status: WithdrawalStatus", failure_reason, created_at, settled_at"#,
        id,
        citizen,
        provider.name(),
        amount.dong(),
        request.bank_code,
        request.account_number,
        request.account_name.trim(),
        debited.entry_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let data = serde_json::json!({"withdrawal_id": id, "amount": amount.dong()});
    outbox::record(
        conn,
        "wallet.withdrawal_requested",
        &data,
        Audience::Citizen(citizen),
    )
    .await?;
    Answer::of(StatusCode::CREATED, &withdrawal)
}

/// The amount and the provider, once every field passed its checks; the account must be in
/// the wallet holder's verified name, when there is one.
fn check_request<'p>(
    request: &WithdrawalRequest,
    providers: &'p Providers,
    verified_name: Option<&str>,
) -> ApiResult<(Money, &'p Arc<dyn Provider>)> {
    let paying_out = match &request.provider {
        Some(name) => providers.get(name).filter(|p| p.pays_out()),
        None => providers.all().find(|p| p.pays_out()),
    };
    let digits = |text: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
    };
    let mut checks = FieldChecks::new();
    let amount = checks.parse(
        request.amount.if_payable(),
        "amount",
        Message::AmountNotPayable,
    );
    let provider = checks.parse(paying_out, "provider", Message::ProviderNotEnabled);
    checks
        .check(
            (2..=20).contains(&request.bank_code.len())
                && request
                    .bank_code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "bank_code",
            Message::FieldInvalidValue,
        )
        .check(
            digits(&request.account_number, 6..=20),
            "account_number",
            Message::FieldInvalidValue,
        )
        .check(
            verified_name.is_none_or(|name| same_person(&request.account_name, name)),
            "account_name",
            Message::AccountHolderNotOwner,
        )
        .finish_with(amount.zip(provider))
}

/// Bank account names are written in capitals without diacritics: compare them that way.
fn same_person(holder: &str, owner: &str) -> bool {
    let normal = |name: &str| {
        name.split_whitespace()
            .map(|word| {
                word.chars()
                    .map(strip_diacritic)
                    .collect::<String>()
                    .to_uppercase()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    !holder.trim().is_empty() && normal(holder) == normal(owner)
}

fn strip_diacritic(c: char) -> char {
    const GROUPS: &[(&str, char)] = &[
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'A'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ÈÉẺẼẸÊỀẾỂỄỆ", 'E'),
        ("ìíỉĩị", 'i'),
        ("ÌÍỈĨỊ", 'I'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'O'),
        ("ùúủũụưừứửữự", 'u'),
        ("ÙÚỦŨỤƯỪỨỬỮỰ", 'U'),
        ("ỳýỷỹỵ", 'y'),
        ("ỲÝỶỸỴ", 'Y'),
        ("đ", 'd'),
        ("Đ", 'D'),
    ];
    GROUPS
        .iter()
        .find(|(group, _)| group.contains(c))
        .map_or(c, |(_, plain)| *plain)
}

/// One of the caller's withdrawals.
#[utoipa::path(get, path = "/v1/wallet/withdrawals/{id}", tag = "wallet", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Withdrawal), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_withdrawal(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Withdrawal>> {
    let withdrawal = sqlx::query_as!(
        Withdrawal,
        r#"SELECT id, amount AS "amount: Money", provider, bank_code, account_number, account_holder AS account_name,
                  status AS "status: WithdrawalStatus", failure_reason, created_at, settled_at
           FROM withdrawals WHERE id = $1 AND account_id = $2"#,
        id,
        caller.account_id,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(withdrawal))
}

/// How long a claimed payout is held before another worker may take it over.
const LEASE: Duration = Duration::from_secs(60);
/// How long after a provider error the payout is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_secs(1);

pub fn spawn_payout_worker(tasks: &BackgroundTasks, db: PgPool, providers: Providers) {
    tasks.spawn("payout worker", |cancel| async move {
        loop {
            if let Err(error) = pay_out_due(&db, &providers).await {
                tracing::warn!(%error, "paying out withdrawals failed; retrying later");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    });
}

/// One pass: claims the due withdrawals under a lease, asks their provider to pay each (the
/// provider keys the payout by withdrawal id, so asking again after a crash pays nothing
/// twice), and records the answer. Returns how many were settled.
pub async fn pay_out_due(db: &PgPool, providers: &Providers) -> anyhow::Result<usize> {
    let lease_token = Uuid::new_v4();
    let claimed = sqlx::query!(
        "UPDATE withdrawals w SET next_attempt_at = now() + make_interval(secs => $1), lease_token = $2,
                attempts = attempts + 1
         FROM (SELECT id FROM withdrawals WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED) due
         WHERE w.id = due.id
         RETURNING w.id, w.account_id, w.provider, w.amount, w.bank_code, w.account_number,
                   w.account_holder AS account_name",
        LEASE.as_secs_f64(),
        lease_token,
    )
    .fetch_all(db)
    .await?;
    let mut settled = 0;
    for w in claimed {
        let Some(provider) = providers.get(&w.provider) else {
            continue;
        };
        let payout = Payout {
            withdrawal_id: w.id,
            amount: w.amount,
            bank_code: &w.bank_code,
            account_number: &w.account_number,
            account_name: &w.account_name,
        };
        match provider.payout(db, &payout).await {
            Ok(result) => {
                finish(
                    db,
                    w.id,
                    w.account_id,
                    &w.provider,
                    w.amount,
                    lease_token,
                    result,
                )
                .await?;
                settled += 1;
            }
            Err(error) => {
                tracing::warn!(%error, withdrawal = %w.id, "payout request failed; will ask again");
                sqlx::query!(
                    "UPDATE withdrawals SET next_attempt_at = now() + make_interval(secs => $2), lease_token = NULL
                     WHERE id = $1 AND lease_token = $3",
                    w.id,
                    RETRY_AFTER.as_secs_f64(),
                    lease_token,
                )
                .execute(db)
                .await?;
            }
        }
    }
    Ok(settled)
}

/// Records the provider's answer; a refused payout returns the money to the wallet, in the
/// same transaction.
async fn finish(
    db: &PgPool,
    id: Uuid,
    citizen: Uuid,
    provider: &str,
    amount: i64,
    lease_token: Uuid,
    result: PayoutResult,
) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let still_ours = sqlx::query_scalar!(
        "SELECT status FROM withdrawals WHERE id = $1 AND lease_token = $2 AND status = 'pending' FOR UPDATE",
        id,
        lease_token
    )
    .fetch_optional(&mut *tx)
    .await?;
    if still_ours.is_none() {
        return Ok(());
    }
    match result {
        PayoutResult::Paid { provider_ref } => {
            record_paid(&mut tx, id, citizen, amount, provider_ref).await?;
        }
        PayoutResult::Refused { reason } => {
            return_to_wallet(&mut tx, id, citizen, provider, amount, reason).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn record_paid(
    conn: &mut PgConnection,
    id: Uuid,
    citizen: Uuid,
    amount: i64,
    provider_ref: String,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE withdrawals SET status = 'succeeded', provider_ref = $2, settled_at = now(), lease_token = NULL
         WHERE id = $1",
        id,
        provider_ref,
    )
    .execute(&mut *conn)
    .await?;
    let data = serde_json::json!({"withdrawal_id": id, "amount": amount});
    outbox::record(
        conn,
        "wallet.withdrawal_succeeded",
        &data,
        Audience::Citizen(citizen),
    )
    .await?;
    Ok(())
}

/// Puts the money of a refused payout back in the wallet and marks the withdrawal failed.
async fn return_to_wallet(
    conn: &mut PgConnection,
    id: Uuid,
    citizen: Uuid,
    provider: &str,
    amount: i64,
    reason: String,
) -> anyhow::Result<()> {
    let wallet_account = wallet::ledger_account(conn, citizen).await?;
    let clearing = clearing_account(conn, provider).await?;
    let posted = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::Refund,
            reference: id.to_string(),
            note: Some(format!("payout refused: {reason}")),
            created_by: None,
            postings: vec![
                Posting {
                    account_id: clearing,
                    amount: -amount,
                    counterparty: None,
                },
                Posting {
                    account_id: wallet_account,
                    amount,
                    counterparty: Some(provider.to_owned()),
                },
            ],
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("posting a withdrawal refund: {e:?}"))?;
    sqlx::query!(
        "UPDATE withdrawals SET status = 'failed', failure_reason = $2, refund_entry_id = $3,
                settled_at = now(), lease_token = NULL
         WHERE id = $1",
        id,
        reason,
        posted.entry_id,
    )
    .execute(&mut *conn)
    .await?;
    let data = serde_json::json!({"withdrawal_id": id, "amount": amount, "reason": reason});
    outbox::record(
        conn,
        "wallet.withdrawal_failed",
        &data,
        Audience::Citizen(citizen),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_person;

    #[test]
    fn a_bank_name_matches_its_owner_without_diacritics_or_case() {
        assert!(same_person("NGUYEN VAN AN", "Nguyễn Văn An"));
        assert!(same_person("tran  thi   hoa", "Trần Thị Hoa"));
        assert!(same_person("DANG DUC DUNG", "Đặng Đức Dũng"));
        assert!(!same_person("NGUYEN VAN BINH", "Nguyễn Văn An"));
        assert!(!same_person("", ""));
    }
}
