//! Sealing moves samples into chunks without changing any read: every read path gives
//! the same answer, to the bit, before and after (the upgrade of a database written
//! before chunks), after a retention cut through a chunk, and after a late sample into
//! sealed time.

use crate::range::{Counting, Selector};
use crate::sealing::SPAN_MS;
use crate::{HostRound, ProbeRun, SeriesFilter, Store, retention};
use dcmon_probes::{Labels, ProbeOutput};

/// A window start, so the windows are easy to name in the test.
const T0: i64 = 83_333 * SPAN_MS;
const STEP: i64 = 30_000;
/// 26 hours of rounds: four whole windows and part of a fifth.
const ROUNDS: i64 = 26 * 120;

fn round(host: i64, i: i64, temp: f64) -> HostRound {
    let mut out = ProbeOutput::default();
    out.gauge("temp", Labels::new([("sensor", "cpu")]), temp, "celsius");
    // A counter that resets once (a reboot) and carries decimals.
    let bytes = if i < 2000 {
        1.0e6 + 1234.5 * i as f64
    } else {
        10.0 * (i - 2000) as f64
    };
    out.counter("bytes_total", Labels::default(), bytes, "bytes");
    // The hosts' rounds are a few ms apart, as real ones are.
    let ts = T0 + i * STEP + host * 7;
    HostRound::new(format!("h{host}"), vec![ProbeRun::ok("os", ts, out)])
}

fn temp(i: i64) -> f64 {
    20.0 + ((i * 13) % 40) as f64 * 0.25
}

fn filled(dir: &tempfile::TempDir) -> Store {
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let rounds: Vec<HostRound> = (0..ROUNDS)
        .flat_map(|i| (0..2).map(move |h| round(h, i, temp(i))))
        .collect();
    for batch in rounds.chunks(200) {
        store.write_rounds(batch).unwrap();
    }
    store
}

fn selector(name: &str, host: &str) -> Selector {
    Selector {
        name: name.into(),
        host: Some(host.into()),
        labels: Default::default(),
    }
}

