//! Dossier reads at two table sizes: public tracking by code and tracking key (the right one:
//! a wrong key would soon be rate-limited) and the first page of an
//! officer's worklist, over real HTTP at a fixed offered rate, with 10 thousand and then
//! 1 million dossiers loaded (spread over Huế's demo communes, most of them long returned, as
//! in a province's real history). Reports p50 and p99 of each and the 1M/10k ratios; the goal
//! is 1M within 1.5× of 10k.
//!
//! Run: `cargo bench --bench dossiers` (BENCH_RATE requests/s per endpoint, default 200;
//! BENCH_SECONDS per measurement, default 10; BENCH_ROUNDS, default 3; BENCH_LARGE rows,
//! default 1,000,000).
//! Needs PostgreSQL on 127.0.0.1:5432; loading the large table takes a minute or two.

use std::time::{Duration, Instant};

use sqlx::PgPool;

mod support;
use support::{env_number, fresh_database, in_process_server, staff_token};

const BENCH_DB: &str = "civicpay_bench_dossiers";
const POOL_SIZE: u32 = 16;
const SMALL: u64 = 10_000;
const OFFICER: (&str, &str) = ("0900000002", "officer-demo-2026");
/// Codes looked up by the tracking run.
const SAMPLE: i64 = 2_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = env_number("BENCH_RATE", 200).clamp(1, 5_000);
    let seconds = env_number("BENCH_SECONDS", 10).clamp(1, 300);
    let rounds = env_number("BENCH_ROUNDS", 3).clamp(1, 20);
    let large = env_number("BENCH_LARGE", 1_000_000).clamp(SMALL + 1, 20_000_000);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    // Both sizes stay loaded, each behind its own server, so their runs can alternate
    // minute by minute (the machine drifts ±20 %).
    let mut sites = Vec::new();
    for (suffix, rows) in [("small", SMALL), ("large", large)] {
        sites.push(Site::prepare(&client, suffix, rows).await?);
    }
    println!("offered {rate} requests/s per endpoint for {seconds} s, pool of {POOL_SIZE}");
    println!("round  rows      endpoint         p50_ms   p99_ms  errors");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        // Alternate which size goes first, so neither always gets the fresher minute.
        let order: Vec<usize> = if round % 2 == 1 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        let mut runs: Vec<(Run, Run)> = Vec::new();
        for &index in &order {
            let site = &sites[index];
            let tracking = measure(&client, rate, seconds, |n| {
                let (code, key) = &site.codes[n % site.codes.len()];
                (
                    format!("{}/v1/public/dossiers/{code}?key={key}", site.base),
                    None,
                )
            })
            .await;
            let worklist = measure(&client, rate, seconds, |_| {
                (
                    format!("{}/v1/unit/dossiers", site.base),
                    Some(site.officer.clone()),
                )
            })
            .await;
            for (name, run) in [("public tracking", &tracking), ("unit worklist", &worklist)] {
                println!(
                    "{round:>5}  {:>8}  {name:<15} {:>7.2}  {:>7.2}  {:>6}",
                    site.rows, run.p50_ms, run.p99_ms, run.errors
                );
            }
            runs.push((tracking, worklist));
        }
        if order[0] == 1 {
            runs.reverse();
        }
        ratios.push((
            runs[1].0.p50_ms / runs[0].0.p50_ms,
            runs[1].0.p99_ms / runs[0].0.p99_ms,
            runs[1].1.p50_ms / runs[0].1.p50_ms,
            runs[1].1.p99_ms / runs[0].1.p99_ms,
        ));
    }
    println!("round  {large}/{SMALL}: tracking p50  p99   worklist p50  p99");
    for (round, (tp50, tp99, wp50, wp99)) in ratios.iter().enumerate() {
        println!(
            "{:>5}  {tp50:>23.2} {tp99:>5.2}  {wp50:>12.2} {wp99:>5.2}",
            round + 1
        );
    }
    Ok(())
}

/// One table size behind its own server.
struct Site {
    rows: u64,
    base: String,
    officer: String,
    /// Codes and their tracking keys.
    codes: Vec<(String, String)>,
}

