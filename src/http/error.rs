//! The one error type of the API. Every failure a client sees is an [`ApiError`], answered as
//! RFC 9457 `application/problem+json` with a stable snake_case `code`.
//!
//! A handler returns an `ApiError`; its response carries the error itself in its extensions,
//! and [`super::problem::render_problems`] renders the final body in the caller's language with
//! the request id. Internal causes are logged here, where they are answered, and never leave
//! the process.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use super::error_codes::ErrorCode;
use super::messages::{Lang, Message};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request: its name (dotted path for nested fields) and why, and in
/// a batch request the row it is in, so one answer can name every bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: Message,
    pub index: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: Message) -> Self {
        FieldError {
            field: field.into(),
            message,
            index: None,
        }
    }

    /// The same error, as one of row `index` of a batch.
    pub fn at_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    detail: Message,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    /// Members added to the problem beside the standard ones (`attempts_left`, `remaining`).
    extra: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            detail: Message::DefaultDetail(code),
            errors: Vec::new(),
            retry_after_secs: None,
            extra: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: Message) -> Self {
        self.detail = detail;
        self
    }

    /// The same error under another code (a validation error that has its own code).
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    pub fn with_extra(mut self, member: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.push((member, value.into()));
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn not_found(detail: Message) -> Self {
        ApiError::new(ErrorCode::NotFound).with_detail(detail)
    }

    /// 422 `validation_failed` naming the invalid fields.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        ApiError {
            errors,
            ..ApiError::new(ErrorCode::ValidationFailed).with_detail(Message::InvalidFields)
        }
    }

    pub fn invalid_field(field: impl Into<String>, message: Message) -> Self {
        ApiError::invalid_fields(vec![FieldError::new(field, message)])
    }

    /// A failure that is our fault. The cause is logged with every cause under it (and the
    /// request id of the current span) and replaced by a generic 500 for the client.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let cause = cause.into();
        tracing::error!(error = %cause_chain(&*cause), "internal error");
        ApiError::new(ErrorCode::Internal)
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// A refusal that is the client's to fix and worth remembering: every 4xx but one the
    /// database raised on data it refused, which may as well be a fault of our own SQL (a
    /// division by zero, an overflow in our arithmetic) and must not be replayed once fixed.
    pub fn is_lasting_refusal(&self) -> bool {
        self.status().is_client_error() && self.detail != Message::DataRefused
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The problem document as the caller reads it.
    pub fn to_problem(&self, lang: Lang, request_id: Option<&str>) -> Problem {
        let code = self.code.as_str();
        Problem {
            problem_type: format!("urn:civicpay:problem:{code}"),
            title: self.code.title(lang).to_owned(),
            status: self.status().as_u16(),
            detail: self.detail.text(lang),
            code: code.to_owned(),
            errors: (!self.errors.is_empty() || self.code == ErrorCode::ValidationFailed).then(
                || {
                    self.errors
                        .iter()
                        .map(|e| ProblemField {
                            field: e.field.clone(),
                            message: e.message.text(lang),
                            index: e.index,
                        })
                        .collect()
                },
            ),
            request_id: request_id.map(str::to_owned),
            extra: self
                .extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    /// The complete response in `lang`.
    pub fn render(&self, lang: Lang, request_id: Option<&str>) -> Response {
        let body = serde_json::to_vec(&self.to_problem(lang, request_id))
            .expect("a problem document always serializes");
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        );
        if self.code == ErrorCode::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for ApiError {
    /// Rendered in the default language here, so the response is complete even on its own;
    /// the problem layer re-renders it for the caller from the error kept in the extensions.
    fn into_response(self) -> Response {
        let mut response = self.render(Lang::default(), None);
        response.extensions_mut().insert(self);
        response
    }
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:civicpay:problem:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary in the caller's language; the same for every occurrence of a code.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, in the caller's language.
    pub detail: String,
    /// Stable machine-readable code, snake_case.
    pub code: String,
    /// The invalid fields, on `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// The request id (also in the `x-request-id` header), to quote when reporting a fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Members particular to a code, such as `attempts_left` or `remaining`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
    /// The row of a batch request the field is in (`bills[index]`); only in batch answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// `error: its cause: the cause's cause…`, as anyhow's `{:#}` prints a chain. A cause the text
/// already ends with (an error whose message quotes its source) is not said twice.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}

/// What a violated database constraint means for the client. Each feature lists its own; the
/// top of the crate installs them all ([`install_constraint_rules`]), so this layer knows no
/// feature. An unlisted constraint gets the default for its kind.
pub struct ConstraintRule {
    pub constraint: &'static str,
    pub code: ErrorCode,
    pub field: &'static str,
}

static CONSTRAINT_RULES: OnceLock<Vec<&'static [ConstraintRule]>> = OnceLock::new();

/// Installs every feature's constraint rules, before the first request. Only the first call
/// installs: each test builds its own state in one process, always with the same rules.
pub fn install_constraint_rules(rules: impl FnOnce() -> Vec<&'static [ConstraintRule]>) {
    CONSTRAINT_RULES.get_or_init(rules);
}

fn constraint_rule(constraint: &str) -> Option<&'static ConstraintRule> {
    CONSTRAINT_RULES
        .get()?
        .iter()
        .copied()
        .flatten()
        .find(|rule| rule.constraint == constraint)
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        let Some(db_error) = error.as_database_error() else {
            return match error {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    tracing::error!(%error, "database unavailable");
                    ApiError::new(ErrorCode::ServiceUnavailable)
                        .with_detail(Message::DatabaseUnavailable)
                        .with_retry_after(1)
                }
                other => ApiError::internal(other),
            };
        };
        if let Some(sqlstate) = db_error.code().filter(|code| is_data_exception(code)) {
            // The client's data, refused by the database: text that is not of its type, a date
            // or number out of range, a NUL or a character the encoding lacks, a string too
            // long. Logged by its SQLSTATE only: the database's message may quote the value.
            tracing::warn!(%sqlstate, "data exception answered 422");
            return ApiError::new(ErrorCode::ValidationFailed).with_detail(Message::DataRefused);
        }
        let constraint = db_error.constraint().unwrap_or_default();
        let (default_code, message) = match db_error.kind() {
            ErrorKind::UniqueViolation => (ErrorCode::AlreadyExists, Message::ValueAlreadyUsed),
            ErrorKind::ForeignKeyViolation => (
                ErrorCode::ValidationFailed,
                Message::ReferencedObjectMissing,
            ),
            ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
                (ErrorCode::ValidationFailed, Message::FieldInvalidValue)
            }
            _ => return ApiError::internal(error),
        };
        let rule = constraint_rule(constraint);
        let code = rule.map_or(default_code, |r| r.code);
        tracing::info!(
            constraint,
            code = code.as_str(),
            "constraint violation answered"
        );
        let mut api_error = ApiError::new(code).with_detail(message.clone());
        if let Some(rule) = rule {
            api_error.errors.push(FieldError::new(rule.field, message));
            api_error.detail = if code.status() == StatusCode::UNPROCESSABLE_ENTITY {
                Message::InvalidFields
            } else {
                Message::DefaultDetail(code)
            };
        }
        api_error
    }
}

