//! (j) One evaluation of the built-in alert rules over a fleet: DCMON_BENCH_ALERT_HOSTS
//! (1,000) hosts with the OS probe's series (8 CPU modes, memory, 3 filesystems, load,
//! host state) every 30 s for DCMON_BENCH_ALERT_MINUTES (60), through the store as
//! `dcmon serve` reads it. Target: 50 ms on one core.

use dcmon_alerts::{Engine, StoreSource};
use dcmon_probes::{Labels, ProbeOutput};
use dcmon_store::{HostRound, Store};
use std::time::Instant;

pub fn evaluation(hosts: usize, minutes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let rounds = minutes * 2;
    let started = Instant::now();
    let mut series = 0;
    for r in 0..rounds {
        let ts = now - ((rounds - r) as i64) * 30_000;
        let batch: Vec<HostRound> = (0..hosts)
            .map(|h| {
                let mut out = ProbeOutput::default();
                for (i, mode) in [
                    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
                ]
                .iter()
                .enumerate()
                {
                    let per_round = if i == 0 { 20.0 } else { 1.0 + (h % 7) as f64 };
                    out.counter(
                        "node_cpu_all_seconds_total",
                        Labels::new([("mode", *mode)]),
                        r as f64 * per_round,
                        "seconds",
                    );
                }
                out.gauge("node_memory_total_bytes", Labels::default(), 1e11, "bytes");
                out.gauge(
                    "node_memory_available_bytes",
                    Labels::default(),
                    6e10 - (h % 50) as f64 * 1e9,
                    "bytes",
                );
                out.gauge("node_load1", Labels::default(), (h % 9) as f64, "");
                out.gauge("dcmon_host_up", Labels::default(), 1.0, "");
                for mount in ["/", "/var", "/data"] {
                    let labels = Labels::new([("mountpoint", mount), ("device", "sda1")]);
                    out.gauge("node_filesystem_size_bytes", labels.clone(), 1e12, "bytes");
                    out.gauge(
                        "node_filesystem_avail_bytes",
                        labels,
                        5e11 - r as f64 * 1e6,
                        "bytes",
                    );
                }
                series = out.samples.len();
                HostRound::new(format!("host{h:04}"), vec![crate::ok_run(ts, out)])
            })
            .collect();
        store.write_rounds(&batch).unwrap();
    }
    let written = started.elapsed();
    let alerting = dcmon_inventory::Alerting {
        rules: dcmon_inventory::load::builtin_alerts::rules(&Default::default()),
        ..Default::default()
    };
    let reader = Store::open(&dir.path().join("dcmon.db")).unwrap();
    let mut engine = Engine::new(&alerting, Vec::new());
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let (changes, errors) = engine.evaluate(&StoreSource(&reader), now);
        times.push(t.elapsed());
        assert!(errors.is_empty(), "{errors:?}");
        let _ = changes;
    }
    // Where the time goes: each rule on its own, the slowest first.
    let mut per_rule: Vec<(f64, &str)> = alerting
        .rules
        .iter()
        .map(|r| {
            let query = dcmon_promql::parse(&r.expr).unwrap();
            let t = Instant::now();
            let _ = dcmon_promql::eval(&query, now, &StoreSource(&reader));
            (t.elapsed().as_secs_f64() * 1000.0, r.name.as_str())
        })
        .collect();
    per_rule.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slowest: Vec<String> = per_rule
        .iter()
        .take(5)
        .map(|(ms, name)| format!("{name} {ms:.1} ms"))
        .collect();
    let best = times.iter().min().unwrap();
    println!(
        "\n(j) alert evaluation: {} built-in rules over {hosts} hosts x {series} series, {minutes} min of history (written in {:.1} s): best of 3 {:.0} ms (target 50 ms: {:.2}x)",
        alerting.rules.len(),
        written.as_secs_f64(),
        best.as_secs_f64() * 1000.0,
        0.05 / best.as_secs_f64()
    );
    println!("    slowest rules: {}", slowest.join(", "));
}
