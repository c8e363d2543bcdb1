//! The dashboard as its users click it, and as a fuzzer does: every link and GET form
//! on every page answers as expected for anonymous, viewer and admin callers, and no
//! parameter value makes any route fail, hang or slow the overview down.

use super::*;
use crate::access_tests::{ADMIN, VIEWER, get, log_in, send, token_file};
use axum::http::StatusCode;
use proptest::strategy::Strategy as _;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// A store with two hosts (samples, logs, facts), one audit row, and both tokens.
fn app_for_crawling(view_needs_login: bool) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    let now = crate::tests::now_ms();
    for host in ["gpu01", "db 1/ü"] {
        for i in 0..3 {
            store
                .write_round(&crate::tests::round(
                    host,
                    now - (2 - i) * 30_000,
                    10.0 * i as f64,
                    5.0,
                ))
                .unwrap();
        }
    }
    // GPU health: the section and the overview's GPU issues render for every caller.
    store
        .write_round(&crate::tests::gpu_round("gpu01", now, 1))
        .unwrap();
    let id = store
        .audit_start(now, "cli:root", "gpu01", "exec", "uptime")
        .unwrap();
    store
        .audit_finish(id, "ok", Some(0), 3, "up 1 day")
        .unwrap();
    let config = Config {
        access: AccessConfig {
            view_needs_login,
            admin_token_file: Some(token_file(dir.path(), "admin.token", ADMIN)),
            viewer_token_file: Some(token_file(dir.path(), "viewer.token", VIEWER)),
            ..AccessConfig::default()
        },
        ..Config::default()
    };
    (dir, app(AppState::new(Store::open(&path).unwrap(), config)))
}

/// Decodes the few entities our templates write in attribute values.
fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let rest = &tag[at..];
    Some(&rest[..rest.find('"')?])
}

/// Every `href` on the page and every GET form (submitted with its fields as shown),
/// resolved against `page` (a path with its query).
fn targets(page: &str, html: &str) -> Vec<String> {
    let base = page.split('?').next().unwrap_or("/");
    let resolve = |link: &str| -> Option<String> {
        let link = unescape(link);
        if link.starts_with("http") || link.starts_with("//") || link.starts_with('#') {
            return None;
        }
        Some(if let Some(query) = link.strip_prefix('?') {
            format!("{base}?{query}")
        } else {
            link
        })
    };
    let mut out: Vec<String> = html
        .split('<')
        .filter(|tag| tag.starts_with("a ") || tag.starts_with("link "))
        .filter_map(|tag| attribute(tag, "href"))
        .filter_map(resolve)
        .collect();
    for form in html.split("<form").skip(1) {
        let form = &form[..form.find("</form>").unwrap_or(form.len())];
        let head = &form[..form.find('>').unwrap_or(0)];
        if attribute(head, "method").unwrap_or("get") != "get" {
            continue;
        }
        let action = attribute(head, "action").map_or(base.to_string(), unescape);
        let mut fields = Vec::new();
        for tag in form.split('<') {
            if tag.starts_with("input ") {
                if let Some(name) = attribute(tag, "name") {
                    let value = unescape(attribute(tag, "value").unwrap_or(""));
                    fields.push((name.to_string(), value));
                }
            } else if tag.starts_with("select ") {
                let name = attribute(tag, "name").unwrap_or("").to_string();
                let options = &form[form.find(tag).unwrap_or(0)..];
                let first = options
                    .split("<option")
                    .nth(1)
                    .and_then(|o| attribute(o, "value"))
                    .map(unescape)
                    .unwrap_or_default();
                fields.push((name, first));
            }
        }
        let query = serde_urlencoded::to_string(&fields).unwrap();
        out.push(format!("{action}?{query}"));
    }
    out
}

/// Crawls from `/`; returns every (url, status) it met.
async fn crawl(app: &Router, cookie: Option<&str>) -> Vec<(String, StatusCode)> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from(["/".to_string()]);
    let mut answers = Vec::new();
    while let Some(url) = queue.pop_front() {
        if !seen.insert(url.clone()) || seen.len() > 400 {
            continue;
        }
        let (response, body) = send(app, get(&url, cookie)).await;
        answers.push((url.clone(), response.status()));
        let html = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
        if html && response.status().is_success() {
            queue.extend(targets(&url, &body));
        }
        if let Some(location) = response.headers().get("location") {
            queue.push_back(location.to_str().unwrap().to_string());
        }
    }
    answers
}

