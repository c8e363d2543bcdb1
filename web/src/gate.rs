//! Runs before every handler: asks for a login when viewing needs one, refuses POSTs
//! from other sites, sets the security headers on every answer (the gate's own
//! included), and shows errors on HTML routes as pages rather than JSON.

use crate::{AppState, WebError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// Pages anyone may reach: the login itself, health checks, our script.
fn always_open(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/login" | "/static/live.js" | "/static/action.js"
    )
}

/// Routes that answer JSON or text for programs; every other route is a page.
fn machine_route(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/static/")
        || path.ends_with("/events")
        || matches!(path, "/metrics" | "/health")
}

/// Scripts only from us, no framing, no inline script: what a log line or a label
/// might smuggle into a page cannot run even if escaping ever failed.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; \
                   style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Under TLS: browsers keep to HTTPS for this host for a year.
const HSTS: &str = "max-age=31536000";

pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let html = !machine_route(&path);
    let refused = match wrong_bearer(&state, &request) {
        Some(refused) => Some(refused),
        None => refusal(&state, &request, &path),
    };
    let mut response = match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    if html && is_json_error(&response) {
        response = error_page(&state, response).await;
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if state.access.config.secure_cookies {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// A bearer token is checked like a login: a wrong one is counted against the client's
/// address, logged and answered 401 (never read as "anonymous"), and an address with
/// too many failures waits, whatever it sends.
fn wrong_bearer(state: &AppState, request: &Request) -> Option<Response> {
    let token = crate::auth::bearer(request.headers())?;
    let ip = state.access.request_ip(request);
    if let Err(wait) = state.access.may_try(ip) {
        let mut refused = WebError::TooManyRequests(format!(
            "too many failed logins from {ip}: try again in {} s",
            wait.as_secs().max(1)
        ))
        .into_response();
        refused.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return Some(refused);
    }
    if state.access.role_of_token(token).is_some() {
        return None;
    }
    state.access.failed(ip);
    crate::log_line(&format!("dcmon web: wrong bearer token from {ip}"));
    Some(WebError::Unauthorized("wrong bearer token".into()).into_response())
}

/// The gate's own answer, when the request may not reach its handler.
fn refusal(state: &AppState, request: &Request, path: &str) -> Option<Response> {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return Some(
            WebError::Forbidden(
                "this form was sent from another site (its Origin is not this server)".into(),
            )
            .into_response(),
        );
    }
    if !state.access.config.view_needs_login || always_open(path) {
        return None;
    }
    if state.access.caller(request.headers()).role.is_some() {
        return None;
    }
    if path.starts_with("/api/") || path == "/metrics" {
        return Some(
            WebError::Unauthorized(
                "log in first: send `Authorization: Bearer TOKEN` (the viewer or admin token)"
                    .into(),
            )
            .into_response(),
        );
    }
    let back = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
    Some(Redirect::to(&format!("/login?{query}")).into_response())
}

/// A POST's `Origin` (or, without one, its `Referer`) names this server. Requests that
/// carry neither (curl, scripts with a bearer token) are not from a browser page.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let sent = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match sent {
        None => true,
        Some(origin) => origin
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
    }
}

fn is_json_error(response: &Response) -> bool {
    (response.status().is_client_error() || response.status().is_server_error())
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"))
}

/// The JSON error of a page route, shown as a page (same status and headers).
async fn error_page(state: &AppState, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default();
    let status = parts.status;
    let context = minijinja::context! {
        title => format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        status => status.as_u16(),
        reason => status.canonical_reason().unwrap_or(""),
        message => message,
        // An error page stays as it is: no reload, no live refresh.
        still => true,
    };
    let Ok(page) = state.render("error.html", context) else {
        return (status, message).into_response();
    };
    let mut out = (status, Html(page)).into_response();
    for name in [
        header::RETRY_AFTER,
        header::SET_COOKIE,
        header::WWW_AUTHENTICATE,
    ] {
        for value in parts.headers.get_all(&name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = parts.headers.get(header::ALLOW)
    {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
