//! Store tests on a real SQLite file.

use super::*;
use dcmon_probes::{Labels, ProbeOutput};

fn run(started_ms: i64, value: f64) -> ProbeRun {
    let mut output = ProbeOutput::default();
    output.gauge("node_load1", Labels::default(), value, "");
    output.counter(
        "node_cpu_seconds_total",
        Labels::new([("mode", "user"), ("cpu", "0")]),
        value * 10.0,
        "seconds",
    );
    output.fact("kernel", "6.1.0");
    ProbeRun {
        probe: "os".into(),
        started_ms,
        duration_ms: 12,
        status: RunStatus::Ok,
        error: None,
        output,
        new_logs: dcmon_probes::registry::all_logs_new,
    }
}

#[test]
fn rounds_store_samples_and_latest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    let mut store = Store::open(&path).unwrap();
    for (t, v) in [(1000, 0.5), (2000, 0.7)] {
        let stored = store
            .write_round(&HostRound::new("a", vec![run(t, v)]))
            .unwrap();
        assert_eq!(stored.samples, 2);
    }
    // Re-sending a round replaces, never duplicates.
    store
        .write_round(&HostRound::new("a", vec![run(2000, 0.7)]))
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let all = store.series_latest(&SeriesFilter::default()).unwrap();
    // The probe's two series and the run's three (duration, samples, success).
    assert_eq!(all.len(), 5);
    let run_series = |name: &str| all.iter().find(|s| s.name == name).unwrap().value;
    assert_eq!(run_series("dcmon_probe_duration_seconds"), 0.012);
    assert_eq!(run_series("dcmon_probe_samples"), 2.0);
    assert_eq!(run_series("dcmon_probe_success"), 1.0);
    let load = all.iter().find(|s| s.name == "node_load1").unwrap();
    assert_eq!((load.value, load.ts), (0.7, 2000));
    let cpu = store
        .series_latest(&SeriesFilter {
            host: Some("a".into()),
            name: Some("node_cpu*".into()),
        })
        .unwrap();
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].labels.get("cpu").map(String::as_str), Some("0"));
    assert_eq!(cpu[0].kind, "counter");
    assert_eq!(store.db_stats().unwrap().samples, 2 * 5);
    // Three good runs with nothing to say: one history row, the first.
    let rows: Vec<i64> = store
        .conn
        .prepare("SELECT started FROM probe_runs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [1000]);
    assert!(
        store
            .series_latest(&SeriesFilter {
                host: Some("b".into()),
                name: None
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sel_lines_are_stored_once_across_rounds_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    let sel = |id: &str, msg: &str| dcmon_probes::LogEntry {
        source: "sel".into(),
        ts_ms: Some(1000),
        priority: 4,
        unit: None,
        message: msg.into(),
        cursor: Some(id.into()),
        labels: Default::default(),
    };
    let round = |entries: Vec<dcmon_probes::LogEntry>| {
        let mut r = run(5000, 1.0);
        r.output.logs = entries;
        r.new_logs = dcmon_probes::ipmi::sel::after_cursor;
        HostRound::new("a", vec![r])
    };
    let first = store
        .write_round(&round(vec![
            sel("1", "PSU failure detected"),
            sel("2", "fan lower critical"),
        ]))
        .unwrap();
    assert_eq!(first.logs, 2);
    let second = store
        .write_round(&round(vec![
            sel("1", "PSU failure detected"),
            sel("2", "fan lower critical"),
            sel("3", "chassis intrusion"),
        ]))
        .unwrap();
    assert_eq!(second.logs, 1, "only the entry after the cursor");
    let all = store.logs("a", Some("sel"), None).unwrap();
    assert_eq!(
        all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        [
            "PSU failure detected",
            "fan lower critical",
            "chassis intrusion"
        ]
    );
    let found = store.logs("a", None, Some("fan")).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message, "fan lower critical");
}

#[test]
fn range_buckets_and_rate_over_stored_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    // Two CPUs' counters, 10 s apart, for 10 minutes: cpu 0 at 1/s, cpu 1 at 3/s.
    for i in 0..=60i64 {
        let mut output = ProbeOutput::default();
        output.counter(
            "node_cpu_seconds_total",
            Labels::new([("cpu", "0"), ("mode", "user")]),
            (i * 10) as f64,
            "seconds",
        );
        output.counter(
            "node_cpu_seconds_total",
            Labels::new([("cpu", "1"), ("mode", "user")]),
            (i * 30) as f64,
            "seconds",
        );
        let mut r = run(i * 10_000, 0.0);
        r.output = output;
        store.write_round(&HostRound::new("a", vec![r])).unwrap();
    }
    let sel = range::Selector {
        name: "node_cpu_seconds_total".into(),
        host: Some("a".into()),
        labels: [("cpu".to_string(), "1".to_string())].into(),
    };
    let raw = store.range(&sel, 100_000, 200_000).unwrap();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].points.len(), 11);
    assert_eq!(raw[0].points[0], (100_000, 300.0));
    let buckets = store.downsampled(&sel, 0, 599_999, 60_000).unwrap();
    assert_eq!(buckets[0].buckets.len(), 10);
    assert_eq!(
        buckets[0].buckets[1],
        range::Bucket {
            ts: 60_000,
            min: 180.0,
            max: 330.0,
            avg: 255.0,
            count: 6
        }
    );
    let all_cpus = range::Selector {
        labels: Default::default(),
        ..sel
    };
    let rates = store
        .counting(
            &all_cpus,
            range::Counting::Rate,
            120_000,
            600_000,
            60_000,
            60_000,
        )
        .unwrap();
    assert_eq!(rates.len(), 2);
    let total = rate::sum(&rates.iter().map(|s| s.points.clone()).collect::<Vec<_>>());
    assert_eq!(total.len(), 9);
    assert!(
        total.iter().all(|(_, v)| (v - 4.0).abs() < 1e-9),
        "{total:?}"
    );
}

