//! The counter console's page and assets come from the binary itself, allowed to load only from
//! civicpay, and its QR codes are drawn by the server (the browser run, `.ci/browser/run`,
//! drives the page itself).

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::support::app::TestApp;
use crate::support::problems::expect_problem;

#[sqlx::test]
async fn the_page_and_its_assets_are_served_from_the_binary_for_civicpay_alone(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (path, kind) in [
        ("/counter", "text/html"),
        ("/counter/console.js", "text/javascript"),
        ("/counter/console.css", "text/css"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"),
            "{policy}"
        );
        let body = response.text().await.unwrap();
        // Nothing from another host: no absolute URL at all in what the page loads.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    let page = app.get("/counter").await.text().await.unwrap();
    assert!(page.contains("<html lang=\"vi\">") && page.contains("Bộ phận một cửa"));
}

#[sqlx::test]
async fn qr_codes_are_drawn_as_svg_and_oversized_data_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app.get("/counter/qr.svg?data=000201010212").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    let too_long = format!("/counter/qr.svg?data={}", "A".repeat(2_001));
    expect_problem(
        app.get(&too_long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_problem(
        app.get("/counter/qr.svg").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}
