//! Scorecards (DESIGN.md, "Scorecards"): a unit and its whole subtree coloured green, yellow,
//! orange or red on the seeds' targets, for a period of Vietnam-time days, counted live from the
//! dossiers, fee bills and ratings ([`figures`]), with one row per child unit for drill-down.
//! Supervisors and admins read their subtree's (with the overdue list, [`overdue`]); anyone
//! reads the same figures publicly, which hold nothing personal.

mod figures;
mod overdue;
mod targets;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use self::figures::{Counts, Span};
use self::targets::Targets;
use crate::auth::Caller;
use crate::auth::access::Supervisors;
use crate::http::dates;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;
use crate::units::UnitLevel;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unit_scorecard))
        .routes(routes!(public_scorecard))
        .merge(overdue::routes())
        .merge(targets::routes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Green,
    Yellow,
    Orange,
    Red,
}

/// One figure: a count (`value` an integer) or a rate (`value` a decimal string from `"0"` to
/// `"1"` with 4 places; `satisfaction_average` from `"1"` to `"5"`), `null` when nothing was
/// counted. `band` is `null` where no target applies or nothing was counted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Metric {
    pub name: String,
    #[schema(value_type = Object, example = "0.9600")]
    pub value: serde_json::Value,
    pub numerator: Option<i64>,
    pub denominator: Option<i64>,
    /// The target, a decimal string, where one applies.
    pub target: Option<String>,
    pub band: Option<Band>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChildCard {
    pub unit_code: String,
    pub unit_name: String,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Scorecard {
    pub unit_code: String,
    pub unit_name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The unit and everything below it.
    pub metrics: Vec<Metric>,
    /// Each child unit with its own subtree.
    pub children: Vec<ChildCard>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day, Vietnam time (YYYY-MM-DD; default the first of the current month).
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Last day included (default the last of the current month).
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
}

impl Period {
    /// The period's first and last day, and the instants they span.
    fn days(&self) -> ApiResult<(NaiveDate, NaiveDate, Span)> {
        let today = crate::bills::today();
        let first_of_month = today.with_day(1).unwrap_or(today);
        let from = self.from.unwrap_or(first_of_month);
        let to = self.to.unwrap_or_else(|| last_of_month(from));
        FieldChecks::new()
            .check(from <= to, "to", Message::PeriodReversed)
            .finish()?;
        Ok((
            from,
            to,
            Span {
                first: from,
                last: to,
            },
        ))
    }
}

fn last_of_month(day: NaiveDate) -> NaiveDate {
    day.checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.with_day(1))
        .and_then(|first| first.pred_opt())
        .unwrap_or(day)
}

/// A unit's scorecard, its subtree included, with a row per child unit (supervisors and admins
/// of the unit's subtree). `GET /v1/scorecards/units/{code}.csv` answers the same as CSV, one
/// line per unit (the unit first, then its children).
#[utoipa::path(get, path = "/v1/scorecards/units/{code}", tag = "scorecards", security(("bearer" = [])),
    params(("code" = String, Path, description = "A unit code; with `.csv` appended, the CSV"), Period),
    responses(
        (status = 200, body = Scorecard),
        (status = 200, content_type = "text/csv", description = "For `{code}.csv`: unit_code, unit_name, then each metric's value (and band where one applies), one line per unit"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such unit, or outside the caller's subtree"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn unit_scorecard(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Path(code): Path<String>,
    Query(period): Query<Period>,
) -> ApiResult<Response> {
    let (code, as_csv) = match code.strip_suffix(".csv") {
        Some(code) => (code.to_owned(), true),
        None => (code, false),
    };
    let mut conn = state.db.acquire().await?;
    let unit = find_unit(&mut conn, &code).await?;
    if !caller.supervises(&state.db, &unit.code).await? {
        return Err(ApiError::not_found(Message::UnitNotFound { code }));
    }
    let card = scorecard(&mut conn, &unit, &period).await?;
    Ok(if as_csv {
        csv(&card).into_response()
    } else {
        Json(card).into_response()
    })
}

/// A unit's scorecard for the public: the same figures, nothing personal in them (the overdue
/// list is for supervisors only).
#[utoipa::path(get, path = "/v1/public/scorecards/units/{code}", tag = "scorecards",
    params(("code" = String, Path), Period),
    responses(
        (status = 200, body = Scorecard),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn public_scorecard(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(period): Query<Period>,
) -> ApiResult<Json<Scorecard>> {
    let mut conn = state.db.acquire().await?;
    let unit = find_unit(&mut conn, &code).await?;
    Ok(Json(scorecard(&mut conn, &unit, &period).await?))
}

struct UnitRow {
    code: String,
    name: String,
    level: UnitLevel,
}

async fn find_unit(conn: &mut PgConnection, code: &str) -> ApiResult<UnitRow> {
    sqlx::query_as!(
        UnitRow,
        r#"SELECT code, name, level AS "level: UnitLevel" FROM units WHERE code = $1"#,
        code
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| {
        ApiError::not_found(Message::UnitNotFound {
            code: code.to_owned(),
        })
    })
}

/// Every unit of the subtree of `root`, with the child of `root` it lies under (`None` for
/// `root` itself).
struct Member {
    code: String,
    branch: Option<String>,
}

async fn subtree(conn: &mut PgConnection, root: &str) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as!(
        Member,
        r#"WITH RECURSIVE tree(code, branch, depth) AS (
               SELECT code, NULL::text, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, COALESCE(t.branch, u.code), t.depth + 1
               FROM units u JOIN tree t ON u.parent_code = t.code
               WHERE t.depth < 8
           )
           SELECT code AS "code!", branch FROM tree"#,
        root
    )
    .fetch_all(conn)
    .await
}