#[test]
fn retention_deletes_only_what_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    let day = 86_400_000;
    for t in [day, 2 * day, 10 * day, 40 * day] {
        let mut r = run(t, 1.0);
        // Failed runs, each kept as a history row.
        r.status = RunStatus::Error;
        r.error = Some("timed out".into());
        r.output.logs.push(dcmon_probes::LogEntry {
            source: "journal".into(),
            ts_ms: Some(t),
            priority: 6,
            unit: None,
            message: format!("line of day {}", t / day),
            cursor: None,
            labels: Default::default(),
        });
        store.write_round(&HostRound::new("a", vec![r])).unwrap();
    }
    // Alert transitions and silences of days 2 and 39: only day 39's stay (as logs).
    let transition = |ts| crate::alerts::Transition {
        ts,
        rule: "GpuHot".into(),
        labels: Default::default(),
        state: "firing".into(),
        value: Some(1.0),
    };
    store
        .apply_alerts(&crate::alerts::AlertChanges {
            transitions: vec![transition(2 * day), transition(39 * day)],
            ..Default::default()
        })
        .unwrap();
    let m = [crate::silences::Matcher {
        name: "host".into(),
        op: "=".into(),
        value: "a".into(),
    }];
    store
        .add_silence(&m, day, 2 * day, "old", "cli:root")
        .unwrap();
    store
        .add_silence(&m, 39 * day, 41 * day, "new", "cli:root")
        .unwrap();
    // Keep samples 30 days, logs 7 days, as of day 40.
    let cutoffs = retention::Cutoffs {
        samples_before_ms: 10 * day,
        logs_before_ms: 33 * day,
        seal_now_ms: i64::MIN,
    };
    let progress = store.sweep(cutoffs).unwrap();
    assert!(progress.done);
    assert_eq!(
        progress.samples_deleted, 10,
        "(2 + 3 run series) x 2 old rounds"
    );
    assert_eq!(progress.logs_deleted, 3);
    let left: Vec<i64> = store
        .range(
            &range::Selector {
                name: "node_load1".into(),
                ..Default::default()
            },
            0,
            50 * day,
        )
        .unwrap()[0]
        .points
        .iter()
        .map(|p| p.0 / day)
        .collect();
    assert_eq!(left, [10, 40]);
    assert_eq!(store.logs("a", None, None).unwrap().len(), 1);
    let kept: Vec<i64> = store
        .alert_history(10, &Default::default())
        .unwrap()
        .iter()
        .map(|t| t.ts / day)
        .collect();
    assert_eq!(kept, [39]);
    let silences: Vec<String> = store
        .silences(0)
        .unwrap()
        .into_iter()
        .map(|s| s.comment)
        .collect();
    assert_eq!(silences, ["new"]);
    assert!(
        store
            .logs("a", None, Some("day"))
            .unwrap()
            .iter()
            .all(|l| l.message == "line of day 40"),
        "the FTS index forgot the deleted lines"
    );
    let runs: i64 = store
        .conn
        .query_row("SELECT count(*) FROM probe_runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2);
}

#[test]
fn log_search_survives_the_migration_that_indexes_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcmon.db");
    {
        // A database as the release before it left it (schema version 7).
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::schema::MIGRATIONS.to_version(&mut conn, 7).unwrap();
        conn.execute(
            "INSERT INTO logs (host, source, ts, priority, message) VALUES ('a', 'journal', 5, 6, 'fan FAN1 failed'), ('b', 'journal', 6, 6, 'fan FAN2 failed')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let found = store.recent_logs("a", None, Some("failed"), 10, 0).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message, "fan FAN1 failed");
    // The host is searched in its own column: a word of the message never matches it.
    assert!(
        store
            .recent_logs("a", None, Some("b"), 10, 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_search_finds_common_words_in_the_newest_lines_and_rare_ones_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    // The rare line is older than the lines a search walks one by one.
    store
        .conn
        .execute_batch(
            "INSERT INTO logs (host, source, ts, priority, message) VALUES ('a', 'dmesg', 1, 3, 'rare ECC error');
             WITH RECURSIVE r (i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM r WHERE i < 6001)
             INSERT INTO logs (host, source, ts, priority, message)
               SELECT 'a', 'journal', i, 6, 'common line ' || i FROM r;
             INSERT INTO logs (host, source, ts, priority, message) VALUES ('b', 'dmesg', 9000, 3, 'rare ECC error on b');",
        )
        .unwrap();
    let page = store
        .recent_logs("a", None, Some("common"), 10, 20)
        .unwrap();
    let stamps: Vec<i64> = page.iter().map(|l| l.ts).collect();
    assert_eq!(stamps, (5972..=5981).rev().collect::<Vec<_>>());
    for source in [None, Some("dmesg")] {
        let rare = store.recent_logs("a", source, Some("ecc"), 10, 0).unwrap();
        assert_eq!(rare.len(), 1, "{source:?}");
        assert_eq!(rare[0].message, "rare ECC error");
    }
}
