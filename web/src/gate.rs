//! Runs before every handler: asks for a login when viewing needs one, and sets the
//! security headers every response carries.

use crate::{AppState, WebError};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// Pages anyone may reach: the login itself, health checks, our script.
fn always_open(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/login" | "/static/live.js" | "/static/action.js"
    )
}

/// Scripts only from us, no framing, no inline script: what a log line or a label
/// might smuggle into a page cannot run even if escaping ever failed.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; \
                   style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if state.access.config.view_needs_login && !always_open(&path) {
        let caller = state.access.caller(request.headers());
        if caller.role.is_none() {
            if path.starts_with("/api/") || path == "/metrics" {
                return WebError::Unauthorized(
                    "log in first: send `Authorization: Bearer TOKEN` (the viewer or admin token)"
                        .into(),
                )
                .into_response();
            }
            let back = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
            return Redirect::to(&format!("/login?{query}")).into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
