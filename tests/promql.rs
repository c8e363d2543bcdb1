//! PromQL conformance: the same samples in dcmon's store and in a real Prometheus
//! (Debian's, fed by `promtool tsdb create-blocks-from openmetrics`), and each of the
//! expressions below must give the same series with the same values in both.

mod testbed;

use testbed::{Killed, http_get};

use dcmon_alerts::StoreSource;
use dcmon_probes::{Labels, ProbeOutput};
use dcmon_promql::{self as promql, Value};
use dcmon_store::{HostRound, ProbeRun, RunStatus, Store};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Expressions from the supported subset, as alert rules write them.
const EXPRESSIONS: &[&str] = &[
    "nvidia_gpu_temperature_celsius",
    "nvidia_gpu_temperature_celsius{gpu=\"1\"}",
    "nvidia_gpu_temperature_celsius{host=~\"a|b\"}",
    "nvidia_gpu_temperature_celsius{host!=\"a\"}",
    "nvidia_gpu_temperature_celsius{host!~\"a.*\"}",
    "rate(node_cpu_seconds_total[5m])",
    "increase(node_cpu_seconds_total[10m])",
    "irate(node_cpu_seconds_total[5m])",
    "resets(node_cpu_seconds_total[30m])",
    "delta(nvidia_gpu_temperature_celsius[10m])",
    "idelta(node_load1[5m])",
    "avg_over_time(nvidia_gpu_temperature_celsius[10m])",
    "min_over_time(nvidia_gpu_temperature_celsius[10m])",
    "max_over_time(nvidia_gpu_temperature_celsius[10m])",
    "sum_over_time(node_load1[5m])",
    "count_over_time(node_load1[5m])",
    "last_over_time(node_load1[5m])",
    "changes(node_load1[10m])",
    "absent(node_load1{host=\"zz\"})",
    "absent(node_load1)",
    "absent_over_time(node_load1{host=\"zz\"}[5m])",
    "predict_linear(node_filesystem_avail_bytes[30m], 86400)",
    "deriv(node_filesystem_avail_bytes[30m])",
    "sum by (host) (rate(node_cpu_seconds_total[5m]))",
    "1 - avg by (host) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
    "avg without (gpu) (nvidia_gpu_temperature_celsius)",
    "max by (host) (nvidia_gpu_temperature_celsius)",
    "min(nvidia_gpu_temperature_celsius)",
    "count by (host) (nvidia_gpu_temperature_celsius)",
    "count(node_load1 > 1)",
    "nvidia_gpu_temperature_celsius > 80",
    "nvidia_gpu_temperature_celsius > bool 80",
    "90 < nvidia_gpu_temperature_celsius",
    "node_load1 * 2 + 1",
    "-node_load1",
    "node_load1 % 0.7 ^ 2",
    "max by (host) (nvidia_gpu_temperature_celsius) / on (host) node_load1",
    "node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.5",
    "node_filesystem_avail_bytes / ignoring (mountpoint) node_filesystem_size_bytes",
    "nvidia_gpu_temperature_celsius and on (host) node_load1 > 1",
    "node_load1 or on (host) nvidia_gpu_temperature_celsius",
    "node_load1 unless on (host) nvidia_gpu_temperature_celsius > 90",
    "clamp_max(node_load1, 1.5)",
    "clamp_min(node_load1, 1.5)",
    "abs(delta(node_load1[10m]))",
    "round(node_load1)",
    "time()",
    "scalar(node_load1{host=\"a\"})",
    "node_load1 offset 5m",
    "rate(node_cpu_seconds_total[5m] offset 10m)",
    "sum(rate(node_network_receive_bytes_total[5m])) by (host) > 1000",
];

const HOSTS: [&str; 3] = ["a", "b", "c"];
const STEP_MS: i64 = 15_000;
const POINTS: i64 = 160; // 40 minutes

