//! Every read the dashboard makes is bounded by an index: none walks a table that grows
//! with history (samples, chunks, rollups, probe runs, logs, the audit trail). Each reader runs
//! with SQLite's statement trace on, and each statement it ran is checked with
//! `EXPLAIN QUERY PLAN`.

use super::*;
use crate::alerts::HistoryFilter;
use crate::range::{Counting, Selector};
use dcmon_probes::{Labels, LogEntry, ProbeOutput};
use std::sync::Mutex;

/// Tables whose size grows with every round kept.
const HISTORY: [&str; 7] = [
    "samples",
    "chunks",
    "rollups",
    "probe_runs",
    "logs",
    "audit",
    "alert_history",
];

static TRACED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn traced(event: rusqlite::trace::TraceEvent<'_>) {
    if let rusqlite::trace::TraceEvent::Stmt(_, sql) = event {
        TRACED.lock().unwrap().push(sql.to_string());
    }
}

fn round(host: &str, started_ms: i64, status: RunStatus) -> HostRound {
    let mut output = ProbeOutput::default();
    output.gauge("node_load1", Labels::default(), 0.5, "");
    output.gauge("node_memory_used_bytes", Labels::default(), 1e9, "bytes");
    output.counter(
        "node_cpu_all_seconds_total",
        Labels::new([("mode", "idle")]),
        started_ms as f64 / 1000.0,
        "seconds",
    );
    output.logs.push(LogEntry {
        source: "journal".into(),
        ts_ms: Some(started_ms),
        priority: 6,
        unit: Some("sshd".into()),
        message: format!("accepted key at {started_ms}"),
        cursor: Some(format!("c{started_ms}")),
        labels: Default::default(),
    });
    let run = ProbeRun {
        probe: "os".into(),
        started_ms,
        duration_ms: 5,
        status,
        error: None,
        output,
        new_logs: dcmon_probes::registry::all_logs_new,
    };
    HostRound::new(host, vec![run])
}

/// Tables that grow with the fleet, not with time: one host's reads must not walk them.
const FLEET: [&str; 5] = ["series", "hosts", "directory", "latest_runs", "facts"];

/// The plan lines of one statement that read a history table without an index bound.
fn unbounded(store: &Store, sql: &str) -> Vec<String> {
    unbounded_in(store, sql, &HISTORY)
}

/// The names EXPLAIN uses for `table` in `sql`: the table's own and its aliases
/// (`FROM series s` is reported as `SCAN s`).
fn names_of(sql: &str, table: &str) -> Vec<String> {
    const KEYWORDS: [&str; 12] = [
        "WHERE", "JOIN", "ON", "INDEXED", "ORDER", "GROUP", "LIMIT", "WINDOW", "USING", "SET",
        "VALUES", "(",
    ];
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut names = vec![table.to_string()];
    for pair in words.windows(3) {
        if pair[0] == table {
            let alias = if pair[1].eq_ignore_ascii_case("AS") {
                pair[2]
            } else {
                pair[1]
            };
            let alias = alias.trim_end_matches([',', ')']);
            if !KEYWORDS.iter().any(|k| alias.eq_ignore_ascii_case(k))
                && !alias.is_empty()
                && alias.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                names.push(alias.to_string());
            }
        }
    }
    names
}

fn unbounded_in(store: &Store, sql: &str, tables: &[&str]) -> Vec<String> {
    let tables: Vec<String> = tables.iter().flat_map(|t| names_of(sql, t)).collect();
    let mut stmt = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    // Planned as prepared: parameters unbound (NULL), as the planner first sees them.
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let lines: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let reads_history = lines.iter().any(|l| {
        tables
            .iter()
            .any(|t| l.starts_with(&format!("SCAN {t}")) || l.starts_with(&format!("SEARCH {t} ")))
    });
    // Sorting a history table's rows to take a page reads all of them first.
    let sorted_page = sql.contains("LIMIT")
        && reads_history
        && lines.iter().any(|l| l.contains("TEMP B-TREE FOR ORDER BY"));
    let sorted = sorted_page.then(|| "USE TEMP B-TREE FOR ORDER BY before LIMIT".to_string());
    // Walking an index in its own order, unfiltered, stops at the LIMIT: a newest-first
    // page of a whole table.
    let ordered_page = sql.contains("LIMIT")
        && !sql.contains("WHERE")
        && !lines.iter().any(|l| l.contains("TEMP B-TREE"));
    lines
        .into_iter()
        .filter(|line| !(ordered_page && line.contains(" USING ") && line.contains("INDEX ")))
        .filter(|line| {
            tables.iter().any(|table| {
                // A SCAN walks the whole table or index; a SEARCH seeks a bounded part.
                let scan = format!("SCAN {table}");
                line == &scan || line.starts_with(&format!("{scan} "))
            })
        })
        .chain(sorted)
        .collect()
}

