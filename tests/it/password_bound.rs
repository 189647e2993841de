//! Password hashes take turns: a login burst beyond the bound waits its turn, and a login that
//! waits past the bound's wait is answered 503 with `Retry-After` (never 500, never counted as
//! a failed login), while the others log in.

use axum::Router;
use futures_util::future::join_all;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::support::actors::{PASSWORD, PHONE, register};
use crate::support::app::{TestApp, test_config};
use crate::support::problems::expect_problem;
use crate::support::requests::login;

/// Concurrent logins of the burst; many more than the one turn.
const BURST: usize = 16;

#[sqlx::test]
async fn a_login_burst_past_one_turn_is_told_to_retry_and_the_rest_log_in(pool: PgPool) {
    let mut config = test_config();
    config.auth.password_hashes_at_once = Some(1);
    config.auth.password_hash_wait_ms = 1;
    let app = TestApp::spawn_with(pool.clone(), config, Router::new()).await;
    register(&app, PHONE, PASSWORD).await;

    let answers = join_all((0..BURST).map(|_| login(&app, PHONE, PASSWORD))).await;
    let (mut logged_in, mut told_to_retry) = (0, 0);
    for answer in answers {
        match answer.status() {
            StatusCode::OK => logged_in += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                let problem = expect_problem(
                    answer,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                )
                .await;
                let retry_after = problem.retry_after_secs();
                assert!(retry_after >= 1, "Retry-After: {retry_after}");
                told_to_retry += 1;
            }
            other => panic!(
                "a login of the burst was answered {other}: {}",
                answer.text().await.unwrap()
            ),
        }
    }
    assert!(logged_in >= 1, "nobody of the burst logged in");
    assert!(
        told_to_retry >= 1,
        "all {BURST} logins got a turn within 1 ms"
    );

    // A login without a turn checked nothing, so it counts against neither phone nor address.
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failures, 0);
    // The burst over, the turn is free again.
    assert_eq!(login(&app, PHONE, PASSWORD).await.status(), StatusCode::OK);
}
