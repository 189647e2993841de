//! `civicpay ledger verify`: proves the ledger's invariants from its rows.
//!
//! 1. Every journal entry has two or more postings and they sum to zero.
//! 2. Every account's balance plus its postings still queued for folding equals the sum of all
//!    its postings, and every queued posting matches the posting it stands for.
//! 3. No account that may not go negative is negative, counting queued postings.
//! 4. Every posting belongs to an entry and an account that exist (the database has no foreign
//!    keys for these: see migrations/…_payment_path_lean.sql).

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries_checked: i64,
    pub accounts_checked: i64,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    /// The account (or, for an unbalanced entry, the entry) that breaks an invariant.
    pub id: Uuid,
    pub problem: String,
}

/// Checks the four invariants over every row, naming each row that breaks one.
pub async fn verify(db: &PgPool) -> Result<VerifyReport, sqlx::Error> {
    let mut failures = Vec::new();
    check_entries_balance(db, &mut failures).await?;
    let accounts_checked = check_account_balances(db, &mut failures).await?;
    check_queued_postings(db, &mut failures).await?;
    check_postings_belong(db, &mut failures).await?;
    let entries_checked = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM journal_entries"#)
        .fetch_one(db)
        .await?;
    Ok(VerifyReport {
        ok: failures.is_empty(),
        entries_checked,
        accounts_checked,
        failures,
    })
}

/// Invariant 1: adds to `failures` each entry with fewer than two postings or a nonzero sum.
async fn check_entries_balance(
    db: &PgPool,
    failures: &mut Vec<Failure>,
) -> Result<(), sqlx::Error> {
    let entries = sqlx::query!(
        r#"SELECT e.id, count(p.id) AS "postings!", COALESCE(sum(p.amount), 0)::bigint AS "total!"
           FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
           GROUP BY e.id HAVING count(p.id) < 2 OR COALESCE(sum(p.amount), 0) <> 0"#
    )
    .fetch_all(db)
    .await?;
    for entry in entries {
        failures.push(Failure {
            id: entry.id,
            problem: format!(
                "entry has {} postings summing to {}",
                entry.postings, entry.total
            ),
        });
    }
    Ok(())
}

/// Invariants 2 and 3 for the balances: adds to `failures` each account whose balance and
/// queued postings do not add up to its postings, or that is negative where it may not be.
/// Returns how many accounts it checked.
async fn check_account_balances(
    db: &PgPool,
    failures: &mut Vec<Failure>,
) -> Result<i64, sqlx::Error> {
    let accounts = sqlx::query!(
        r#"WITH posted AS (SELECT account_id, sum(amount)::bigint AS total FROM postings GROUP BY account_id),
                queued AS (SELECT account_id, sum(amount)::bigint AS total FROM unfolded_postings GROUP BY account_id)
           SELECT a.id, a.kind, a.balance, a.allow_negative,
                  COALESCE(p.total, 0)::bigint AS "posted!", COALESCE(q.total, 0)::bigint AS "queued!"
           FROM ledger_accounts a
           LEFT JOIN posted p ON p.account_id = a.id
           LEFT JOIN queued q ON q.account_id = a.id"#
    )
    .fetch_all(db)
    .await?;
    let accounts_checked = accounts.len() as i64;
    for account in accounts {
        let true_balance = account.balance.saturating_add(account.queued);
        if true_balance != account.posted {
            failures.push(Failure {
                id: account.id,
                problem: format!(
                    "{} account balance {} plus {} queued, but its postings sum to {}",
                    account.kind, account.balance, account.queued, account.posted
                ),
            });
        }
        if !account.allow_negative && true_balance < 0 {
            failures.push(Failure {
                id: account.id,
                problem: format!("{} account is negative: {true_balance}", account.kind),
            });
        }
    }
    Ok(accounts_checked)
}

/// Invariant 2 for the queue: adds to `failures` each queued posting that does not match the
/// posting it stands for.
async fn check_queued_postings(
    db: &PgPool,
    failures: &mut Vec<Failure>,
) -> Result<(), sqlx::Error> {
    let mismatched = sqlx::query!(
        "SELECT u.posting_id FROM unfolded_postings u LEFT JOIN postings p ON p.id = u.posting_id
         WHERE p.account_id IS DISTINCT FROM u.account_id OR p.amount IS DISTINCT FROM u.amount"
    )
    .fetch_all(db)
    .await?;
    for row in mismatched {
        failures.push(Failure {
            id: Uuid::nil(),
            problem: format!(
                "queued posting {} does not match its posting",
                row.posting_id
            ),
        });
    }
    Ok(())
}

/// Invariant 4: adds to `failures` each posting whose entry or account is missing.
async fn check_postings_belong(
    db: &PgPool,
    failures: &mut Vec<Failure>,
) -> Result<(), sqlx::Error> {
    let orphans = sqlx::query!(
        r#"SELECT p.id, p.account_id, e.id IS NULL AS "no_entry!", a.id IS NULL AS "no_account!"
           FROM postings p
           LEFT JOIN journal_entries e ON e.id = p.entry_id
           LEFT JOIN ledger_accounts a ON a.id = p.account_id
           WHERE e.id IS NULL OR a.id IS NULL"#
    )
    .fetch_all(db)
    .await?;
    for orphan in orphans {
        let missing = match (orphan.no_entry, orphan.no_account) {
            (true, true) => "its entry and its account",
            (true, false) => "its entry",
            _ => "its account",
        };
        failures.push(Failure {
            id: orphan.account_id,
            problem: format!("posting {} lacks {missing}", orphan.id),
        });
    }
    Ok(())
}