/// Every read path's answer, floats as bits.
fn reads(store: &Store) -> Vec<String> {
    let end = T0 + ROUNDS * STEP;
    let mut out = Vec::new();
    let bits = |p: &[(i64, f64)]| -> Vec<(i64, u64)> {
        p.iter().map(|(t, v)| (*t, v.to_bits())).collect()
    };
    for name in ["temp", "bytes_total"] {
        let mut all = store.range_by_name(name, None, i64::MIN, i64::MAX).unwrap();
        all.sort_by(|a, b| a.host.cmp(&b.host));
        for s in &all {
            out.push(format!(
                "range_by_name {name} {} {:?}",
                s.host,
                bits(&s.points)
            ));
        }
        for (from, to) in [
            (i64::MIN, i64::MAX),
            (T0, T0 + 3_600_000),
            (T0 + 10 * 3_600_000, T0 + 10 * 3_600_000 + 60_000),
            (T0 + 6 * 3_600_000 - 1, T0 + 6 * 3_600_000 + 1),
            (end + 1, i64::MAX),
        ] {
            let mut latest = store.latest_by_name(name, None, from, to).unwrap();
            latest.sort_by(|a, b| a.host.cmp(&b.host));
            for s in latest {
                out.push(format!(
                    "latest {name} {from} {to} {} {:?}",
                    s.host,
                    bits(&s.points)
                ));
            }
        }
        for host in ["h0", "h1"] {
            let sel = selector(name, host);
            let r = store
                .range(&sel, T0 + 5 * 3_600_000, T0 + 7 * 3_600_000)
                .unwrap();
            out.push(format!("range {name} {host} {:?}", bits(&r[0].points)));
            for step in [60_000, 600_000, 3_600_000] {
                let b = store.downsampled(&sel, T0 + 3_000_000, end, step).unwrap();
                out.push(format!(
                    "downsampled {name} {host} {step} {:?}",
                    b[0].buckets
                ));
            }
            for (step, window) in [(60_000, 300_000), (1_800_000, 3_600_000)] {
                for how in [Counting::Rate, Counting::Increase] {
                    let c = store
                        .counting(&sel, how, T0 + 3_600_000, end, step, window)
                        .unwrap();
                    out.push(format!(
                        "counting {name} {host} {step} {how:?} {:?}",
                        bits(&c[0].points)
                    ));
                }
            }
        }
    }
    for s in store.series_latest(&SeriesFilter::default()).unwrap() {
        out.push(format!(
            "latest value {} {} {} {}",
            s.host,
            s.name,
            s.ts,
            s.value.to_bits()
        ));
    }
    out
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Every chunk of a series is older than every row it has in `samples`.
fn assert_invariant(store: &Store) {
    let broken: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM series s WHERE
               (SELECT max(end_ts) FROM chunks WHERE series_id = s.id) >=
               (SELECT min(ts) FROM samples WHERE series_id = s.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(broken, 0, "a chunk overlaps the rows of its series");
    // And older than its head samples.
    let src = store.source().unwrap();
    let ids: Vec<i64> = store
        .conn
        .prepare("SELECT id FROM series")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in ids {
        let end = crate::sealing::last_chunk_end(&store.conn, id).unwrap();
        let head = src.head_points(id, i64::MIN, i64::MAX).unwrap();
        if let (Some(end), Some(first)) = (end, head.first()) {
            assert!(
                end < first.0,
                "series {id}: a chunk ends at {end}, its head starts at {}",
                first.0
            );
        }
    }
}

#[test]
fn sealing_keeps_every_read_and_every_sample() {
    if crate::seal_everything() {
        return; // this test seals by itself, with the real window
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(&dir);
    let from_head = reads(&store);
    // The upgrade: a database of the release before the head has every sample in rows.
    store.head_into_rows();
    let before = reads(&store);
    assert_eq!(before, from_head, "rows read as the head did");
    let rows = count(&store, "samples");
    // 2 hosts x (2 series + the runs' 3).
    assert_eq!(rows, 10 * ROUNDS);
    let now = T0 + ROUNDS * STEP;
    let progress = store.seal(now).unwrap();
    // Ten-minute windows up to the one holding each series' last two samples (25:50
    // to 26:00): 155 a series; the six-hour windows that ended (0-3) are merged, one
    // chunk each, and the 11 small ones of window 4 too (7 or more).
    assert_eq!(progress.chunks_written, 10 * 155);
    assert_eq!(progress.samples_sealed as i64, 10 * (ROUNDS - 20));
    assert_eq!(count(&store, "chunks"), 10 * 5);
    assert_eq!(count(&store, "samples"), 10 * 20);
    assert_invariant(&store);
    // The sealed buckets' rollup rows are gone (reads sum them from the chunks); the
    // closed buckets of window 4 keep theirs.
    let rollups = |from: i64, to: i64| -> i64 {
        store
            .conn
            .query_row(
                "SELECT count(*) FROM rollups WHERE ts >= ?1 AND ts < ?2",
                [from, to],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(rollups(i64::MIN, now - 600_000), 0);
    let stats = store.db_stats().unwrap();
    assert_eq!((stats.samples, stats.chunks), (rows, 10 * 5));
    assert_eq!(
        (stats.oldest, stats.newest),
        (Some(T0), Some(T0 + (ROUNDS - 1) * STEP + 7))
    );
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    let after = reads(&store);
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a, b);
    }
    // A second pass has nothing left to seal.
    assert_eq!(store.seal(now).unwrap().samples_sealed, 0);
    // Reopened (the writer's caches empty), the same.
    drop(store);
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(reads(&store), before);

    // A late sample into sealed time (window 1, between two rounds): its chunks go back
    // to `samples`, and the reads show it with everything else unchanged.
    let late = 8 * 120;
    let mut r = round(0, late, 99.5);
    r.runs[0].started_ms += 15_000;
    store.write_round(&r).unwrap();
    assert_invariant(&store);
    let temp_h0 = &store
        .range(&selector("temp", "h0"), i64::MIN, i64::MAX)
        .unwrap()[0];
    assert_eq!(temp_h0.points.len() as i64, ROUNDS + 1);
    assert!(temp_h0.points.contains(&(T0 + late * STEP + 15_000, 99.5)));
    let bucket = T0 + 8 * 3_600_000;
    let b = store
        .downsampled(&selector("temp", "h0"), bucket, bucket + 599_999, 600_000)
        .unwrap();
    assert_eq!((b[0].buckets[0].count, b[0].buckets[0].max), (21, 99.5));
    // Sealed again, the same reads.
    let with_late = reads(&store);
    store.seal(now).unwrap();
    assert_invariant(&store);
    assert_eq!(reads(&store), with_late);

    // Retention through window 1: window 0 goes whole, window 1 is trimmed at reading.
    let cut = T0 + 7 * 3_600_000;
    let chunks = count(&store, "chunks");
    let progress = store
        .sweep(retention::Cutoffs {
            samples_before_ms: cut,
            logs_before_ms: i64::MIN,
            seal_now_ms: now,
        })
        .unwrap();
    assert!(progress.done);
    assert_eq!(count(&store, "chunks"), chunks - 10);
    assert_eq!(progress.samples_deleted, 10 * 720);
    for s in store
        .range_by_name("temp", None, i64::MIN, i64::MAX)
        .unwrap()
    {
        let first = s.points[0].0;
        assert!(
            (cut..cut + STEP).contains(&first),
            "{} starts at {first}",
            s.host
        );
    }
    let latest = store
        .latest_by_name("temp", None, i64::MIN, cut - 1)
        .unwrap();
    assert!(latest.is_empty(), "{latest:?}");
}

#[test]
fn a_large_series_is_sealed_in_steps_within_the_budget() {
    if crate::seal_everything() {
        return; // the writer would have sealed it already
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("b.db")).unwrap();
    // One sample a minute for 14 hours: windows of 360 samples.
    let minute = 60_000;
    let rounds: Vec<HostRound> = (0..14 * 60)
        .map(|i| {
            let mut out = ProbeOutput::default();
            out.gauge("g", Labels::default(), (i % 17) as f64, "");
            HostRound::new("h", vec![ProbeRun::ok("os", T0 + i * minute, out)])
        })
        .collect();
    for batch in rounds.chunks(100) {
        store.write_rounds(batch).unwrap();
    }
    let before = store.range_by_name("g", None, i64::MIN, i64::MAX).unwrap();
    store.seal_budget = 100;
    let mut sealed = Vec::new();
    let mut progress = super::sealing::SealProgress::default();
    while !progress.done {
        let was = progress.samples_sealed;
        progress = store.seal_step(i64::MAX, progress).unwrap();
        sealed.push(progress.samples_sealed - was);
        // Every step reads the same, to the bit.
        assert_eq!(
            store.range_by_name("g", None, i64::MIN, i64::MAX).unwrap(),
            before
        );
    }
    // Ten-minute windows of ten samples, ten a step; the window holding the last two
    // samples stays in the head. Merging (budgeted too) takes steps of its own. Four
    // series: `g` and the run's three.
    assert!(sealed.iter().all(|n| *n <= 100), "{sealed:?}");
    assert_eq!(sealed.iter().sum::<u64>(), 4 * 830, "{sealed:?}");
    let chunks: i64 = store
        .conn
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        chunks,
        4 * 3,
        "merged into six-hour windows: 0-6 h, 6-12 h, 12-14 h"
    );
    assert_invariant(&store);
    assert_eq!(
        store.range_by_name("g", None, i64::MIN, i64::MAX).unwrap(),
        before
    );
}

#[test]
fn a_damaged_chunk_is_named_by_the_check_and_by_reads() {
    if crate::seal_everything() {
        return; // this test seals by itself
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled(&dir);
    store.seal(i64::MAX).unwrap();
    store
        .conn
        .execute(
            "UPDATE chunks SET data = substr(data, 1, 30)
             WHERE rowid = (SELECT min(rowid) FROM chunks)",
            [],
        )
        .unwrap();
    let (id, start): (i64, i64) = store
        .conn
        .query_row(
            "SELECT series_id, start_ts FROM chunks WHERE rowid = (SELECT min(rowid) FROM chunks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let problems = store.integrity_check().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let named = format!("series {id}, chunk from {start} ms");
    assert!(problems[0].starts_with(&named), "{problems:?}");
    let err = store
        .points_of(id, i64::MIN, i64::MAX)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&named) && err.contains("corrupt chunk"),
        "{err}"
    );
    // The other series read as before.
    let other = store.points_of(id + 1, i64::MIN, i64::MAX).unwrap();
    assert_eq!(other.len() as i64, ROUNDS);
}

#[test]
fn a_read_sees_one_state_while_the_writer_seals() {
    if crate::seal_everything() {
        return; // this test seals by itself
    }
    let all = |r: &Store| r.range_by_name("temp", None, i64::MIN, i64::MAX);
    // A reader of this process shares the writer's head; one of another process has
    // its own, loaded from the log.
    for own_head in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = filled(&dir);
        let reader = Store::open(&dir.path().join("s.db")).unwrap();
        let reader = if own_head {
            reader.with_own_head()
        } else {
            reader
        };
        let before = all(&reader).unwrap();
        assert_eq!(before.len(), 2);
        let mut attempts = 0;
        reader
            .snapshot(|r| {
                attempts += 1;
                // A first statement: the snapshot starts here.
                let chunks = count(r, "chunks");
                if attempts == 1 {
                    assert_eq!(chunks, 0);
                    // The writer commits a whole seal between two statements of one read.
                    writer.seal(i64::MAX).unwrap();
                }
                assert_eq!(all(r)?, before, "attempt {attempts} saw half a seal");
                Ok(())
            })
            .unwrap();
        // The shared head moved past the snapshot: the read ran again. The own head
        // was read from the log as the snapshot had it.
        assert_eq!(attempts, if own_head { 1 } else { 2 });
        // The next read sees the sealed state, the same points.
        assert!(count(&reader, "chunks") > 0);
        assert_eq!(all(&reader).unwrap(), before);
        assert_invariant(&reader);
    }
}

#[test]
fn extreme_times_seal_and_read_back_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("x.db")).unwrap();
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -1,
        0,
        1,
        T0,
        i64::MAX - 600_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    for (i, ts) in times.iter().enumerate() {
        let mut out = ProbeOutput::default();
        out.counter("c_total", Labels::default(), i as f64 * 1.5, "");
        store
            .write_round(&HostRound::new("h", vec![ProbeRun::ok("os", *ts, out)]))
            .unwrap();
    }
    let all = |store: &Store| {
        store
            .range(&selector("c_total", "h"), i64::MIN, i64::MAX)
            .unwrap()[0]
            .points
            .clone()
    };
    let before = all(&store);
    assert_eq!(before.len(), times.len());
    // Another process reads the head from its log, the sample at i64::MIN too.
    let other = || {
        Store::open(&dir.path().join("x.db"))
            .unwrap()
            .with_own_head()
    };
    assert_eq!(all(&other()), before);
    store.seal(i64::MAX).unwrap();
    assert!(count(&store, "chunks") > 0);
    assert_invariant(&store);
    assert_eq!(all(&store), before);
    assert_eq!(all(&other()), before);
    // A grid over all of time overflows: refused with a reason, never a panic.
    let whole = store.downsampled(&selector("c_total", "h"), i64::MIN, i64::MAX, i64::MAX);
    assert!(whole.unwrap_err().to_string().contains("no step grid"));
    let (from, to) = (-(1i64 << 61), 1i64 << 61);
    for step in [1i64 << 52, 1 << 61] {
        let b = store
            .downsampled(&selector("c_total", "h"), from, to, step)
            .unwrap();
        assert!(!b[0].buckets.is_empty(), "step {step}");
        let r = store
            .counting(
                &selector("c_total", "h"),
                Counting::Rate,
                from,
                to,
                step,
                step,
            )
            .unwrap();
        assert_eq!(r.len(), 1);
    }
    // Late writes at both ends of time: the very start unseals everything.
    for ts in [i64::MAX - 2, i64::MAX - 600_001] {
        let mut out = ProbeOutput::default();
        out.counter("c_total", Labels::default(), 0.5, "");
        store
            .write_round(&HostRound::new("h", vec![ProbeRun::ok("os", ts, out)]))
            .unwrap();
    }
    let mut out = ProbeOutput::default();
    out.counter("c_total", Labels::default(), 0.25, "");
    store
        .write_round(&HostRound::new(
            "h",
            vec![ProbeRun::ok("os", i64::MIN + 2, out)],
        ))
        .unwrap();
    assert_invariant(&store);
    assert_eq!(all(&store).len(), times.len() + 3);
    store
        .sweep(retention::Cutoffs {
            samples_before_ms: i64::MIN,
            logs_before_ms: i64::MIN,
            seal_now_ms: i64::MAX,
        })
        .unwrap();
    assert_eq!(all(&store).len(), times.len() + 3);
}

