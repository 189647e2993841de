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
//!   appended *unfolded* without touching the balance row; [`fold`] adds them in batches (the
//!   server runs it every 100 ms). Their true balance is `balance + unfolded postings`, and
//!   `balance` is always the sum of the folded ones. A debit of a deferred account that must
//!   stay non-negative (a merchant refund) first locks the row, which serialises such debits
//!   and keeps the folder from committing meanwhile, then checks that true balance.
//!
//! Trade-offs: a merchant's `balance` column lags by at most one folding interval plus the
//! folding time (the benchmark reports the lag); readers that need the exact figure add the
//! unfolded postings (an index covers them). `ledger verify` checks both halves.
//!
//! # Deadlocks
//!
//! Within an entry, rows are locked in account-id order, so two entries touching the same
//! accounts (a transfer each way) lock them in the same order and cannot deadlock. The folder
//! touches deferred rows only, one folder at a time (an advisory lock), and payments never hold
//! two deferred rows.

pub mod money;
pub mod verify;

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::background::BackgroundTasks;
pub use money::Money;

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
}

impl AccountKind {
    /// Whether credits are appended and folded later (hot receivers), see the module docs.
    fn deferred(self) -> bool {
        !matches!(self, AccountKind::Wallet | AccountKind::CounterDrawer)
    }

    /// Accounts that stand for money outside civicpay may go negative.
    fn allows_negative(self) -> bool {
        matches!(
            self,
            AccountKind::ProviderClearing | AccountKind::Suspense | AccountKind::TreasuryClearing
        )
    }
}

#[derive(Debug, Clone)]
pub struct Posting {
    pub account_id: Uuid,
    /// Positive credits the account, negative debits it.
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

impl From<sqlx::Error> for PostError {
    fn from(error: sqlx::Error) -> Self {
        PostError::Database(error)
    }
}

/// Writes `entry` inside the caller's transaction. Panics on an entry that does not balance or
/// has fewer than two postings: that is a bug in the caller, never a client's doing.
pub async fn post(conn: &mut PgConnection, entry: NewEntry) -> Result<PostedEntry, PostError> {
    assert_balanced(&entry.postings);
    let entry_id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO journal_entries (id, kind, reference, note, created_by) VALUES ($1, $2, $3, $4, $5)",
        entry_id,
        entry.kind as EntryKind,
        entry.reference,
        entry.note,
        entry.created_by,
    )
    .execute(&mut *conn)
    .await?;

    let mut postings = entry.postings;
    postings.sort_by_key(|p| p.account_id);
    let kinds = account_kinds(conn, &postings).await?;
    let mut balances_after = HashMap::new();
    let mut rows = PostingRows::default();
    for posting in &postings {
        let kind = *kinds
            .get(&posting.account_id)
            .ok_or(PostError::Database(sqlx::Error::RowNotFound))?;
        let applied = apply(conn, posting, kind).await?;
        if let Applied::Immediate(balance) = applied {
            balances_after.insert(posting.account_id, balance);
        }
        rows.push(posting, applied);
    }
    rows.insert(conn, entry_id).await?;
    Ok(PostedEntry {
        entry_id,
        balances_after,
    })
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

async fn account_kinds(
    conn: &mut PgConnection,
    postings: &[Posting],
) -> Result<HashMap<Uuid, AccountKind>, sqlx::Error> {
    let ids: Vec<Uuid> = postings.iter().map(|p| p.account_id).collect();
    let rows = sqlx::query!(
        r#"SELECT id, kind AS "kind: AccountKind" FROM ledger_accounts WHERE id = ANY($1)"#,
        &ids,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.kind)).collect())
}

enum Applied {
    /// Applied to the balance row; the balance after it.
    Immediate(i64),
    /// Appended for the folder.
    Unfolded,
}

