//! Demo merchants with the API keys the README lists: a market stall with a static QR code, a
//! café, and the city's parking operator.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::{NewMerchant, insert_merchant};
use crate::crypto::sha256;
use crate::wallet::LimitCategory;

/// (code, name, category code, limit category, fee rate in thousandths, API key). The keys are
/// published: production refuses to start while any of them is stored (`ops::start_checks`).
pub(crate) const MERCHANTS: &[(&str, &str, &str, LimitCategory, i64, &str)] = &[
    (
        "DONGBA12",
        "Sạp trái cây Đông Ba 12",
        "5411",
        LimitCategory::General,
        0,
        "mk_demo_dongba12_market_stall_2026",
    ),
    (
        "CAFEHUE",
        "Cà phê Muối Huế",
        "5814",
        LimitCategory::General,
        5,
        "mk_demo_cafehue_coffee_shop_2026",
    ),
    (
        "HUEPARK",
        "Công ty Quản lý Bãi đỗ xe Huế",
        "7523",
        LimitCategory::PublicService,
        0,
        "mk_demo_huepark_parking_2026",
    ),
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    for (code, name, category_code, limit_category, fee_thousandths, api_key) in MERCHANTS {
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM merchants WHERE code = $1) AS "exists!""#,
            code
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists {
            continue;
        }
        let merchant = NewMerchant {
            name: (*name).to_owned(),
            code: (*code).to_owned(),
            category_code: (*category_code).to_owned(),
            limit_category: *limit_category,
            callback_url: None,
            fee_rate: Decimal::new(*fee_thousandths, 3),
            events: crate::callbacks::MERCHANT_EVENTS
                .iter()
                .map(|(event_type, _)| (*event_type).to_owned())
                .collect(),
            city: Some("Hue".into()),
        };
        let created = insert_merchant(conn, &merchant).await?;
        // The demo key is a known one, so the README can show it.
        let key_hash = sha256(api_key.as_bytes());
        sqlx::query!(
            "UPDATE merchant_api_keys SET key_hash = $2 WHERE merchant_id = $1",
            created.merchant.id,
            key_hash.as_slice()
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
