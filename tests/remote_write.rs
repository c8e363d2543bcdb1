//! Remote write and sharding against real receivers: VictoriaMetrics and Prometheus
//! from Debian, pollers polling the test bed's sshd.

mod testbed;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::Sshd;
use testbed::cluster::{Poller, inventory, remote};
use testbed::tsdb::{Tsdb, times_ms};

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `dcmon inventory list --shard I/N`: the hosts this shard takes, one per line.
fn listed(inventory: &Path, shard: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args(["inventory", "list"])
        .arg(inventory)
        .args(["--shard", shard, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let host: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(
                host["pollers"].as_array().is_some_and(|p| p.len() == 1),
                "{host}"
            );
            host["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

/// Two pollers, shards 1/2 and 2/2 of 40 hosts, each with its own `poller` label, write
/// to one VictoriaMetrics: every host's series arrive exactly once, from the poller
/// `dcmon inventory list --shard` names, and each poller's database holds only its own.
#[test]
fn two_shards_write_every_host_exactly_once() {
    let bed = Sshd::start();
    let vm = Tsdb::victoria(bed.dir.path(), &[]);
    let mut pollers = Vec::new();
    let mut split = Vec::new();
    let mut all = Vec::new();
    for i in 1..=2 {
        let rest = format!(
            "[cluster]\nshard = \"{i}/2\"\n\n{}",
            remote(
                &vm.write_url(),
                &format!("external_labels = {{ poller = \"p{i}\" }}")
            )
        );
        let (hosts, text) = inventory(&bed, 22, 40, "1s", &rest);
        all = hosts;
        let file = bed.write(&format!("inventory_{i}.toml"), &text);
        split.push(listed(&file, &format!("{i}/2")));
        pollers.push(Poller::start(bed.dir.path(), &format!("p{i}"), &file, &[]));
    }
    // The split covers every host once, and is not lopsided.
    let mut union: Vec<String> = split.concat();
    union.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(union, expected);
    assert!(split.iter().all(|s| s.len() >= 10), "{split:?}");

    let result = vm.wait_for(
        "count by (host, poller) (node_load1)",
        Duration::from_secs(60),
        |r| r.len() >= 40,
    );
    assert_eq!(result.len(), 40, "{result:?}");
    for series in &result {
        let host = series["metric"]["host"].as_str().unwrap();
        let poller = series["metric"]["poller"].as_str().unwrap();
        assert_eq!(series["value"][1], "1", "{host} written twice: {series}");
        let shard = if poller == "p1" { 0 } else { 1 };
        assert!(
            split[shard].iter().any(|h| h == host),
            "{host} came from {poller}"
        );
    }
    // Every series of a host, not only node_load1: no host appears under both pollers.
    let both = vm.query("count by (host) (count by (host, poller) ({__name__=~\"node_.*\"})) > 1");
    assert!(both.is_empty(), "{both:?}");
    for (i, p) in pollers.iter().enumerate() {
        let stored = p.stored_hosts();
        assert_eq!(stored, split[i], "poller {} stored other hosts", i + 1);
        assert!(
            p.log().contains(&format!("shard {}/2", i + 1)),
            "{}",
            p.log()
        );
    }
    // The pollers' own health travels too.
    vm.wait_for(
        "dcmon_remote_write_samples_sent_total",
        Duration::from_secs(20),
        |r| r.len() == 2,
    );
    let own = split[0][0].clone();
    let took = pollers[0]
        .metric(&format!("dcmon_poll_duration_seconds{{host=\"{own}\"}}"))
        .unwrap();
    assert!(took > 0.0 && took < 5.0, "{took}");
}

/// With `replicas = 2` every host is polled by two pollers; VictoriaMetrics, told to
/// drop `replica` and to keep one sample per interval, returns no doubled points.
#[test]
fn replicas_are_deduplicated_by_the_receiver() {
    let bed = Sshd::start();
    let relabel = bed.write("relabel.yml", "- action: labeldrop\n  regex: replica\n");
    let vm = Tsdb::victoria(
        bed.dir.path(),
        &[
            "-dedup.minScrapeInterval=5s".to_string(),
            format!("-relabelConfig={}", relabel.display()),
        ],
    );
    let rest = format!("[cluster]\nreplicas = 2\n\n{}", remote(&vm.write_url(), ""));
    let (hosts, text) = inventory(&bed, 23, 6, "1s", &rest);
    let file = bed.write("inventory.toml", &text);
    let pollers: Vec<Poller> = (1..=3)
        .map(|i| {
            Poller::start(
                bed.dir.path(),
                &format!("r{i}"),
                &file,
                &["--shard", &format!("{i}/3")],
            )
        })
        .collect();
    // Each host in exactly two pollers' databases.
    std::thread::sleep(Duration::from_secs(22));
    for h in &hosts {
        let holders = pollers
            .iter()
            .filter(|p| p.stored_hosts().contains(h))
            .count();
        assert_eq!(holders, 2, "{h}");
    }
    for h in &hosts {
        let result = vm.query(&format!("node_load1{{host=\"{h}\"}}[20s]"));
        assert_eq!(
            result.len(),
            1,
            "one series per host, replica dropped: {result:?}"
        );
        let times = times_ms(&result);
        // Two pollers each every 1 s would give ~40 points in 20 s; dedup keeps the
        // last of each 5 s interval: 4 or 5, ~5 s apart. (Not an interval equal to
        // the polls': replicas' samples on both sides of an interval's edge would
        // both stay.)
        assert!(
            (3..=5).contains(&times.len()),
            "{h}: {} points in 20 s: {times:?}",
            times.len()
        );
        // The newest interval is still open: its newest sample is kept for now.
        for pair in times[..times.len() - 1].windows(2) {
            assert!(pair[1] - pair[0] >= 2_500, "{h}: doubled points {times:?}");
        }
    }
}

/// The receiver stopped for a while during polling, then started: afterwards its data
/// has no gap, and `/metrics` showed the queue rising and draining.
/// How the receiver goes away.
#[derive(Clone, Copy, PartialEq)]
enum Outage {
    /// Stopped (SIGTERM), then started again: connections are refused.
    Stopped,
    /// Frozen (SIGSTOP), then let go (SIGCONT): requests are taken and never answered.
    Frozen,
}

fn outage_leaves_no_gap(mut receiver: Tsdb, bed: Sshd, net: u8, kind: Outage) {
    let outage = Duration::from_secs(
        std::env::var("DCMON_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    // A frozen receiver is given up on after the request timeout, then retried.
    let timeout = match kind {
        Outage::Stopped => "",
        Outage::Frozen => "timeout = \"2s\"\n",
    };
    let (hosts, text) = inventory(
        &bed,
        net,
        4,
        "1s",
        &format!("{}{timeout}", remote(&receiver.write_url(), "")),
    );
    let file = bed.write("inventory.toml", &text);
    let poller = Poller::start(bed.dir.path(), "p", &file, &[]);
    let query = format!("node_load1{{host=\"{}\"}}", hosts[0]);
    receiver.wait_for(&query, Duration::from_secs(30), |r| !r.is_empty());
    let url = receiver.write_url();
    let queued = |p: &Poller| {
        p.metric(&format!(
            "dcmon_remote_write_queue_samples{{remote=\"{url}\"}}"
        ))
        .unwrap_or(-1.0)
    };
    // What the queue holds in steady state: samples waiting for their batch.
    let mut baseline = 0.0f64;
    for _ in 0..6 {
        baseline = baseline.max(queued(&poller));
        std::thread::sleep(Duration::from_millis(500));
    }
    let outage_from = wall_ms();
    match kind {
        Outage::Stopped => receiver.stop(),
        Outage::Frozen => receiver.freeze(),
    }
    let stopped_at = Instant::now();
    let mut peak = 0.0f64;
    while stopped_at.elapsed() < outage {
        // The poller's dashboard answers throughout (queued() is -1 when it does not).
        let now = queued(&poller);
        assert!(
            now >= 0.0,
            "the poller's /metrics did not answer during the outage"
        );
        peak = peak.max(now);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        peak > baseline * 4.0 + 100.0,
        "the queue did not grow while the receiver was away: {peak} (steady {baseline})"
    );
    let outage_to = wall_ms();
    match kind {
        Outage::Stopped => receiver.start(),
        Outage::Frozen => receiver.thaw(),
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while queued(&poller) > baseline * 2.0 + 100.0 {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {}",
            queued(&poller)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2));
    let window = stopped_at.elapsed().as_secs() + 30;
    for h in &hosts {
        let query = format!("node_load1{{host=\"{h}\"}}[{window}s]");
        let result = receiver.wait_for(&query, Duration::from_secs(20), |r| {
            times_ms(r).last().is_some_and(|t| *t > outage_to + 2_000)
        });
        let times = times_ms(&result);
        let shown = || {
            format!(
                "{h}: {} points, outage {outage_from}..{outage_to}: {times:?}\n{}",
                times.len(),
                poller.log()
            )
        };
        // Points from before the outage to after it, none missing in between.
        assert!(
            times.first().is_some_and(|t| *t < outage_from - 2_000)
                && times.last().is_some_and(|t| *t > outage_to + 2_000),
            "{}",
            shown()
        );
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] <= 3_000,
                "a gap of {} ms: {}",
                pair[1] - pair[0],
                shown()
            );
        }
    }
    let log = poller.log();
    assert!(
        log.contains("cannot send, samples stay queued and are retried"),
        "{log}"
    );
    assert!(log.contains("sending again"), "{log}");
    if kind == Outage::Frozen {
        assert!(log.contains("no answer within 2s"), "{log}");
    }
    assert!(
        poller
            .metric(&format!(
                "dcmon_remote_write_samples_retried_total{{remote=\"{}\"}}",
                receiver.write_url()
            ))
            .unwrap()
            > 0.0
    );
}

#[test]
fn victoriametrics_outage_leaves_no_gap() {
    let bed = Sshd::start();
    let vm = Tsdb::victoria(bed.dir.path(), &[]);
    outage_leaves_no_gap(vm, bed, 24, Outage::Stopped);
}

/// A receiver that takes requests and stops answering mid-stream (SIGSTOP): each
/// request is given up after `timeout` and retried, nothing is lost, the poller's
/// dashboard keeps answering, and the queue drains once the receiver runs again.
#[test]
fn a_frozen_receiver_leaves_no_gap() {
    let bed = Sshd::start();
    let vm = Tsdb::victoria(bed.dir.path(), &[]);
    outage_leaves_no_gap(vm, bed, 27, Outage::Frozen);
}

#[test]
fn prometheus_outage_leaves_no_gap() {
    let bed = Sshd::start();
    let prometheus = Tsdb::prometheus(bed.dir.path());
    outage_leaves_no_gap(prometheus, bed, 25, Outage::Stopped);
}

/// A receiver refusing our password (401): logged once with its reason, counted, and
/// the refused samples do not pile up in the queue.
#[test]
fn a_refusal_is_logged_once_counted_and_not_queued() {
    let bed = Sshd::start();
    let vm = Tsdb::victoria(
        bed.dir.path(),
        &[
            "-httpAuth.username=dcmon".to_string(),
            "-httpAuth.password=right".to_string(),
        ],
    );
    let password = bed.write("vm.pass", "wrong\n");
    let auth = format!(
        "basic_auth = {{ username = \"dcmon\", password_file = \"{}\" }}",
        password.display()
    );
    let (_, text) = inventory(&bed, 26, 4, "1s", &remote(&vm.write_url(), &auth));
    let file = bed.write("inventory.toml", &text);
    let poller = Poller::start(bed.dir.path(), "p", &file, &[]);
    let url = vm.write_url();
    let failed = |p: &Poller| {
        p.metric(&format!(
            "dcmon_remote_write_samples_failed_total{{remote=\"{url}\"}}"
        ))
        .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while failed(&poller) < 100.0 {
        assert!(
            Instant::now() < deadline,
            "no refusal counted: {}",
            poller.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let queued = poller
        .metric(&format!(
            "dcmon_remote_write_queue_samples{{remote=\"{url}\"}}"
        ))
        .unwrap();
    assert!(queued < 100.0, "refused samples stayed queued: {queued}");
    let log = poller.log();
    let refusals = log.matches("refused and dropped").count();
    assert_eq!(refusals, 1, "{log}");
    assert!(log.contains("401"), "the reason is logged: {log}");
    assert_eq!(
        poller.metric(&format!(
            "dcmon_remote_write_samples_sent_total{{remote=\"{url}\"}}"
        )),
        Some(0.0)
    );
}
