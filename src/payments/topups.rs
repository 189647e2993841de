//! Top-ups: a citizen asks for one (into a verified wallet only), is sent to the provider's
//! payment page, and the provider's notification — or the reconciler — settles it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::settings::{OpenPayment, Providers};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::auth::client_addr::ClientAddr;
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_topup))
        .routes(routes!(get_topup))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// `sandbox` (development) or `vnpay`; one not enabled on this server is refused.
    #[schema(pattern = "^(sandbox|vnpay)$")]
    pub provider: String,
}

/// Where a top-up stands: `pending` until its provider's notification or the reconciler
/// settles it, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum TopupStatus {
    Pending,
    Succeeded,
    Failed,
    Expired,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Topup {
    pub id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub provider: String,
    /// `pending`, `succeeded`, `failed` or `expired`.
    #[schema(value_type = String)]
    pub status: TopupStatus,
    /// Where to send the citizen to pay.
    pub payment_url: String,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// Start a top-up; open `payment_url` to pay. Needs `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/wallet/topups", tag = "wallet", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    request_body = TopupRequest,
    responses(
        (status = 201, body = Topup),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`wallet_not_verified`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_topup(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    ClientAddr(client): ClientAddr,
    request: Idempotent<TopupRequest>,
) -> Response {
    let citizen = caller.account_id;
    let providers = state.providers.clone();
    let client_ip = client.to_string();
    request
        .run(&state.db, citizen, move |conn, body| {
            Box::pin(async move { start(conn, &providers, citizen, &client_ip, body).await })
        })
        .await
}

async fn start(
    conn: &mut PgConnection,
    providers: &Providers,
    citizen: Uuid,
    client_ip: &str,
    request: TopupRequest,
) -> ApiResult<Answer> {
    let mut checks = FieldChecks::new();
    let amount = checks.parse(
        request.amount.if_payable(),
        "amount",
        Message::AmountNotPayable,
    );
    let provider = checks.parse(
        providers.get(&request.provider),
        "provider",
        Message::ProviderNotEnabled,
    );
    let (amount, provider) = checks.finish_with(amount.zip(provider))?;
    crate::wallet::verified(conn, citizen).await?;
    let opened = providers
        .open_payment(
            conn,
            OpenPayment {
                account_id: citizen,
                amount: amount.dong(),
                provider: provider.as_ref(),
                client_ip,
                bill_id: None,
            },
        )
        .await?;
    let topup = Topup {
        id: opened.id,
        amount,
        provider: provider.name().to_owned(),
        status: TopupStatus::Pending,
        payment_url: opened.payment_url,
        created_at: opened.created_at,
        settled_at: None,
    };
    Answer::of(StatusCode::CREATED, &topup)
}

/// One of the caller's top-ups.
#[utoipa::path(get, path = "/v1/wallet/topups/{id}", tag = "wallet", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Topup), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_topup(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Topup>> {
    let topup = sqlx::query_as!(
        Topup,
        r#"SELECT id, amount AS "amount: Money", provider, status AS "status: TopupStatus", payment_url,
                  created_at, settled_at
           FROM topups WHERE id = $1 AND account_id = $2 AND bill_id IS NULL"#,
        id,
        caller.account_id,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(topup))
}
