//! (f) Dashboard render time: whole requests through the router (store reads, view
//! models, template), median of 15, on stores filled with realistic series names.

use dcmon_probes::{Labels, ProbeOutput};
use dcmon_store::{HostRound, Store};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// What a GPU server reports in one round: CPU modes, memory, load, network and disk
/// counters, 8 GPUs, BMC temperatures, fans and sensor states, 2 NVMe drives.
pub fn gpu_server_round(host: &str, round: usize, ts: i64) -> HostRound {
    let mut out = ProbeOutput::default();
    let r = round as f64;
    let wave = |i: usize| ((round + i * 7) % 60) as f64;
    for (i, mode) in [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .enumerate()
    {
        let per_round = if *mode == "idle" {
            40.0
        } else {
            2.0 + i as f64
        };
        out.counter(
            "node_cpu_all_seconds_total",
            Labels::new([("mode", *mode)]),
            r * per_round,
            "seconds",
        );
    }
    out.gauge(
        "node_memory_used_bytes",
        Labels::default(),
        4e11 + wave(0) * 1e9,
        "bytes",
    );
    out.gauge(
        "node_memory_total_bytes",
        Labels::default(),
        1.0e12,
        "bytes",
    );
    out.gauge("node_load1", Labels::default(), 20.0 + wave(1) / 10.0, "");
    for dev in ["eth0", "eth1"] {
        out.counter(
            "node_network_receive_bytes_total",
            Labels::new([("device", dev)]),
            r * 3e8,
            "bytes",
        );
        out.counter(
            "node_network_transmit_bytes_total",
            Labels::new([("device", dev)]),
            r * 1e8,
            "bytes",
        );
    }
    out.counter(
        "node_disk_read_bytes_total",
        Labels::new([("device", "nvme0n1")]),
        r * 5e7,
        "bytes",
    );
    out.counter(
        "node_disk_written_bytes_total",
        Labels::new([("device", "nvme0n1")]),
        r * 2e7,
        "bytes",
    );
    for g in 0..8 {
        let labels = || {
            Labels::new([
                ("gpu", g.to_string()),
                ("name", "NVIDIA H100 80GB HBM3".to_string()),
            ])
        };
        out.gauge(
            "nvidia_gpu_temperature_celsius",
            labels(),
            50.0 + wave(g) / 2.0,
            "celsius",
        );
        out.gauge(
            "nvidia_gpu_power_draw_watts",
            labels(),
            300.0 + wave(g) * 5.0,
            "watts",
        );
        out.gauge(
            "nvidia_gpu_utilization_percent",
            labels(),
            wave(g) * 1.6,
            "percent",
        );
    }
    for s in 0..10 {
        out.gauge(
            "ipmi_temperature_celsius",
            Labels::new([("sensor", format!("Temp {s}"))]),
            30.0 + wave(s) / 4.0,
            "celsius",
        );
    }
    for f in 0..8 {
        out.gauge(
            "ipmi_fan_speed_rpm",
            Labels::new([("sensor", format!("FAN{f}"))]),
            5000.0 + wave(f) * 20.0,
            "rpm",
        );
    }
    for s in 0..30 {
        out.gauge(
            "ipmi_sensor_status",
            Labels::new([("sensor", format!("Sensor {s}"))]),
            0.0,
            "",
        );
    }
    for d in 0..2 {
        out.gauge(
            "nvme_percentage_used",
            Labels::new([("device", format!("/dev/nvme{d}n1"))]),
            3.0,
            "percent",
        );
    }
    out.gauge("apt_upgrades_pending", Labels::default(), 12.0, "");
    HostRound::new(host, vec![crate::ok_run(ts, out)])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Median time of 15 GETs of `uri` (after one warm-up), and the page size. With
/// `shared`, the store keeps its latest values in memory, as in `dcmon serve`.
fn time_page(store: &std::path::Path, uri: &str, shared: bool) -> (Duration, usize) {
    let (median, size, _) = time_page_cold(store, uri, shared);
    (median, size)
}

/// The median of 15 renders, the page's size, and the first render (cold caches).
fn time_page_cold(store: &std::path::Path, uri: &str, shared: bool) -> (Duration, usize, Duration) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut reader = Store::open(store).unwrap();
    if shared {
        reader
            .share_latest(std::sync::Arc::new(dcmon_store::latest::Latest::default()))
            .unwrap();
    }
    let app = dcmon_web::app(dcmon_web::AppState::new(
        reader,
        dcmon_web::Config::default(),
    ));
    time_app(&runtime, app, uri)
}

/// The median of 15 GETs of `uri` through `app` (after one, timed apart: cold), and
/// the page's size.
pub fn time_app(
    runtime: &tokio::runtime::Runtime,
    app: axum::Router,
    uri: &str,
) -> (Duration, usize, Duration) {
    runtime.block_on(async {
        let get = || async {
            let response = app
                .clone()
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{uri}");
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .len()
        };
        let first = Instant::now();
        let size = get().await;
        let first = first.elapsed();
        let mut times = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            get().await;
            times.push(t.elapsed());
        }
        times.sort();
        (times[times.len() / 2], size, first)
    })
}

