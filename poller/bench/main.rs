//! `cargo bench --bench dcmon`: the figures issue 4 asks for, side by side with
//! parallel-ssh where there is a peer, on a private sshd standing for N loopback hosts.
//!
//! (a) poll round over N hosts: dcmon cold (new connections) and warm (open sessions),
//!     through the persistent shell and exec-per-run, vs parallel-ssh (the same os probe
//!     script, OpenSSH pinned to the key exchange russh negotiates, curve25519-sha256),
//!     and a round of `true` for the transport; what each costs the host, metered by a
//!     cgroup cpuacct group around the test sshd, next to node_exporter's CPU per scrape;
//! (b) ingest samples per second; (c) bytes per stored sample after a simulated
//!     stretch of N hosts x 150 series at 30 s; (d) range, bucket and rate query
//!     latency over 7 days of data.
//! (e) 1,000 and 2,000 sessions opened and held at once, each with its persistent
//!     shell: errors and poller RSS, split into connections and shells.
//! (g) `dcmon exec` of `true` through a running serve's sessions vs parallel-ssh.
//! (f) dashboard render time (request through the router: store reads + template):
//!     the overview with 1,000 hosts, and a host page over 7 days of data; then every
//!     page on 1,000 hosts without history and with DCMON_BENCH_HISTORY_HOURS (24) of
//!     7 probes' runs, log lines, and the samples of 20 hosts.
//! (h) one BMC read over RMCP+ (ipmi_sim): dcmon's reader vs ipmitool -I lanplus.
//! (l) one BMC read over Redfish (DMTF's mockup server, HTTPS, warm session): dcmon's
//!     reader vs curl fetching the same resources.
//! (i) `dcmon poll` of DCMON_BENCH_REFUSED (100,000) hosts that all refuse: peak RSS.
//! (j) one evaluation of the built-in alert rules over 1,000 hosts' OS series.
//! (k) sample codecs (pco, Gorilla) on the realistic mix: bytes per sample, encode and
//!     decode time (DCMON_BENCH_CODEC_HOSTS, 20; DCMON_BENCH_CODEC_DAYS, 7).
//! (m) N hosts behind one jump host (a bastion sshd, private network namespace, root):
//!     warm round through the shared jump connection vs direct, cold connects vs `ssh -J`
//!     via parallel-ssh, and how many bastion connections each used.
//! (n) remote write requests (prost + snappy) built from outbox rows of the realistic
//!     mix: samples/s on one core and bytes per sample on the wire, without the network.
//! (o) the same end to end: the real sender draining an outbox of N GPU servers x 20
//!     rounds into a running VictoriaMetrics (samples/s, CPU per 100k samples, bytes per
//!     sample), and the central view's host page over 7 days read back from it.
//! Environment: DCMON_BENCH_HOSTS (500), DCMON_BENCH_ROUNDS (120 = 1 hour at 30 s;
//! 2880 for a full day), DCMON_BENCH_HOLD (1000,2000), DCMON_BENCH_ONLY (e.g. `a,e`).

#[path = "../../tests/testbed/mod.rs"]
mod testbed;

