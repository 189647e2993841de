//! The demo data (`civicpay::demo`) and its people, with the passwords the README lists: the
//! admin, an officer of Phú Xuân (19753) and one of Vỹ Dạ (19789), the province's (46)
//! supervisor, and two citizens with verified, funded wallets.

use sqlx::PgPool;

use super::actors::access_token;
use super::app::{TEST_PIN_PEPPER, TestApp};

/// A demo account's phone and password.
pub type Credentials = (&'static str, &'static str);

/// Quản trị Hệ thống, the admin.
pub const ADMIN: Credentials = ("0900000001", "admin-demo-2026");
/// Trần Thị Bích, officer of Phú Xuân (19753).
pub const OFFICER: Credentials = ("0900000002", "officer-demo-2026");
/// Lê Văn Cường, officer of Vỹ Dạ (19789).
pub const OTHER_UNIT_OFFICER: Credentials = ("0900000003", "officer-demo-2026");
/// Phạm Minh Đức, supervisor of the province (46).
pub const SUPERVISOR: Credentials = ("0900000004", "supervisor-demo-2026");
/// Nguyễn Văn An, whose wallet is verified with 046095012345 (PIN 246810).
pub const CITIZEN: Credentials = ("0912345678", "citizen-demo-2026");
/// Hoàng Thị Mai, whose wallet is verified with 046198054321 (PIN 135790).
pub const OTHER_CITIZEN: Credentials = ("0987654321", "citizen-demo-2026");

/// The demo data, keyed like the test configuration.
pub async fn load_demo(pool: &PgPool) {
    let context = civicpay::demo::DemoContext {
        pin_pepper: TEST_PIN_PEPPER.as_bytes().to_vec(),
    };
    civicpay::demo::load_all(pool, &context)
        .await
        .expect("the demo data loads");
}

/// The access token of a demo account.
pub async fn log_in(app: &TestApp, (phone, password): Credentials) -> String {
    access_token(app, phone, password).await
}