async fn scorecard(
    conn: &mut PgConnection,
    unit: &UnitRow,
    period: &Period,
) -> ApiResult<Scorecard> {
    let (from, to, span) = period.days()?;
    let targets = targets::load(conn).await?;
    let members = subtree(conn, &unit.code).await?;
    let codes: Vec<String> = members.iter().map(|m| m.code.clone()).collect();
    let per_unit = figures::per_unit(conn, &codes, &span).await?;
    let mut total = Counts::default();
    let mut by_branch: HashMap<&str, Counts> = HashMap::new();
    for member in &members {
        let counts = per_unit.get(&member.code).copied().unwrap_or_default();
        total += counts;
        if let Some(branch) = &member.branch {
            *by_branch.entry(branch).or_default() += counts;
        }
    }
    let children = sqlx::query_as!(
        UnitRow,
        r#"SELECT code, name, level AS "level: UnitLevel" FROM units WHERE parent_code = $1 ORDER BY code"#,
        unit.code
    )
    .fetch_all(&mut *conn)
    .await?;
    let children = children
        .into_iter()
        .map(|child| ChildCard {
            metrics: metrics(
                &by_branch
                    .get(child.code.as_str())
                    .copied()
                    .unwrap_or_default(),
                &targets,
                child.level,
            ),
            unit_code: child.code,
            unit_name: child.name,
        })
        .collect();
    Ok(Scorecard {
        unit_code: unit.code.clone(),
        unit_name: unit.name.clone(),
        from,
        to,
        metrics: metrics(&total, &targets, unit.level),
        children,
    })
}

/// The figures of `counts` against the targets of a unit at `level`, in DESIGN.md's order.
fn metrics(counts: &Counts, targets: &Targets, level: UnitLevel) -> Vec<Metric> {
    let online_target = match level {
        UnitLevel::Commune => targets.online_commune,
        _ => targets.online_above_commune,
    };
    let rated = |name: &str, numerator: i64, denominator: i64, target: Decimal| {
        rate(name, numerator, denominator, Some((target, targets)))
    };
    vec![
        count("received", counts.received),
        rated(
            "online_rate",
            counts.received_online,
            counts.received,
            online_target,
        ),
        rated(
            "on_time_rate",
            counts.finished_on_time,
            counts.finished,
            targets.on_time,
        ),
        count("overdue_now", counts.overdue_now),
        count("overdue_with_apology", counts.overdue_with_apology),
        rated(
            "cashless_rate_count",
            counts.fees_paid_cashless,
            counts.fees_paid,
            targets.cashless,
        ),
        rated(
            "cashless_rate_amount",
            counts.fees_amount_cashless,
            counts.fees_amount,
            targets.cashless,
        ),
        rated(
            "digitized_rate",
            counts.received_digitized,
            counts.received,
            targets.digitized,
        ),
        rated(
            "satisfaction_rate",
            counts.ratings_good,
            counts.ratings,
            targets.satisfaction,
        ),
        rate(
            "satisfaction_average",
            counts.rating_points,
            counts.ratings,
            None,
        ),
    ]
}

fn count(name: &str, value: i64) -> Metric {
    Metric {
        name: name.to_owned(),
        value: value.into(),
        numerator: Some(value),
        denominator: None,
        target: None,
        band: None,
    }
}

