//! `GET /v1/admin/ledger/verify`: the ledger's invariants checked now, for admins. The check
//! itself is the ledger's (`ledger::verify`, also `civicpay ledger verify`); this route sits
//! with the operations because it needs the access control above the ledger.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::error::Problem;
use crate::http::{ApiResult, Json};
use crate::ledger::verify::{VerifyReport, verify};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_endpoint))
}

/// Check the ledger's invariants now (admins).
#[utoipa::path(get, path = "/v1/admin/ledger/verify", tag = "ledger", security(("bearer" = [])),
    responses(
        (status = 200, body = VerifyReport, description = "`ok` is false, with the failures, when an invariant is broken"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_endpoint(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(verify(&state.db).await?))
}