async fn apply(
    conn: &mut PgConnection,
    posting: &Posting,
    kind: AccountKind,
) -> Result<Applied, PostError> {
    let insufficient = || PostError::InsufficientFunds {
        account_id: posting.account_id,
    };
    if !kind.deferred() {
        let balance = sqlx::query_scalar!(
            "UPDATE ledger_accounts SET balance = balance + $2
             WHERE id = $1 AND (allow_negative OR balance + $2 >= 0)
             RETURNING balance",
            posting.account_id,
            posting.amount,
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(insufficient)?;
        return Ok(Applied::Immediate(balance));
    }
    if posting.amount > 0 || kind.allows_negative() {
        return Ok(Applied::Unfolded);
    }
    // A checked debit of a hot account, against its balance plus what is not folded yet. The
    // lock is taken first, in its own statement: the sum below then reads a snapshot taken
    // after any folder holding the row has committed, so no posting is counted twice.
    sqlx::query!(
        "SELECT id FROM ledger_accounts WHERE id = $1 FOR UPDATE",
        posting.account_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let available = sqlx::query_scalar!(
        r#"SELECT a.balance + COALESCE((SELECT sum(p.amount) FROM postings p
                                        WHERE p.account_id = a.id AND NOT p.folded), 0)::bigint AS "available!"
           FROM ledger_accounts a WHERE a.id = $1"#,
        posting.account_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    if available
        .checked_add(posting.amount)
        .is_none_or(|after| after < 0)
    {
        return Err(insufficient());
    }
    Ok(Applied::Unfolded)
}

/// The postings of one entry, inserted in one statement.
#[derive(Default)]
struct PostingRows {
    accounts: Vec<Uuid>,
    amounts: Vec<i64>,
    balances_after: Vec<Option<i64>>,
    folded: Vec<bool>,
    counterparties: Vec<Option<String>>,
}

impl PostingRows {
    fn push(&mut self, posting: &Posting, applied: Applied) {
        let (balance_after, folded) = match applied {
            Applied::Immediate(balance) => (Some(balance), true),
            Applied::Unfolded => (None, false),
        };
        self.accounts.push(posting.account_id);
        self.amounts.push(posting.amount);
        self.balances_after.push(balance_after);
        self.folded.push(folded);
        self.counterparties.push(posting.counterparty.clone());
    }

    async fn insert(self, conn: &mut PgConnection, entry_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO postings (entry_id, account_id, amount, balance_after, folded, counterparty)
             SELECT $1, * FROM UNNEST($2::uuid[], $3::bigint[], $4::bigint[], $5::bool[], $6::text[])",
            entry_id,
            &self.accounts,
            &self.amounts,
            &self.balances_after as &[Option<i64>],
            &self.folded,
            &self.counterparties as &[Option<String>],
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

pub fn admin_routes() -> utoipa_axum::router::OpenApiRouter<crate::app::AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(verify::verify_endpoint))
}

/// The ledger account of a system account by its code (`system_fee`, `suspense`, ...).
pub async fn system_account(conn: &mut PgConnection, code: &str) -> Result<Uuid, sqlx::Error> {
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

/// Adds unfolded postings into their accounts' balances. One folder runs at a time across all
/// processes; a second caller returns at once with nothing done.
pub async fn fold(db: &PgPool) -> Result<FoldReport, sqlx::Error> {
    let mut tx = db.begin().await?;
    let got_turn = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('civicpay.ledger.fold')) AS "got!""#
    )
    .fetch_one(&mut *tx)
    .await?;
    if !got_turn {
        return Ok(FoldReport::default());
    }
    let report = sqlx::query!(
        r#"WITH batch AS (
               SELECT id FROM postings WHERE NOT folded ORDER BY id LIMIT $1
           ), marked AS (
               UPDATE postings p SET folded = true FROM batch WHERE p.id = batch.id
               RETURNING p.account_id, p.amount, p.created_at
           ), sums AS (
               SELECT account_id, sum(amount)::bigint AS total FROM marked GROUP BY account_id
           ), applied AS (
               UPDATE ledger_accounts a SET balance = a.balance + sums.total
               FROM sums WHERE a.id = sums.account_id RETURNING a.id
           )
           SELECT (SELECT count(*) FROM marked) AS "postings!",
                  (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)) * 1000, 0)::bigint FROM marked) AS "oldest_lag_ms!",
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