use dcmon_poller::ssh::Connector;
use dcmon_probes::{Labels, ProbeOutput};
use dcmon_store::range::{Counting, Selector};
use dcmon_store::{HostRound, ProbeRun, RunStatus, Store};
use std::process::Command;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hosts = env_or("DCMON_BENCH_HOSTS", 500);
    let rounds = env_or("DCMON_BENCH_ROUNDS", 120);
    let only = std::env::var("DCMON_BENCH_ONLY")
        .unwrap_or_else(|_| "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o".into());
    let part = |p: &str| only.split(',').any(|o| o.trim() == p);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("dcmon bench on {cores} cores, {hosts} loopback hosts");
    if part("a") {
        rounds::poll_rounds(hosts);
        rounds::bash_rounds(hosts);
    }
    if part("b") || part("c") {
        let (rate, bytes) = ingest_and_size(hosts, rounds);
        println!(
            "\n(b) ingest: {rate:.0} samples/s on one writer thread  (target 1,000,000/s: {:.2}x)",
            rate / 1e6
        );
        println!(
            "(c) storage: {bytes:.1} bytes per sample  (issue 19's target 2: {:.2}x)",
            2.0 / bytes
        );
        sealed_size(
            env_or("DCMON_BENCH_SEALED_HOSTS", 20),
            env_or("DCMON_BENCH_SEALED_DAYS", 1),
        );
        run_records(env_or("DCMON_BENCH_RUN_HOSTS", 50));
    }
    if part("d") {
        queries();
    }
    if part("e") {
        let counts = std::env::var("DCMON_BENCH_HOLD").unwrap_or_else(|_| "1000,2000".into());
        for n in counts.split(',').filter_map(|c| c.trim().parse().ok()) {
            hold_sessions(n);
        }
    }
    if part("f") {
        // DCMON_BENCH_PAGES picks some of them (a profile of one page).
        let pages =
            std::env::var("DCMON_BENCH_PAGES").unwrap_or_else(|_| "overview,host,history".into());
        let page = |p: &str| pages.split(',').any(|o| o.trim() == p);
        if page("overview") {
            render::overview(1000);
        }
        if page("host") {
            render::host_page(7);
        }
        if page("history") {
            let hours = env_or("DCMON_BENCH_HISTORY_HOURS", 24);
            render::with_history(1000, hours, 20);
        }
    }
    if part("g") {
        exec::exec_true(hosts);
    }
    if part("h") {
        bmc::bmc_reads(50);
    }
    if part("l") {
        redfish::redfish_reads(200);
        redfish::many_reads(env_or("DCMON_BENCH_REDFISH_BMCS", 1000), 8);
    }
    if part("i") {
        refused::refused_round(env_or("DCMON_BENCH_REFUSED", 100_000));
    }
    if part("k") {
        let hosts = env_or("DCMON_BENCH_CODEC_HOSTS", 20);
        let days = env_or("DCMON_BENCH_CODEC_DAYS", 7);
        for chunk in [120, 240, 720] {
            codecs::codecs(hosts, days, chunk);
        }
    }
    if part("j") {
        alerts::evaluation(
            env_or("DCMON_BENCH_ALERT_HOSTS", 1000),
            env_or("DCMON_BENCH_ALERT_MINUTES", 60),
        );
    }
    if part("n") {
        remote::encode_throughput(hosts, 20, 10_000);
    }
    if part("o") {
        central::end_to_end(hosts, 7);
    }
    // Last: it moves the bench into a network namespace of its own.
    if part("m") {
        jumps::jump_rounds(hosts);
    }
}

mod bmc;

mod redfish;

mod rounds;

mod exec;

mod render;

mod refused;

mod alerts;

mod codecs;

mod mix;

mod jumps;

mod remote;

mod central;

/// CPU seconds (user + system) of a process and of its reaped children, from /proc.
fn cpu_of(pid: u32) -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<f64> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| {
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect()
    });
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    let get = |i: usize| fields.get(i).copied().unwrap_or(0.0) / ticks;
    (get(11) + get(12), get(13) + get(14))
}

/// parallel-ssh over the bed's hosts with 200 at once, OpenSSH pinned to the key exchange
/// russh negotiates (curve25519-sha256), running `remote` (with the script on stdin when
/// `stdin_script`).
fn pssh_command(
    bed: &testbed::Sshd,
    hosts_file: &std::path::Path,
    known_hosts: &std::path::Path,
    stdin_script: bool,
    remote: &str,
) -> Command {
    let ssh_opts = format!(
        "-p {} -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes -o KexAlgorithms=curve25519-sha256",
        bed.port,
        bed.client_key.display(),
        known_hosts.display()
    );
    let mut cmd = Command::new("parallel-ssh");
    cmd.args([
        "-h",
        hosts_file.to_str().unwrap_or_default(),
        "-p",
        "200",
        "-t",
        "120",
        "-l",
        &bed.user,
        "-x",
        &ssh_opts,
    ]);
    if stdin_script {
        cmd.arg("-I");
    }
    cmd.arg(remote);
    cmd
}