/// SQLSTATE class 22, "data exception": 22P02 invalid text representation, 22007 and 22008
/// datetime, 22003 numeric out of range, 22021 a character not in the repertoire (a NUL in
/// text), 22001 string too long, and the rest of the class.
pub fn is_data_exception(sqlstate: &str) -> bool {
    sqlstate.len() == 5 && sqlstate.starts_with("22")
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code.as_str())
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// Collects every invalid field of a request before answering, so a client learns all of
/// them at once. A field that is parsed into a value ([`FieldChecks::parse`]) hands the value
/// back through [`FieldChecks::finish_with`], so nothing is unwrapped after the checks.
#[derive(Debug, Default)]
pub struct FieldChecks(Vec<FieldError>);

impl FieldChecks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(mut self, valid: bool, field: &str, message: Message) -> Self {
        if !valid {
            self.fail(field, message);
        }
        self
    }

    /// The value `parsed` holds; when it holds none, `field` failed with `message`, in the
    /// order the checks are made.
    pub fn parse<T>(&mut self, parsed: Option<T>, field: &str, message: Message) -> Option<T> {
        if parsed.is_none() {
            self.fail(field, message);
        }
        parsed
    }

    fn fail(&mut self, field: &str, message: Message) {
        self.0.push(FieldError::new(field, message));
    }

    /// 422 `validation_failed` naming every failed check, if any failed.
    pub fn finish(self) -> ApiResult<()> {
        self.finish_with(Some(()))
    }

    /// The parsed `values` (what [`FieldChecks::parse`] returned, combined with `zip`) once
    /// every check passed, or 422 `validation_failed` naming every failed one. The values are
    /// missing only when one of their parses failed, which named its field.
    pub fn finish_with<T>(self, values: Option<T>) -> ApiResult<T> {
        match values {
            Some(values) if self.0.is_empty() => Ok(values),
            _ => Err(ApiError::invalid_fields(self.0)),
        }
    }
}

/// Whether `text` has `min..=max` characters once trimmed.
pub fn length_within(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.trim().chars().count())
}

#[cfg(test)]
mod tests {
    use super::is_data_exception;

    #[test]
    fn class_22_is_a_data_exception_and_nothing_else_is() {
        for sqlstate in [
            "22P02", "22007", "22008", "22003", "22021", "22001", "22000",
        ] {
            assert!(is_data_exception(sqlstate), "{sqlstate}");
        }
        for sqlstate in [
            "23505", "23514", "40001", "42703", "XX000", "CP001", "2", "220",
        ] {
            assert!(!is_data_exception(sqlstate), "{sqlstate}");
        }
    }
}