#[tokio::test]
async fn every_link_and_form_answers_for_every_role() {
    let (_dir, open) = app_for_crawling(false);
    let (_dir2, closed) = app_for_crawling(true);
    let viewer = log_in(&closed, VIEWER).await;
    let admin = log_in(&closed, ADMIN).await;
    for (who, app, cookie) in [
        ("anonymous, view open", &open, None),
        ("anonymous, view login", &closed, None),
        ("viewer", &closed, Some(viewer.as_str())),
        ("admin", &closed, Some(admin.as_str())),
    ] {
        let answers = crawl(app, cookie).await;
        let pages: BTreeSet<&str> = answers
            .iter()
            .map(|(u, _)| u.split('?').next().unwrap())
            .collect();
        for (url, status) in &answers {
            let allowed = status.is_success()
                || status.is_redirection()
                || *status == StatusCode::UNAUTHORIZED
                || *status == StatusCode::FORBIDDEN;
            assert!(allowed, "{who}: {url} answered {status}");
            // Only admins read the audit trail.
            if url.starts_with("/audit") {
                let admin_only = if who == "admin" {
                    status.is_success()
                } else {
                    !status.is_success()
                };
                assert!(admin_only, "{who}: {url} answered {status}");
            }
        }
        if who != "anonymous, view login" {
            for page in [
                "/",
                "/probes",
                "/hosts/gpu01",
                "/hosts/gpu01/logs",
                "/login",
            ] {
                assert!(
                    pages.contains(page),
                    "{who} never reached {page}: {pages:?}"
                );
            }
            assert!(answers.len() > 30, "{who}: only {} requests", answers.len());
        }
    }
}

/// Values a hostile or careless caller sends.
const NASTY: &[&str] = &[
    "",
    "0",
    "-1",
    "1ns",
    "999us",
    "1ms",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999",
    "-292000000y",
    "292000000y",
    "1e308",
    "NaN",
    "now",
    "-0",
    "0x10",
    "2026-13-45T25:61",
    "-0001-01-01T00:00",
    "9999-12-31T23:59:59",
    "cpu=0,mode=",
    "=,=,",
    "a=b=c",
    "\u{0}\u{1}\u{7f}",
    "\t/\n//evil.example",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\"\"\"",
    "*",
    "[",
    "ü̈́𝔘\u{202e}",
];

const ROUTES: &[&str] = &[
    "/",
    "/hosts/gpu01",
    "/hosts/gpu01/logs",
    "/probes",
    "/audit",
    "/login",
    "/metrics",
    "/api/hosts",
    "/api/hosts/gpu01",
    "/api/series",
    "/api/timeseries/node_load1",
    "/api/timeseries/node_cpu_all_seconds_total/rate",
    "/api/logs/gpu01",
    "/actions/1",
];

const PARAMS: &[&str] = &[
    "from", "to", "step", "window", "range", "labels", "host", "name", "source", "q", "limit",
    "offset", "page", "sort", "desc", "status", "group", "label", "next",
];

async fn timed(app: &Router, uri: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), request)
        .await
        .unwrap();
    let status = response.status();
    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    (status, started.elapsed())
}

fn uri_of(route: &str, pairs: &[(String, String)]) -> String {
    format!("{route}?{}", serde_urlencoded::to_string(pairs).unwrap())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, .. Default::default() })]

    /// Random routes with random parameters drawn from the nasty list and random text:
    /// never a 500, never a panic, each answer within a second.
    #[test]
    fn no_parameter_breaks_any_route(
        route in proptest::sample::select(ROUTES),
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(PARAMS),
                proptest::prop_oneof![
                    proptest::sample::select(NASTY).prop_map(str::to_string),
                    "\\PC{0,40}",
                    (-20i64..20).prop_map(|e| format!("-{}s", 10i64.saturating_pow(e.unsigned_abs() as u32))),
                ],
            ),
            0..4,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let (_dir, app) = crate::tests::app_with_data();
        let pairs: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let uri = uri_of(route, &pairs);
        let (status, took) = runtime.block_on(timed(&app, &uri));
        proptest::prop_assert!(!status.is_server_error(), "{uri}: {status}");
        proptest::prop_assert!(took < Duration::from_secs(1), "{uri}: {took:?}");
    }
}

/// Every nasty value in every parameter of every route, while `/` is asked again and
/// again: no 500, each within a second, and the overview keeps answering quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_stays_quick_while_every_route_is_attacked() {
    let (_dir, app) = crate::tests::app_with_data();
    let attack = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for route in ROUTES {
                for param in PARAMS {
                    for value in NASTY {
                        let uri = uri_of(route, &[(param.to_string(), value.to_string())]);
                        let (status, took) = timed(&app, &uri).await;
                        if status.is_server_error() || took >= Duration::from_secs(1) {
                            failures.push(format!("{uri}: {status} in {took:?}"));
                        }
                    }
                }
            }
            failures
        })
    };
    let mut overview = Vec::new();
    while !attack.is_finished() {
        let (status, took) = timed(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        overview.push(took);
    }
    let failures = attack.await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    overview.sort();
    assert!(overview.len() > 10, "{overview:?}");
    // The 95th percentile: a debug build on 2 busy cores may stall one request.
    let p95 = overview[overview.len() * 95 / 100];
    assert!(p95 < Duration::from_millis(100), "overview p95 {p95:?}");
}