/// `n` hosts of the test bed as an inventory, with their known_hosts file.
fn bed_inventory(
    bed: &testbed::Sshd,
    n: usize,
    timeout: &str,
) -> (Vec<String>, std::path::PathBuf, dcmon_inventory::Inventory) {
    let addrs = testbed::addresses(n);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    let mut text = bed.defaults(&known_hosts, timeout);
    for a in &addrs {
        text.push_str(&format!("\n[[hosts]]\nname = \"{a}\"\n"));
    }
    let inventory = dcmon_inventory::parse(
        &text,
        &bed.dir.path().join("inventory.toml"),
        &dcmon_probes::names(),
    )
    .unwrap();
    (addrs, known_hosts, inventory)
}

/// Realistic values: counters that climb, gauges that wander.
fn round_for(host: usize, round: usize, series: usize, ts: i64) -> HostRound {
    let mut output = ProbeOutput::default();
    for s in 0..series {
        let labels = Labels::new([
            ("cpu", (s % 64).to_string()),
            ("mode", (s / 64).to_string()),
        ]);
        let x = (host * 7919 + s * 104729 + round * 31) % 1000;
        if s % 3 == 0 {
            output.counter("bench_counter_total", labels, (round * 1000 + x) as f64, "");
        } else {
            output.gauge("bench_gauge", labels, x as f64 / 10.0, "");
        }
    }
    HostRound::new(format!("host{host:04}"), vec![ok_run(ts, output)])
}

/// A good 20 ms run of the os probe at `ts` that read `output`.
fn ok_run(ts: i64, output: ProbeOutput) -> ProbeRun {
    ProbeRun {
        probe: "os".into(),
        started_ms: ts,
        duration_ms: 20,
        status: RunStatus::Ok,
        error: None,
        output,
        new_logs: dcmon_probes::registry::all_logs_new,
    }
}

/// One round of a realistic host (`mix::Host`): its ~150 series as a probe run's output.
fn mix_round(h: usize, host: &mut mix::Host, values: &mut Vec<f64>, ts: i64) -> HostRound {
    host.round(values);
    let mut output = ProbeOutput::default();
    for (i, v) in values.iter().enumerate() {
        let labels = Labels::new([("series", i.to_string())]);
        if host.is_counter(i) {
            output.counter("mix_total", labels, *v, "");
        } else {
            output.gauge("mix", labels, *v, "");
        }
    }
    HostRound::new(format!("host{h:04}"), vec![ok_run(ts, output)])
}

/// When the realistic mix's first round is.
const MIX_START: i64 = 1_700_000_000_000;

/// `rounds` rounds 30 s apart of `hosts` realistic hosts (`mix.rs`), one batch a round.
fn mix_rounds(hosts: usize, rounds: usize, mut each: impl FnMut(Vec<HostRound>)) {
    let mut mixed: Vec<mix::Host> = (0..hosts).map(|h| mix::Host::new(h as u64 + 1)).collect();
    let mut values = Vec::new();
    for r in 0..rounds {
        let ts = MIX_START + r as i64 * 30_000;
        each(
            mixed
                .iter_mut()
                .enumerate()
                .map(|(h, host)| mix_round(h, host, &mut values, ts))
                .collect(),
        );
    }
}

