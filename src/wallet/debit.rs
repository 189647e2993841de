//! Every debit of a wallet goes through [`debit`]: transfers, withdrawals and merchant payments
//! (bills later) only say where the money goes. In the caller's transaction it writes the
//! ledger entry, whose wallet posting checks and takes the balance in one statement and so
//! locks the wallet's row, then counts the amount against the payer's monthly limit under that
//! lock (see `limits`). The payer is a [`VerifiedWallet`], so no debit skips verification.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use super::VerifiedWallet;
use super::limits::{self, LimitCategory};
use crate::domain::Money;
use crate::http::{ApiResult, ErrorCode};
use crate::ledger::{self, EntryKind, NewEntry, Posting};

/// One payment out of a wallet.
pub struct Debit {
    pub payer: VerifiedWallet,
    pub amount: Money,
    pub limit_category: LimitCategory,
    pub kind: EntryKind,
    pub reference: String,
    pub note: Option<String>,
    /// Who was paid, as the payer's history names them.
    pub payee: Option<String>,
    /// Where the money goes: postings that credit `amount` in all.
    pub credits: Vec<Posting>,
}

pub struct Debited {
    pub entry_id: Uuid,
    /// The payer's balance after the debit.
    pub balance_after: i64,
}

/// Debits the payer, or refuses: 409 `insufficient_funds` when the balance does not cover the
/// amount (the transaction is then aborted), 409 `limit_exceeded` past the monthly limit.
pub async fn debit(conn: &mut PgConnection, debit: Debit) -> ApiResult<Debited> {
    let payer = debit.payer;
    let mut postings = vec![Posting {
        account_id: payer.ledger_account_id,
        amount: -debit.amount.dong(),
        counterparty: debit.payee,
    }];
    postings.extend(debit.credits);
    let entry = NewEntry {
        kind: debit.kind,
        reference: debit.reference,
        note: debit.note,
        created_by: Some(payer.account_id),
        postings,
    };
    let posted = ledger::post(conn, entry)
        .await
        .map_err(|error| error.answered_as(ErrorCode::InsufficientFunds))?;
    limits::consume(
        conn,
        payer.account_id,
        debit.limit_category,
        debit.amount.dong(),
        Utc::now(),
    )
    .await?;
    Ok(Debited {
        entry_id: posted.entry_id,
        balance_after: posted.balances_after[&payer.ledger_account_id],
    })
}
