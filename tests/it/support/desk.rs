//! The dossier tests' desk: every demo person logged in to one app on the demo data, and what
//! they file there (a birth registration at Phú Xuân, with documents in our own storage).

use axum::Router;
use civicpay::config::Config;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::app::{TestApp, test_config};
use super::demo::{
    ADMIN, CITIZEN, OFFICER, OTHER_CITIZEN, OTHER_UNIT_OFFICER, SUPERVISOR, load_demo, log_in,
};

/// Birth registration: commune level, 8 office hours, free.
pub const BIRTH: &str = "1.001193";
pub const PHU_XUAN: &str = "19753";

/// A document as a filing lists it, stored in our bucket.
pub fn document(code: &str) -> Value {
    json!({
        "code": code, "name": format!("{code}.pdf"),
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "size": 48213, "uri": format!("s3://civicpay-documents/{code}.pdf")
    })
}

/// What a birth registration needs.
pub fn birth_documents() -> Value {
    json!([
        document("to_khai"),
        document("giay_chung_sinh"),
        document("giay_to_tuy_than")
    ])
}

/// Every demo person, logged in to one app on the demo data.
pub struct DemoDesk {
    pub app: TestApp,
    /// [`OFFICER`], of Phú Xuân, where the dossier tests file.
    pub officer: String,
    /// [`OTHER_UNIT_OFFICER`], of Vỹ Dạ.
    pub other_unit_officer: String,
    /// [`SUPERVISOR`], of the province.
    pub supervisor: String,
    pub admin: String,
    /// [`CITIZEN`] (An).
    pub citizen: String,
    /// [`OTHER_CITIZEN`] (Mai).
    pub other_citizen: String,
}

impl DemoDesk {
    pub async fn open(pool: &PgPool) -> DemoDesk {
        DemoDesk::open_with(pool, test_config()).await
    }

    pub async fn open_with(pool: &PgPool, config: Config) -> DemoDesk {
        load_demo(pool).await;
        let app = TestApp::spawn_with(pool.clone(), config, Router::new()).await;
        DemoDesk {
            officer: log_in(&app, OFFICER).await,
            other_unit_officer: log_in(&app, OTHER_UNIT_OFFICER).await,
            supervisor: log_in(&app, SUPERVISOR).await,
            admin: log_in(&app, ADMIN).await,
            citizen: log_in(&app, CITIZEN).await,
            other_citizen: log_in(&app, OTHER_CITIZEN).await,
            app,
        }
    }
}