/// (b) and (c) on the realistic mix (`mix.rs`): ingest rate and bytes per stored sample,
/// the head sealed every 4 rounds (2 simulated minutes) as `dcmon serve` seals it.
fn ingest_and_size(hosts: usize, rounds: usize) -> (f64, f64) {
    let series = 150;
    // Side by side: the engine before the head, a row of `samples` a sample
    // (DCMON_BENCH_ROWS=0 leaves it out, for profiling the head alone).
    let rows_rate = match env_or("DCMON_BENCH_ROWS", 1) {
        0 => f64::NAN,
        _ => rows_ingest(hosts, rounds),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut busy = Duration::ZERO;
    let mut sealing = Duration::ZERO;
    let before = rss_kb();
    let mut store = Store::open(&path).unwrap();
    let mut round = 0;
    mix_rounds(hosts, rounds, |batch| {
        let now = batch[0].runs[0].started_ms;
        let t = Instant::now();
        store.write_rounds(&batch).unwrap();
        busy += t.elapsed();
        round += 1;
        if round % 4 == 0 {
            let t = Instant::now();
            store.seal(now).unwrap();
            sealing += t.elapsed();
        }
    });
    let samples = store.db_stats().unwrap().samples;
    println!(
        "\n(b) writer memory for {hosts} hosts x {series} series: {:.1} MB more resident after ingest (the head: about a quarter of an hour of samples; its caches: series ids, open rollup buckets, sealed ends; SQLite's page cache)",
        (rss_kb() - before) / 1024.0
    );
    println!(
        "(b) ingest counting the sealing too: {:.0} samples/s (sealing {:.0}% of the writer's time); the engine before the head (a row a sample), same rounds: {rows_rate:.0} samples/s  (head {:.2}x)",
        samples as f64 / (busy + sealing).as_secs_f64(),
        100.0 * sealing.as_secs_f64() / (busy + sealing).as_secs_f64(),
        samples as f64 / busy.as_secs_f64() / rows_rate
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let _: (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let bytes = (page_size * pages) as f64;
    println!(
        "\n(b)+(c) simulated {hosts} hosts x {series} series (the realistic mix) x {rounds} rounds at 30 s: {samples} samples, {:.1} MB",
        bytes / 1e6
    );
    // Where the bytes are (what `dcmon db stats` shows).
    let stats = Store::open(&path).unwrap().db_stats().unwrap();
    let total = stats.tables.iter().map(|t| t.1).sum::<i64>().max(1) as f64;
    let shares: Vec<String> = stats
        .tables
        .iter()
        .take(4)
        .map(|(t, b)| {
            format!(
                "{t} {:.1} MB ({:.0}%)",
                *b as f64 / 1e6,
                100.0 * *b as f64 / total
            )
        })
        .collect();
    println!("    by table: {}", shares.join(", "));
    (samples as f64 / busy.as_secs_f64(), bytes / samples as f64)
}

/// (b) the same rounds into the engine before the head: samples per second.
fn rows_ingest(hosts: usize, rounds: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("rows.db")).unwrap();
    store.write_rows_only();
    let mut busy = Duration::ZERO;
    let mut samples = 0usize;
    mix_rounds(hosts, rounds, |batch| {
        samples += batch
            .iter()
            .flat_map(|r| &r.runs)
            .map(|run| run.output.samples.len())
            .sum::<usize>();
        let t = Instant::now();
        store.write_rounds(&batch).unwrap();
        busy += t.elapsed();
    });
    // The run series (3 a run) count too, as in the head's figure.
    let runs: usize = hosts * rounds;
    (samples + 3 * runs) as f64 / busy.as_secs_f64()
}

/// (c) once sealed: `hosts` hosts of the realistic mix for `days` days through the writer,
/// then the sweep's sealing (everything before the last hour), the file compacted, and
/// the bytes of the samples' tables (rows and chunks) and of the whole file per sample.
fn sealed_size(hosts: usize, days: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.db");
    let mut store = Store::open(&path).unwrap();
    let rounds = days * 2880;
    // Sealed every 4 rounds (2 minutes) as `dcmon serve` seals, step by step as its
    // writer runs the steps: the longest step is how long polling waits.
    let mut sealing = Duration::ZERO;
    let mut longest = Duration::ZERO;
    let mut progress = dcmon_store::sealing::SealProgress::default();
    let mut total = progress;
    let mut seal_at = |store: &mut Store, now: i64| {
        let t = Instant::now();
        progress = dcmon_store::sealing::SealProgress::default();
        while !progress.done {
            let step = Instant::now();
            progress = store.seal_step(now, progress).unwrap();
            longest = longest.max(step.elapsed());
        }
        sealing += t.elapsed();
        total.samples_sealed += progress.samples_sealed;
        total.chunks_written += progress.chunks_written;
    };
    let mut round = 0;
    mix_rounds(hosts, rounds, |batch| {
        let now = batch[0].runs[0].started_ms;
        store.write_rounds(&batch).unwrap();
        round += 1;
        if round % 4 == 0 {
            seal_at(&mut store, now);
        }
    });
    let now = MIX_START + rounds as i64 * 30_000;
    seal_at(&mut store, now);
    let progress = total;
    println!(
        "(c) sealing every 2 minutes while polling, in steps of at most {} samples: longest step {:.0} ms (one write lock; target under 1 s)",
        dcmon_store::sealing::SAMPLES_PER_STEP,
        longest.as_secs_f64() * 1e3
    );
    let stats = compacted(store, &dir);
    let per = |b: i64| b as f64 / stats.samples.max(1) as f64;
    let table = |name: &str| table_bytes(&stats, name);
    println!(
        "(c) sealed: {hosts} hosts x {days} d of the realistic mix, {} samples ({} sealed, {} small chunks written and merged, in {:.1} s, {:.0} samples/s; chunks {:.2} bytes per sealed sample): samples' tables {:.2} bytes per sample  (target 2: {:.2}x); whole file {:.2} (rollups {:.2}, series {:.2})",
        stats.samples,
        progress.samples_sealed,
        progress.chunks_written,
        sealing.as_secs_f64(),
        progress.samples_sealed as f64 / sealing.as_secs_f64(),
        table("chunks") as f64 / progress.samples_sealed.max(1) as f64,
        stats.bytes_per_sample.unwrap_or(f64::NAN),
        2.0 / stats.bytes_per_sample.unwrap_or(f64::NAN),
        per(stats.bytes),
        per(table("rollups")),
        per(table("series")),
    );
}

/// (c) what a day of probe runs costs the store: `hosts` hosts running 7 probes every 30 s
/// for a day (durations jittered as real ones are, about 1 run in 100 failing), sealed
/// as the sweep seals them, compacted; scaled to 500 hosts (issue 19's target: 50 MB).
fn run_records(hosts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let mut store = Store::open(&path).unwrap();
    let start_ts = 1_700_000_000_000i64;
    let probes = ["os", "ipmi", "nvidia", "nvme", "smart", "logs", "apt"];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut jitter = |spread: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % spread as u64) as i64
    };
    let rounds = 2880;
    let mut runs = 0u64;
    let mut sealed_samples = 0u64;
    for r in 0..rounds {
        let ts = start_ts + r as i64 * 30_000;
        let batch: Vec<HostRound> = (0..hosts)
            .map(|h| {
                let runs: Vec<ProbeRun> = probes
                    .iter()
                    .enumerate()
                    .map(|(p, probe)| {
                        let mut run = ok_run(ts, ProbeOutput::default());
                        run.probe = probe.to_string();
                        run.duration_ms = 20 + 15 * p as i64 + jitter(25);
                        if jitter(100) == 0 {
                            run.status = RunStatus::Error;
                            run.error = Some("timed out after 10s".into());
                        }
                        run
                    })
                    .collect();
                HostRound::new(format!("host{h:04}"), runs)
            })
            .collect();
        runs += (hosts * probes.len()) as u64;
        store.write_rounds(&batch).unwrap();
        if r % 4 == 3 {
            sealed_samples += store.seal(ts).unwrap().samples_sealed;
        }
    }
    let now = start_ts + rounds as i64 * 30_000;
    sealed_samples += store.seal(now).unwrap().samples_sealed;
    let stats = compacted(store, &dir);
    let table = |name: &str| table_bytes(&stats, name);
    // A day of run series at their sealed cost, plus the history rows kept.
    let per_sealed = table("chunks") as f64 / sealed_samples.max(1) as f64;
    let rows = table("probe_runs") as f64;
    let day = per_sealed * stats.samples as f64 + rows + table("latest_runs") as f64;
    let scale = 500.0 / hosts as f64;
    println!(
        "(c) probe runs: {hosts} hosts x 7 probes x a day = {runs} runs: {} history rows ({:.1} MB), run series {:.2} bytes a sample sealed; a day of 500 hosts {:.1} MB  (target 50 MB: {:.2}x; a row a run was 87 bytes: {:.0} MB)",
        stats.probe_runs,
        rows / 1e6,
        per_sealed,
        day * scale / 1e6,
        50e6 / (day * scale),
        87.0 * runs as f64 * scale / 1e6,
    );
}