/// One series' samples.
struct Series {
    name: &'static str,
    counter: bool,
    labels: Vec<(&'static str, String)>,
    points: Vec<(i64, f64)>,
}

/// A small fleet over 40 minutes: gauges, counters (one with a reset), a filling disk.
/// Samples sit 7.3 s past the step grid: never on a window's edge, where Prometheus 2
/// (closed ranges) and 3 (left-open) differ.
fn fleet(first_ms: i64) -> Vec<Series> {
    let times = |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..POINTS)
            .map(|i| (first_ms + i * STEP_MS, f(i)))
            .collect()
    };
    let mut out = Vec::new();
    for (h, host) in HOSTS.iter().enumerate() {
        let hf = h as f64;
        for gpu in 0..2 {
            let base = 60.0 + 12.0 * hf + 9.0 * gpu as f64;
            out.push(Series {
                name: "nvidia_gpu_temperature_celsius",
                counter: false,
                labels: vec![("host", host.to_string()), ("gpu", gpu.to_string())],
                points: times(&|i| base + ((i * 7 + gpu) % 11) as f64 * 0.75),
            });
        }
        out.push(Series {
            name: "node_load1",
            counter: false,
            labels: vec![("host", host.to_string())],
            points: times(&|i| ((i as f64 * 0.37 + hf).sin() + 1.2) * (1.0 + hf * 0.4)),
        });
        for (mode, speed) in [("idle", 12.0), ("user", 2.5 + hf)] {
            out.push(Series {
                name: "node_cpu_seconds_total",
                counter: true,
                labels: vec![("host", host.to_string()), ("mode", mode.to_string())],
                points: times(&|i| {
                    // Host b rebooted two thirds in: its counters restart from near zero.
                    let i = if h == 1 && i >= 107 { i - 107 } else { i + 40 };
                    i as f64 * speed * 15.0 + (i % 3) as f64
                }),
            });
        }
        out.push(Series {
            name: "node_network_receive_bytes_total",
            counter: true,
            labels: vec![("host", host.to_string()), ("device", "eth0".into())],
            points: times(&|i| (i * i) as f64 * 900.0 * (hf + 1.0)),
        });
        let size = 1e12;
        for series in [
            ("node_filesystem_size_bytes", false),
            ("node_filesystem_avail_bytes", true),
        ] {
            out.push(Series {
                name: series.0,
                counter: false,
                labels: vec![("host", host.to_string()), ("mountpoint", "/".into())],
                points: times(&|i| {
                    if series.1 {
                        size * (0.7 - 0.2 * hf) - i as f64 * 1e8 * (hf + 1.0) + (i % 5) as f64 * 3e6
                    } else {
                        size
                    }
                }),
            });
        }
    }
    out
}

fn openmetrics(fleet: &[Series]) -> String {
    let mut families: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for s in fleet {
        families.entry(s.name).or_default().push(s);
    }
    let mut text = String::new();
    for (name, members) in families {
        let (family, kind) = match name.strip_suffix("_total") {
            Some(family) if members[0].counter => (family, "counter"),
            _ => (name, "gauge"),
        };
        text.push_str(&format!("# TYPE {family} {kind}\n"));
        for s in members {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            for (t, v) in &s.points {
                text.push_str(&format!(
                    "{name}{{{}}} {v:?} {}.{:03}\n",
                    labels.join(","),
                    t / 1000,
                    t % 1000
                ));
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

/// The same samples, one round per host and timestamp, as probes store them.
fn store(fleet: &[Series], path: &std::path::Path) -> Store {
    let mut store = Store::open(path).unwrap();
    let mut rounds: BTreeMap<(String, i64), ProbeOutput> = BTreeMap::new();
    for s in fleet {
        let host = s
            .labels
            .iter()
            .find(|(k, _)| *k == "host")
            .unwrap()
            .1
            .clone();
        let labels = Labels::new(
            s.labels
                .iter()
                .filter(|(k, _)| *k != "host")
                .map(|(k, v)| (k.to_string(), v.clone())),
        );
        for (t, v) in &s.points {
            let out = rounds.entry((host.clone(), *t)).or_default();
            if s.counter {
                out.counter(s.name, labels.clone(), *v, "");
            } else {
                out.gauge(s.name, labels.clone(), *v, "");
            }
        }
    }
    for ((host, t), output) in rounds {
        let run = ProbeRun {
            probe: "os".into(),
            started_ms: t,
            duration_ms: 1,
            status: RunStatus::Ok,
            error: None,
            output,
            new_logs: dcmon_probes::registry::all_logs_new,
        };
        store.write_round(&HostRound::new(host, vec![run])).unwrap();
    }
    store
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A result as a map from labels to value, the same shape for both sides.
type Results = BTreeMap<BTreeMap<String, String>, f64>;

fn from_prometheus(body: &str) -> Result<Results, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(body.to_string());
    }
    let value = |pair: &serde_json::Value| -> f64 {
        match pair[1].as_str().unwrap() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            n => n.parse().unwrap(),
        }
    };
    let data = &v["data"];
    if data["resultType"] == "scalar" {
        return Ok([(BTreeMap::new(), value(&data["result"]))].into());
    }
    Ok(data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (labels, value(&s["value"]))
        })
        .collect())
}

