//! Handler tests: the router called without a socket, over a real SQLite store.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dcmon_probes::{Labels, ProbeOutput};
use dcmon_store::{HostRound, ProbeRun, RunStatus};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub(crate) fn round(host: &str, ts: i64, busy: f64, idle: f64) -> HostRound {
    let mut out = ProbeOutput::default();
    out.gauge("node_load1", Labels::default(), 1.5, "");
    out.gauge("node_memory_used_bytes", Labels::default(), 75.0, "bytes");
    out.gauge("node_memory_total_bytes", Labels::default(), 100.0, "bytes");
    out.counter(
        "node_cpu_all_seconds_total",
        Labels::new([("mode", "user")]),
        busy,
        "seconds",
    );
    out.counter(
        "node_cpu_all_seconds_total",
        Labels::new([("mode", "idle")]),
        idle,
        "seconds",
    );
    out.gauge(
        "nvidia_gpu_temperature_celsius",
        Labels::new([("gpu", "0"), ("name", "H100 <b>SXM</b>")]),
        91.0,
        "celsius",
    );
    out.fact("kernel", "6.1.0-18-amd64");
    out.logs.push(dcmon_probes::LogEntry {
        source: "journal".into(),
        ts_ms: Some(ts),
        priority: 3,
        unit: Some("kernel".into()),
        message: format!("NVRM: Xid 79, GPU has fallen off the bus \"at {ts}\""),
        cursor: None,
        labels: Default::default(),
    });
    let run = ProbeRun {
        probe: "os".into(),
        started_ms: ts,
        duration_ms: 5,
        status: RunStatus::Ok,
        error: None,
        output: out,
        new_logs: dcmon_probes::registry::all_logs_new,
    };
    HostRound::new(host, vec![run])
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// GPU 1 of gpu01 too hot, firing, with its transition.
pub(crate) fn firing_alert(now: i64) -> dcmon_store::alerts::AlertChanges {
    let labels: std::collections::BTreeMap<String, String> = [
        ("alertname", "GpuHot"),
        ("gpu", "1"),
        ("host", "gpu01"),
        ("severity", "critical"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let row = dcmon_store::alerts::AlertRow {
        key: "GpuHot{gpu01,1}".into(),
        rule: "GpuHot".into(),
        labels: labels.clone(),
        annotations: [("summary".to_string(), "GPU 1 <b>at</b> 95 °C".to_string())].into(),
        state: "firing".into(),
        active_since: now - 60_000,
        fired_at: Some(now - 60_000),
        resolved_at: None,
        last_active: now,
        value: Some(95.0),
        notified: Default::default(),
    };
    dcmon_store::alerts::AlertChanges {
        transitions: vec![dcmon_store::alerts::Transition {
            ts: now - 60_000,
            rule: "GpuHot".into(),
            labels,
            state: "firing".into(),
            value: Some(95.0),
        }],
        upserts: vec![row],
        deliveries: vec![
            dcmon_store::silences::Delivery {
                receiver: "oncall \"mail\"".into(),
                at: now - 30_000,
                sent: 2,
                dropped: 0,
                error: None,
            },
            dcmon_store::silences::Delivery {
                receiver: "oncall \"mail\"".into(),
                at: now - 10_000,
                sent: 0,
                dropped: 0,
                error: Some("127.0.0.1:25: connection refused".into()),
            },
        ],
        ..Default::default()
    }
}

pub(crate) fn app_with_data() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    let now = now_ms();
    // 30 s apart: 21 s busy of 30 → 70 % CPU.
    store
        .write_round(&round("gpu01", now - 30_000, 100.0, 100.0))
        .unwrap();
    store
        .write_round(&round("gpu01", now, 121.0, 109.0))
        .unwrap();
    store
        .write_round(&round("<script>alert(1)</script>", now, 1.0, 1.0))
        .unwrap();
    store.apply_alerts(&firing_alert(now)).unwrap();
    (
        dir,
        app(AppState::new(
            Store::open(&path).unwrap(),
            crate::Config::default(),
        )),
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn overview_shows_hosts_with_levels_and_escapes_names() {
    let (_dir, app) = app_with_data();
    let (status, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<td><a href="/hosts/gpu01">gpu01</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="warn">70%</td>"#),
        "CPU 70 % is a warning: {html}"
    );
    assert!(
        html.contains(r#"<td class="warn">75%</td>"#),
        "memory 75 % is a warning"
    );
    assert!(
        html.contains(r#"<td class="crit">91 °C</td>"#),
        "GPU 91 °C is critical"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "host names are text"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(
        html.contains("<noscript><meta http-equiv=\"refresh\""),
        "reloads without JS"
    );
}

#[tokio::test]
async fn overview_sorts_and_filters_and_refuses_bad_parameters() {
    let (_dir, app) = app_with_data();
    let (_, html) = get(&app, "/?sort=cpu&desc=1").await;
    let first = html.find(">gpu01</a>").unwrap();
    let second = html.find("&lt;script&gt;").unwrap();
    assert!(
        first < second,
        "70 % before 0 % when sorted by CPU, descending"
    );
    let (_, html) = get(&app, "/?q=gpu").await;
    assert!(!html.contains("&lt;script&gt;"));
    // A page's error is a page, with the reason.
    let (status, body) = get(&app, "/?sort=colour").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("<h2>400 · Bad Request</h2>") && body.contains("cannot sort by `colour`"),
        "{body}"
    );
    let (status, _) = get(&app, "/?bogus=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_metrics_health_and_not_found() {
    let (_dir, app) = app_with_data();
    let (status, body) = get(&app, "/api/hosts").await;
    assert_eq!(status, StatusCode::OK);
    let hosts: serde_json::Value = serde_json::from_str(&body).unwrap();
    let gpu01 = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "gpu01")
        .unwrap();
    assert!((gpu01["cpu_percent"].as_f64().unwrap() - 70.0).abs() < 1e-9);
    assert_eq!(gpu01["gpus"], 1);
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("# TYPE node_cpu_all_seconds_total counter\n"),
        "{text}"
    );
    assert!(text.contains("node_load1{host=\"gpu01\"} 1.5 "), "{text}");
    assert!(
        text.contains(
            "nvidia_gpu_temperature_celsius{host=\"gpu01\",gpu=\"0\",name=\"H100 <b>SXM</b>\"} 91 "
        ),
        "{text}"
    );
    assert_eq!(
        get(&app, "/health").await,
        (StatusCode::OK, "{\"status\":\"ok\"}".to_string())
    );
    let (status, body) = get(&app, "/api/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        "{\"error\":\"no page at /api/nowhere\",\"status\":404}"
    );
    let (status, body) = get(&app, "/hosts/nowhere/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("no page at &#x2f;hosts&#x2f;nowhere&#x2f;x"),
        "{body}"
    );
}

pub(crate) async fn json(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, body) = get(app, uri).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}")),
    )
}

#[tokio::test]
async fn api_reads_hosts_series_timeseries_rate_and_logs() {
    let (_dir, app) = app_with_data();
    let (status, host) = json(&app, "/api/hosts/gpu01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(host["facts"]["kernel"], "6.1.0-18-amd64");
    assert_eq!(host["summary"]["load1"], 1.5);
    let (_, series) = json(&app, "/api/series?host=gpu01&name=node_load*").await;
    assert_eq!(series.as_array().unwrap().len(), 1);
    let (status, buckets) = json(
        &app,
        "/api/timeseries/node_memory_used_bytes?host=gpu01&from=-10m&step=1m",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let points = buckets[0]["buckets"].as_array().unwrap();
    assert!(
        !points.is_empty() && points.iter().all(|b| b["max"] == 75.0),
        "{buckets}"
    );
    // 21 s busy in 30 s between the two samples: 0.7/s at the last step.
    let (status, rate) = json(&app, "/api/timeseries/node_cpu_all_seconds_total/rate?host=gpu01&labels=mode=user&from=-1m&to=now&step=30s&window=1m").await;
    assert_eq!(status, StatusCode::OK, "{rate}");
    let last = rate[0]["points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!((last[1].as_f64().unwrap() - 0.7).abs() < 1e-6, "{rate}");
    let (_, logs) = json(&app, "/api/logs/gpu01?q=fallen%20off").await;
    assert_eq!(logs.as_array().unwrap().len(), 2);
    assert!(
        logs[0]["ts"].as_i64() > logs[1]["ts"].as_i64(),
        "newest first"
    );
    let (status, logs) = json(&app, "/api/logs/gpu01?q=%22at%20").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a quote in the search is text, not FTS syntax: {logs}"
    );
}

#[tokio::test]
async fn api_refuses_bad_parameters_with_json_errors() {
    let (_dir, app) = app_with_data();
    for (uri, status, start) in [
        (
            "/api/hosts/nowhere",
            StatusCode::NOT_FOUND,
            "no host `nowhere`",
        ),
        (
            "/api/logs/nowhere",
            StatusCode::NOT_FOUND,
            "no host `nowhere`",
        ),
        (
            "/api/series?hots=gpu01",
            StatusCode::BAD_REQUEST,
            "unknown parameter `hots`",
        ),
        (
            "/api/timeseries/node_load1?from=yesterday",
            StatusCode::BAD_REQUEST,
            "from=`yesterday` is not a time",
        ),
        (
            "/api/timeseries/node_load1?from=-2h&to=-3h",
            StatusCode::BAD_REQUEST,
            "from must be before to",
        ),
        (
            "/api/timeseries/node_load1?from=-30d&step=1s",
            StatusCode::BAD_REQUEST,
            "2592000 steps is too many",
        ),
        (
            "/api/timeseries/node_load1?labels=cpu",
            StatusCode::BAD_REQUEST,
            "labels: `cpu` is not `name=value`",
        ),
        (
            "/api/timeseries/node_load1?step=0s",
            StatusCode::BAD_REQUEST,
            "step=`0s` is shorter than 1ms",
        ),
        (
            "/api/timeseries/x/rate?window=soon",
            StatusCode::BAD_REQUEST,
            "window=`soon`",
        ),
        (
            "/api/logs/gpu01?limit=5000",
            StatusCode::BAD_REQUEST,
            "limit=`5000` must be a whole number up to 1000",
        ),
    ] {
        let (got, body) = json(&app, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with(start),
            "{uri}: {body}"
        );
        assert_eq!(body["status"], status.as_u16());
    }
}

#[tokio::test]
async fn host_page_has_charts_readings_and_facts() {
    let (_dir, app) = app_with_data();
    let (status, html) = get(&app, "/hosts/gpu01?range=6h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.matches("<svg class=\"chart\"").count() >= 3,
        "CPU, memory, load at least: {html}"
    );
    assert!(html.contains("aria-label=\"CPU busy\""));
    assert!(
        html.contains("<td class=\"text\">6.1.0-18-amd64</td>"),
        "facts"
    );
    assert!(
        html.contains(r#"<td>0</td><td class="text">H100 &lt;b&gt;SXM&lt;&#x2f;b&gt;</td><td class="crit">91 °C</td>"#),
        "the GPU table, model name as text: {html}"
    );
    assert!(html.contains(r#"<a href="?range=6h" class="current">6h</a>"#));
    // A custom range: the form's datetime-local values, as UTC.
    let (status, html) = get(
        &app,
        "/hosts/gpu01?from=2026-11-22T10%3A00&to=2026-11-22T12%3A30",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"class="current">from <input type="datetime-local" name="from" value="2026-11-22T10:00">"#), "{html}");
    assert!(html.contains(r#"value="2026-11-22T12:30""#));
    for (uri, message) in [
        (
            "/hosts/gpu01?from=2026-11-22T12%3A00&to=2026-11-22T10%3A00",
            "from must be before to",
        ),
        (
            "/hosts/gpu01?from=yesterday",
            "from=`yesterday` is not a time",
        ),
        (
            "/hosts/gpu01?from=2026-02-30T10%3A00",
            "from=`2026-02-30T10:00` is not a time like",
        ),
        (
            "/hosts/gpu01?from=0&to=now",
            "a custom range spans at most 400 days",
        ),
        ("/hosts/gpu01?step=5m", "unknown parameter `step`"),
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(message), "{uri}: {body}");
    }
    let (status, body) = get(&app, "/hosts/gpu01?range=2w").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("range `2w` is not one of 1h, 6h, 24h, 7d, 30d"),
        "{body}"
    );
    let (status, _) = get(&app, "/hosts/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = get(&app, "/hosts/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<h2>&lt;script&gt;alert(1)&lt;&#x2f;script&gt; <a"),
        "{html}"
    );
}

#[tokio::test]
async fn probe_health_lists_last_runs_with_errors_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    store.write_round(&round("gpu01", 1_000, 1.0, 1.0)).unwrap();
    let failed = ProbeRun {
        probe: "ipmi".into(),
        started_ms: 2_000,
        duration_ms: 7,
        status: RunStatus::Error,
        error: Some("exited with Code(1): <b>Could not open device</b>".into()),
        output: ProbeOutput::default(),
        new_logs: dcmon_probes::registry::all_logs_new,
    };
    store
        .write_round(&HostRound::new("gpu01", vec![failed]))
        .unwrap();
    let app = app(AppState::new(
        Store::open(&path).unwrap(),
        crate::Config::default(),
    ));
    let (status, html) = get(&app, "/probes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 probes on 1 hosts"), "{html}");
    assert!(
        html.contains(r#"<span class="crit">1 failing</span>"#),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;Could not open device&lt;&#x2f;b&gt;"),
        "errors are text: {html}"
    );
    assert!(html.contains(r#"<td class="text crit">error</td>"#));
}

/// A good run whose output was partly misread is `partial`, as `dcmon poll` says; a
/// tool reporting its own failure in words the parser knows is not.
#[tokio::test]
async fn probe_health_shows_misread_runs_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    let mut misread = round("gpu01", 1_000, 1.0, 1.0);
    misread.runs[0]
        .output
        .warnings
        .push(dcmon_probes::ParseError::Malformed {
            section: "meminfo".into(),
            line: 7,
            reason: "not `Key: value kB`".into(),
        });
    store.write_round(&misread).unwrap();
    let mut tool = round("gpu02", 1_000, 1.0, 1.0);
    tool.runs[0]
        .output
        .warnings
        .push(dcmon_probes::ParseError::ToolFailed {
            tool: "ipmitool".into(),
            message: "DCMI request failed because: Invalid command (c1)".into(),
        });
    store.write_round(&tool).unwrap();
    let app = app(AppState::new(
        Store::open(&path).unwrap(),
        crate::Config::default(),
    ));
    let (status, html) = get(&app, "/probes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<span class="warn">1 partial</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="text warn">partial</td>"#),
        "{html}"
    );
    assert!(
        html.contains("section `meminfo` line 7: not `Key: value kB`"),
        "{html}"
    );
    // How many warnings each last run had, in its own column.
    assert!(html.contains("<th>Warnings</th>"), "{html}");
    assert_eq!(
        html.matches(r#"<td class="warn">1</td>"#).count(),
        2,
        "both runs had one: {html}"
    );
    assert_eq!(
        html.matches(r#"<td class="text ok">ok</td>"#).count(),
        1,
        "the tool's own failure is ok: {html}"
    );
}

#[tokio::test]
async fn logs_page_shows_lines_as_text_newest_first_with_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    let mut r = round("gpu01", 5_000, 1.0, 1.0);
    r.runs[0].output.logs.push(dcmon_probes::LogEntry {
        source: "/var/log/app.log".into(),
        ts_ms: Some(6_000),
        priority: 4,
        unit: None,
        message: "<img src=x onerror=alert(1)> user input echoed".into(),
        cursor: None,
        labels: Default::default(),
    });
    store.write_round(&r).unwrap();
    let app = app(AppState::new(
        Store::open(&path).unwrap(),
        crate::Config::default(),
    ));
    let (status, html) = get(&app, "/hosts/gpu01/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt; user input echoed"),
        "{html}"
    );
    assert!(!html.contains("<img src=x"));
    let newest = html.find("user input echoed").unwrap();
    let older = html.find("fallen off the bus").unwrap();
    assert!(newest < older, "newest first");
    // minijinja escapes `/` in attributes; browsers read it back as `/`.
    assert!(
        html.contains(r#"<option value="&#x2f;var&#x2f;log&#x2f;app.log">"#),
        "{html}"
    );
    let (_, found) = get(&app, "/hosts/gpu01/logs?q=fallen%20off&source=journal").await;
    assert!(found.contains("fallen off the bus") && !found.contains("user input echoed"));
    let (status, _) = get(&app, "/hosts/gpu01/logs?page=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&app, "/hosts/nowhere/logs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn overview_filters_by_group_and_label_and_lists_hosts_not_polled_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    store.write_round(&round("gpu01", 1_000, 1.0, 1.0)).unwrap();
    let listed = |host: &str, group: &str, rack: &str| dcmon_store::Listed {
        host: host.into(),
        groups: vec![group.into()],
        labels: [
            ("rack".to_string(), rack.to_string()),
            ("note".to_string(), "<script>alert(1)</script>".to_string()),
        ]
        .into(),
    };
    store
        .set_directory(&[listed("gpu01", "gpu", "r1"), listed("cpu01", "cpu", "r2")])
        .unwrap();
    let app = app(AppState::new(
        Store::open(&path).unwrap(),
        crate::Config::default(),
    ));
    let hosts_in = |html: &str| -> Vec<String> {
        ["gpu01", "cpu01"]
            .iter()
            .filter(|h| html.contains(&format!(r#"<a href="/hosts/{h}">"#)))
            .map(|h| h.to_string())
            .collect()
    };
    let (status, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hosts_in(&html), ["gpu01", "cpu01"]);
    assert!(
        html.contains(r#"<option value="cpu">cpu</option>"#),
        "{html}"
    );
    assert!(
        html.contains("note=&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "labels are text: {html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains(r#"<td class="text status-unknown" title="">unknown"#),
        "cpu01 is listed before its first round: {html}"
    );
    let (_, html) = get(&app, "/?group=gpu").await;
    assert_eq!(hosts_in(&html), ["gpu01"]);
    let (_, html) = get(&app, "/?label=rack%3Dr2").await;
    assert_eq!(hosts_in(&html), ["cpu01"]);
    let (_, html) = get(&app, "/?group=gpu&label=rack%3Dr2").await;
    assert!(hosts_in(&html).is_empty());
    let (status, body) = get(&app, "/?label=rack").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("label=`rack` is not `name=value`"), "{body}");
    let (status, body) = get(&app, "/api/hosts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""groups":["cpu"]"#), "{body}");
}

/// PromQL over HTTP answers in Prometheus's shapes, by GET and by form POST, and
/// refuses bad input in Prometheus's error shape.
#[tokio::test]
async fn promql_api_answers_as_prometheus() {
    let (_dir, app) = app_with_data();
    let (status, body) = json(
        &app,
        "/api/v1/query?query=node_load1%7Bhost%3D%22gpu01%22%7D",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(
        result[0]["metric"],
        serde_json::json!({"__name__": "node_load1", "host": "gpu01"})
    );
    assert_eq!(result[0]["value"][1], "1.5");

    let (_, scalar) = json(&app, "/api/query?query=1%2B1&time=1700000000.5").await;
    assert_eq!(
        scalar["data"],
        serde_json::json!({"resultType": "scalar", "result": [1700000000.5, "2"]})
    );

    let now = now_ms() / 1000;
    let (status, range) = json(
        &app,
        &format!(
            "/api/v1/query_range?query=node_load1%7Bhost%3D%22gpu01%22%7D&start={}&end={now}&step=15",
            now - 60
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{range}");
    assert_eq!(range["data"]["resultType"], "matrix");
    // Steps every 15 s from start to end; the first sample is 30 s old (give or take
    // the second the data was written in), so the earliest steps have none.
    let values = range["data"]["result"][0]["values"].as_array().unwrap();
    let times: Vec<i64> = values
        .iter()
        .map(|v| v[0].as_f64().unwrap() as i64)
        .collect();
    assert_eq!(times.last(), Some(&now), "{range}");
    assert!(
        (2..=3).contains(&times.len())
            && times.iter().all(|t| (now - t) % 15 == 0 && now - t <= 30),
        "{range}"
    );
    assert!(values.iter().all(|v| v[1] == "1.5"), "{range}");

    let post = app
        .clone()
        .oneshot(
            Request::post("/api/v1/query")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("query=count(node_load1)"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let body = post.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["data"]["result"][0]["value"][1], "2");

    for (uri, why) in [
        ("/api/v1/query", "\"query\": missing"),
        ("/api/v1/query?query=rate(x%5B5m%5D", "PromQL syntax"),
        ("/api/v1/query?query=topk(1%2Cx)", "aggregation `topk`"),
        ("/api/v1/query?query=x&time=soon", "not Unix seconds"),
        ("/api/v1/query?query=x&time=1e300", "not Unix seconds"),
        (
            "/api/v1/query_range?query=x&start=0&end=10",
            "\"step\": missing",
        ),
        (
            "/api/v1/query_range?query=x&start=0&end=100000000&step=1",
            "maximum resolution",
        ),
        (
            "/api/v1/query_range?query=x&start=10&end=0&step=1",
            "before start",
        ),
    ] {
        let (status, body) = json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data");
        assert!(
            body["error"].as_str().unwrap().contains(why),
            "{uri}: {body}"
        );
    }
}

/// The Alerts page, `/api/alerts` and `ALERTS` on `/metrics` show what fires.
#[tokio::test]
async fn alerts_show_on_the_page_the_api_and_metrics() {
    let (_dir, app) = app_with_data();
    let (status, html) = get(&app, "/alerts").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"<span class="crit">1 firing</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/hosts/gpu01">gpu01</a>"#),
        "{html}"
    );
    assert!(
        html.contains("GPU 1 &lt;b&gt;at&lt;&#x2f;b&gt; 95 °C"),
        "summaries are text: {html}"
    );
    let (status, api) = json(&app, "/api/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api[0]["name"], "GpuHot");
    assert_eq!(api[0]["state"], "firing");
    assert_eq!(api[0]["value"], 95.0);
    let (_, history) = json(&app, "/api/alerts/history?limit=5").await;
    assert_eq!(history[0]["state"], "firing");
    let (status, _) = json(&app, "/api/alerts/history?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for (query, found) in [
        ("alert=GpuHot&host=gpu01&state=firing", 1),
        ("alert=GpuHot&state=", 1),
        ("alert=CpuBusy", 0),
        ("host=gpu02", 0),
        ("state=resolved", 0),
    ] {
        let (status, history) = json(&app, &format!("/api/alerts/history?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(
            history.as_array().unwrap().len(),
            found,
            "{query}: {history}"
        );
    }
    let (status, body) = json(&app, "/api/alerts/history?state=burning").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, filtered) = get(&app, "/alerts?alert=CpuBusy").await;
    assert!(filtered.contains("No alert has fired yet") && filtered.contains(r#"value="CpuBusy""#));
    // Every page's navigation counts what fires.
    for page in ["/", "/probes", "/alerts", "/hosts/gpu01"] {
        let (_, html) = get(&app, page).await;
        assert!(
            html.contains(r#"Alerts <span class="crit" title="firing alerts">1</span>"#),
            "{page}: {html}"
        );
    }
    let (_, overview) = get(&app, "/").await;
    assert!(
        overview.contains(r#"<a class="crit" href="/alerts" title="alerts firing">⚠ 1</a>"#),
        "{overview}"
    );
    let (_, page) = get(&app, "/hosts/gpu01").await;
    assert!(
        page.contains(r#"<td class="text crit">firing</td>"#) && page.contains("GpuHot"),
        "the host page shows its alert: {page}"
    );
    let (_, other) = get(&app, "/hosts/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(!other.contains("host-alerts"), "not another host's alerts");
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics.contains(r#"ALERTS{alertstate="firing",alertname="GpuHot",gpu="1",host="gpu01",severity="critical"} 1"#),
        "{metrics}"
    );
    for line in [
        r#"dcmon_alert_notifications_total{receiver="oncall \"mail\""} 2"#,
        r#"dcmon_alert_notifications_failed_total{receiver="oncall \"mail\""} 1"#,
        r#"dcmon_alert_notifications_dropped_total{receiver="oncall \"mail\""} 0"#,
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    // The page shows the receiver failing, with its last error.
    assert!(
        html.contains(r#"<td class="crit">1</td>"#)
            && html.contains("10s ago: 127.0.0.1:25: connection refused"),
        "{html}"
    );
}

/// One round of an 8-GPU host with a sick GPU 3: the `nvidia` probe's readings (GPU 3
/// rows pending remap and its PCIe link at Gen3 of Gen5 under load, NVLink 7 of GPU 3
/// inactive with replay errors, one GPU not listed), and the kernel log with `xids`
/// Xid lines on GPU 3 and one on a GPU the driver no longer lists.
pub(crate) fn gpu_round(host: &str, ts: i64, xids: usize) -> HostRound {
    let mut nvidia = ProbeOutput::default();
    for gpu in 0..7 {
        let g = gpu.to_string();
        let labels = || Labels::new([("gpu", g.as_str()), ("name", "NVIDIA H100 80GB HBM3")]);
        let sick = gpu == 3;
        nvidia.gauge("nvidia_gpu_temperature_celsius", labels(), 50.0, "celsius");
        nvidia.gauge(
            "nvidia_gpu_remapped_rows_pending",
            labels(),
            if sick { 1.0 } else { 0.0 },
            "",
        );
        nvidia.gauge(
            "nvidia_gpu_remapped_rows",
            labels().with("type", "correctable"),
            if sick { 2.0 } else { 0.0 },
            "",
        );
        nvidia.gauge(
            "nvidia_gpu_pcie_link_gen",
            labels(),
            if sick { 3.0 } else { 5.0 },
            "",
        );
        nvidia.gauge("nvidia_gpu_pcie_link_gen_max", labels(), 5.0, "");
        nvidia.gauge("nvidia_gpu_pcie_link_width", labels(), 16.0, "");
        nvidia.gauge("nvidia_gpu_pcie_link_width_max", labels(), 16.0, "");
        nvidia.gauge(
            "nvidia_gpu_pcie_link_downgraded",
            labels(),
            if sick { 1.0 } else { 0.0 },
            "",
        );
        for link in ["6", "7"] {
            let down = sick && link == "7";
            nvidia.gauge(
                "nvidia_nvlink_up",
                labels().with("link", link),
                if down { 0.0 } else { 1.0 },
                "",
            );
            nvidia.counter(
                "nvidia_nvlink_errors_total",
                labels().with("link", link).with("counter", "replay"),
                if down { 211.0 } else { 0.0 },
                "",
            );
        }
        nvidia.fact(
            &format!("gpu{gpu}_pci_bus_id"),
            &format!("00000000:{:02X}:00.0", 0x18 + gpu * 0x10),
        );
        nvidia.fact(&format!("gpu{gpu}_recovery_action"), "None");
    }
    let user = Labels::new([
        ("gpu", "3"),
        ("user", "alice"),
        ("container", "9f2c1ab3d4e5"),
    ]);
    nvidia.gauge("nvidia_gpu_processes", user.clone(), 2.0, "");
    nvidia.gauge(
        "nvidia_gpu_process_memory_bytes",
        user,
        40.0 * 1024.0 * 1024.0 * 1024.0,
        "bytes",
    );
    for (name, value) in [
        ("nvidia_gpus_on_bus", 8.0),
        ("nvidia_gpus_visible", 7.0),
        ("nvidia_gpu_missing", 1.0),
    ] {
        nvidia.gauge(name, Labels::default(), value, "");
    }
    // The docker probe names the container the GPU process runs in.
    let mut docker = ProbeOutput::default();
    docker.gauge(
        "docker_container_running",
        Labels::new([
            ("name", "trainer"),
            ("image", "pytorch:24.05"),
            ("id", "9f2c1ab3d4e5"),
        ]),
        1.0,
        "",
    );
    let mut logs = ProbeOutput {
        kernel_log: Some("dmesg".into()),
        ..ProbeOutput::default()
    };
    // GPU 3 is 00000000:48:00.0; 0000:f0:00 is on no listed GPU.
    let xid = |pci: &str, n: usize| dcmon_probes::LogEntry {
        source: "dmesg".into(),
        ts_ms: Some(ts - 1000 + n as i64),
        priority: 2,
        unit: None,
        message: format!(
            "NVRM: Xid (PCI:{pci}): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus. #{n}"
        ),
        cursor: None,
        labels: Labels::new([("pci", pci), ("xid", "79")]),
    };
    for n in 0..xids {
        logs.logs.push(xid("0000:48:00", n));
        logs.logs.push(xid("0000:f0:00", n));
    }
    let run = |probe: &str, output: ProbeOutput| ProbeRun::ok(probe, ts, output);
    HostRound::new(
        host,
        vec![
            run("nvidia", nvidia),
            run("logs", logs),
            run("docker", docker),
        ],
    )
}

/// Issue 18: the host page's GPU health section shows per GPU its Xids of the last 24
/// hours (exactly counted), memory, NVLink, PCIe, recovery action and processes, the
/// GPUs missing and the Xids of a GPU the driver does not list; the overview's "GPU
/// issues" column and the host API carry the same issues.
#[tokio::test]
async fn gpu_health_section_and_overview_issues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    let now = now_ms();
    store
        .write_round(&gpu_round("hgx01", now - 60_000, 0))
        .unwrap();
    store
        .write_round(&gpu_round("hgx01", now - 30_000, 1))
        .unwrap();
    store.write_round(&gpu_round("hgx01", now, 2)).unwrap();
    store.write_round(&round("cpu01", now, 1.0, 1.0)).unwrap();
    // A GPU host whose kernel log holds nothing: no Xid there proves nothing.
    store.write_round(&gpu_round("hgx02", now, 0)).unwrap();
    // Its NVSwitch fabric manager is down: a host-wide notice of its own.
    let mut fabric = ProbeOutput::default();
    fabric.gauge("nvidia_fabricmanager_active", Labels::default(), 0.0, "");
    store
        .write_round(&HostRound::new(
            "hgx02",
            vec![ProbeRun::ok("nvidia_details", now, fabric)],
        ))
        .unwrap();
    let app = app(AppState::new(
        Store::open(&path).unwrap(),
        crate::Config::default(),
    ));
    let (status, html) = get(&app, "/hosts/hgx01").await;
    assert_eq!(status, StatusCode::OK);
    let section = &html[html
        .find("<h3>GPU health</h3>")
        .expect("GPU health section")..];
    assert!(
        section.contains(r#"<p class="notice crit">GPUs 1 missing: 8 on the PCIe bus, 7 listed by the driver</p>"#),
        "{section}"
    );
    assert!(
        section.contains(r#"<p class="notice crit">Xid 79 ×3 (GPU has fallen off the bus) on 0000:f0:00, a GPU the driver does not list</p>"#),
        "{section}"
    );
    let row = |gpu: &str| -> String {
        let start = section
            .find(&format!("<tr><td>{gpu}</td>"))
            .unwrap_or_else(|| panic!("GPU {gpu} row: {section}"));
        section[start..start + section[start..].find("</tr>").unwrap()].to_string()
    };
    assert_eq!(
        row("3"),
        concat!(
            r#"<tr><td>3</td><td class="text dim">00000000:48:00.0</td>"#,
            r#"<td class="text crit">Xid 79 ×3 (GPU has fallen off the bus)</td>"#,
            r#"<td class="text warn">rows pending remap</td>"#,
            r#"<td class="text warn">1&#x2f;2 up, errors: 211 replay</td>"#,
            r#"<td class="text warn">Gen3 x16 of Gen5 x16</td>"#,
            r#"<td class="text ok">None</td><td class="text">2 (alice)</td>"#,
        )
    );
    assert_eq!(
        row("0"),
        concat!(
            r#"<tr><td>0</td><td class="text dim">00000000:18:00.0</td>"#,
            r#"<td class="text ok">none</td><td class="text ok">ok</td>"#,
            r#"<td class="text ok">2&#x2f;2 up</td><td class="text ok">Gen5 x16</td>"#,
            r#"<td class="text ok">None</td><td class="text"></td>"#,
        )
    );
    assert!(
        section.contains("<tr><td>3</td><td class=\"text\">alice</td><td class=\"text\">trainer (9f2c1ab3d4e5)</td><td>2</td><td>40 GiB</td></tr>"),
        "{section}"
    );
    // The GPU table has no blank row for the host-wide series.
    assert!(!html.contains("<tr><td></td>"), "{html}");
    let (_, other) = get(&app, "/hosts/hgx02").await;
    assert!(
        other.contains(r#"<p class="notice crit">fabric manager not active</p>"#),
        "{other}"
    );
    assert!(
        other.contains(r#"<tr><td>0</td><td class="text dim">00000000:18:00.0</td><td class="text ">kernel log not read</td>"#),
        "{other}"
    );
    // The overview: critical first, three named, the rest counted, all in the title.
    let (status, html) = get(&app, "/?sort=gpu_issues&desc=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<td class="text crit" title="1 missing; GPU 0000:48:00: Xid 79 ×3 (GPU has fallen off the bus); GPU 0000:f0:00: Xid 79 ×3 (GPU has fallen off the bus); GPU 3: PCIe below max; GPU 3: rows pending remap; GPU 3: NVLink 7 inactive">1 missing; GPU 0000:48:00: Xid 79 ×3 (GPU has fallen off the bus); GPU 0000:f0:00: Xid 79 ×3 (GPU has fallen off the bus); +3 more</td>"#),
        "{html}"
    );
    assert!(
        html.find("hgx01").unwrap() < html.find("cpu01").unwrap(),
        "sorted by GPU issues, most first"
    );
    let (_, json) = get(&app, "/api/hosts/hgx01").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["summary"]["gpu_issues"].as_array().map(Vec::len),
        Some(6),
        "{json}"
    );
}