#[test]
fn a_writer_notices_sealing_done_by_another_process() {
    if crate::seal_everything() {
        return; // this test seals by itself
    }
    let dir = tempfile::tempdir().unwrap();
    // The writer knows every series' sealed end (none yet) from its own writes.
    let mut writer = filled(&dir);
    let before = writer
        .range(&selector("temp", "h0"), i64::MIN, i64::MAX)
        .unwrap();
    // Another process (`dcmon poll` after its round) seals the same file.
    let mut other = Store::open(&dir.path().join("s.db"))
        .unwrap()
        .with_own_head();
    assert!(other.seal(T0 + ROUNDS * STEP).unwrap().samples_sealed > 0);
    // A late sample into the time the other one sealed: its chunk moves back to rows,
    // as it would for the writer's own sealing.
    let late = 8 * 120;
    let mut r = round(0, late, 99.5);
    r.runs[0].started_ms += 15_000;
    writer.write_round(&r).unwrap();
    assert_invariant(&writer);
    let after = writer
        .range(&selector("temp", "h0"), i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(after[0].points.len(), before[0].points.len() + 1);
    assert!(after[0].points.contains(&(T0 + late * STEP + 15_000, 99.5)));
    // The other process reads the same.
    assert_eq!(
        other
            .range(&selector("temp", "h0"), i64::MIN, i64::MAX)
            .unwrap(),
        after
    );
}

#[test]
fn a_database_of_the_release_before_the_head_opens_and_reads_the_same() {
    if crate::seal_everything() {
        return; // the old release wrote rows only
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // The schema as the release before the head left it (migration 15), its samples
    // written as that release wrote them: a row each, rollups from migration 4's SQL.
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::schema::MIGRATIONS.to_version(&mut conn, 15).unwrap();
        let has_log: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'head_log')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!has_log);
        conn.execute(
            "INSERT INTO series (id, host, name, labels, kind, unit) VALUES
             (1, 'h0', 'temp', '{\"sensor\":\"cpu\"}', 'gauge', 'celsius'),
             (2, 'h0', 'bytes_total', '{}', 'counter', 'bytes')",
            [],
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..ROUNDS {
            let ts = T0 + i * STEP;
            tx.execute(
                "INSERT INTO samples (series_id, ts, value) VALUES (1, ?1, ?2), (2, ?1, ?3)",
                rusqlite::params![ts, temp(i), 1.0e6 + 1234.5 * i as f64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    store.rebuild_rollups().unwrap();
    let read = |store: &Store| {
        let mut out = Vec::new();
        for name in ["temp", "bytes_total"] {
            let sel = selector(name, "h0");
            out.push(format!(
                "{:?}",
                store.range(&sel, i64::MIN, i64::MAX).unwrap()
            ));
            out.push(format!(
                "{:?}",
                store
                    .downsampled(&sel, T0, T0 + ROUNDS * STEP, 3_600_000)
                    .unwrap()
            ));
            out.push(format!(
                "{:?}",
                store
                    .counting(
                        &sel,
                        Counting::Rate,
                        T0 + 3_600_000,
                        T0 + ROUNDS * STEP,
                        1_800_000,
                        3_600_000
                    )
                    .unwrap()
            ));
        }
        out
    };
    let before = read(&store);
    assert!(
        before[0].contains("(1800021600000, 20.0)"),
        "{}",
        &before[0][..200]
    );
    // New rounds go to the head, after the rows; sealing takes both; nothing changes.
    let mut out = ProbeOutput::default();
    out.gauge("temp", Labels::new([("sensor", "cpu")]), 99.0, "celsius");
    let last = T0 + ROUNDS * STEP;
    store
        .write_round(&HostRound::new("h0", vec![ProbeRun::ok("os", last, out)]))
        .unwrap();
    let with_new = read(&store);
    assert!(with_new[0].contains(&format!("({last}, 99.0)")));
    let sealed = store.seal(last + 3_600_000).unwrap();
    // Everything before the 10-minute window holding each series' second last sample.
    assert_eq!(sealed.samples_sealed as i64, 2 * (ROUNDS - 20));
    assert_eq!(count(&store, "samples"), 2 * 20);
    assert_invariant(&store);
    assert_eq!(read(&store), with_new);
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
}

#[test]
fn a_damaged_head_log_row_is_named_by_the_check_and_reads_go_on() {
    if crate::seal_everything() {
        return; // the head would be sealed already
    }
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir);
    let before = store
        .range_by_name("temp", None, i64::MIN, i64::MAX)
        .unwrap();
    // The last row cut short (a damaged page, a bad copy).
    store
        .conn
        .execute(
            "UPDATE head_log SET data = substr(data, 1, 40) WHERE id = (SELECT max(id) FROM head_log)",
            [],
        )
        .unwrap();
    let problems = store.integrity_check().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("head log row "), "{problems:?}");
    // Another process reads every sample but the damaged row's.
    let other = Store::open(&dir.path().join("s.db"))
        .unwrap()
        .with_own_head();
    let after = other
        .range_by_name("temp", None, i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(after.len(), before.len());
    let count = |s: &[crate::range::SeriesPoints]| s.iter().map(|s| s.points.len()).sum::<usize>();
    // The row held one batch: 200 rounds of 2 hosts.
    assert!(count(&after) < count(&before) && count(&after) >= count(&before) - 400);
}