fn from_dcmon(store: &Store, expr: &str, at_ms: i64) -> Result<Results, String> {
    let query = promql::parse(expr).map_err(|e| e.to_string())?;
    match promql::eval(&query, at_ms, &StoreSource(store)).map_err(|e| e.to_string())? {
        Value::Scalar(v) => Ok([(BTreeMap::new(), v)].into()),
        Value::Vector(samples) => Ok(samples.into_iter().map(|s| (s.labels, s.value)).collect()),
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn dcmon_answers_as_prometheus_does() {
    assert!(
        std::path::Path::new("/usr/bin/prometheus").exists(),
        "/usr/bin/prometheus is missing: run tests/run.sh, which installs Debian's prometheus"
    );
    let dir = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Whole seconds, 50 minutes ago, plus 7.3 s: off every window edge.
    let first_ms = (now_ms / 1000 - 50 * 60) * 1000 + 7_300;
    let series = fleet(first_ms);
    let last_ms = first_ms + (POINTS - 1) * STEP_MS;
    let at_ms = (last_ms / 1000 + 21) * 1000;

    let input = dir.path().join("fleet.om");
    std::fs::write(&input, openmetrics(&series)).unwrap();
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let address = format!("127.0.0.1:{}", testbed::free_port());
    let _prometheus = Killed(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let store = store(&series, &dir.path().join("dcmon.db"));

    let query = |expr: &str| {
        http_get(
            &address,
            &format!(
                "/api/v1/query?query={}&time={}",
                encode(expr),
                at_ms as f64 / 1000.0
            ),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while query("node_load1").is_none_or(|b| !b.contains("\"host\":\"c\"")) {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not serve the backfilled blocks"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut differences = Vec::new();
    for expr in EXPRESSIONS {
        let theirs = from_prometheus(&query(expr).unwrap());
        let ours = from_dcmon(&store, expr, at_ms);
        let agree = match (&theirs, &ours) {
            (Ok(t), Ok(o)) => {
                t.len() == o.len()
                    && t.iter()
                        .zip(o)
                        .all(|((tl, tv), (ol, ov))| tl == ol && same(*tv, *ov))
            }
            _ => false,
        };
        if !agree {
            differences.push(format!(
                "{expr}\n  prometheus: {theirs:?}\n  dcmon:      {ours:?}"
            ));
        }
        if let Ok(t) = &theirs {
            assert!(
                !t.is_empty() || expr.contains("zz") || expr.contains("absent(node_load1)"),
                "{expr}: an empty answer compares nothing"
            );
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} expressions differ:\n{}",
        differences.len(),
        EXPRESSIONS.len(),
        differences.join("\n")
    );
}