pub fn overview(hosts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overview.db");
    let mut store = Store::open(&path).unwrap();
    let now = now_ms();
    for round in 0..2 {
        let batch: Vec<HostRound> = (0..hosts)
            .map(|h| {
                gpu_server_round(
                    &format!("gpu{h:04}"),
                    round,
                    now - 30_000 + round as i64 * 30_000,
                )
            })
            .collect();
        store.write_rounds(&batch).unwrap();
    }
    drop(store);
    let (median, size) = time_page(&path, "/", true);
    let (from_disk, _) = time_page(&path, "/", false);
    println!(
        "\n(f) overview of {hosts} hosts (each 8 GPUs, 10 BMC temperatures, 30 sensor states): {:.1} ms median, {} KB  (target 50 ms: {:.2}x); {:.1} ms reading the latest values from disk instead of memory",
        median.as_secs_f64() * 1e3,
        size / 1024,
        0.05 / median.as_secs_f64(),
        from_disk.as_secs_f64() * 1e3
    );
}

pub fn host_page(days: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.db");
    let mut store = Store::open(&path).unwrap();
    let now = now_ms();
    let rounds = days * 86_400 / 30;
    let start = now - rounds as i64 * 30_000;
    let all: Vec<usize> = (0..rounds).collect();
    for chunk in all.chunks(500) {
        let batch: Vec<HostRound> = chunk
            .iter()
            .map(|&r| gpu_server_round("gpu0000", r, start + r as i64 * 30_000))
            .collect();
        store.write_rounds(&batch).unwrap();
    }
    let uri = format!("/hosts/gpu0000?range={days}d");
    let (median, size) = time_page(&path, &uri, true);
    // The same history sealed as the hourly sweep seals it (issue 19's engine).
    store.seal(now).unwrap();
    drop(store);
    let (sealed, _, cold) = time_page_cold(&path, &uri, true);
    println!(
        "(f) host page over {days} days at 30 s ({rounds} rounds, 13 charts, 77 series): {:.1} ms median unsealed (head), {:.1} ms sealed in chunks ({:.1} ms the first render, chunk sums not yet kept), {} KB  (target 20 ms: {:.2}x)",
        median.as_secs_f64() * 1e3,
        sealed.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        size / 1024,
        0.02 / sealed.as_secs_f64()
    );
}

/// Probes each host ran, as in a GPU fleet's inventory.
const PROBES: [&str; 7] = ["os", "ipmi", "nvidia", "nvme", "smart", "logs", "apt"];

/// The latest round of `host`: the GPU server's samples under `os`, the other probes'
/// runs (empty, ok) beside it, and one journal line.
fn fleet_round(host: &str, round: usize, ts: i64) -> HostRound {
    let mut r = gpu_server_round(host, round, ts);
    r.runs[0].output.logs.push(dcmon_probes::LogEntry {
        source: "journal".into(),
        ts_ms: Some(ts),
        priority: 6,
        unit: Some("slurmd".into()),
        message: format!("job {round} finished on {host}"),
        cursor: None,
        labels: Default::default(),
    });
    for probe in &PROBES[1..] {
        let mut run = crate::ok_run(ts, ProbeOutput::default());
        run.probe = probe.to_string();
        r.runs.push(run);
    }
    r
}

/// Pages an operator keeps open, timed on one database: (what, uri).
const PAGES: [(&str, &str); 8] = [
    ("overview", "/"),
    ("host page, 1 h", "/hosts/gpu0000"),
    ("host page, 24 h", "/hosts/gpu0000?range=24h"),
    ("probe health", "/probes"),
    ("logs page", "/hosts/gpu0000/logs"),
    ("logs search", "/hosts/gpu0000/logs?q=finished"),
    ("/api/hosts", "/api/hosts"),
    ("/metrics", "/metrics"),
];

fn time_pages(path: &std::path::Path) -> Vec<Duration> {
    PAGES
        .iter()
        .map(|(_, uri)| time_page(path, uri, true).0)
        .collect()
}