#[test]
fn every_dashboard_read_is_bounded_by_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    for i in 0..200 {
        let status = if i % 7 == 0 {
            RunStatus::Error
        } else {
            RunStatus::Ok
        };
        for host in ["a", "b", "c"] {
            store
                .write_round(&round(host, 1_000_000 + i * 30_000, status))
                .unwrap();
        }
    }
    let id = store
        .audit_start(0, "cli:root", "a", "exec", "uptime")
        .unwrap();
    store.audit_finish(id, "ok", Some(0), 5, "up").unwrap();
    store.conn.execute("ANALYZE", []).unwrap();
    store.conn.trace_v2(
        rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
        Some(traced),
    );
    let sel = |host: Option<&str>| Selector {
        name: "node_cpu_all_seconds_total".into(),
        host: host.map(str::to_string),
        labels: Default::default(),
    };
    let (from, to) = (1_000_000, 1_000_000 + 200 * 30_000);
    // One host's reads: bounded by the host, whatever the fleet's size.
    store.host_summary("a").unwrap();
    store
        .latest_by_name("node_cpu_all_seconds_total", Some("a"), from, to)
        .unwrap();
    store.knows_host("a").unwrap();
    store.facts("a").unwrap();
    store.log_sources("a").unwrap();
    store.recent_logs("a", None, None, 101, 0).unwrap();
    store
        .recent_logs("a", Some("journal"), None, 101, 100)
        .unwrap();
    store.recent_logs("a", None, Some("key"), 101, 0).unwrap();
    store
        .recent_logs("a", Some("journal"), Some("key"), 101, 0)
        .unwrap();
    store
        .series_latest(&SeriesFilter {
            host: Some("a".into()),
            name: Some("node_*".into()),
        })
        .unwrap();
    store
        .downsampled(&sel(Some("a")), from, to, 60_000)
        .unwrap();
    for step in [60_000, 600_000] {
        store
            .counting(&sel(Some("a")), Counting::Rate, from, to, step, 1_200_000)
            .unwrap();
    }
    store.audit(Some("a"), Some(0), 500).unwrap();
    store
        .range_by_name("node_cpu_all_seconds_total", Some("a"), from, to)
        .unwrap();
    let per_host: Vec<String> = std::mem::take(&mut *TRACED.lock().unwrap());
    // The fleet's reads: bounded by the fleet, never by the history.
    store.overview().unwrap();
    store.last_runs().unwrap();
    store.series_latest(&SeriesFilter::default()).unwrap();
    store.with_latest(|all| all.count()).unwrap();
    store.downsampled(&sel(None), from, to, 600_000).unwrap();
    store.audit(None, None, 500).unwrap();
    store.directory(None).unwrap();
    store
        .range_by_name("node_cpu_all_seconds_total", None, to - 300_000, to)
        .unwrap();
    store
        .latest_by_name("node_cpu_all_seconds_total", None, to - 300_000, to)
        .unwrap();
    store.alerts().unwrap();
    store.alert_history(200, &Default::default()).unwrap();
    for filter in [
        HistoryFilter {
            rule: Some("GpuHot".into()),
            ..Default::default()
        },
        HistoryFilter {
            host: Some("a".into()),
            ..Default::default()
        },
        HistoryFilter {
            state: Some("firing".into()),
            ..Default::default()
        },
        HistoryFilter {
            rule: Some("GpuHot".into()),
            host: Some("a".into()),
            state: Some("firing".into()),
        },
    ] {
        store.alert_history(200, &filter).unwrap();
    }
    store.silences(0).unwrap();
    store.firing_count().unwrap();
    store.receivers().unwrap();
    store
        .conn
        .trace_v2(rusqlite::trace::TraceEventCodes::empty(), None);
    let fleet: Vec<String> = std::mem::take(&mut *TRACED.lock().unwrap());
    assert!(
        per_host.len() > 15 && fleet.len() > 5,
        "{per_host:?} {fleet:?}"
    );
    let host_bound: Vec<&str> = HISTORY.iter().chain(&FLEET).copied().collect();
    let mut failures = Vec::new();
    let checks = per_host
        .iter()
        .map(|s| (s, host_bound.as_slice()))
        .chain(fleet.iter().map(|s| (s, &HISTORY[..])));
    for (sql, tables) in checks.filter(|(s, _)| !s.starts_with("--")) {
        let bad = unbounded_in(&store, sql, tables);
        if !bad.is_empty() {
            failures.push(format!("{sql}\n  -> {bad:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "unbounded reads:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_plan_check_catches_a_walk_over_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    // What the overview asked before latest_runs: every run ever kept.
    let old = "SELECT host, max(started) FROM probe_runs WHERE status = 'ok' GROUP BY host";
    assert!(!unbounded(&store, old).is_empty());
    let old_sources = "SELECT DISTINCT source FROM logs WHERE host = 'a' ORDER BY source";
    let _ = unbounded(&store, old_sources); // a covering index walk: bounded by host only
    assert!(unbounded(&store, "SELECT * FROM latest_runs").is_empty());
}

#[test]
fn latest_runs_follow_the_newest_run_and_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("dcmon.db")).unwrap();
    store.write_round(&round("a", 1000, RunStatus::Ok)).unwrap();
    store
        .write_round(&round("a", 2000, RunStatus::Error))
        .unwrap();
    let runs = store.last_runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].started, runs[0].status.as_str()), (2000, "error"));
    assert_eq!(store.last_ok_runs(None).unwrap(), vec![("a".into(), 1000)]);
    // A late good run older than the newest ok one does not move last_ok back.
    store.write_round(&round("a", 3000, RunStatus::Ok)).unwrap();
    store.write_round(&round("a", 2500, RunStatus::Ok)).unwrap();
    assert_eq!(
        store.last_ok_runs(Some("a")).unwrap(),
        vec![("a".into(), 3000)]
    );
    // Retention takes the row of a probe that stopped running with its history.
    store
        .sweep(retention::Cutoffs {
            samples_before_ms: 10_000,
            logs_before_ms: 10_000,
            seal_now_ms: i64::MIN,
        })
        .unwrap();
    assert!(store.last_runs().unwrap().is_empty());
}
