//! Scorecards at a province's size: 150 communes under Huế, 1 million dossiers received over
//! the last year (a third online, a third with documents, most finished, some late, some rated)
//! and 2 million fee bills paid over the same year by every channel. Times the province's and a
//! commune's scorecard over real HTTP, one request at a time, for the current month and for the
//! whole year, and prints p50, p99 and the slowest of each. Goals: province < 500 ms, commune
//! < 50 ms.
//!
//! Run: `cargo bench --bench scorecards` (BENCH_DOSSIERS, default 1,000,000; BENCH_FEES,
//! default 2,000,000; BENCH_REQUESTS per case, default 30). Needs PostgreSQL on
//! 127.0.0.1:5432; loading takes a few minutes.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;

mod support;
use support::{env_number, fresh_database, in_process_server, staff_token};

const BENCH_DB: &str = "civicpay_bench_scorecards";
const POOL_SIZE: u32 = 16;
const COMMUNES: i64 = 150;
const SUPERVISOR: (&str, &str) = ("0900000004", "supervisor-demo-2026");
const CHUNK: i64 = 200_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dossiers = env_number("BENCH_DOSSIERS", 1_000_000).clamp(1_000, 20_000_000) as i64;
    let fees = env_number("BENCH_FEES", 2_000_000).clamp(1_000, 40_000_000) as i64;
    let requests = env_number("BENCH_REQUESTS", 30).clamp(1, 1_000) as usize;
    let pool = fresh_database(BENCH_DB, POOL_SIZE).await?;
    let pepper = b"bench-pin-pepper-0123456789abcdef-0123".to_vec();
    let context = civicpay::demo::DemoContext {
        pin_pepper: pepper.clone(),
    };
    civicpay::demo::load_all(&pool, &context).await?;
    let started = Instant::now();
    load(&pool, dossiers, fees).await?;
    eprintln!(
        "loaded {dossiers} dossiers and {fees} paid fee bills over {COMMUNES} communes in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let base = in_process_server(&pool, &pepper).await?;
    let client = reqwest::Client::new();
    let token = staff_token(&client, &base, SUPERVISOR).await?;
    let year = "from=2026-01-01&to=2026-12-31";
    let cases = [
        ("province, this month", "46".to_owned(), ""),
        ("province, the year", "46".to_owned(), year),
        ("commune, this month", "19753".to_owned(), ""),
        ("commune, the year", "19753".to_owned(), year),
    ];
    println!(
        "{dossiers} dossiers, {fees} paid fee bills, {COMMUNES} communes; {requests} requests each, one at a time"
    );
    println!("case                   p50_ms   p99_ms   max_ms  received");
    for (name, unit, period) in cases {
        let url = format!("{base}/v1/scorecards/units/{unit}?{period}");
        // One request first, not timed: the plan and the pages it reads, as in steady use.
        let first: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let received = first["metrics"][0]["value"].clone();
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let sent = Instant::now();
            let response = client.get(&url).bearer_auth(&token).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.bytes().await?;
            times.push(sent.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        println!(
            "{name:<22} {:>7.1}  {:>7.1}  {:>7.1}  {received}",
            p(0.5),
            p(0.99),
            ms(*times.last().unwrap())
        );
    }
    Ok(())
}

/// 140 more communes under Huế (150 in all), each the biller of its fees; then the dossiers,
/// their documents and ratings, and the paid fee bills, in chunks.
async fn load(pool: &PgPool, dossiers: i64, fees: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO units (code, name, level, parent_code)
         SELECT (30000 + i)::text, 'Xã Thử ' || i, 'commune', '46' FROM generate_series(1, $1) AS i
         ON CONFLICT DO NOTHING",
    )
    .bind(COMMUNES - 10)
    .execute(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    civicpay::bills::fees::bill_for_every_unit(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(conn);
    for from in (0..dossiers).step_by(CHUNK as usize) {
        let to = (from + CHUNK).min(dossiers);
        sqlx::query(
            "WITH communes AS (SELECT array_agg(code ORDER BY code) AS codes FROM units WHERE level = 'commune')
             INSERT INTO dossiers (id, code, procedure_code, unit_code, province_code, status, channel,
                                   applicant_name, applicant_phone, submitted_at, received_at, due_at,
                                   finished_at, rescheduled_at, tracking_key)
             SELECT gen_random_uuid(), unit || '-B-' || lpad(i::text, 8, '0'), '1.000894', unit, '46',
                    CASE WHEN i % 10 = 0 THEN 'processing' ELSE 'returned' END,
                    CASE WHEN i % 3 = 0 THEN 'online' ELSE 'counter' END,
                    'Công dân ' || i, '+849' || lpad((i % 100000000)::text, 8, '0'), at, at, at + interval '7 days',
                    CASE WHEN i % 10 <> 0 THEN at + CASE WHEN i % 17 = 0 THEN interval '9 days' ELSE interval '5 days' END END,
                    CASE WHEN i % 40 = 0 THEN at END,
                    'ABCDEF'
             FROM (SELECT i, codes[1 + (i % array_length(codes, 1))] AS unit,
                          now() - (random() * interval '365 days') AS at
                   FROM generate_series($1::bigint, $2::bigint - 1) AS i, communes) generated",
        )
        .bind(from)
        .bind(to)
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO dossier_documents (id, dossier_id, code, name, sha256, size_bytes, storage_uri, added_with)
         SELECT gen_random_uuid(), id, 'to_khai', 'to-khai.pdf', repeat('ab', 32), 1, 's3://civicpay-documents/x.pdf', 'submit'
         FROM dossiers WHERE code LIKE '%-B-%' AND right(code, 1) IN ('1', '4', '7')",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO dossier_ratings (dossier_id, score, created_at)
         SELECT id, 1 + (abs(hashtext(code)) % 5), finished_at + interval '1 day'
         FROM dossiers WHERE code LIKE '%-B-%' AND finished_at IS NOT NULL AND right(code, 1) IN ('2', '5')",
    )
    .execute(pool)
    .await?;
    for from in (0..fees).step_by(CHUNK as usize) {
        let to = (from + CHUNK).min(fees);
        sqlx::query(
            "WITH billers AS (SELECT array_agg(id ORDER BY unit_code) AS ids FROM billers WHERE unit_code IS NOT NULL)
             INSERT INTO bills (id, code, biller_id, reference, payer_name, items, amount, status, paid_at, paid_via)
             SELECT gen_random_uuid(), 'BF' || lpad(i::text, 10, '0'), ids[1 + (i % array_length(ids, 1))],
                    'F' || i, 'Công dân ' || i, jsonb_build_array(jsonb_build_object('name', 'Phí', 'amount', 8000)),
                    8000, 'paid', now() - (random() * interval '365 days'),
                    (ARRAY['wallet', 'provider', 'counter_qr', 'cash', 'cash', 'cash'])[1 + i % 6]
             FROM generate_series($1::bigint, $2::bigint - 1) AS i, billers",
        )
        .bind(from)
        .bind(to)
        .execute(pool)
        .await?;
    }
    for table in ["dossiers", "bills", "dossier_documents", "dossier_ratings"] {
        sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}
