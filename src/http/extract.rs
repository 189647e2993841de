//! Our own `Json`, `Query` and `Path` extractors: the same as axum's, except that every
//! rejection becomes an [`ApiError`], so a bad request gets our problem+json shape and names the
//! offending field.
//!
//! They also refuse, as 422 naming the field, what would otherwise reach the database and fail
//! there as a 500: a NUL character (U+0000) anywhere in the text — a JSON string, an object
//! key, a query parameter, a path segment — since PostgreSQL cannot store it in `text`; and a
//! year outside [`super::dates::YEARS`], which the date readers of that module raise. Headers
//! need no such check: HTTP forbids control characters in them and the server refuses them.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::dates;
use super::error::{ApiError, ErrorCode, FieldError};
use super::messages::Message;

/// The only way a JSON text carries U+0000: raw control characters are not valid JSON.
const JSON_NUL_ESCAPE: &[u8] = b"\\u0000";

/// At most this many fields are named in one NUL refusal.
const MAX_NUL_FIELDS: usize = 20;

/// A JSON request body, or a response body (it is axum's `Json` on the way out).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
                .with_detail(Message::ContentTypeNotJson));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// The raw body of a JSON request: refused unless it says it is JSON and fits the limit.
pub async fn json_body_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<Bytes, ApiError> {
    if !has_json_content_type(request.headers()) {
        return Err(
            ApiError::new(ErrorCode::UnsupportedMediaType).with_detail(Message::ContentTypeNotJson)
        );
    }
    Bytes::from_request(request, state)
        .await
        .map_err(body_rejection)
}

/// Parses a JSON body; a data error names the offending field, and so does a NUL in any
/// string or key of it. Every JSON body we read comes through here.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul_in_json(bytes)?;
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(deserializer) {
        Ok(parsed) => Ok(parsed),
        Err(error) if is_float_refused(&error) && integral_floats_are_written_integral(bytes) => {
            parse_with_integral_floats(bytes)
        }
        Err(error) => Err(json_error(error)),
    }
}

/// Below this magnitude every integer is exactly an `f64`, so a float read from an integer
/// written as `95.0` or `1e3` is that integer, and any larger one is refused as a float.
const EXACT_FLOAT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53

fn is_float_refused(error: &serde_path_to_error::Error<serde_json::Error>) -> bool {
    error
        .inner()
        .to_string()
        .starts_with("invalid type: floating point")
}

/// JSON Schema counts `95.0` as an integer, and so do we: an integer field takes a number
/// written with a fraction of zeros or a non-negative exponent. Read only when the typed parse
/// refused a float, so an ordinary body is parsed once. Every number of the body is checked
/// as written (`95.0000000000000001` reads as the float 95.0 but is not an integer), then the
/// integral floats of the parsed value become integers and the typed parse runs on that.
fn parse_with_integral_floats<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::new(ErrorCode::MalformedBody).with_detail(Message::BodyNotJson))?;
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(json_error)
}

fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < EXACT_FLOAT_INTEGERS
            {
                *number = serde_json::Number::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(members) => members.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Whether every number token outside the strings of `bytes` that would be read as an
/// integral float below 2^53 is written as an integer: digits, then optionally a `.` followed
/// only by zeros, then optionally an exponent without a minus. Other numbers (`1.5`, or
/// `-7.6e298` in a field the request type ignores) stay floats and are no concern here.
fn integral_floats_are_written_integral(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            index += 1;
        } else if byte == b'"' {
            in_string = true;
            index += 1;
        } else if byte == b'-' || byte.is_ascii_digit() {
            let end = bytes[index..]
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .map_or(bytes.len(), |length| index + length);
            let token = &bytes[index..end];
            if reads_as_integral_float(token) && !is_written_integral(token) {
                return false;
            }
            index = end;
        } else {
            index += 1;
        }
    }
    true
}

fn reads_as_integral_float(token: &[u8]) -> bool {
    std::str::from_utf8(token)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .is_some_and(|float| float.fract() == 0.0 && float.abs() < EXACT_FLOAT_INTEGERS)
}

fn is_written_integral(token: &[u8]) -> bool {
    let (mantissa, exponent) = match token.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(at) => (&token[..at], Some(&token[at + 1..])),
        None => (token, None),
    };
    let fraction_is_zero = match mantissa.iter().position(|b| *b == b'.') {
        Some(at) => mantissa[at + 1..].iter().all(|b| *b == b'0'),
        None => true,
    };
    fraction_is_zero && exponent.is_none_or(|exponent| !exponent.starts_with(b"-"))
}

/// 422 naming every string (or key) of the body that holds a NUL, if any does. The bytes are
/// scanned for the escape first, so an ordinary body is never parsed twice; one that has it is
/// parsed to a `Value` to find where (`\\u0000` is a backslash and text, not a NUL, and the
/// parse tells them apart). A body that does not parse is left to the typed parse to refuse.
fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes
        .windows(JSON_NUL_ESCAPE.len())
        .any(|window| window == JSON_NUL_ESCAPE)
    {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let mut fields = Vec::new();
    collect_nul_fields(&value, "", &mut fields);
    refuse_nul_fields(fields)
}

