//! Checks `civicpay serve` makes once the database is migrated, before it listens.
//!
//! Production refuses a database holding demo data: the README publishes the demo accounts'
//! passwords and the demo merchants' and billers' API keys, so such a database would let anyone
//! log in as the demo admin or take payments as a demo merchant or biller. What counts as demo
//! data, precisely enough that a real citizen who happens to have a demo phone number is not
//! taken for one:
//! - a staff account with a demo phone whose published demo password still opens it, or a
//!   demo staff account (phone, role and name as the demo created it) whatever its password
//!   now (staff accounts are made only by admins; citizens register themselves, on any number
//!   and with any password, so a citizen account alone never counts);
//! - a merchant API key (working or not) whose hash is one of the published `mk_demo_` keys',
//!   or a biller's of the published `bk_demo_` keys';
//! - a wallet credited by the demo's funding entry (reference `demo-funding`; `ledger fund` is
//!   refused in production, so nothing else writes one).

use sqlx::PgPool;

use crate::auth::{Role, password};
use crate::crypto::sha256;
use crate::domain::Phone;

/// Fails, naming every piece of demo data it found, when the database holds any.
pub async fn refuse_demo_data(db: &PgPool) -> anyhow::Result<()> {
    let found = demo_data_found(db).await?;
    if found.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "CIVICPAY_MODE=production refuses a database holding demo data, whose passwords and keys \
         are published: {}. Run production on a database `civicpay serve --demo` never loaded",
        found.join("; ")
    )
}

/// Each piece of demo data in the database, described for the operator.
pub async fn demo_data_found(db: &PgPool) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();

    let demo_accounts: Vec<(Phone, &str, &str, Role)> = crate::accounts::demo::ACCOUNTS
        .iter()
        .map(|(phone, secret, name, role, _unit)| {
            let phone = Phone::parse(phone).expect("demo phones are valid");
            (phone, *secret, *name, *role)
        })
        .collect();
    let phones: Vec<String> = demo_accounts
        .iter()
        .map(|(phone, ..)| phone.as_str().to_owned())
        .collect();
    demo_staff_found(db, &demo_accounts, &phones, &mut found).await?;
    demo_api_keys_found(db, &mut found).await?;
    demo_biller_keys_found(db, &mut found).await?;
    demo_wallets_found(db, &phones, &mut found).await?;
    Ok(found)
}

/// Adds to `found` the staff accounts of `phones` that are demo staff or that a published
/// demo password (of `demo_accounts`: phone, password, name, role) still opens.
async fn demo_staff_found(
    db: &PgPool,
    demo_accounts: &[(Phone, &str, &str, Role)],
    phones: &[String],
    found: &mut Vec<String>,
) -> anyhow::Result<()> {
    let accounts = sqlx::query!(
        r#"SELECT phone, password_hash, full_name, role AS "role: Role"
           FROM accounts WHERE phone = ANY($1) ORDER BY phone"#,
        phones,
    )
    .fetch_all(db)
    .await?;
    for account in accounts {
        let Some((_, secret, name, role)) = demo_accounts
            .iter()
            .find(|(phone, ..)| phone.as_str() == account.phone)
        else {
            continue;
        };
        // Only staff: a citizen account anyone can register on a demo number, with a demo
        // password even, and must not stop the service (the demo's citizens are found by
        // their wallets' demo funding below).
        if !account.role.is_staff() {
            continue;
        }
        let demo_staff = account.role == *role && account.full_name == *name;
        let published_password = !demo_staff
            && password::Hasher::standalone()
                .verify((*secret).to_owned(), Some(account.password_hash))
                .await?;
        if demo_staff || published_password {
            found.push(format!(
                "the demo {} account {}",
                account.role.as_str(),
                account.phone
            ));
        }
    }
    Ok(())
}

/// Adds to `found` each merchant holding a published `mk_demo_` API key.
async fn demo_api_keys_found(db: &PgPool, found: &mut Vec<String>) -> anyhow::Result<()> {
    let key_hashes: Vec<Vec<u8>> = crate::merchants::demo::MERCHANTS
        .iter()
        .map(|(.., api_key)| sha256(api_key.as_bytes()).to_vec())
        .collect();
    let merchants = sqlx::query_scalar!(
        r#"SELECT DISTINCT m.code AS "code!" FROM merchant_api_keys k JOIN merchants m ON m.id = k.merchant_id
           WHERE k.key_hash = ANY($1) ORDER BY 1"#,
        &key_hashes,
    )
    .fetch_all(db)
    .await?;
    for code in merchants {
        found.push(format!("a published mk_demo_ API key of merchant {code}"));
    }
    Ok(())
}

/// Adds to `found` each biller holding a published `bk_demo_` API key.
async fn demo_biller_keys_found(db: &PgPool, found: &mut Vec<String>) -> anyhow::Result<()> {
    let key_hashes: Vec<Vec<u8>> = crate::bills::demo::BILLERS
        .iter()
        .map(|(.., api_key)| sha256(api_key.as_bytes()).to_vec())
        .collect();
    let billers = sqlx::query_scalar!(
        r#"SELECT DISTINCT m.code AS "code!" FROM merchant_api_keys k JOIN merchants m ON m.id = k.merchant_id
           WHERE k.key_hash = ANY($1) AND m.role = 'biller' ORDER BY 1"#,
        &key_hashes,
    )
    .fetch_all(db)
    .await?;
    for code in billers {
        found.push(format!("a published bk_demo_ API key of biller {code}"));
    }
    Ok(())
}

/// Adds to `found` the wallets of `phones` credited by the demo's funding entry.
async fn demo_wallets_found(
    db: &PgPool,
    phones: &[String],
    found: &mut Vec<String>,
) -> anyhow::Result<()> {
    let wallets = sqlx::query_scalar!(
        r#"SELECT a.phone AS "phone!" FROM accounts a JOIN wallets w ON w.account_id = a.id
           WHERE a.phone = ANY($1)
             AND EXISTS (SELECT 1 FROM postings p JOIN journal_entries e ON e.id = p.entry_id
                         WHERE p.account_id = w.ledger_account_id AND p.balance_after IS NOT NULL
                           AND e.kind = 'funding' AND e.reference = $2)
           ORDER BY a.phone"#,
        phones,
        crate::wallet::demo::FUNDING_REFERENCE,
    )
    .fetch_all(db)
    .await?;
    for phone in wallets {
        found.push(format!("the demo wallet of {phone} (its demo funding)"));
    }
    Ok(())
}
