//! The double-entry ledger: every movement of money is one immutable journal entry of two or
//! more postings that sum to zero, written with [`post`] inside the caller's transaction, next
//! to the business row it belongs to and its outbox event.
//!
//! # Balances, locks and hot accounts
//!
//! An account is *immediate* or *deferred*:
//!
//! - **Immediate** (wallets, counter drawers): a posting updates the balance row in the same
//!   statement that checks it (`balance + amount >= 0` in the `WHERE`), so a wallet can never go
//!   below zero under any concurrency and the owner sees every movement at once.
//! - **Deferred** (merchants, billers, system and clearing accounts): these receive from
//!   thousands of wallets, and one row lock per credit would serialise every payment into them
//!   (measured here: one hot row cuts payments to 0.4× of the spread case). Their postings are
//!   written without touching the balance row and queued in `unfolded_postings`; [`fold`]
//!   empties the queue into the balances in batches (the server runs it every 100 ms). Their
//!   true balance is `balance + queued postings`. A debit of a deferred account that must stay
//!   non-negative (a merchant refund) first locks the row, which serialises such debits and
//!   keeps the folder from committing meanwhile, then checks that true balance. Postings are
//!   never updated, folding included.
//!
//! Trade-offs: a merchant's `balance` column lags by about one folding interval plus the
//! folding time (the benchmark reports the lag, and the folder warns past 5 s); readers that
//! need the exact figure add the queued postings. A deferred posting costs one extra small-row
//! insert and delete. `ledger verify` checks both halves.
//!
//! [`post`] writes an entry in one round trip through the `ledger_post` SQL function
//! (migrations/…_ledger_post_function.sql), which applies these rules.
//!
//! # Deadlocks
//!
//! Within an entry, rows are locked in account-id order, so two entries touching the same
//! accounts (a transfer each way) lock them in the same order and cannot deadlock. The folder
//! touches deferred rows only, one folder at a time (an advisory lock), and payments never hold
//! two deferred rows.

pub mod verify;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::background::BackgroundTasks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum EntryKind {
    Transfer,
    /// Money put into a wallet by an admin outside any provider (development and demo only).
    Funding,
    Topup,
    Withdrawal,
    Payment,
    Refund,
    Fee,
    Adjustment,
    /// A bill paid (from a wallet, a provider, a counter).
    BillPayment,
    /// A cash payment taken at a counter by mistake, undone with a supervisor's approval.
    Void,
    /// A closed shift's cash handed over from its drawer to its unit's cash.
    CashHandover,
    /// A unit's cash deposited at the State Treasury.
    Remittance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AccountKind {
    Wallet,
    Merchant,
    Biller,
    CounterDrawer,
    ProviderClearing,
    SystemFee,
    Suspense,
    TreasuryClearing,
    /// A unit's cash from its closed shifts, until deposited at the State Treasury.
    UnitCash,
}

impl AccountKind {
    /// Whether credits are appended and folded later (hot receivers), see the module docs.
    fn deferred(self) -> bool {
        !matches!(
            self,
            AccountKind::Wallet | AccountKind::CounterDrawer | AccountKind::UnitCash
        )
    }

