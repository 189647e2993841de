//! Scorecards against a hand-counted October 2026 at Phú Xuân and Vỹ Dạ, in the province of
//! Huế: dossiers on time, late (a minute after midnight counts on the next day), late with an
//! apology, online and at the counter, with and without documents; fee bills paid by wallet,
//! provider, counter QR and cash; ratings from 1 to 5. Every figure below was counted by hand
//! from the fixture, not read back from the code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::desk::DemoDesk;
use crate::support::problems::expect_problem;

const PHU_XUAN: &str = "19753";
const VY_DA: &str = "19789";
const HUE: &str = "46";
const OCTOBER: &str = "from=2026-10-01&to=2026-10-31";

/// A dossier as the fixture writes it, times in Vietnam time (`+07:00`).
struct Fixture {
    unit: &'static str,
    online: bool,
    status: &'static str,
    received: &'static str,
    due: &'static str,
    finished: Option<&'static str>,
    apology: bool,
    documents: bool,
    rating: Option<(i32, &'static str)>,
}

async fn dossier(pool: &PgPool, number: usize, f: &Fixture) -> Uuid {
    let id = Uuid::new_v4();
    let at = |t: &str| format!("2026-{t}:00+07");
    sqlx::query(
        "INSERT INTO dossiers (id, code, procedure_code, unit_code, province_code, status, channel,
                               applicant_name, applicant_phone, submitted_at, received_at, due_at,
                               finished_at, rescheduled_at, appointment_at, tracking_key)
         VALUES ($1, $2, '2.000635', $3, '46', $4, $5, 'Nguyễn Văn An', '+84912345678',
                 $6::timestamptz, $6::timestamptz, $7::timestamptz, $8::timestamptz,
                 CASE WHEN $9 THEN $6::timestamptz END, CASE WHEN $9 THEN $7::timestamptz + interval '2 days' END,
                 'ABCDEF')",
    )
    .bind(id)
    .bind(format!("{}-2610{number:02}-0001", f.unit))
    .bind(f.unit)
    .bind(f.status)
    .bind(if f.online { "online" } else { "counter" })
    .bind(at(f.received))
    .bind(at(f.due))
    .bind(f.finished.map(at))
    .bind(f.apology)
    .execute(pool)
    .await
    .unwrap();
    if f.documents {
        sqlx::query(
            "INSERT INTO dossier_documents (id, dossier_id, code, name, sha256, size_bytes, storage_uri, added_with)
             VALUES ($1, $2, 'to_khai', 'to-khai.pdf', repeat('ab', 32), 1, 's3://civicpay-documents/x.pdf', 'submit')",
        )
        .bind(Uuid::new_v4())
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    }
    if let Some((score, when)) = f.rating {
        sqlx::query(
            "INSERT INTO dossier_ratings (dossier_id, score, created_at) VALUES ($1, $2, $3::timestamptz)",
        )
        .bind(id)
        .bind(score)
        .bind(at(when))
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

/// A fee bill of the unit's biller, paid at `paid` (Vietnam time) by `via`.
async fn paid_fee(pool: &PgPool, unit: &str, amount: i64, via: &str, paid: &str) {
    sqlx::query(
        "INSERT INTO bills (id, code, biller_id, reference, payer_name, items, amount, status, paid_at, paid_via)
         SELECT $1, $2, b.id, $2, 'Nguyễn Văn An', jsonb_build_array(jsonb_build_object('name', 'Phí', 'amount', $3::bigint)),
                $3, 'paid', $4::timestamptz, $5
         FROM billers b WHERE b.unit_code = $6",
    )
    .bind(Uuid::new_v4())
    .bind(format!("BFIX{}", &Uuid::new_v4().simple().to_string()[..8].to_uppercase()))
    .bind(amount)
    .bind(format!("2026-{paid}:00+07"))
    .bind(via)
    .bind(unit)
    .execute(pool)
    .await
    .unwrap();
}

/// The fixture; answers the id of the dossier late with an apology (D).
async fn october(pool: &PgPool) -> Uuid {
    let px = |online, status, received, due, finished, documents| Fixture {
        unit: PHU_XUAN,
        online,
        status,
        received,
        due,
        finished,
        apology: false,
        documents,
        rating: None,
    };
    // Phú Xuân: received in October A, B, C, D, E; finished in October A, B, C, G.
    let a = Fixture {
        rating: Some((5, "10-08 10:00")),
        ..px(
            true,
            "result_ready",
            "10-05 09:00",
            "10-08 09:00",
            Some("10-07 10:00"),
            true,
        )
    };
    let b = Fixture {
        rating: Some((3, "10-11 10:00")),
        ..px(
            false,
            "rejected",
            "10-06 09:00",
            "10-09 09:00",
            Some("10-10 09:00"),
            false,
        )
    };
    // Finished at its due time exactly: on time.
    let c = Fixture {
        rating: Some((4, "10-15 10:00")),
        ..px(
            true,
            "returned",
            "10-10 09:00",
            "10-13 09:00",
            Some("10-13 09:00"),
            true,
        )
    };
    let d = Fixture {
        apology: true,
        ..px(
            false,
            "processing",
            "10-20 09:00",
            "10-23 09:00",
            None,
            true,
        )
    };
    // The last minute of October is in October; the first of November is not.
    let e = px(
        false,
        "processing",
        "10-31 23:59",
        "11-05 09:00",
        None,
        false,
    );
    let f = px(false, "received", "11-01 00:00", "11-04 09:00", None, false);
    let g = px(
        false,
        "result_ready",
        "09-25 09:00",
        "10-30 09:00",
        Some("10-31 23:59"),
        false,
    );
    let h = px(
        false,
        "result_ready",
        "09-26 09:00",
        "10-30 09:00",
        Some("11-01 00:00"),
        false,
    );
    let vd = |received, due, finished, rating| Fixture {
        unit: VY_DA,
        online: true,
        status: "result_ready",
        received,
        due,
        finished: Some(finished),
        apology: false,
        documents: true,
        rating: Some(rating),
    };
    let i = vd(
        "10-02 09:00",
        "10-05 09:00",
        "10-04 09:00",
        (1, "10-05 10:00"),
    );
    let j = vd(
        "10-03 09:00",
        "10-06 09:00",
        "10-06 08:00",
        (5, "10-07 10:00"),
    );
    let mut apology = Uuid::nil();
    for (n, fixture) in [a, b, c, d, e, f, g, h, i, j].iter().enumerate() {
        let id = dossier(pool, n + 1, fixture).await;
        if fixture.apology {
            apology = id;
        }
    }
    // Phú Xuân's fees: 150,000 in October, 60,000 of it cashless (3 bills of 5).
    paid_fee(pool, PHU_XUAN, 20_000, "wallet", "10-03 10:00").await;
    paid_fee(pool, PHU_XUAN, 30_000, "provider", "10-04 10:00").await;
    paid_fee(pool, PHU_XUAN, 10_000, "counter_qr", "10-05 10:00").await;
    paid_fee(pool, PHU_XUAN, 40_000, "cash", "10-06 10:00").await;
    paid_fee(pool, PHU_XUAN, 50_000, "cash", "10-01 00:00").await;
    paid_fee(pool, PHU_XUAN, 70_000, "wallet", "11-01 00:00").await;
    // Vỹ Dạ's: one in cash.
    paid_fee(pool, VY_DA, 8_000, "cash", "10-12 10:00").await;
    apology
}

fn metric<'a>(metrics: &'a Value, name: &str) -> &'a Value {
    metrics
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// (value, numerator, denominator, band) of a metric.
fn figure(metrics: &Value, name: &str) -> (Value, Value, Value, Value) {
    let m = metric(metrics, name);
    (
        m["value"].clone(),
        m["numerator"].clone(),
        m["denominator"].clone(),
        m["band"].clone(),
    )
}

fn rated(
    value: &str,
    numerator: i64,
    denominator: i64,
    band: &str,
) -> (Value, Value, Value, Value) {
    (
        json!(value),
        json!(numerator),
        json!(denominator),
        json!(band),
    )
}

fn counted(value: i64) -> (Value, Value, Value, Value) {
    (json!(value), json!(value), Value::Null, Value::Null)
}

fn child<'a>(card: &'a Value, code: &str) -> &'a Value {
    card["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["unit_code"] == code)
        .unwrap_or_else(|| panic!("no child {code} in {card}"))
}

