//! (f) Dashboard render time: whole requests through the router (store reads, view
//! models, template), median of 15, on stores filled with realistic series names.

use dcmon_probes::{Labels, ProbeOutput};
use dcmon_store::{HostRound, Store};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// What a GPU server reports in one round: CPU modes, memory, load, network and disk
/// counters, 8 GPUs, BMC temperatures, fans and sensor states, 2 NVMe drives.
fn gpu_server_round(host: &str, round: usize, ts: i64) -> HostRound {
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
        let size = get().await;
        let mut times = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            get().await;
            times.push(t.elapsed());
        }
        times.sort();
        (times[times.len() / 2], size)
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
    drop(store);
    let (median, size) = time_page(&path, &format!("/hosts/gpu0000?range={days}d"), true);
    println!(
        "(f) host page over {days} days at 30 s ({rounds} rounds, 13 charts, 77 series): {:.1} ms median, {} KB  (target 50 ms: {:.2}x)",
        median.as_secs_f64() * 1e3,
        size / 1024,
        0.05 / median.as_secs_f64()
    );
}