    /// Accounts that stand for money outside civicpay may go negative: cash held at a counter
    /// or by a unit is such money (its balance is minus the cash held).
    fn allows_negative(self) -> bool {
        matches!(
            self,
            AccountKind::ProviderClearing
                | AccountKind::Suspense
                | AccountKind::TreasuryClearing
                | AccountKind::CounterDrawer
                | AccountKind::UnitCash
        )
    }
}

#[derive(Debug, Clone)]
pub struct Posting {
    pub account_id: Uuid,
    /// Positive credits the account, negative debits it: a signed movement in đồng, summed
    /// with its entry's other postings to zero, where a [`Money`] is an amount moved.
    pub amount: i64,
    /// Who is on the other side, as the account's owner should read it.
    pub counterparty: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub reference: String,
    pub note: Option<String>,
    pub created_by: Option<Uuid>,
    pub postings: Vec<Posting>,
}

#[derive(Debug)]
pub struct PostedEntry {
    pub entry_id: Uuid,
    /// The balance after the entry of each immediate account it touched.
    pub balances_after: HashMap<Uuid, i64>,
}

#[derive(Debug)]
pub enum PostError {
    /// The debit would take this account below zero; the transaction must be rolled back.
    InsufficientFunds {
        account_id: Uuid,
    },
    Database(sqlx::Error),
}

impl PostError {
    /// The client's answer: `refused` when a debit was refused, a fault otherwise.
    pub fn answered_as(self, refused: crate::http::ErrorCode) -> crate::http::ApiError {
        match self {
            PostError::InsufficientFunds { .. } => crate::http::ApiError::new(refused),
            PostError::Database(error) => error.into(),
        }
    }
}

impl From<sqlx::Error> for PostError {
    fn from(error: sqlx::Error) -> Self {
        PostError::Database(error)
    }
}

/// SQLSTATE raised by `ledger_post` when a debit would take an account below zero.
const INSUFFICIENT_FUNDS: &str = "CP001";

/// Writes `entry` inside the caller's transaction, in one round trip (the `ledger_post`
/// function applies the rules above). On [`PostError::InsufficientFunds`] the transaction is
/// aborted and must be rolled back. Panics on an entry that does not balance or has fewer than
/// two postings: that is a bug in the caller, never a client's doing.
pub async fn post(conn: &mut PgConnection, entry: NewEntry) -> Result<PostedEntry, PostError> {
    assert_balanced(&entry.postings);
    let entry_id = Uuid::new_v4();
    let accounts: Vec<Uuid> = entry.postings.iter().map(|p| p.account_id).collect();
    let amounts: Vec<i64> = entry.postings.iter().map(|p| p.amount).collect();
    let counterparties: Vec<Option<String>> =
        entry.postings.into_iter().map(|p| p.counterparty).collect();
    let rows = sqlx::query!(
        r#"SELECT account_id AS "account_id!", balance_after AS "balance_after!"
           FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8)"#,
        entry_id,
        entry.kind as EntryKind,
        entry.reference,
        entry.note,
        entry.created_by,
        &accounts,
        &amounts,
        &counterparties as &[Option<String>],
    )
    .fetch_all(conn)
    .await
    .map_err(refused_or_failed)?;
    let balances_after = rows
        .into_iter()
        .map(|r| (r.account_id, r.balance_after))
        .collect();
    Ok(PostedEntry {
        entry_id,
        balances_after,
    })
}

fn refused_or_failed(error: sqlx::Error) -> PostError {
    let refused_account = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .filter(|e| e.code() == INSUFFICIENT_FUNDS)
        .and_then(|e| e.detail())
        .and_then(|detail| detail.parse::<Uuid>().ok());
    match refused_account {
        Some(account_id) => PostError::InsufficientFunds { account_id },
        None => PostError::Database(error),
    }
}

pub fn assert_balanced(postings: &[Posting]) {
    assert!(
        postings.len() >= 2,
        "a journal entry needs two or more postings"
    );
    let sum = postings.iter().try_fold(0i64, |sum, p| {
        assert_ne!(p.amount, 0, "a posting moves money");
        sum.checked_add(p.amount)
    });
    assert_eq!(sum, Some(0), "a journal entry's postings sum to zero");
}

/// The accounts civicpay holds itself, which the migrations create once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemAccount<'a> {
    /// Where merchants' fees go.
    SystemFee,
    /// The other side of money put in by an admin outside any provider.
    Suspense,
    /// Money on its way to or from civicpay's own bank accounts (a merchant's payout).
    TreasuryClearing,
    /// A payment provider's account, by the provider's name (`sandbox`, `vnpay`): the other
    /// side of its top-ups and withdrawals.
    ProviderClearing(&'a str),
}

impl SystemAccount<'_> {
    /// The account's code in `ledger_accounts`.
    fn code(self) -> String {
        match self {
            SystemAccount::SystemFee => "system_fee".to_owned(),
            SystemAccount::Suspense => "suspense".to_owned(),
            SystemAccount::TreasuryClearing => "treasury_clearing".to_owned(),
            SystemAccount::ProviderClearing(provider) => format!("provider_clearing:{provider}"),
        }
    }
}

