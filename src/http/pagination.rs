//! Keyset pagination as DESIGN.md's lists have it: `?limit=` (default 20, at most 100) and
//! `?cursor=`, answered `{data, next_cursor}`. A cursor is the opaque base64url form of the
//! last row's sort key, so a page never skips or repeats rows when others are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::messages::Message;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20); any other number is 422 `validation_failed`.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page of this list, passed back unchanged. Only
    /// `next_cursor` values are cursors: anything else (made up or altered) is 422
    /// `validation_failed` naming `cursor`.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            limit @ 1..=MAX_LIMIT => Ok(limit),
            _ => Err(ApiError::invalid_field(
                "limit",
                Message::FieldOutOfRange {
                    min: 1,
                    max: MAX_LIMIT,
                },
            )),
        }
    }

    /// The sort key the page starts after, or `None` for the first page.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
            .filter(safe_for_the_database)
            .and_then(|key| serde_json::from_value(key).ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field("cursor", Message::CursorInvalid))
    }
}

/// A cursor is opaque, not signed: a forged one must not carry what a request's own fields may
/// not (a NUL, which PostgreSQL refuses in text, or a date outside the accepted years).
fn safe_for_the_database(key: &serde_json::Value) -> bool {
    use serde_json::Value;
    match key {
        Value::String(text) => {
            !text.contains('\0')
                && super::dates::year_in_text(text).is_none_or(super::dates::accepted)
        }
        Value::Array(items) => items.iter().all(safe_for_the_database),
        Value::Object(members) => members
            .iter()
            .all(|(name, member)| !name.contains('\0') && safe_for_the_database(member)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in key order: the extra row only
    /// tells that another page exists.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| {
                let json = serde_json::to_vec(&key(last)).expect("sort keys serialize");
                URL_SAFE_NO_PAD.encode(json)
            })
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_makes_a_cursor_that_resumes_after_the_last_kept_row() {
        let page = Page::from_rows(vec!["a", "b", "c"], 2, |s| s.to_string());
        assert_eq!(page.data, vec!["a", "b"]);
        let query = PageQuery {
            limit: None,
            cursor: page.next_cursor,
        };
        assert_eq!(query.after::<String>().unwrap().as_deref(), Some("b"));
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        for bad in [0, -1, 101] {
            assert!(
                PageQuery {
                    limit: Some(bad),
                    cursor: None
                }
                .limit()
                .is_err()
            );
        }
        assert_eq!(PageQuery::default().limit().unwrap(), DEFAULT_LIMIT);
    }

    #[test]
    fn a_forged_cursor_with_a_nul_or_an_extreme_date_is_refused() {
        for key in [
            serde_json::json!([
                "-262143-01-01T00:00:00Z",
                "00000000-0000-0000-0000-000000000000"
            ]),
            serde_json::json!(["+262142-12-31", 1]),
            serde_json::json!(["a\u{0}b"]),
        ] {
            let query = PageQuery {
                limit: None,
                cursor: Some(URL_SAFE_NO_PAD.encode(key.to_string())),
            };
            assert!(query.after::<serde_json::Value>().is_err(), "{key}");
        }
        let fine = serde_json::json!(["2026-12-02T01:00:00Z", 7]);
        let query = PageQuery {
            limit: None,
            cursor: Some(URL_SAFE_NO_PAD.encode(fine.to_string())),
        };
        assert_eq!(query.after::<serde_json::Value>().unwrap(), Some(fine));
    }

    #[test]
    fn a_forged_cursor_is_refused() {
        let query = PageQuery {
            limit: None,
            cursor: Some("not base64!".into()),
        };
        assert!(query.after::<String>().is_err());
    }
}