#[sqlx::test]
async fn the_province_and_its_communes_match_the_hand_count(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let card = desk
        .app
        .get_json_with(
            &desk.supervisor,
            &format!("/v1/scorecards/units/{HUE}?{OCTOBER}"),
        )
        .await;
    assert_eq!(card["unit_code"], HUE);
    assert_eq!(
        (&card["from"], &card["to"]),
        (&json!("2026-10-01"), &json!("2026-10-31"))
    );
    let m = &card["metrics"];
    assert_eq!(figure(m, "received"), counted(7));
    assert_eq!(figure(m, "online_rate"), rated("0.5714", 4, 7, "green"));
    assert_eq!(metric(m, "online_rate")["target"], "0.3000");
    assert_eq!(figure(m, "on_time_rate"), rated("0.6667", 4, 6, "red"));
    assert_eq!(figure(m, "overdue_now"), counted(3));
    assert_eq!(figure(m, "overdue_with_apology"), counted(1));
    assert_eq!(
        figure(m, "cashless_rate_count"),
        rated("0.5000", 3, 6, "green")
    );
    assert_eq!(
        figure(m, "cashless_rate_amount"),
        rated("0.3797", 60_000, 158_000, "green")
    );
    assert_eq!(figure(m, "digitized_rate"), rated("0.7143", 5, 7, "green"));
    assert_eq!(figure(m, "satisfaction_rate"), rated("0.6000", 3, 5, "red"));
    let average = figure(m, "satisfaction_average");
    assert_eq!(average, (json!("3.6000"), json!(18), json!(5), Value::Null));

    let px = &child(&card, PHU_XUAN)["metrics"];
    assert_eq!(figure(px, "received"), counted(5));
    // A commune's online target is 20 %.
    assert_eq!(figure(px, "online_rate"), rated("0.4000", 2, 5, "green"));
    assert_eq!(metric(px, "online_rate")["target"], "0.2000");
    assert_eq!(figure(px, "on_time_rate"), rated("0.5000", 2, 4, "red"));
    assert_eq!(figure(px, "overdue_now"), counted(3));
    assert_eq!(
        figure(px, "cashless_rate_count"),
        rated("0.6000", 3, 5, "green")
    );
    assert_eq!(
        figure(px, "cashless_rate_amount"),
        rated("0.4000", 60_000, 150_000, "green")
    );
    assert_eq!(figure(px, "digitized_rate"), rated("0.6000", 3, 5, "green"));
    assert_eq!(
        figure(px, "satisfaction_rate"),
        rated("0.6667", 2, 3, "red")
    );

    let vd = &child(&card, VY_DA)["metrics"];
    assert_eq!(figure(vd, "on_time_rate"), rated("1.0000", 2, 2, "green"));
    // 0 % cashless is within 5 points of the 5 % target: yellow.
    assert_eq!(
        figure(vd, "cashless_rate_count"),
        rated("0.0000", 0, 1, "yellow")
    );
    assert_eq!(
        figure(vd, "satisfaction_rate"),
        rated("0.5000", 1, 2, "red")
    );

    // A commune with nothing to count is not red: it has no band.
    let quiet = &child(&card, "19774")["metrics"];
    assert_eq!(figure(quiet, "received"), counted(0));
    assert_eq!(
        figure(quiet, "on_time_rate"),
        (Value::Null, json!(0), json!(0), Value::Null)
    );
    assert_eq!(card["children"].as_array().unwrap().len(), 10);

    // The commune's own card is its row of the province's.
    let own = desk
        .app
        .get_json_with(
            &desk.supervisor,
            &format!("/v1/scorecards/units/{PHU_XUAN}?{OCTOBER}"),
        )
        .await;
    assert_eq!(own["metrics"], *px);
    assert_eq!(own["children"], json!([]));
}

