//! Our own `Json`, `Query` and `Path` extractors: the same as axum's, except that every
//! rejection becomes an [`ApiError`], so a bad request gets our problem+json shape and names the
//! offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode, FieldError};
use super::messages::Message;

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
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(deserializer).map_err(json_error)?;
        Ok(Json(value))
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

/// Parses a JSON body; a data error names the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(json_error)
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
        return FieldError {
            field: join(name),
            message: Message::FieldRequired,
        };
    }
    let field = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let message = if description.starts_with("invalid type") {
        Message::FieldWrongType
    } else {
        Message::FieldInvalidValue
    };
    FieldError { field, message }
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

/// Path parameters. A parameter that does not even parse names nothing that exists: 404.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|_| ApiError::new(ErrorCode::NotFound))
    }
}
