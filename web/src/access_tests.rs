//! Access tests through the router: login pages, sessions, CSRF, throttling, bearer tokens.

use super::*;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(crate) const ADMIN: &str = "admin-token-0123456789";
pub(crate) const VIEWER: &str = "viewer-token-0123456789";

pub(crate) fn token_file(dir: &std::path::Path, name: &str, token: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

pub(crate) fn app_with(view_needs_login: bool, secure: bool) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        access: AccessConfig {
            view_needs_login,
            admin_token_file: Some(token_file(dir.path(), "admin.token", ADMIN)),
            viewer_token_file: Some(token_file(dir.path(), "viewer.token", VIEWER)),
            secure_cookies: secure,
            trusted_proxies: vec!["127.0.0.9".parse().unwrap()],
        },
        ..Config::default()
    };
    let store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    (dir, app(AppState::new(store, config)))
}

/// Stores one run of `probe` on `host` with `output`, at 1 s after the epoch.
pub(crate) fn store_run(
    store: &mut Store,
    host: &str,
    probe: &str,
    output: dcmon_probes::ProbeOutput,
) {
    let run = dcmon_store::ProbeRun {
        probe: probe.into(),
        started_ms: 1_000,
        duration_ms: 1,
        status: dcmon_store::RunStatus::Ok,
        error: None,
        output,
        new_logs: dcmon_probes::registry::all_logs_new,
    };
    store
        .write_round(&dcmon_store::HostRound::new(host, vec![run]))
        .unwrap();
}

