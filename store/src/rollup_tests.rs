//! Rollups agree with the samples they summarize: buckets exactly, rates closely, the
//! migration's backfill row for row, across a restart of the writer and a late sample.

use crate::range::{Counting, Selector};
use crate::{HostRound, ProbeRun, RunStatus, Store};
use dcmon_probes::{Labels, ProbeOutput};

const T0: i64 = 1_800_000_000_000; // a multiple of 10 minutes
const STEP: i64 = 30_000;

fn round(i: i64) -> HostRound {
    let mut out = ProbeOutput::default();
    // A wandering gauge and a counter that resets once (a reboot at sample 200).
    out.gauge("g", Labels::default(), ((i * 37) % 101) as f64, "");
    let counter = if i < 200 {
        1000.0 + 7.0 * i as f64
    } else {
        3.0 * (i - 200) as f64
    };
    out.counter("c_total", Labels::default(), counter, "");
    let run = ProbeRun {
        probe: "os".into(),
        started_ms: T0 + i * STEP,
        duration_ms: 1,
        status: RunStatus::Ok,
        error: None,
        output: out,
        new_logs: dcmon_probes::registry::all_logs_new,
    };
    HostRound::new("h", vec![run])
}

fn selector(name: &str) -> Selector {
    Selector {
        name: name.into(),
        host: Some("h".into()),
        labels: Default::default(),
    }
}

type Row = (i64, i64, f64, f64, f64, i64, i64, f64, f64);

fn rows(store: &Store) -> Vec<Row> {
    let mut stmt = store
        .conn
        .prepare("SELECT series_id, ts, min, max, sum, count, last_ts, last, increase FROM rollups ORDER BY 1, 2")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// 6 hours at 30 s, the writer restarted after 4 h, one sample arriving late.
fn filled() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut store = Store::open(&path).unwrap();
    let all: Vec<i64> = (0..720).filter(|i| *i != 100).collect();
    for chunk in all[..470].chunks(7) {
        store
            .write_rounds(&chunk.iter().map(|&i| round(i)).collect::<Vec<_>>())
            .unwrap();
    }
    drop(store);
    let mut store = Store::open(&path).unwrap();
    for chunk in all[470..].chunks(7) {
        store
            .write_rounds(&chunk.iter().map(|&i| round(i)).collect::<Vec<_>>())
            .unwrap();
    }
    store.write_round(&round(100)).unwrap(); // late, into a closed bucket
    (dir, store)
}

#[test]
fn buckets_from_rollups_equal_buckets_from_samples() {
    let (_dir, store) = filled();
    let (from, to) = (T0 + 600_000, T0 + 720 * STEP);
    for step in [600_000, 1_800_000, 3_600_000] {
        let rolled = store.downsampled(&selector("g"), from, to, step).unwrap();
        let id = store.matching(&selector("g")).unwrap()[0].id;
        let raw = store.buckets_from_samples(id, from, to, step).unwrap();
        assert_eq!(rolled[0].buckets.len(), raw.len(), "step {step}");
        for (a, b) in rolled[0].buckets.iter().zip(&raw) {
            assert_eq!(
                (a.ts, a.min, a.max, a.count),
                (b.ts, b.min, b.max, b.count),
                "step {step}"
            );
            assert!((a.avg - b.avg).abs() < 1e-9, "step {step}: {a:?} {b:?}");
        }
    }
}

#[test]
fn rates_from_rollups_follow_rates_from_samples_across_a_reset() {
    let (_dir, store) = filled();
    let (from, to) = (T0 + 3_600_000, T0 + 720 * STEP);
    let step = 1_800_000;
    let window = 2 * step;
    let id = store.matching(&selector("c_total")).unwrap()[0].id;
    let raw = crate::rate::rate_steps(
        &store.points_of(id, from - window, to).unwrap(),
        from,
        to,
        step,
        window,
    );
    let rolled = store
        .counting(&selector("c_total"), Counting::Rate, from, to, step, window)
        .unwrap();
    let rolled = &rolled[0].points;
    assert_eq!(rolled.len(), raw.len());
    for (a, b) in rolled.iter().zip(&raw) {
        assert_eq!(a.0, b.0);
        // Rollups give the window's average growth; Prometheus extrapolates from the
        // first and last sample. They part most where the rate changes inside a window
        // (around the reset): 1.7% here, with rollups the nearer to the true 0.1203/s.
        assert!(
            (a.1 - b.1).abs() <= 0.02 * b.1.abs() + 1e-9,
            "{a:?} vs {b:?}"
        );
    }
    // Before the reset 7 per 30 s; after it 3 per 30 s (the reset itself is growth).
    assert!(
        rolled.iter().any(|p| (p.1 - 7.0 / 30.0).abs() < 0.01),
        "{rolled:?}"
    );
    assert!(
        rolled.iter().any(|p| (p.1 - 3.0 / 30.0).abs() < 0.01),
        "{rolled:?}"
    );
}

#[test]
fn the_migration_backfill_writes_the_rows_the_writer_writes() {
    if crate::seal_everything() {
        return; // the backfill ran before chunks existed: it reads `samples` only
    }
    let (_dir, mut store) = filled();
    // The backfill reads rows only, as a database from before the head has them.
    store.head_into_rows();
    let incremental = rows(&store);
    // 36 buckets of 2 series and the run's 3; the open last bucket is not a row yet.
    assert_eq!(incremental.len(), 5 * 35, "{:?}", incremental.last());
    let backfill_sql = &crate::rollup::MIGRATION[crate::rollup::MIGRATION
        .find("INSERT INTO rollups")
        .unwrap()..];
    store
        .conn
        .execute_batch(&format!("DELETE FROM rollups; {backfill_sql}"))
        .unwrap();
    let backfilled = rows(&store);
    let open = T0 + 35 * 600_000;
    let closed: Vec<Row> = backfilled.iter().filter(|r| r.1 < open).cloned().collect();
    assert_eq!(closed.len(), incremental.len());
    // Sums as close as two summation orders allow: SQLite's sum() compensates (0.001
    // twenty times is 0.02000000000000001 there, 0.02 in the writer).
    let sums = |r: &Row| (r.4, r.8);
    let rest = |r: &Row| (r.0, r.1, r.2, r.3, r.5, r.6, r.7);
    for (a, b) in closed.iter().zip(&incremental) {
        assert_eq!(rest(a), rest(b));
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0);
        assert!(
            close(sums(a).0, sums(b).0) && close(sums(a).1, sums(b).1),
            "{a:?} {b:?}"
        );
    }
}
