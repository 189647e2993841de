//! Money: a whole number of đồng (VND has no minor unit), never a float, with checked
//! arithmetic so an overflow is an error rather than money created.
//!
//! It reads and writes as a bare integer, in JSON and in SQL (`BIGINT`), so a request's amount
//! arrives as whatever integer the client sent and is then checked with [`Money::if_payable`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest amount one request may move: 10 billion đồng, far above any wallet limit.
pub const MAX_AMOUNT: i64 = 10_000_000_000;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn dong(self) -> i64 {
        self.0
    }

    /// An amount a request may ask to move: 1 to [`MAX_AMOUNT`] đồng.
    pub fn payable(dong: i64) -> Option<Money> {
        (1..=MAX_AMOUNT).contains(&dong).then_some(Money(dong))
    }

    /// This amount, if a request may ask to move it ([`Money::payable`]): how a request's
    /// amount, read as any integer, is checked.
    pub fn if_payable(self) -> Option<Money> {
        Money::payable(self.0)
    }

    /// A stored balance or total, which may be any value the database holds.
    pub fn from_stored(dong: i64) -> Money {
        Money(dong)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub fn negated(self) -> Money {
        Money(-self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_bounded_amounts_are_payable() {
        assert_eq!(Money::payable(0), None);
        assert_eq!(Money::payable(-5), None);
        assert_eq!(Money::payable(MAX_AMOUNT + 1), None);
        assert_eq!(Money::payable(50_000).map(Money::dong), Some(50_000));
        assert_eq!(Money::from_stored(0).if_payable(), None);
        assert_eq!(
            Money::from_stored(MAX_AMOUNT).if_payable(),
            Money::payable(MAX_AMOUNT)
        );
    }

    #[test]
    fn arithmetic_refuses_to_overflow() {
        let big = Money::from_stored(i64::MAX);
        assert_eq!(big.checked_add(Money::from_stored(1)), None);
        assert_eq!(
            Money::from_stored(i64::MIN).checked_sub(Money::from_stored(1)),
            None
        );
        assert_eq!(
            Money::from_stored(5).checked_sub(Money::from_stored(7)),
            Some(Money::from_stored(-2))
        );
    }
}