impl Site {
    async fn prepare(client: &reqwest::Client, suffix: &str, rows: u64) -> anyhow::Result<Site> {
        let pool = fresh_database(&format!("{BENCH_DB}_{suffix}"), POOL_SIZE).await?;
        let pepper = b"bench-pin-pepper-0123456789abcdef-0123".to_vec();
        let context = civicpay::demo::DemoContext {
            pin_pepper: pepper.clone(),
        };
        civicpay::demo::load_all(&pool, &context).await?;
        let started = Instant::now();
        load_dossiers(&pool, rows).await?;
        eprintln!(
            "loaded {rows} dossiers in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        let codes =
            sqlx::query_as("SELECT code, tracking_key FROM dossiers ORDER BY random() LIMIT $1")
                .bind(SAMPLE)
                .fetch_all(&pool)
                .await?;
        let base = in_process_server(&pool, &pepper).await?;
        let officer = staff_token(client, &base, OFFICER).await?;
        Ok(Site {
            rows,
            base,
            officer,
            codes,
        })
    }
}

/// Tops the table up to `target` dossiers: over the last two years, spread across the demo
/// communes, 90 % returned and the rest open in various states.
async fn load_dossiers(pool: &PgPool, target: u64) -> anyhow::Result<()> {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM dossiers")
        .fetch_one(pool)
        .await?;
    let missing = target as i64 - have;
    let chunk = 100_000i64;
    let mut from = have;
    while from < have + missing {
        let to = (from + chunk).min(have + missing);
        sqlx::query(
            "WITH communes AS (SELECT array_agg(code ORDER BY code) AS codes FROM units WHERE level = 'commune'),
                  citizen AS (SELECT id FROM accounts WHERE phone = '+84912345678')
             INSERT INTO dossiers (id, code, procedure_code, unit_code, province_code, status, channel, applicant_id,
                                   applicant_name, applicant_phone, submitted_at, received_at, due_at, appointment_at,
                                   finished_at, returned_at, tracking_key)
             SELECT gen_random_uuid(),
                    unit || '-' || to_char(at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD') || '-' || lpad(i::text, 7, '0'),
                    '1.000894', unit, '46', status, 'online', (SELECT id FROM citizen), 'Công dân ' || i,
                    '+849' || lpad((i % 100000000)::text, 8, '0'), at, at, at + interval '7 days', at + interval '7 days',
                    CASE WHEN status IN ('returned', 'result_ready') THEN at + interval '5 days' END,
                    CASE WHEN status = 'returned' THEN at + interval '6 days' END,
                    dossier_tracking_key()
             FROM (SELECT i, codes[1 + (i % array_length(codes, 1))] AS unit,
                          now() - (random() * interval '730 days') AS at,
                          CASE WHEN i % 10 = 0 THEN (ARRAY['received', 'processing', 'supplement_requested',
                                                           'awaiting_payment', 'suspended', 'result_ready'])[1 + (i / 10) % 6]
                               ELSE 'returned' END AS status
                   FROM generate_series($1::bigint, $2::bigint - 1) AS i, communes) generated",
        )
        .bind(from)
        .bind(to)
        .execute(pool)
        .await?;
        from = to;
    }
    // The steady state of a table that has lived a while: statistics, visibility map, hint bits.
    sqlx::query("VACUUM (ANALYZE) dossiers")
        .execute(pool)
        .await?;
    Ok(())
}

struct Run {
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// `rate` GETs a second for `seconds`, each started on its tick (an open system).
async fn measure(
    client: &reqwest::Client,
    rate: u64,
    seconds: u64,
    request: impl Fn(usize) -> (String, Option<String>),
) -> Run {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..(rate * seconds) as usize {
        ticker.tick().await;
        let (url, token) = request(n);
        let client = client.clone();
        requests.spawn(async move {
            let started = Instant::now();
            let mut call = client.get(url).timeout(Duration::from_secs(10));
            if let Some(token) = token {
                call = call.bearer_auth(token);
            }
            let ok = match call.send().await {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            (started.elapsed(), ok)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(Ok((latency, ok))) = requests.join_next().await {
        if ok {
            latencies.push(latency);
        } else {
            errors += 1;
        }
    }
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Run {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        errors,
    }
}