/// `numerator / denominator` with 4 places (half away from zero), banded against `target` when
/// one applies; `null` value and band when nothing was counted.
fn rate(
    name: &str,
    numerator: i64,
    denominator: i64,
    target: Option<(Decimal, &Targets)>,
) -> Metric {
    let value = (denominator > 0).then(|| Decimal::from(numerator) / Decimal::from(denominator));
    let band = match (value, target) {
        (Some(value), Some((target, targets))) => Some(band_of(value, target, targets)),
        _ => None,
    };
    Metric {
        name: name.to_owned(),
        value: value.map_or(serde_json::Value::Null, |v| fixed4(v).into()),
        numerator: Some(numerator),
        denominator: Some(denominator),
        target: target.map(|(t, _)| fixed4(t)),
        band,
    }
}

/// Green at or above the target, yellow within the yellow width below it, orange within the
/// orange width, red below. The unrounded rate is compared, so `0.95996` is not green at 96 %.
fn band_of(value: Decimal, target: Decimal, targets: &Targets) -> Band {
    if value >= target {
        Band::Green
    } else if value >= target - targets.yellow_width {
        Band::Yellow
    } else if value >= target - targets.orange_width {
        Band::Orange
    } else {
        Band::Red
    }
}

fn fixed4(value: Decimal) -> String {
    let mut rounded = value.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(4);
    rounded.to_string()
}

/// The scorecard as CSV: a header, the unit's line, then each child's.
fn csv(card: &Scorecard) -> impl IntoResponse {
    use crate::http::csv::line;
    let mut header_cells = vec!["unit_code".to_owned(), "unit_name".to_owned()];
    for metric in &card.metrics {
        header_cells.push(metric.name.clone());
        if metric.target.is_some() {
            header_cells.push(format!("{}_band", metric.name));
        }
    }
    let mut out = line(header_cells.iter().map(String::as_str));
    let rows = std::iter::once((&card.unit_code, &card.unit_name, &card.metrics)).chain(
        card.children
            .iter()
            .map(|c| (&c.unit_code, &c.unit_name, &c.metrics)),
    );
    for (code, name, metrics) in rows {
        let mut cells = vec![code.clone(), crate::http::csv::text(name).into_owned()];
        for metric in metrics {
            cells.push(match &metric.value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            });
            if metric.target.is_some() {
                cells.push(metric.band.map(band_name).unwrap_or_default().to_owned());
            }
        }
        out.push_str(&line(cells.iter().map(String::as_str)));
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out)
}

fn band_name(band: Band) -> &'static str {
    match band {
        Band::Green => "green",
        Band::Yellow => "yellow",
        Band::Orange => "orange",
        Band::Red => "red",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Targets {
        let d = |text: &str| text.parse::<Decimal>().unwrap();
        Targets {
            on_time: d("0.96"),
            online_above_commune: d("0.30"),
            online_commune: d("0.20"),
            cashless: d("0.05"),
            digitized: d("0.15"),
            satisfaction: d("0.93"),
            yellow_width: d("0.05"),
            orange_width: d("0.15"),
        }
    }

    #[test]
    fn bands_follow_the_target_and_widths_at_their_edges() {
        let t = defaults();
        let at = |text: &str| band_of(text.parse().unwrap(), t.on_time, &t);
        assert_eq!(at("0.96"), Band::Green);
        assert_eq!(at("0.95999"), Band::Yellow);
        assert_eq!(at("0.91"), Band::Yellow);
        assert_eq!(at("0.9099"), Band::Orange);
        assert_eq!(at("0.81"), Band::Orange);
        assert_eq!(at("0.8099"), Band::Red);
    }

    #[test]
    fn rates_have_four_places_and_nothing_counted_is_null() {
        let t = defaults();
        let m = rate("on_time_rate", 2, 3, Some((t.on_time, &t)));
        assert_eq!(m.value, "0.6667");
        assert_eq!(m.target.as_deref(), Some("0.9600"));
        assert_eq!(m.band, Some(Band::Red));
        let none = rate("on_time_rate", 0, 0, Some((t.on_time, &t)));
        assert!(none.value.is_null());
        assert_eq!(none.band, None);
        assert_eq!(rate("x", 1, 1, None).value, "1.0000");
    }

    #[test]
    fn a_commune_has_its_own_online_target() {
        let t = defaults();
        let counts = Counts {
            received: 4,
            received_online: 1,
            ..Counts::default()
        };
        let online = |level| {
            metrics(&counts, &t, level)
                .into_iter()
                .find(|m| m.name == "online_rate")
                .unwrap()
        };
        assert_eq!(online(UnitLevel::Commune).band, Some(Band::Green));
        assert_eq!(online(UnitLevel::Province).band, Some(Band::Yellow));
    }

    #[test]
    fn a_month_ends_on_its_last_day() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(last_of_month(d(2026, 2, 1)), d(2026, 2, 28));
        assert_eq!(last_of_month(d(2026, 12, 1)), d(2026, 12, 31));
    }
}
