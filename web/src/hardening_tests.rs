//! One test per way the dashboard was jammed, misled or read past its login (issue 13):
//! each fails on the code before the fix.

use super::*;
use crate::access_tests::{
    ADMIN, VIEWER, app_with, field, get, log_in, post, send, set_cookie, store_host, store_run,
};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn from(ip: &str, mut request: Request<Body>) -> Request<Body> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

fn bearer(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// `to` saturating and `to - from` wrapping made the range checks pass and the rate
/// walk ~1e16 steps while holding the store.
#[tokio::test]
async fn absurd_ranges_and_steps_are_refused_at_once() {
    let (_dir, app) = crate::tests::app_with_data();
    for uri in [
        "/hosts/gpu01?from=-292000000y&to=99999999999999999",
        "/hosts/gpu01?from=-9223372036854775808&to=9223372036854775807",
        "/api/timeseries/node_cpu_all_seconds_total/rate?from=-292000000y&to=99999999999999999&step=1s",
        "/api/timeseries/node_load1?from=0&to=253402300799&step=1s",
        "/api/timeseries/node_load1?step=1ns",
        "/api/timeseries/node_load1?step=999us",
        "/api/timeseries/node_load1/rate?window=1ns",
        "/api/timeseries/node_load1/rate?window=9999999999999999999y",
        "/api/timeseries/node_load1?from=now&to=-1h",
        "/hosts/gpu01?from=-0000-01-01T00:00",
    ] {
        let started = Instant::now();
        let (response, body) = send(&app, get(uri, None)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(started.elapsed() < Duration::from_secs(1), "{uri}");
    }
    // The widest range allowed still answers (400 days at the coarsest default step).
    let (response, body) = send(&app, get("/hosts/gpu01?from=-400d", None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    for next in [
        "/\t/evil.example/x",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/ /evil.example",
        "/\u{7f}/evil.example",
    ] {
        assert_eq!(crate::login_page::safe_next(next), "/", "{next:?}");
    }
    assert_eq!(
        crate::login_page::safe_next("/hosts/a?range=6h"),
        "/hosts/a?range=6h"
    );
    // Through the form: the tab-smuggled target lands on /.
    let (_dir, app) = app_with(true, false);
    let (page, html) = send(&app, get("/login?next=%2F%09%2Fevil.example%2Fx", None)).await;
    let (cookie, _) = set_cookie(&page, "dcmon_login").unwrap();
    let csrf = field(&html, "csrf");
    let (response, _) = send(
        &app,
        post(
            "/login",
            Some(&cookie),
            &[
                ("token", VIEWER),
                ("csrf", &csrf),
                ("next", "/\t/evil.example/x"),
            ],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn bearer_tokens_cannot_be_guessed_without_limit() {
    let (_dir, app) = app_with(true, false);
    for i in 0..crate::auth::LOGIN_ATTEMPTS {
        let wrong = format!("guess-{i:016}");
        let (response, _) = send(&app, from("10.9.0.1", bearer("/api/hosts", &wrong))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The guesser waits, even with the right token...
    let (response, _) = send(&app, from("10.9.0.1", bearer("/api/hosts", ADMIN))).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    // ...and nobody else does: the admin from another address gets in.
    let (response, _) = send(&app, from("10.9.0.2", bearer("/api/hosts", ADMIN))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    // 127.0.0.9 is the trusted proxy of `app_with`.
    let (_dir, app) = app_with(true, false);
    let through = |client: &str, token: &str| {
        let mut r = bearer("/api/hosts", token);
        r.headers_mut().insert(
            "x-forwarded-for",
            format!("{client}, 127.0.0.9").parse().unwrap(),
        );
        from("127.0.0.9", r)
    };
    for i in 0..crate::auth::LOGIN_ATTEMPTS {
        send(&app, through("192.0.2.66", &format!("guess-{i:016}"))).await;
    }
    let (response, _) = send(&app, through("192.0.2.66", ADMIN)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (response, _) = send(&app, through("192.0.2.10", ADMIN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // An untrusted peer's X-Forwarded-For is ignored: it cannot pose as someone else.
    let mut spoofed = bearer("/api/hosts", "guess-again-0000000");
    spoofed
        .headers_mut()
        .insert("x-forwarded-for", "192.0.2.10".parse().unwrap());
    send(&app, from("10.9.9.9", spoofed)).await;
    let (response, _) = send(&app, through("192.0.2.10", ADMIN)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_audit_trail_is_never_public() {
    let dir = tempfile::tempdir().unwrap();
    let store = dcmon_store::Store::open(&dir.path().join("dcmon.db")).unwrap();
    let app = app(AppState::new(store, Config::default()));
    let (response, body) = send(&app, get("/audit", None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body.contains("no admin token is set"), "{body}");
}

#[tokio::test]
async fn rotating_a_token_ends_its_sessions() {
    let (dir, app) = app_with(true, false);
    let session = log_in(&app, ADMIN).await;
    let (response, _) = send(&app, get("/audit", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::OK);
    crate::access_tests::token_file(dir.path(), "admin.token", "admin-token-rotated-42424242");
    let (response, _) = send(&app, get("/audit", Some(&session))).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "back to the login"
    );
    let (response, _) = send(&app, get("/api/hosts", Some(&session))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The viewer's sessions are untouched.
    let viewer = log_in(&app, VIEWER).await;
    let (response, _) = send(&app, get("/", Some(&viewer))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_login_form_must_be_one_this_server_issued_and_only_once() {
    let (_dir, app) = app_with(true, false);
    // A cookie and form field the client made up agree with each other: refused.
    let made_up = "dcmon_login=made-up-token-1234567890";
    let (response, _) = send(
        &app,
        post(
            "/login",
            Some(made_up),
            &[
                ("token", ADMIN),
                ("csrf", "made-up-token-1234567890"),
                ("next", "/"),
            ],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // An issued form works once.
    let (page, html) = send(&app, get("/login", None)).await;
    let (cookie, _) = set_cookie(&page, "dcmon_login").unwrap();
    let csrf = field(&html, "csrf");
    let form = [("token", VIEWER), ("csrf", csrf.as_str()), ("next", "/")];
    let (first, _) = send(&app, post("/login", Some(&cookie), &form)).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let (again, _) = send(&app, post("/login", Some(&cookie), &form)).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn posts_from_other_sites_are_refused() {
    let (_dir, app) = app_with(false, false);
    let session = log_in(&app, ADMIN).await;
    let (_, html) = send(&app, get("/login", Some(&session))).await;
    let csrf = field(&html, "csrf");
    let logout_from = |origin: &str| {
        let mut request = post("/logout", Some(&session), &[("csrf", &csrf)]);
        let headers = request.headers_mut();
        headers.insert(header::HOST, "dcmon.example:8000".parse().unwrap());
        headers.insert(header::ORIGIN, origin.parse().unwrap());
        request
    };
    let (response, body) = send(&app, logout_from("https://evil.example")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("another site"), "{body}");
    // From the page itself: accepted.
    let (response, _) = send(&app, logout_from("http://dcmon.example:8000")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_hsts_under_tls() {
    let (_dir, app) = app_with(true, true);
    for (uri, status) in [
        ("/", StatusCode::SEE_OTHER),
        ("/api/hosts", StatusCode::UNAUTHORIZED),
        ("/login", StatusCode::OK),
    ] {
        let (response, _) = send(&app, get(uri, None)).await;
        assert_eq!(response.status(), status, "{uri}");
        for name in [
            header::CONTENT_SECURITY_POLICY,
            header::X_CONTENT_TYPE_OPTIONS,
            header::X_FRAME_OPTIONS,
            header::STRICT_TRANSPORT_SECURITY,
        ] {
            assert!(response.headers().contains_key(&name), "{uri}: {name}");
        }
    }
    let (_dir, plain) = app_with(true, false);
    let (response, _) = send(&plain, get("/login", None)).await;
    assert!(
        !response
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

#[tokio::test]
async fn every_sort_link_of_the_overview_answers_a_page() {
    let (_dir, app) = crate::tests::app_with_data();
    let (_, html) = send(&app, get("/?label=&group=&q=gpu&status=", None)).await;
    let links: Vec<String> = html
        .match_indices("href=\"?sort=")
        .map(|(at, _)| {
            let rest = &html[at + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect();
    assert_eq!(links.len(), 12, "{html}");
    for link in links {
        let (response, body) = send(&app, get(&format!("/{link}"), None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}: {body}");
        assert!(link.contains("q=gpu"), "{link}");
    }
}

#[tokio::test]
async fn a_huge_filter_is_refused_not_echoed() {
    let (_dir, app) = crate::tests::app_with_data();
    let q = "x".repeat(60_000);
    let (response, body) = send(&app, get(&format!("/?q={q}"), None)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body.len() < 20_000, "{} bytes", body.len());
    let (response, body) = send(&app, get(&format!("/api/timeseries/x?step={q}"), None)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body.len() < 1_000, "{} bytes", body.len());
}

#[tokio::test]
async fn metrics_name_each_family_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = dcmon_store::Store::open(&path).unwrap();
    for host in ["a", "b", "c"] {
        let mut out = dcmon_probes::ProbeOutput::default();
        out.gauge(
            "ipmi_chassis_fault",
            dcmon_probes::Labels::default(),
            0.0,
            "",
        );
        out.gauge(
            "node_load1",
            dcmon_probes::Labels::new([("host", "inner")]),
            1.0,
            "",
        );
        store_run(&mut store, host, "ipmi", out);
    }
    let app = app(AppState::new(store, Config::default()));
    let (_, text) = send(&app, get("/metrics", None)).await;
    assert_eq!(
        text.matches("# TYPE ipmi_chassis_fault gauge").count(),
        1,
        "{text}"
    );
    let family: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("# TYPE ipmi_chassis_fault"))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(family.len(), 3, "{text}");
    assert!(
        text.contains(r#"node_load1{host="a",exported_host="inner"} 1 1000"#),
        "{text}"
    );
}

/// An action the runner refuses ends as refused, with the reason, not "running…".
#[tokio::test]
async fn a_refused_action_says_so() {
    struct Refuses;
    impl crate::actions::Runner for Refuses {
        fn start(
            &self,
            _: &str,
            _: crate::actions::Action,
            _: &str,
            _: crate::actions::ActionSink,
        ) -> Result<(), String> {
            Err("fan profile `generic` cannot set modes".into())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = dcmon_store::Store::open(&path).unwrap();
    store_host(&mut store, "a");
    let config = Config {
        access: AccessConfig {
            admin_token_file: Some(crate::access_tests::token_file(
                dir.path(),
                "admin.token",
                ADMIN,
            )),
            ..AccessConfig::default()
        },
        ..Config::default()
    };
    let app = app(AppState::new(store, config).with_runner(std::sync::Arc::new(Refuses)));
    let session = log_in(&app, ADMIN).await;
    let (_, html) = send(&app, get("/hosts/a", Some(&session))).await;
    let csrf = field(&html, "csrf");
    let (response, _) = send(
        &app,
        post(
            "/hosts/a/actions",
            Some(&session),
            &[
                ("csrf", &csrf),
                ("action", "fan-set"),
                ("mode", "full"),
                ("confirm", "yes"),
            ],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let (_, html) = send(&app, get(&page, Some(&session))).await;
    assert!(html.contains(">refused</span>"), "{html}");
    assert!(html.contains("cannot set modes"), "{html}");
    assert!(!html.contains("running…"), "{html}");
}