/// Writes the rounds `first..last` of the history in bulk with SQL (what serve leaves
/// behind): every host's 7 probe runs, a log line every other round, and every sample
/// of the hosts named below `gpu{sampled}`; then rollups for them, as the writer keeps.
fn fill_history(path: &std::path::Path, start: i64, first: usize, last: usize, sampled: usize) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .unwrap();
    let steps = format!(
        "WITH RECURSIVE r (i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM r WHERE i < {})",
        last - 1
    );
    let probes = PROBES
        .map(|p| format!("SELECT '{p}' AS probe"))
        .join(" UNION ALL ");
    conn.execute_batch(&format!(
        "BEGIN;
         CREATE TEMP TABLE IF NOT EXISTS h AS SELECT DISTINCT host FROM latest_runs;
         {steps}
         INSERT INTO probe_runs (host, probe, started, duration_ms, status, error, warnings, samples)
           SELECT h.host, p.probe, {start} + r.i * 30000, 40,
                  CASE WHEN (r.i + length(h.host)) % 97 = 0 THEN 'error' ELSE 'ok' END,
                  CASE WHEN (r.i + length(h.host)) % 97 = 0 THEN 'timed out after 10s' END,
                  NULL, 150
           FROM r, h, ({probes}) p ORDER BY r.i;
         COMMIT;
         BEGIN;
         {steps}
         INSERT INTO logs (host, source, ts, priority, unit, message)
           SELECT h.host, 'journal', {start} + r.i * 30000, 6, 'slurmd',
                  'job ' || r.i || ' finished on ' || h.host
           FROM r, h WHERE r.i % 2 = 0 ORDER BY r.i;
         COMMIT;
         BEGIN;
         {steps}
         INSERT OR IGNORE INTO samples (series_id, ts, value)
           SELECT s.id, {start} + r.i * 30000, r.i % 100
           FROM r, series s WHERE s.host < 'gpu{sampled:04}' ORDER BY r.i;
         COMMIT;"
    ))
    .unwrap();
    drop(conn);
    Store::open(path).unwrap().rebuild_rollups().unwrap();
}

/// Every dashboard page of `hosts` hosts with no history, with its last hour, and with
/// `hours` of it (7 probes' runs at 30 s, their log lines, and every sample of the
/// first `sampled` hosts), with what the queries these pages used before latest_runs
/// take on the same history.
pub fn with_history(hosts: usize, hours: usize, sampled: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path).unwrap();
    let now = now_ms();
    let rounds = hours.max(1) * 120; // 0: the pages without history only
    let start = now - rounds as i64 * 30_000;
    for round in [rounds - 1, rounds] {
        let batch: Vec<HostRound> = (0..hosts)
            .map(|h| fleet_round(&format!("gpu{h:04}"), round, start + round as i64 * 30_000))
            .collect();
        store.write_rounds(&batch).unwrap();
    }
    drop(store);
    let empty = time_pages(&path);
    if hours == 0 {
        for ((what, uri), t) in PAGES.iter().zip(&empty) {
            println!("(f) {what:16} {uri:34} {:6.1} ms", t.as_secs_f64() * 1e3);
        }
        return;
    }
    let hour_ago = rounds.saturating_sub(121);
    let filling = Instant::now();
    fill_history(&path, start, hour_ago, rounds - 1, sampled);
    let hour = time_pages(&path);
    fill_history(&path, start, 0, hour_ago, sampled);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let (runs, logs, samples) = (count("probe_runs"), count("logs"), count("samples"));
    // The queries the overview and probe health page made before this fix.
    let old = |sql: &str| {
        let t = Instant::now();
        conn.prepare(sql)
            .unwrap()
            .query_map([], |_| Ok(()))
            .unwrap()
            .for_each(drop);
        t.elapsed()
    };
    let old_overview =
        old("SELECT host, max(started) FROM probe_runs WHERE status = 'ok' GROUP BY host");
    let old_probes = old(
        "SELECT host, probe, started FROM probe_runs WHERE id IN (SELECT max(id) FROM probe_runs GROUP BY host, probe)",
    );
    drop(conn);
    println!(
        "\n(f) history: {hosts} hosts, {hours} h at 30 s: {runs} probe runs, {logs} log lines, {samples} samples ({sampled} hosts sampled whole), written in {:.0} s",
        filling.elapsed().as_secs_f64()
    );
    let full = time_pages(&path);
    for ((((what, uri), none), hour), day) in PAGES.iter().zip(&empty).zip(&hour).zip(&full) {
        let target = if *what == "overview" { 20.0 } else { 50.0 };
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        println!(
            "(f) {what:16} {uri:34} no history {:6.1} ms, 1 h {:6.1} ms, {hours} h {:6.1} ms ({hours} h / 1 h: {:.2}x; target {target:.0} ms: {:.2}x)",
            ms(none),
            ms(hour),
            ms(day),
            day.as_secs_f64() / hour.as_secs_f64(),
            target / ms(day)
        );
    }
    println!(
        "(f) before latest_runs, on this history: the overview's last-seen query {:.0} ms, the probe health query {:.0} ms",
        old_overview.as_secs_f64() * 1e3,
        old_probes.as_secs_f64() * 1e3
    );
}