/// A host in the store with one load sample.
pub(crate) fn store_host(store: &mut Store, host: &str) {
    let mut out = dcmon_probes::ProbeOutput::default();
    out.gauge("node_load1", dcmon_probes::Labels::default(), 1.0, "");
    store_run(store, host, "os", out);
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> (Response<()>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

pub(crate) fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::get(uri);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

pub(crate) fn post(uri: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let mut r =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap()
}

/// `name=value` of a Set-Cookie header of the response, with the whole header.
pub(crate) fn set_cookie(response: &Response<()>, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v))
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub(crate) fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!(r#"name="{name}" value=""#))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Logs in through the form; returns the session cookie (`dcmon_session=…`).
pub(crate) async fn log_in(app: &Router, token: &str) -> String {
    let (page, html) = send(app, get("/login", None)).await;
    let (login_cookie, _) = set_cookie(&page, "dcmon_login").unwrap();
    let csrf = field(&html, "csrf");
    let (response, _) = send(
        app,
        post(
            "/login",
            Some(&login_cookie),
            &[("token", token), ("csrf", &csrf), ("next", "/probes")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/probes");
    set_cookie(&response, "dcmon_session").unwrap().0
}

#[tokio::test]
async fn viewing_behind_a_login_redirects_pages_and_refuses_the_api() {
    let (_dir, app) = app_with(true, false);
    let (response, _) = send(&app, get("/hosts/a?range=6h", None)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/login?next=%2Fhosts%2Fa%3Frange%3D6h"
    );
    let (response, body) = send(&app, get("/api/hosts", None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (response, _) = send(&app, get("/metrics", None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for open in ["/health", "/login", "/static/live.js"] {
        let (response, _) = send(&app, get(open, None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }
    // A bearer token works for API clients (Prometheus, scripts); a wrong one does not.
    let bearer = |token: &str| {
        Request::get("/api/hosts")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, bearer(VIEWER)).await.0.status(), StatusCode::OK);
    assert_eq!(
        send(&app, bearer("viewer-token-0123456788"))
            .await
            .0
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A session opens the pages.
    let session = log_in(&app, VIEWER).await;
    let (response, _) = send(&app, get("/", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = send(&app, get("/", Some("dcmon_session=forged"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_cookie_is_http_only_strict_and_secure_under_tls() {
    let (_dir, app) = app_with(false, true);
    let (page, html) = send(&app, get("/login", None)).await;
    let (login_cookie, whole) = set_cookie(&page, "dcmon_login").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/login"] {
        assert!(whole.contains(attribute), "{attribute} in {whole}");
    }
    let csrf = field(&html, "csrf");
    let (response, _) = send(
        &app,
        post(
            "/login",
            Some(&login_cookie),
            &[("token", ADMIN), ("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/", "no next: home");
    let (session, whole) = set_cookie(&response, "dcmon_session").unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(whole.contains(attribute), "{attribute} in {whole}");
    }
    let (_, html) = send(&app, get("/login", Some(&session))).await;
    assert!(html.contains(r#"<b id="role">admin</b>"#), "{html}");
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_are_refused() {
    let (_dir, app) = app_with(false, false);
    // Login: the form's token must match the cookie set with the form.
    let (page, html) = send(&app, get("/login", None)).await;
    let (login_cookie, _) = set_cookie(&page, "dcmon_login").unwrap();
    let csrf = field(&html, "csrf");
    for (cookie, sent) in [
        (None, csrf.as_str()),
        (Some(login_cookie.as_str()), "forged"),
        (Some(login_cookie.as_str()), ""),
    ] {
        let (response, html) = send(
            &app,
            post("/login", cookie, &[("token", ADMIN), ("csrf", sent)]),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{cookie:?} {sent}"
        );
        assert!(html.contains("This form has expired"), "{html}");
        assert!(set_cookie(&response, "dcmon_session").is_none());
    }
    // Logout: only with the session's own CSRF token.
    let session = log_in(&app, ADMIN).await;
    let (_, html) = send(&app, get("/login", Some(&session))).await;
    let session_csrf = field(&html, "csrf");
    assert_ne!(session_csrf, csrf);
    let (response, _) = send(&app, post("/logout", Some(&session), &[])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (response, _) = send(&app, post("/logout", Some(&session), &[("csrf", &csrf)])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (response, _) = send(&app, post("/logout", None, &[("csrf", &session_csrf)])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no session");
    let (_, html) = send(&app, get("/login", Some(&session))).await;
    assert!(
        html.contains("Logged in as"),
        "the refused posts left the session alone"
    );
    let (response, _) = send(
        &app,
        post("/logout", Some(&session), &[("csrf", &session_csrf)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = send(&app, get("/login", Some(&session))).await;
    assert!(!html.contains("Logged in as"), "logged out");
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let (_dir, app) = app_with(true, false);
    let attempt = |token: &'static str| {
        let app = app.clone();
        async move {
            let (page, html) = send(&app, get("/login", None)).await;
            let (cookie, _) = set_cookie(&page, "dcmon_login").unwrap();
            let csrf = field(&html, "csrf");
            send(
                &app,
                post(
                    "/login",
                    Some(&cookie),
                    &[("token", token), ("csrf", &csrf)],
                ),
            )
            .await
        }
    };
    for _ in 0..auth::LOGIN_ATTEMPTS {
        let (response, html) = attempt("wrong-token-0123456789").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(html.contains("Wrong token."), "{html}");
    }
    // Now even the right token waits.
    let (response, html) = attempt(ADMIN).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(html.contains("Too many failed logins"), "{html}");
    assert!(set_cookie(&response, "dcmon_session").is_none());
}

#[tokio::test]
async fn every_page_carries_security_headers() {
    let (_dir, app) = app_with(false, false);
    for uri in ["/", "/login", "/api/hosts", "/nowhere"] {
        let (response, _) = send(&app, get(uri, None)).await;
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
    }
    let (_, html) = send(&app, get("/", None)).await;
    assert!(html.contains(r#"<script src="/static/live.js"></script>"#));
    assert!(!html.contains("setInterval"), "no inline script");
}

#[tokio::test]
async fn next_never_leaves_the_site() {
    let (_dir, app) = app_with(false, false);
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let uri = format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).unwrap()
        );
        let (_, html) = send(&app, get(&uri, None)).await;
        // minijinja writes `/` as `&#x2f;` inside HTML.
        assert_eq!(field(&html, "next"), "&#x2f;", "{next}");
    }
}

#[tokio::test]
async fn actions_need_an_admin_session_and_its_csrf_token() {
    let (dir, _) = app_with(false, false);
    // A host in the store, so a refusal cannot be a 404.
    let path = dir.path().join("dcmon.db");
    store_host(&mut Store::open(&path).unwrap(), "gpu01");
    let config = Config {
        access: AccessConfig {
            view_needs_login: false,
            admin_token_file: Some(dir.path().join("admin.token")),
            viewer_token_file: Some(dir.path().join("viewer.token")),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
        },
        ..Config::default()
    };
    let app = app(AppState::new(Store::open(&path).unwrap(), config));
    let act =
        |cookie: Option<&str>, form: &[(&str, &str)]| post("/hosts/gpu01/actions", cookie, form);
    let fan_status = [("action", "fan-status")];

    let (response, body) = send(&app, act(None, &fan_status)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("only an admin may act"), "{body}");
    let viewer = log_in(&app, VIEWER).await;
    let (_, html) = send(&app, get("/login", Some(&viewer))).await;
    let viewer_csrf = field(&html, "csrf");
    let (response, _) = send(
        &app,
        act(
            Some(&viewer),
            &[("action", "fan-status"), ("csrf", &viewer_csrf)],
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a viewer may not act"
    );

    let admin = log_in(&app, ADMIN).await;
    let (_, html) = send(&app, get("/hosts/gpu01", Some(&admin))).await;
    let csrf = field(&html, "csrf");
    assert!(
        html.contains(r#"<input type="hidden" name="action" value="fan-set">"#),
        "admins see actions"
    );
    let (_, html) = send(&app, get("/hosts/gpu01", Some(&viewer))).await;
    assert!(!html.contains("name=\"action\""), "viewers do not");
    for (form, why) in [
        (vec![("action", "fan-status")], "no CSRF token"),
        (
            vec![("action", "fan-status"), ("csrf", viewer_csrf.as_str())],
            "another session's token",
        ),
    ] {
        let (response, body) = send(&app, act(Some(&admin), &form)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{why}: {body}");
        assert!(body.contains("CSRF"), "{body}");
    }
    // Past the checks: bad forms are 400s; without `dcmon serve` nothing can run.
    for (form, message) in [
        (vec![("action", "reboot")], "unknown action `reboot`"),
        (
            vec![("action", "fan-set"), ("mode", "full")],
            "confirm the fan mode change",
        ),
        (
            vec![("action", "ipmi-raw"), ("bytes", "0x30; reboot")],
            "is not a byte like 0x30",
        ),
    ] {
        let mut form = form.clone();
        form.push(("csrf", &csrf));
        let (response, body) = send(&app, act(Some(&admin), &form)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(message), "{message}: {body}");
    }
    let (response, body) = send(
        &app,
        act(Some(&admin), &[("action", "fan-status"), ("csrf", &csrf)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // A bearer admin token needs no CSRF token (browsers never send one on their own).
    let bearer = Request::post("/hosts/gpu01/actions")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("action=sysinfo"))
        .unwrap();
    assert_eq!(
        send(&app, bearer).await.0.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Action pages and the audit trail are for admins.
    assert_eq!(
        send(&app, get("/actions/1", Some(&viewer)))
            .await
            .0
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, get("/actions/1", Some(&admin))).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, get("/audit", Some(&viewer))).await.0.status(),
        StatusCode::FORBIDDEN
    );
    let (response, html) = send(&app, get("/audit", Some(&admin))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        html.contains("Nothing has been run on a host yet."),
        "{html}"
    );
}

#[tokio::test]
async fn admins_silence_and_lift_from_the_alerts_page_audited() {
    let (_dir, app) = app_with(false, false);
    let silence =
        |cookie: Option<&str>, form: &[(&str, &str)]| post("/alerts/silences", cookie, form);
    let good = [
        ("matchers", "host=gpu01,alertname=~\"Gpu.*\""),
        ("duration", "2h"),
        ("comment", "swapping GPU 3"),
    ];
    let (response, body) = send(&app, silence(None, &good)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    let viewer = log_in(&app, VIEWER).await;
    let (_, html) = send(&app, get("/alerts", Some(&viewer))).await;
    assert!(!html.contains("silence-form"), "viewers get no form");
    let (response, _) = send(&app, silence(Some(&viewer), &good)).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a viewer may not silence"
    );

    let admin = log_in(&app, ADMIN).await;
    let (_, html) = send(&app, get("/alerts", Some(&admin))).await;
    assert!(html.contains("silence-form"), "admins get the form");
    let csrf = field(&html, "csrf");
    let (response, body) = send(&app, silence(Some(&admin), &good)).await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token: {body}"
    );
    for (form, message) in [
        (
            vec![("matchers", "host"), ("duration", "2h"), ("comment", "c")],
            "expected NAME=VALUE",
        ),
        (
            vec![
                ("matchers", "host=a"),
                ("duration", "2 fortnights"),
                ("comment", "c"),
            ],
            "is not a duration",
        ),
        (
            vec![("matchers", "host=a"), ("duration", "0s"), ("comment", "c")],
            "is not a duration",
        ),
        (
            vec![("matchers", "host=a"), ("duration", "2h"), ("comment", " ")],
            "needs a comment",
        ),
        (
            vec![
                ("matchers", "alertname=~\".*\""),
                ("duration", "2h"),
                ("comment", "c"),
            ],
            "at least one must need a value",
        ),
    ] {
        let mut form = form.clone();
        form.push(("csrf", &csrf));
        let (response, body) = send(&app, silence(Some(&admin), &form)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(message), "{message}: {body}");
    }
    let mut form = good.to_vec();
    form.push(("csrf", &csrf));
    let (response, body) = send(&app, silence(Some(&admin), &form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{body}");
    let (_, html) = send(&app, get("/alerts", Some(&admin))).await;
    assert!(html.contains(r#"<tr id="silence-1">"#), "{html}");
    assert!(html.contains("swapping GPU 3"));
    assert!(
        html.contains(r#"/alerts/silences/1/expire"#),
        "admins can lift it"
    );
    let (_, html) = send(&app, get("/alerts", Some(&viewer))).await;
    assert!(
        html.contains("swapping GPU 3") && !html.contains("/expire"),
        "viewers see, not lift"
    );

    let expire = |id: &str, cookie: &str, csrf: &str| {
        post(
            &format!("/alerts/silences/{id}/expire"),
            Some(cookie),
            &[("csrf", csrf)],
        )
    };
    assert_eq!(
        send(&app, expire("1", &viewer, &csrf)).await.0.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, expire("x", &admin, &csrf)).await.0.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&app, expire("7", &admin, &csrf)).await.0.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, expire("1", &admin, &csrf)).await.0.status(),
        StatusCode::SEE_OTHER
    );
    let (_, html) = send(&app, get("/alerts", Some(&admin))).await;
    assert!(
        !html.contains("/alerts/silences/1/expire"),
        "lifted: {html}"
    );
    // Both in the audit trail, by the admin's address.
    let (_, html) = send(&app, get("/audit", Some(&admin))).await;
    assert!(
        html.contains("unsilence 1: host=&quot;gpu01&quot;")
            || html.contains("unsilence 1: host=&#34;gpu01&#34;"),
        "{html}"
    );
    assert!(html.contains("swapping GPU 3"), "{html}");
}