#[sqlx::test]
async fn a_day_is_a_vietnam_day_at_both_ends(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let card = |period: &'static str| {
        let app = &desk.app;
        let token = desk.supervisor.clone();
        async move {
            app.get_json_with(&token, &format!("/v1/scorecards/units/{PHU_XUAN}?{period}"))
                .await
        }
    };
    // E was received at 23:59 on 31 October, F at 00:00 on 1 November.
    let last_day = card("from=2026-10-31&to=2026-10-31").await;
    assert_eq!(figure(&last_day["metrics"], "received"), counted(1));
    let first_day = card("from=2026-11-01&to=2026-11-01").await;
    assert_eq!(figure(&first_day["metrics"], "received"), counted(1));
    // G finished at 23:59 on 31 October (late), H at 00:00 on 1 November (late).
    assert_eq!(
        figure(&last_day["metrics"], "on_time_rate"),
        rated("0.0000", 0, 1, "red")
    );
    assert_eq!(
        figure(&first_day["metrics"], "on_time_rate"),
        rated("0.0000", 0, 1, "red")
    );
    // The 50,000 in cash at 00:00 on 1 October is October's, the 70,000 at 00:00 on 1 November
    // November's.
    let first_of_october = card("from=2026-10-01&to=2026-10-01").await;
    assert_eq!(
        figure(&first_of_october["metrics"], "cashless_rate_amount"),
        rated("0.0000", 0, 50_000, "yellow")
    );
    assert_eq!(
        figure(&first_day["metrics"], "cashless_rate_amount"),
        rated("1.0000", 70_000, 70_000, "green")
    );
    let reversed = desk
        .app
        .get_with_token(
            &format!("/v1/scorecards/units/{PHU_XUAN}?from=2026-10-02&to=2026-10-01"),
            &desk.supervisor,
        )
        .await;
    expect_problem(
        reversed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[sqlx::test]
async fn only_supervisors_of_the_subtree_read_it_and_the_public_reads_the_figures(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let path = format!("/v1/scorecards/units/{PHU_XUAN}?{OCTOBER}");
    let by_officer = desk.app.get_with_token(&path, &desk.officer).await;
    expect_problem(by_officer, StatusCode::FORBIDDEN, "forbidden").await;
    let anonymous = desk.app.get(&path).await;
    expect_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // A supervisor of Vỹ Dạ does not see Phú Xuân.
    let staff = json!({"phone": "0900000099", "password": "giam-sat-vy-da-2026",
                       "full_name": "Đỗ Thị Lan", "role": "supervisor", "unit_code": VY_DA});
    let created = desk
        .app
        .send_json_with(Method::POST, "/v1/admin/staff", &desk.admin, &staff)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let vy_da =
        crate::support::actors::access_token(&desk.app, "0900000099", "giam-sat-vy-da-2026").await;
    let outside = desk.app.get_with_token(&path, &vy_da).await;
    expect_problem(outside, StatusCode::NOT_FOUND, "not_found").await;
    let own = desk
        .app
        .get_with_token(&format!("/v1/scorecards/units/{VY_DA}?{OCTOBER}"), &vy_da)
        .await;
    assert_eq!(own.status(), StatusCode::OK);

    // The public reads the same figures.
    let private = desk.app.get_json_with(&desk.supervisor, &path).await;
    let public = desk
        .app
        .get_json(&format!("/v1/public/scorecards/units/{PHU_XUAN}?{OCTOBER}"))
        .await;
    assert_eq!(public, private);
    let unknown = desk.app.get("/v1/public/scorecards/units/99999").await;
    expect_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[sqlx::test]
async fn the_csv_has_a_line_per_unit_with_the_same_figures(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let response = desk
        .app
        .get_with_token(
            &format!("/v1/scorecards/units/{HUE}.csv?{OCTOBER}"),
            &desk.supervisor,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1 + 10, "{text}");
    assert!(
        lines[0]
            .starts_with("unit_code,unit_name,received,online_rate,online_rate_band,on_time_rate,"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("46,Thành phố Huế,7,0.5714,green,0.6667,red,3,1,0.5000,green,0.3797,green,0.7143,green,0.6000,red,3.6000"), "{}", lines[1]);
    let px = lines.iter().find(|l| l.starts_with("19753,")).unwrap();
    assert!(
        px.starts_with("19753,Phường Phú Xuân,5,0.4000,green,0.5000,red,3,1,"),
        "{px}"
    );
}

#[sqlx::test]
async fn the_overdue_list_is_most_late_first_with_apology_and_holder(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let apology = october(&pool).await;
    // The Phú Xuân officer last moved the dossier late with an apology.
    sqlx::query(
        "INSERT INTO dossier_events (dossier_id, action, from_status, to_status, actor_id, actor_role)
         SELECT $1, 'reschedule', 'processing', 'processing', id, 'officer' FROM accounts WHERE phone = '+84900000002'",
    )
    .bind(apology)
    .execute(&pool)
    .await
    .unwrap();
    let page = desk
        .app
        .get_json_with(&desk.supervisor, "/v1/scorecards/overdue?unit=46&limit=2")
        .await;
    let data = page["data"].as_array().unwrap();
    let codes: Vec<&str> = data.iter().map(|d| d["code"].as_str().unwrap()).collect();
    // D (due 23 October), F (4 November), then E (5 November) on the next page.
    assert_eq!(codes, ["19753-261004-0001", "19753-261006-0001"], "{page}");
    assert_eq!(data[0]["apologized"], true);
    assert_eq!(data[0]["officer"]["full_name"], "Trần Thị Bích");
    assert_eq!(data[1]["apologized"], false);
    assert!(data[1]["officer"].is_null());
    let late = |d: &Value| d["working_days_late"].as_i64().unwrap();
    assert!(
        late(&data[0]) > late(&data[1]) && late(&data[1]) > 0,
        "{page}"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = desk
        .app
        .get_json_with(
            &desk.supervisor,
            &format!("/v1/scorecards/overdue?unit=46&limit=2&cursor={cursor}"),
        )
        .await;
    let rest: Vec<&str> = next["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["19753-261005-0001"]);
    assert!(next["next_cursor"].is_null());
    let by_officer = desk
        .app
        .get_with_token("/v1/scorecards/overdue", &desk.officer)
        .await;
    expect_problem(by_officer, StatusCode::FORBIDDEN, "forbidden").await;
}

#[sqlx::test]
async fn an_admin_moves_a_target_and_the_bands_follow(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let targets = desk
        .app
        .get_json_with(&desk.admin, "/v1/admin/scorecards/targets")
        .await;
    assert_eq!(targets["on_time"], "0.9600", "{targets}");
    let mut changed = targets.clone();
    changed.as_object_mut().unwrap().remove("updated_at");
    changed["on_time"] = json!("0.50");
    let response = desk
        .app
        .send_json_with(
            Method::PUT,
            "/v1/admin/scorecards/targets",
            &desk.admin,
            &changed,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let card = desk
        .app
        .get_json_with(
            &desk.supervisor,
            &format!("/v1/scorecards/units/{PHU_XUAN}?{OCTOBER}"),
        )
        .await;
    assert_eq!(
        figure(&card["metrics"], "on_time_rate"),
        rated("0.5000", 2, 4, "green")
    );
    changed["orange_width"] = json!("0.01");
    let refused = desk
        .app
        .send_json_with(
            Method::PUT,
            "/v1/admin/scorecards/targets",
            &desk.admin,
            &changed,
        )
        .await;
    expect_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let by_supervisor = desk
        .app
        .send_json_with(
            Method::PUT,
            "/v1/admin/scorecards/targets",
            &desk.supervisor,
            &changed,
        )
        .await;
    expect_problem(by_supervisor, StatusCode::FORBIDDEN, "forbidden").await;
}

/// The answer of a request that must succeed.
async fn created(response: reqwest::Result<reqwest::Response>) -> Value {
    let response = response.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    body
}

/// Every unit's and day's figures, counted afresh from the dossiers, documents, fee bills and
/// ratings (what the summaries must always equal), and as the summaries hold them; each row as
/// text, days with nothing left out.
async fn recount_and_summaries(pool: &PgPool) -> (Vec<String>, Vec<String>) {
    let recount = sqlx::query_scalar(
        "WITH parts AS (
             SELECT unit_code, vietnam_day(received_at) AS day, 1 AS received, (channel = 'online')::int AS online,
                    EXISTS (SELECT 1 FROM dossier_documents dd WHERE dd.dossier_id = d.id)::int AS digitized,
                    0 AS finished, 0 AS on_time, 0 AS paid, 0 AS cashless, 0::bigint AS amount, 0::bigint AS amount_cashless,
                    0 AS ratings, 0 AS good, 0 AS points
             FROM dossiers d WHERE received_at IS NOT NULL
             UNION ALL
             SELECT unit_code, vietnam_day(finished_at), 0, 0, 0, 1, COALESCE(finished_at <= due_at, false)::int,
                    0, 0, 0, 0, 0, 0, 0
             FROM dossiers WHERE finished_at IS NOT NULL
             UNION ALL
             SELECT bl.unit_code, vietnam_day(b.paid_at), 0, 0, 0, 0, 0, 1, (b.paid_via <> 'cash')::int, b.amount,
                    CASE WHEN b.paid_via <> 'cash' THEN b.amount ELSE 0 END, 0, 0, 0
             FROM bills b JOIN billers bl ON bl.id = b.biller_id WHERE b.paid_at IS NOT NULL AND bl.unit_code IS NOT NULL
             UNION ALL
             SELECT d.unit_code, vietnam_day(r.created_at), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, (r.score >= 4)::int, r.score
             FROM dossier_ratings r JOIN dossiers d ON d.id = r.dossier_id
         )
         SELECT concat_ws(' ', unit_code, day, sum(received), sum(online), sum(digitized), sum(finished), sum(on_time),
                          sum(paid), sum(cashless), sum(amount), sum(amount_cashless), sum(ratings), sum(good), sum(points))
         FROM parts GROUP BY unit_code, day ORDER BY unit_code, day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let summaries = sqlx::query_scalar(
        "SELECT concat_ws(' ', unit_code, day, received, received_online, received_digitized, finished,
                          finished_on_time, fees_paid, fees_paid_cashless, fees_amount, fees_amount_cashless,
                          ratings, ratings_good, rating_points)
         FROM scorecard_days
         WHERE received <> 0 OR finished <> 0 OR fees_paid <> 0 OR ratings <> 0 OR received_digitized <> 0
            OR fees_amount <> 0 OR finished_on_time <> 0
         ORDER BY unit_code, day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (recount, summaries)
}

/// The daily summaries the scorecards read equal a full recount after a mixed workload: dossiers
/// received at the counter with their fees billed, a fee paid in cash then voided then paid from
/// the wallet, one paid by QR at the counter, dossiers finished, and changes made behind the API's
/// back (a finish moved, a due time moved after the finish, a first document added late, a bill's
/// channel changed, a payment undone, a rating given).
#[sqlx::test]
async fn the_summaries_equal_a_full_recount_after_a_mixed_workload(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    october(&pool).await;
    let app = &desk.app;
    let post = |path: &str, token: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .header("x-payment-pin", "246810")
            .json(&body)
            .send()
    };
    created(
        post(
            "/v1/counter/shifts",
            &desk.officer,
            json!({"opening_float": 0}),
        )
        .await,
    )
    .await;
    let mut fees = Vec::new();
    // Counter dossiers come with their mandatory documents (the fixture has dossiers without).
    for _ in 0..2 {
        let documents = json!([
            crate::support::desk::document("to_khai"),
            crate::support::desk::document("giay_to_tuy_than")
        ]);
        let dossier = created(
            post(
                "/v1/counter/dossiers",
                &desk.officer,
                json!({"procedure_code": "2.000635", "documents": documents,
                       "applicant": {"phone": "0912345678", "full_name": "Nguyễn Văn An", "national_id": "046095012345"}}),
            )
            .await,
        )
        .await;
        fees.push(dossier["fee_bill"].clone());
    }
    // The first fee: cash, voided with the supervisor's approval, then paid from the wallet.
    let cash = created(
        post(
            "/v1/counter/collections",
            &desk.officer,
            json!({"bill_code": fees[0]["code"], "method": "cash"}),
        )
        .await,
    )
    .await;
    let void = created(
        post(
            &format!(
                "/v1/counter/collections/{}/void",
                cash["id"].as_str().unwrap()
            ),
            &desk.officer,
            json!({"reason": "thu nhầm"}),
        )
        .await,
    )
    .await;
    created(
        post(
            &format!(
                "/v1/counter/void-requests/{}/approve",
                void["id"].as_str().unwrap()
            ),
            &desk.supervisor,
            json!({}),
        )
        .await,
    )
    .await;
    created(
        post(
            &format!("/v1/bills/{}/pay", fees[0]["id"].as_str().unwrap()),
            &desk.citizen,
            json!({}),
        )
        .await,
    )
    .await;
    // The second: by QR at the counter, paid in the app.
    created(
        post(
            "/v1/counter/collections",
            &desk.officer,
            json!({"bill_code": fees[1]["code"], "method": "qr"}),
        )
        .await,
    )
    .await;
    created(
        post(
            &format!("/v1/bills/{}/pay", fees[1]["id"].as_str().unwrap()),
            &desk.citizen,
            json!({}),
        )
        .await,
    )
    .await;
    let (recount, summaries) = recount_and_summaries(&pool).await;
    assert!(recount.len() > 10, "{recount:?}");
    assert_eq!(summaries, recount, "after the API's workload");

    for change in [
        "UPDATE dossiers SET finished_at = finished_at + interval '3 days' WHERE code = '19753-261001-0001'",
        "UPDATE dossiers SET due_at = due_at - interval '5 days' WHERE code = '19753-261003-0001'",
        "INSERT INTO dossier_documents (id, dossier_id, code, name, sha256, size_bytes, storage_uri, added_with)
         SELECT gen_random_uuid(), id, 'bo_sung', 'bo-sung.pdf', repeat('cd', 32), 1, 's3://civicpay-documents/y.pdf', 'supplement'
         FROM dossiers WHERE code = '19753-261002-0001'",
        "UPDATE bills SET paid_via = 'cash' WHERE paid_via = 'wallet' AND code LIKE 'BFIX%' AND amount = 20000",
        "UPDATE bills SET status = 'unpaid', paid_at = NULL, paid_via = NULL WHERE code LIKE 'BFIX%' AND amount = 30000",
        "UPDATE dossiers SET status = 'returned', finished_at = now() WHERE code = '19753-261004-0001'",
        "INSERT INTO dossier_ratings (dossier_id, score) SELECT id, 2 FROM dossiers WHERE code = '19753-261004-0001'",
    ] {
        sqlx::query(change).execute(&pool).await.unwrap();
        let (recount, summaries) = recount_and_summaries(&pool).await;
        assert_eq!(summaries, recount, "after {change}");
    }
}