/// The ledger account of a system account.
pub async fn system_account(
    conn: &mut PgConnection,
    account: SystemAccount<'_>,
) -> Result<Uuid, sqlx::Error> {
    let code = account.code();
    sqlx::query_scalar!("SELECT id FROM ledger_accounts WHERE code = $1", code)
        .fetch_one(conn)
        .await
}

/// The ledger account owned by `owner_id` of `kind`, created on first use.
pub async fn owned_account(
    conn: &mut PgConnection,
    kind: AccountKind,
    owner_id: Uuid,
) -> Result<Uuid, sqlx::Error> {
    let created = sqlx::query_scalar!(
        "INSERT INTO ledger_accounts (id, kind, owner_id, allow_negative, deferred)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, owner_id) DO NOTHING RETURNING id",
        Uuid::new_v4(),
        kind as AccountKind,
        owner_id,
        kind.allows_negative(),
        kind.deferred(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    match created {
        Some(id) => Ok(id),
        None => {
            sqlx::query_scalar!(
                "SELECT id FROM ledger_accounts WHERE kind = $1 AND owner_id = $2",
                kind as AccountKind,
                owner_id,
            )
            .fetch_one(conn)
            .await
        }
    }
}

/// The account of a unit's cash (from its closed shifts, until deposited), created on first use.
/// Units are named by code, so it is found by its code `unit_cash:<unit>`.
pub async fn unit_cash_account(
    conn: &mut PgConnection,
    unit_code: &str,
) -> Result<Uuid, sqlx::Error> {
    let code = format!("unit_cash:{unit_code}");
    let kind = AccountKind::UnitCash;
    sqlx::query!(
        "INSERT INTO ledger_accounts (id, kind, code, allow_negative, deferred)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
        Uuid::new_v4(),
        kind as AccountKind,
        code,
        kind.allows_negative(),
        kind.deferred(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!("SELECT id FROM ledger_accounts WHERE code = $1", code)
        .fetch_one(conn)
        .await
}

/// How much folding did, and how far behind it was.
#[derive(Debug, Default, Clone, Copy)]
pub struct FoldReport {
    pub postings: i64,
    /// Age of the oldest posting folded in this pass, in milliseconds.
    pub oldest_lag_ms: i64,
}

/// Most postings folded in one transaction, so one pass never holds locks for long.
const FOLD_BATCH: i64 = 20_000;
pub const FOLD_EVERY: Duration = Duration::from_millis(100);

/// Adds queued postings into their accounts' balances. One folder runs at a time across all
/// processes; a second caller returns at once with nothing done.
pub async fn fold(db: &PgPool) -> Result<FoldReport, sqlx::Error> {
    let mut tx = db.begin().await?;
    let got_turn = crate::db::try_xact_lock(&mut tx, crate::db::LockSpace::Ledger, "fold").await?;
    if !got_turn {
        return Ok(FoldReport::default());
    }
    let report = sqlx::query!(
        r#"WITH batch AS (
               DELETE FROM unfolded_postings
               WHERE posting_id IN (SELECT posting_id FROM unfolded_postings ORDER BY posting_id LIMIT $1)
               RETURNING account_id, amount, created_at
           ), sums AS (
               SELECT account_id, sum(amount)::bigint AS total FROM batch GROUP BY account_id
           ), applied AS (
               UPDATE ledger_accounts a SET balance = a.balance + sums.total
               FROM sums WHERE a.id = sums.account_id RETURNING a.id
           )
           SELECT (SELECT count(*) FROM batch) AS "postings!",
                  (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)) * 1000, 0)::bigint FROM batch) AS "oldest_lag_ms!",
                  (SELECT count(*) FROM applied) AS "accounts!""#,
        FOLD_BATCH,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(FoldReport {
        postings: report.postings,
        oldest_lag_ms: report.oldest_lag_ms,
    })
}

/// Folds every [`FOLD_EVERY`] until cancelled.
pub fn spawn_folder(tasks: &BackgroundTasks, db: PgPool) {
    tasks.spawn("ledger folder", |cancel| async move {
        loop {
            match fold(&db).await {
                Ok(report) if report.oldest_lag_ms > 5_000 => {
                    tracing::warn!(
                        postings = report.postings,
                        lag_ms = report.oldest_lag_ms,
                        "ledger folding is behind"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "ledger folding failed; retrying"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(FOLD_EVERY) => {}
            }
        }
    });
}