/// The paths of the strings and keys holding a NUL, written as serde_path_to_error writes
/// them (`documents[0].code`), so they read like every other field error.
fn collect_nul_fields(value: &serde_json::Value, path: &str, fields: &mut Vec<FieldError>) {
    use serde_json::Value;
    if fields.len() >= MAX_NUL_FIELDS {
        return;
    }
    match value {
        Value::String(text) if text.contains('\0') => fields.push(nul_field(path)),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_nul_fields(item, &format!("{path}[{index}]"), fields);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let key_text = printable(key);
                let child = if path.is_empty() {
                    key_text
                } else {
                    format!("{path}.{key_text}")
                };
                if key.contains('\0') {
                    if fields.len() < MAX_NUL_FIELDS {
                        fields.push(nul_field(&child));
                    }
                } else {
                    collect_nul_fields(member, &child, fields);
                }
            }
        }
        _ => {}
    }
}

fn nul_field(field: &str) -> FieldError {
    FieldError::new(field, Message::NulCharacter)
}

/// A name as a client can read it back: a NUL in it shown as its JSON escape.
fn printable(name: &str) -> String {
    name.replace('\0', "\\u0000")
}

fn refuse_nul_fields(fields: Vec<FieldError>) -> Result<(), ApiError> {
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_fields(fields))
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

pub fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(ErrorCode::BodyTooLarge),
        _ => ApiError::new(ErrorCode::MalformedBody),
    }
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(ErrorCode::MalformedBody).with_detail(Message::BodyNotJson)
        }
        Category::Data => ApiError::invalid_fields(vec![field_error(&path, &inner.to_string())]),
    }
}

/// Turns serde's English description of a data error into a field and a catalogue message.
fn field_error(path: &str, description: &str) -> FieldError {
    let join = |child: &str| match path {
        "" | "." => child.to_owned(),
        parent => format!("{parent}.{child}"),
    };
    if let Some(rest) = description.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return FieldError::new(join(name), Message::FieldRequired);
    }
    let field = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let message = if description.starts_with("invalid type") {
        Message::FieldWrongType
    } else if dates::is_year_refused(description) {
        dates::year_refused_message()
    } else {
        Message::FieldInvalidValue
    };
    FieldError::new(field, message)
}

/// Query-string parameters; an invalid one is 422 naming the parameter.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        refuse_nul_fields(
            form_urlencoded::parse(query.as_bytes())
                .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
                .map(|(name, _)| nul_field(&printable(&name)))
                .take(MAX_NUL_FIELDS)
                .collect(),
        )?;
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let path = error.path().to_string();
                ApiError::invalid_fields(vec![field_error(&path, &error.into_inner().to_string())])
            })
    }
}

/// Path parameters. A parameter that does not even parse names nothing that exists: 404. One
/// that holds a NUL, or a date whose year is refused, is 422 naming the parameter.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        if let Some(params) = &params {
            refuse_nul_fields(
                params
                    .iter()
                    .filter(|(_, value)| value.contains('\0'))
                    .map(|(name, _)| nul_field(name))
                    .collect(),
            )?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| path_error(rejection, params.as_ref()))
    }
}

/// A refused year is 422 naming its parameter; any other failure to parse is 404.
fn path_error(rejection: PathRejection, params: Option<&RawPathParams>) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        return ApiError::new(ErrorCode::NotFound);
    };
    let field = match failed.into_kind() {
        ErrorKind::DeserializeError { key, message, .. } if dates::is_year_refused(&message) => key,
        // Raised outside a parameter's own reading (a tuple of them): the first is named.
        ErrorKind::Message(message) if dates::is_year_refused(&message) => params
            .and_then(|params| params.iter().next())
            .map(|(name, _)| name.to_owned())
            .unwrap_or_default(),
        _ => return ApiError::new(ErrorCode::NotFound),
    };
    ApiError::invalid_field(field, dates::year_refused_message())
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, parse_json};

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Payment {
        amount: i64,
        note: Option<String>,
    }

    fn amount(body: &str) -> Result<i64, ErrorCode> {
        parse_json::<Payment>(body.as_bytes())
            .map(|payment| payment.amount)
            .map_err(|error| error.code())
    }

    #[test]
    fn an_integer_written_as_a_float_is_that_integer() {
        assert_eq!(amount(r#"{"amount": 95.0}"#), Ok(95));
        assert_eq!(
            amount(r#"{"amount": 95.000, "note": "1.5 \" 2.5"}"#),
            Ok(95)
        );
        assert_eq!(amount(r#"{"amount": 1e3}"#), Ok(1000));
        assert_eq!(amount(r#"{"amount": -2.0E+1}"#), Ok(-20));
        let ignored_numbers = r#"{"amount": 95.0, "x": {"y": -7.6e298, "z": 1.5}}"#;
        assert_eq!(amount(ignored_numbers), Ok(95));
    }

    #[test]
    fn a_number_that_is_not_written_as_an_integer_is_refused() {
        for body in [
            r#"{"amount": 95.5}"#,
            r#"{"amount": 95.0000000000000001}"#,
            r#"{"amount": 1000e-1}"#,
            r#"{"amount": 9007199254740993.0}"#,
            r#"{"amount": 1e300}"#,
        ] {
            assert_eq!(amount(body), Err(ErrorCode::ValidationFailed), "{body}");
        }
    }
}
