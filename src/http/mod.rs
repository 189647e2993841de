//! HTTP plumbing shared by every feature: the error type and its problem+json rendering, the
//! message catalogue, request ids, our extractors and pagination.

pub mod csv;
pub mod dates;
pub mod error;
pub mod extract;
pub mod messages;
pub mod pagination;
pub mod problem;
pub mod request_id;

pub use error::{ApiError, ApiResult, ErrorCode};
pub use extract::{Json, Path, Query};