/// The figures of `store` copied compact (`VACUUM INTO`, as `dcmon db backup` does).
fn compacted(store: Store, dir: &tempfile::TempDir) -> dcmon_store::DbStats {
    let copy = dir.path().join("compact.db");
    store.backup_to(&copy).unwrap();
    drop(store);
    Store::open(&copy).unwrap().db_stats().unwrap()
}

/// The bytes of one table with its indexes.
fn table_bytes(stats: &dcmon_store::DbStats, name: &str) -> i64 {
    stats
        .tables
        .iter()
        .filter(|t| t.0 == name)
        .map(|t| t.1)
        .sum()
}

fn queries() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("week.db")).unwrap();
    let week = 7 * 86_400_000i64;
    let start = 1_700_000_000_000i64;
    let rounds = (week / 30_000) as usize;
    for chunk in (0..rounds).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<HostRound> = chunk
            .iter()
            .map(|&r| round_for(0, r, 20, start + r as i64 * 30_000))
            .collect();
        store.write_rounds(&batch).unwrap();
    }
    let time = |f: &mut dyn FnMut() -> usize| {
        let mut times: Vec<Duration> = (0..15)
            .map(|_| {
                let t = Instant::now();
                assert!(f() > 0);
                t.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let gauge = Selector {
        name: "bench_gauge".into(),
        host: Some("host0000".into()),
        ..Default::default()
    };
    let counter = Selector {
        name: "bench_counter_total".into(),
        host: Some("host0000".into()),
        ..Default::default()
    };
    let one = Selector {
        labels: [("cpu".to_string(), "1".to_string())].into(),
        ..gauge.clone()
    };
    let measure = |store: &Store| {
        let raw = time(&mut || {
            store.range(&one, start, start + week).unwrap()[0]
                .points
                .len()
        });
        let buckets = time(&mut || {
            store
                .downsampled(&gauge, start, start + week, week / 300)
                .unwrap()
                .len()
        });
        let rate = time(&mut || {
            store
                .counting(
                    &counter,
                    Counting::Rate,
                    start,
                    start + week,
                    week / 300,
                    300_000,
                )
                .unwrap()
                .len()
        });
        [raw, buckets, rate]
    };
    let rows = measure(&store);
    // The same week sealed as the writer seals it.
    store.seal(start + week).unwrap();
    let sealed = measure(&store);
    println!(
        "\n(d) queries over 7 days at 30 s ({rounds} points a series), median of 15, all in the head (unsealed) | sealed in chunks:"
    );
    let names = [
        "raw range, 1 series:                 ",
        "min/max/avg, 300 buckets, 13 series: ",
        "rate (5m window), 300 steps, 7 series:",
    ];
    for ((name, a), b) in names.iter().zip(rows).zip(sealed) {
        println!(
            "  {name}{:>8.2} ms | {:>8.2} ms  ({:.2}x)",
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}

/// Opens `n` sessions at once (through the handshake limit) and holds them: how many
/// fail, and the poller's memory with all of them open.
/// The poller's resident memory now, in kB.
fn rss_kb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Connects every host at once: the sessions that came up, and the errors of the rest.
fn connect_all(
    runtime: &tokio::runtime::Runtime,
    connector: &std::sync::Arc<Connector>,
    hosts: &[dcmon_inventory::Host],
) -> (Vec<dcmon_poller::ssh::SshSession>, Vec<String>) {
    runtime.block_on(async {
        let tasks: Vec<_> = hosts
            .iter()
            .cloned()
            .map(|h| {
                let c = connector.clone();
                tokio::spawn(async move { c.connect(&h, false).await })
            })
            .collect();
        let (mut open, mut errors) = (Vec::new(), Vec::new());
        for t in tasks {
            match t.await {
                Ok(Ok(s)) => open.push(s),
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (open, errors)
    })
}

fn hold_sessions(n: usize) {
    let bed = testbed::Sshd::start();
    let (_, _, inventory) = bed_inventory(&bed, n, "120s");
    let rss_before = rss_kb();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let connector = std::sync::Arc::new(Connector::new(dcmon_poller::ssh::DEFAULT_HANDSHAKE_LIMIT));
    let started = Instant::now();
    let (sessions, errors) = connect_all(&runtime, &connector, &inventory.hosts);
    let took = started.elapsed();
    let rss_connected = rss_kb();
    // One run through each held session's persistent shell proves it is alive, not just
    // counted, and leaves the shell open as a poll does.
    let sessions = std::sync::Arc::new(sessions);
    let run_all = |script: &'static str, in_shell: bool| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..sessions.len())
                .map(|i| {
                    let s = sessions.clone();
                    tokio::spawn(async move {
                        let (result, via) = s[i]
                            .run_probe(
                                script,
                                in_shell,
                                false,
                                dcmon_inventory::ShellMode::Persistent,
                                Duration::from_secs(120),
                                1 << 24,
                            )
                            .await;
                        via == dcmon_poller::ssh::Via::Persistent
                            && result.is_ok_and(|o| o.success())
                    })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.unwrap_or(false));
            }
            ok
        })
    };
    let alive = run_all("true", false);
    let rss_shells = rss_kb();
    // A round of the os probe: what its output buffers leave behind.
    run_all(dcmon_probes::os::SCRIPT, true);
    let rss_round = rss_kb();
    // What serve keeps after its minute's heap trim.
    let trim_started = Instant::now();
    dcmon_poller::heap::trim();
    let trim_took = trim_started.elapsed();
    let rss_trimmed = rss_kb();
    let first_error = errors
        .first()
        .map(|e| format!(" (first: {e})"))
        .unwrap_or_default();
    let per = |kb: f64| kb / sessions.len().max(1) as f64;
    println!(
        "\n(e) {n} sessions held at once: opened in {:.1}s, {} errors{first_error}, {alive} answered through a persistent shell; poller RSS {:.0} MB, {:.0} MB after serve's heap trim ({:.1} ms) (target 64 MB for 1,000)",
        took.as_secs_f64(),
        errors.len(),
        rss_round / 1024.0,
        rss_trimmed / 1024.0,
        trim_took.as_secs_f64() * 1000.0
    );
    println!(
        "    RSS breakdown: {:.1} MB before connecting; connections {:.1} KB each; persistent shells {:.1} KB each; after an os round {:.1} KB each more",
        rss_before / 1024.0,
        per(rss_connected - rss_before),
        per(rss_shells - rss_connected),
        per(rss_round - rss_shells)
    );
}
