//! The demo citizens' wallets: verified, with the PINs the README lists, funded once with
//! 5,000,000 đ by an admin funding entry.

use sqlx::PgConnection;

use super::{ensure, funding, pin};
use crate::crypto::hmac_sha256;
use crate::domain::{Money, Phone};

/// (phone, national ID, PIN)
pub const WALLETS: &[(&str, &str, &str)] = &[
    ("0912345678", "046095012345", "246810"),
    ("0987654321", "046198054321", "135790"),
];
const FUNDING: i64 = 5_000_000;
/// The reference of the demo's funding entries: production refuses to start while a wallet
/// holds one (`ops::start_checks`).
pub(crate) const FUNDING_REFERENCE: &str = "demo-funding";

/// `pin_pepper` is the server's: the demo's PINs and national IDs are keyed as real ones are.
pub async fn load(conn: &mut PgConnection, pin_pepper: &[u8]) -> anyhow::Result<()> {
    for (phone, national_id, wallet_pin) in WALLETS {
        let phone = Phone::parse(phone).expect("demo phones are valid");
        let account_id =
            sqlx::query_scalar!("SELECT id FROM accounts WHERE phone = $1", phone.as_str())
                .fetch_one(&mut *conn)
                .await?;
        ensure(conn, account_id).await?;
        let national_id_hash = hmac_sha256(pin_pepper, national_id.as_bytes());
        let pin_hash = pin::hash(pin_pepper, account_id, wallet_pin);
        sqlx::query!(
            "UPDATE wallets SET national_id_hash = $2, national_id_last4 = $3, verified_at = now(),
                    verified_name = (SELECT full_name FROM accounts WHERE id = $1)
             WHERE account_id = $1 AND verified_at IS NULL",
            account_id,
            national_id_hash.as_slice(),
            &national_id[8..],
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "UPDATE wallets SET pin_hash = $2 WHERE account_id = $1 AND pin_hash IS NULL",
            account_id,
            pin_hash.as_slice(),
        )
        .execute(&mut *conn)
        .await?;
        if !funding::already_funded(conn, account_id, FUNDING_REFERENCE).await? {
            let amount = Money::payable(FUNDING).expect("a payable amount");
            funding::fund(conn, &phone, amount, FUNDING_REFERENCE).await?;
        }
    }
    Ok(())
}
