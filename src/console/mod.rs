//! The counter console (`GET /counter`): one page for the officer at a one-stop counter, its
//! HTML, CSS and JavaScript compiled into the binary (no CDN, no web font: it works on a
//! counter's LAN without the internet). It does a counter day through the public API with the
//! officer's own tokens; the only thing it needs of the server beyond the API is a QR code
//! drawn as SVG (`/counter/qr.svg?data=`), for the VietQR payload and the signed receipt.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, Query};
use crate::state::AppState;

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The most a QR code carries here: a compact signed receipt is about 1 KB; version 40 at the
/// lowest error correction holds 2,953 bytes.
const MOST_QR_BYTES: usize = 2_000;

/// The console's routes (pages, not API: they are not in the OpenAPI document).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/counter",
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/counter/console.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/counter/console.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/counter/qr.svg", get(qr_svg))
}

/// A page asset, with a policy that lets the page load only from civicpay itself.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    response
}

#[derive(Debug, Deserialize)]
struct QrQuery {
    data: String,
}

/// `data` as a QR code in SVG (medium error correction, a quiet zone around it).
async fn qr_svg(Query(query): Query<QrQuery>) -> ApiResult<Response> {
    if query.data.is_empty() || query.data.len() > MOST_QR_BYTES {
        return Err(ApiError::invalid_field(
            "data",
            Message::TextLength {
                min: 1,
                max: MOST_QR_BYTES,
            },
        ));
    }
    let code =
        qrcode::QrCode::with_error_correction_level(query.data.as_bytes(), qrcode::EcLevel::M)
            .map_err(|_| ApiError::invalid_field("data", Message::FieldInvalidValue))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
