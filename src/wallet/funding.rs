//! Funding a wallet outside any provider: an admin-only ledger entry of kind `funding`, from
//! the suspense account, recorded as such. For development and the demo (`civicpay ledger
//! fund`); refused in production.

use sqlx::PgConnection;
use uuid::Uuid;

use super::verified;
use crate::domain::{Money, Phone};
use crate::http::ErrorCode;
use crate::ledger::{self, EntryKind, NewEntry, Posting, SystemAccount};
use crate::outbox::{self, Audience};

/// Credits `amount` to the verified wallet of `phone`; returns its balance after.
pub async fn fund(
    conn: &mut PgConnection,
    phone: &Phone,
    amount: Money,
    reference: &str,
) -> anyhow::Result<i64> {
    let account_id = sqlx::query_scalar!(
        "SELECT id FROM accounts WHERE phone = $1 AND role = 'citizen'",
        phone.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no citizen account has the phone {phone}"))?;
    let wallet = match verified(conn, account_id).await {
        Err(refusal) if refusal.code() == ErrorCode::WalletNotVerified => {
            anyhow::bail!("the wallet of {phone} is not verified: it may not hold money")
        }
        wallet => wallet?,
    };
    let suspense = ledger::system_account(conn, SystemAccount::Suspense).await?;
    let posted = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::Funding,
            reference: reference.to_owned(),
            note: Some("admin funding (development)".into()),
            created_by: None,
            postings: vec![
                Posting {
                    account_id: suspense,
                    amount: -amount.dong(),
                    counterparty: None,
                },
                Posting {
                    account_id: wallet.ledger_account_id,
                    amount: amount.dong(),
                    counterparty: Some("civicpay".into()),
                },
            ],
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("posting the funding entry: {e:?}"))?;
    let data = serde_json::json!({"entry_id": posted.entry_id, "amount": amount.dong(), "reference": reference});
    outbox::record(conn, "wallet.funded", &data, Audience::Citizen(account_id)).await?;
    Ok(posted.balances_after[&wallet.ledger_account_id])
}

/// Whether an entry with this reference already credited the wallet (the demo funds once).
pub async fn already_funded(
    conn: &mut PgConnection,
    account_id: Uuid,
    reference: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM journal_entries e
               JOIN postings p ON p.entry_id = e.id
               JOIN wallets w ON w.ledger_account_id = p.account_id
               WHERE e.kind = 'funding' AND e.reference = $2 AND w.account_id = $1
           ) AS "exists!""#,
        account_id,
        reference,
    )
    .fetch_one(conn)
    .await
}
