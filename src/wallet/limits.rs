//! Monthly payment limits (Circular 40/2024/TT-NHNN as amended by 41/2025): a policy table by
//! payment category, counted per calendar month in Vietnam time. General payments and transfers
//! out share 100,000,000 đ a month; public-service fees, utilities, tuition and hospital fees are
//! exempt from that and share their own 300,000,000 đ. Usage is added inside the debit's
//! transaction, after the debit has locked the wallet, so two concurrent payments cannot both
//! slip under a limit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::{ApiError, ApiResult, ErrorCode};
use crate::vietnam_time::month_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum LimitCategory {
    General,
    PublicService,
    Utility,
    Education,
    Health,
}

impl LimitCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitCategory::General => "general",
            LimitCategory::PublicService => "public_service",
            LimitCategory::Utility => "utility",
            LimitCategory::Education => "education",
            LimitCategory::Health => "health",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitUsage {
    pub category: LimitCategory,
    pub limit: i64,
    pub used: i64,
    pub remaining: i64,
}

/// Adds `amount` to the wallet's usage of `category` this month, or refuses with 409
/// `limit_exceeded` naming the category and what remains. Call after the debit, in its
/// transaction. `at` is the payment's time (now, except in tests of the month's turn).
pub(super) async fn consume(
    conn: &mut PgConnection,
    wallet: Uuid,
    category: LimitCategory,
    amount: i64,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    let month = month_of(at);
    // The category's policy and the usage it counts against, in one statement.
    let counted = sqlx::query!(
        r#"WITH policy AS (SELECT limit_group, monthly_limit FROM limit_policies WHERE category = $1)
           INSERT INTO wallet_limit_usage (wallet_account_id, limit_group, month, used)
           SELECT $2, limit_group, $3, $4 FROM policy
           ON CONFLICT (wallet_account_id, limit_group, month) DO UPDATE SET used = wallet_limit_usage.used + $4
           RETURNING used, (SELECT monthly_limit FROM policy) AS "monthly_limit!""#,
        category as LimitCategory,
        wallet,
        month,
        amount,
    )
    .fetch_one(&mut *conn)
    .await?;
    let (used, monthly_limit) = (counted.used, counted.monthly_limit);
    if used > monthly_limit {
        let remaining = monthly_limit - (used - amount);
        return Err(ApiError::new(ErrorCode::LimitExceeded)
            .with_extra("category", category.as_str())
            .with_extra("remaining", remaining.max(0)));
    }
    Ok(())
}

/// Every category's limit, usage this month and what remains.
pub(super) async fn usage(
    conn: &mut PgConnection,
    wallet: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<LimitUsage>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.category AS "category: LimitCategory", p.monthly_limit,
                  COALESCE(u.used, 0) AS "used!"
           FROM limit_policies p
           LEFT JOIN wallet_limit_usage u
             ON u.limit_group = p.limit_group AND u.wallet_account_id = $1 AND u.month = $2
           ORDER BY p.monthly_limit, p.category"#,
        wallet,
        month_of(at),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LimitUsage {
            category: r.category,
            limit: r.monthly_limit,
            used: r.used,
            remaining: (r.monthly_limit - r.used).max(0),
        })
        .collect())
}

/// `consume` is the wallet's own: it is tried here, on a database of its own like the
/// integration tests', at the instants around a month's turn.
#[cfg(test)]
mod usage_tests {
    use sqlx::{PgConnection, PgPool};
    use uuid::Uuid;

    use super::{LimitCategory, consume};
    use crate::http::ErrorCode;

    /// A citizen's wallet, which usage rows belong to.
    async fn a_wallet(conn: &mut PgConnection) -> Uuid {
        let account_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO accounts (id, phone, full_name, password_hash, role)
             VALUES ($1, '+84912000001', 'Nguyễn Văn An', '-', 'citizen')",
        )
        .bind(account_id)
        .execute(&mut *conn)
        .await
        .unwrap();
        crate::wallet::ensure(conn, account_id).await.unwrap();
        account_id
    }

    #[sqlx::test]
    async fn exempt_categories_have_their_own_ceiling_and_months_turn_in_vietnam_time(
        pool: PgPool,
    ) {
        let mut conn = pool.acquire().await.unwrap();
        let wallet = a_wallet(&mut conn).await;
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let last_second = at("2026-11-30T16:59:59Z"); // 23:59:59 in Huế
        let next_month = at("2026-11-30T17:00:00Z"); // 00:00:00 on 1 December
        consume(
            &mut conn,
            wallet,
            LimitCategory::General,
            100_000_000,
            last_second,
        )
        .await
        .unwrap();
        let refused = consume(&mut conn, wallet, LimitCategory::General, 1, last_second)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::LimitExceeded);
        // Utilities, tuition, hospital and public-service fees are exempt from the general limit...
        consume(
            &mut conn,
            wallet,
            LimitCategory::Utility,
            200_000_000,
            last_second,
        )
        .await
        .unwrap();
        // ...and share their own 300,000,000 đ.
        consume(
            &mut conn,
            wallet,
            LimitCategory::Education,
            100_000_000,
            last_second,
        )
        .await
        .unwrap();
        assert!(
            consume(&mut conn, wallet, LimitCategory::Health, 1, last_second)
                .await
                .is_err()
        );
        // At midnight in Vietnam a new month starts.
        consume(
            &mut conn,
            wallet,
            LimitCategory::General,
            100_000_000,
            next_month,
        )
        .await
        .unwrap();
        consume(
            &mut conn,
            wallet,
            LimitCategory::Health,
            300_000_000,
            next_month,
        )
        .await
        .unwrap();
    }
}
