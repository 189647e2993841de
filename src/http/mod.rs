//! HTTP plumbing shared by every feature: the error type and its problem+json rendering, the
//! table of error codes, the message catalogue, request ids, our extractors and pagination.

pub mod csv;
pub mod dates;
pub mod error;
mod error_codes;
pub mod extract;
pub mod lang;
pub mod messages;
pub mod pagination;
pub mod problem;
pub mod request_id;

pub use error::{ApiError, ApiResult, ErrorCode};
pub use extract::{Json, Path, Query};
