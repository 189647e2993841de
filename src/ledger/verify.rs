//! `civicpay ledger verify`: proves the ledger's invariants from its rows.
//!
//! 1. Every journal entry has two or more postings and they sum to zero.
//! 2. Every account's balance plus its postings still queued for folding equals the sum of all
//!    its postings, and every queued posting matches the posting it stands for.
//! 3. No account that may not go negative is negative, counting queued postings.

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

pub async fn verify(db: &PgPool) -> Result<VerifyReport, sqlx::Error> {
    let mut failures = Vec::new();
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
