//! `/login` and `/logout`: a token for a session cookie, and back. Both forms carry a
//! CSRF token; failed logins are throttled per client address.

use crate::auth::{
    self, Caller, FORM_LIFETIME, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_LIFETIME,
};
use crate::{AppState, WebError};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::time::Duration;

#[derive(Debug, Default, serde::Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct LogoutForm {
    /// Missing is refused like wrong: 403, not a form error.
    #[serde(default)]
    csrf: String,
}

/// Only a path on this site: `//evil.example`, `https://…`, a backslash (read as `/` by
/// browsers) or a control character (a browser drops tabs and newlines, so `/\t/evil`
/// becomes `//evil`) would send the user away. Anything else becomes `/`.
pub(crate) fn safe_next(next: &str) -> &str {
    let on_site = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if on_site { next } else { "/" }
}

/// Renders the login page with a fresh login CSRF token (also set as a cookie).
fn form_page(
    state: &AppState,
    caller: &Caller,
    next: &str,
    status: StatusCode,
    error: &str,
) -> Result<Response, WebError> {
    let login_csrf = state.access.issue_form();
    let config = &state.access.config;
    let context = minijinja::context! {
        title => "Access",
        role => caller.role,
        csrf => caller.csrf,
        login_csrf => login_csrf,
        next => safe_next(next),
        error => error,
        view_needs_login => config.view_needs_login,
        tokens_configured => config.admin_token_file.is_some() || config.viewer_token_file.is_some(),
    };
    let cookie = auth::set_cookie(
        LOGIN_CSRF_COOKIE,
        &login_csrf,
        "/login",
        FORM_LIFETIME,
        config.secure_cookies,
    );
    Ok((
        status,
        [(header::SET_COOKIE, cookie)],
        Html(state.render("login.html", context)?),
    )
        .into_response())
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let Query(query) = query.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let caller = state.access.caller(&headers);
    form_page(&state, &caller, &query.next, StatusCode::OK, "")
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let ip = state.access.request_ip(&request);
    let form: Result<Form<LoginForm>, FormRejection> =
        <Form<LoginForm> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await;
    let Form(form) = form.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let nobody = Caller::default();
    if let Err(wait) = state.access.may_try(ip) {
        let mut page = form_page(
            &state,
            &nobody,
            &form.next,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed logins from {ip}: try again in {} s.",
                wait.as_secs().max(1)
            ),
        )?;
        page.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(wait.as_secs().max(1)),
        );
        return Ok(page);
    }
    // The form must be one this server issued to this browser (cookie), unused.
    let expected = auth::cookie(&headers, LOGIN_CSRF_COOKIE);
    let issued = state.access.take_form(&form.csrf);
    if !(issued && auth::csrf_ok(expected.as_deref(), Some(&form.csrf))) {
        return form_page(
            &state,
            &nobody,
            &form.next,
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this page: log in again.",
        );
    }
    let Some(role) = state.access.role_of_token(&form.token) else {
        state.access.failed(ip);
        crate::log_line(&format!("dcmon web: failed login from {ip}"));
        return form_page(
            &state,
            &nobody,
            &form.next,
            StatusCode::UNAUTHORIZED,
            "Wrong token.",
        );
    };
    let (session, _csrf) = state.access.start_session(role, &form.token);
    let secure = state.access.config.secure_cookies;
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let cookies = [
        auth::set_cookie(SESSION_COOKIE, &session, "/", SESSION_LIFETIME, secure),
        auth::set_cookie(LOGIN_CSRF_COOKIE, "", "/login", Duration::ZERO, secure),
    ];
    for c in cookies {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let caller = state.access.caller(&headers);
    let Some(session) = &caller.session else {
        return Err(WebError::Forbidden("not logged in".into()));
    };
    if !auth::csrf_ok(caller.csrf.as_deref(), Some(&form.csrf)) {
        return Err(WebError::Forbidden(
            "the form's CSRF token does not match this session".into(),
        ));
    }
    state.access.end_session(session);
    let cookie = auth::set_cookie(
        SESSION_COOKIE,
        "",
        "/",
        Duration::ZERO,
        state.access.config.secure_cookies,
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}
