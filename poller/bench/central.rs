//! (o) Beyond one machine, end to end against a running VictoriaMetrics (Debian's):
//! the real remote-write sender draining an outbox of the fleet's shape into it
//! (samples/s, the poller's CPU per 100,000 samples and bytes per sample, and the
//! receiver's CPU), then the central view's host page over 7 days read back from it,
//! next to the same page from a poller's own store.

use crate::render::{gpu_server_round, time_app};
use crate::testbed::tsdb::Tsdb;
use dcmon_inventory::cluster::{RemoteAuth, RemoteQueue, RemoteWrite};
use dcmon_poller::health::Health;
use dcmon_poller::ingest::Writer;
use dcmon_poller::remote_write::{self, Shared};
use dcmon_store::{HostRound, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VM: &str = "/usr/bin/victoria-metrics";

/// Writes `rounds` into the store at `path` (made if new) with the outbox on; the
/// samples queued.
fn fill(path: &Path, rounds: impl Iterator<Item = Vec<HostRound>>) -> u64 {
    let mut store = Store::open(path).unwrap();
    store.fill_outbox(true);
    let mut samples = 0u64;
    for batch in rounds {
        samples += batch
            .iter()
            .flat_map(|r| &r.runs)
            .map(|run| run.output.samples.len() as u64)
            .sum::<u64>();
        store.write_rounds(&batch).unwrap();
    }
    samples
}

/// Runs the poller's remote-write sender on the outbox at `path` until `total`
/// samples are sent: (wall seconds, this process' CPU seconds, the receiver's CPU
/// seconds, bytes sent).
fn drain(path: &Path, vm: &Tsdb, total: u64) -> (f64, f64, f64, u64) {
    drain_to(path, &vm.write_url(), vm.pid(), total)
}

/// `drain` to any receiver at `url` (its process `pid`, if another, for its CPU).
fn drain_to(path: &Path, url: &str, pid: Option<u32>, total: u64) -> (f64, f64, f64, u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health = Arc::new(Health::default());
    let config = RemoteWrite {
        name: "vm".into(),
        url: url.to_string(),
        auth: RemoteAuth::None,
        ca_file: None,
        client_cert: None,
        external_labels: [("site".to_string(), "bench".to_string())].into(),
        queue: RemoteQueue::default(),
    };
    let receiver_cpu = || pid.map_or(0.0, |p| crate::cpu_of(p).0);
    let (cpu0, vm0) = (crate::cpu_of(std::process::id()).0, receiver_cpu());
    let started = Instant::now();
    runtime.block_on(async {
        let (writer, thread) = Writer::spawn(Store::open(path).unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Shared {
            db: path.to_path_buf(),
            writer,
            health: health.clone(),
            replica: None,
        };
        let tasks = remote_write::spawn(vec![config], shared, stopped);
        let deadline = Instant::now() + Duration::from_secs(600);
        while health.remote_figures("vm").sent < total {
            assert!(
                Instant::now() < deadline,
                "sent {:?} of {total}",
                health.remote_figures("vm")
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
        drop(thread);
    });
    let took = started.elapsed().as_secs_f64();
    let figures = health.remote_figures("vm");
    assert_eq!(figures.failed + figures.dropped, 0, "{figures:?}");
    (
        took,
        crate::cpu_of(std::process::id()).0 - cpu0,
        receiver_cpu() - vm0,
        figures.bytes,
    )
}

fn now_ms() -> i64 {
    dcmon_store::now_ms()
}

pub fn end_to_end(hosts: usize, days: usize) {
    if !Path::new(VM).exists() {
        println!("\n(o) skipped: {VM} is missing (tests/run.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vm = Tsdb::victoria(dir.path(), &["-retentionPeriod=30d".to_string()]);

    // The fleet's shape: every host's round is one outbox row, one sample a series.
    // A first round makes the series (VictoriaMetrics' indexing of 38,500 new series
    // costs it more than the samples do), then the steady state is measured.
    let rounds = crate::env_or("DCMON_BENCH_RW_ROUNDS", 20);
    let fleet = dir.path().join("fleet.db");
    let start = now_ms() - (rounds + 1) as i64 * 30_000;
    let fleet_round = |r: usize| -> Vec<HostRound> {
        (0..hosts)
            .map(|h| gpu_server_round(&format!("gpu{h:04}"), r, start + r as i64 * 30_000))
            .collect()
    };
    let first = fill(&fleet, std::iter::once(fleet_round(0)));
    let (took, _, vm_cpu, _) = drain(&fleet, &vm, first);
    println!(
        "\n(o) remote write end to end into VictoriaMetrics, first round of {hosts} GPU servers ({first} samples, every series new): {:.0} samples/s, VictoriaMetrics {:.0} ms CPU",
        first as f64 / took,
        vm_cpu * 1e3
    );
    let total = fill(&fleet, (1..=rounds).map(fleet_round));
    let (took, cpu, vm_cpu, bytes) = drain(&fleet, &vm, total);
    println!(
        "(o) then {rounds} rounds ({total} samples from the outbox, requests of <= 10,000): {:.0} samples/s  (target 500,000/s: {:.2}x); poller {:.1} ms CPU per 100k samples, VictoriaMetrics {:.1} ms; {:.2} bytes/sample on the wire",
        total as f64 / took,
        total as f64 / took / 500_000.0,
        cpu * 1e3 * 100_000.0 / total as f64,
        vm_cpu * 1e3 * 100_000.0 / total as f64,
        bytes as f64 / total as f64,
    );

    let ours = bytes as f64 / total as f64;
    // The poller's own ceiling: the same queue again, into a receiver that answers
    // 204 at once (no storage), so only the sender's work is left.
    let again = dir.path().join("again.db");
    let total = fill(&again, (1..=rounds).map(fleet_round));
    let null = null_receiver();
    let (took, cpu, _, _) = drain_to(&again, &null, None, total);
    println!(
        "(o) the same into a receiver that stores nothing (the sender alone, HTTP included): {:.0} samples/s  ({:.2}x the 500,000/s target), {:.1} ms CPU per 100k samples (receiver's included)",
        total as f64 / took,
        total as f64 / took / 500_000.0,
        cpu * 1e3 * 100_000.0 / total as f64,
    );
    prometheus_bytes(&dir, &fleet, &vm, ours);

    // One host's week, sent the same way, then its central page read back.
    let week = dir.path().join("week.db");
    let rounds = days * 86_400 / 30;
    let start = now_ms() - rounds as i64 * 30_000;
    let all: Vec<usize> = (0..rounds).collect();
    let total = fill(
        &week,
        all.chunks(500).map(|chunk| {
            chunk
                .iter()
                .map(|&r| gpu_server_round("week0000", r, start + r as i64 * 30_000))
                .collect()
        }),
    );
    let (took, _, _, _) = drain(&week, &vm, total);
    // Every point of the week searchable (new series become visible within seconds).
    let query = format!(
        "count_over_time(node_load1{{host=\"week0000\"}}[{}d])",
        days + 1
    );
    vm.wait_for(&query, Duration::from_secs(60), |r| {
        r.first()
            .and_then(|s| s["value"][1].as_str()?.parse::<usize>().ok())
            .is_some_and(|n| n >= rounds)
    });
    let central = dcmon_web::central::Central::new(dcmon_web::central::CentralConfig {
        backend: format!("http://{}", vm.address),
        listed: Vec::new(),
        owners: Arc::new(|_| Vec::new()),
        poller_count: 1,
        pollers: Vec::new(),
        external_labels: vec!["site".to_string()],
    });
    let state = dcmon_web::AppState::new(
        Store::open(&dir.path().join("central.db")).unwrap(),
        dcmon_web::Config::default(),
    )
    .with_central(central);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let uri = format!("/hosts/week0000?range={days}d");
    let (median, size, first) = time_app(&runtime, dcmon_web::app(state.clone()), &uri);
    let local = Store::open(&week).unwrap();
    let local_app = dcmon_web::app(dcmon_web::AppState::new(local, Default::default()));
    let (local_median, _, _) = time_app(&runtime, local_app, &uri);
    println!(
        "(o) central host page over {days} days from VictoriaMetrics ({rounds} rounds of 77 series, sent in {took:.1} s): {:.1} ms median ({:.1} ms the first), {} KB  (target 100 ms: {:.2}x); the same page from the poller's own store {:.1} ms",
        median.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        size / 1024,
        0.1 / median.as_secs_f64(),
        local_median.as_secs_f64() * 1e3,
    );
    // The overview of every host the backend has (the fleet's and the week's).
    let (median, size, first) = time_app(&runtime, dcmon_web::app(state), "/");
    let local = Store::open(&fleet).unwrap();
    let local_app = dcmon_web::app(dcmon_web::AppState::new(local, Default::default()));
    let (local_median, _, _) = time_app(&runtime, local_app, "/");
    println!(
        "(o) central overview of {} hosts from VictoriaMetrics: {:.1} ms median ({:.1} ms the first), {} KB; the poller's own overview of its {hosts} from its store (no shared cache) {:.1} ms",
        hosts + 1,
        median.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        size / 1024,
        local_median.as_secs_f64() * 1e3,
    );
}

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Prometheus's own remote write of the same series: it scrapes the fleet's `/metrics`
/// (as dcmon serves it, without timestamps so each scrape is new) every second and
/// remote-writes to the same VictoriaMetrics, with `job` and `instance` dropped and the
/// same external label, in requests of at most 10,000 samples; its bytes per sample
/// from its own counters, next to dcmon's.
fn prometheus_bytes(dir: &tempfile::TempDir, fleet: &Path, vm: &Tsdb, ours: f64) {
    if !Path::new(PROMETHEUS).exists() {
        println!("(o) Prometheus's remote write: skipped, {PROMETHEUS} is missing");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = dcmon_web::app(dcmon_web::AppState::new(
        Store::open(fleet).unwrap(),
        dcmon_web::Config::default(),
    ));
    let exposition = runtime.block_on(async {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = app
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    });
    let mut series = 0usize;
    let text: String = exposition
        .lines()
        .filter(|l| !l.starts_with("dcmon_"))
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                series += 1;
                // `name{labels} value ts`: the value kept, the time left to the scrape.
                format!("{}\n", l.rsplit_once(' ').map_or(l, |(head, _)| head))
            }
        })
        .collect();
    let target = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let target_address = target.local_addr().unwrap();
    let served = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = text.clone();
            async move { text }
        }),
    );
    runtime.spawn(async move { axum::serve(target, served).await });
    let port = crate::testbed::free_port();
    let config = dir.path().join("prometheus-sender.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    site: bench\nscrape_configs:\n  - job_name: fleet\n    honor_labels: true\n    static_configs:\n      - targets: ['{target_address}']\nremote_write:\n  - url: {}\n    queue_config:\n      max_samples_per_send: 10000\n      batch_send_deadline: 5s\n    write_relabel_configs:\n      - action: labeldrop\n        regex: job|instance\n",
            vm.write_url()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus-sender.log")).unwrap();
    let child = std::process::Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom-sender").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _prometheus = crate::testbed::Killed(child);
    let address = format!("127.0.0.1:{port}");
    let counter = |name: &str| -> f64 {
        crate::testbed::http_get(&address, "/metrics")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Past its start-up and first scrapes, then 30 s of steady state.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter("prometheus_remote_storage_samples_total") < (series * 5) as f64 {
        assert!(Instant::now() < deadline, "Prometheus sent nothing");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (bytes0, samples0) = (
        counter("prometheus_remote_storage_bytes_total"),
        counter("prometheus_remote_storage_samples_total"),
    );
    std::thread::sleep(Duration::from_secs(30));
    let bytes = counter("prometheus_remote_storage_bytes_total") - bytes0;
    let samples = counter("prometheus_remote_storage_samples_total") - samples0;
    let theirs = bytes / samples.max(1.0);
    println!(
        "(o) Prometheus's own remote write of the same {series} series (scraped every 1 s, job and instance dropped, requests of <= 10,000): {theirs:.2} bytes/sample over {samples:.0} samples; dcmon {ours:.2}, {:.2}x Prometheus's bytes",
        ours / theirs
    );
}

/// A remote-write receiver that takes every request and stores nothing, on a thread of
/// its own: its URL.
fn null_receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/api/v1/write",
                axum::routing::post(|_body: axum::body::Bytes| async {
                    axum::http::StatusCode::NO_CONTENT
                }),
            );
            let _ = axum::serve(listener, app).await;
        });
    });
    format!("http://{address}/api/v1/write")
}
