//! One error type for every handler: JSON with a message and the right status for API
//! callers; the details of internal errors go to the log, not to the page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// No login, or not the right one.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Throttled (too many failed logins from this client).
    #[error("{0}")]
    TooManyRequests(String),
    /// This server cannot do that (actions outside `dcmon serve`).
    #[error("{0}")]
    Unavailable(String),
    /// The central view's Prometheus API failed or answered what cannot be read.
    #[error("{0}")]
    Backend(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<dcmon_store::StoreError> for WebError {
    fn from(e: dcmon_store::StoreError) -> Self {
        if e.is_interrupted() {
            return WebError::Unavailable(format!(
                "the query took longer than {} s and was stopped: ask for a shorter range or a coarser step",
                crate::QUERY_BUDGET.as_secs()
            ));
        }
        match e {
            dcmon_store::StoreError::Refused(m) => WebError::BadRequest(m),
            e => WebError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            WebError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            WebError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, m.clone()),
            WebError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone()),
            WebError::Backend(m) => {
                crate::log_line(&format!("dcmon web: {m}"));
                (StatusCode::BAD_GATEWAY, m.clone())
            }
            WebError::Internal(m) => {
                crate::log_line(&format!("dcmon web: {m}"));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_string(),
                )
            }
        };
        (
            status,
            axum::Json(serde_json::json!({ "error": message, "status": status.as_u16() })),
        )
            .into_response()
    }
}
