//! Sealing: a series' samples move out of the head (`head.rs`, in memory and its log)
//! and out of `samples` (rows: late writes, and databases from before the head) into
//! compressed chunks (`chunk.rs`, under 2 bytes a sample). The head is sealed by
//! rollup bucket (10 minutes) a few minutes after each bucket ends, so it holds about
//! a quarter of an hour, into small chunks (packed, cheap to write); the chunks of each
//! aligned six-hour window are merged into one pco chunk every hour while the window
//! fills, and once more when it has ended.
//!
//! One invariant keeps every read simple (`points.rs`): **all of a series' chunks hold
//! older samples than any of its rows or head samples.** The sealer keeps it by sealing,
//! series by series, everything before one cut; a write at or before the end of a
//! series' last chunk keeps it by first unsealing (moving back into `samples`) every
//! chunk ending at or after that time.
//!
//! Sealing also deletes the rollup rows of the buckets it sealed whole (a window holds
//! whole buckets); readers sum those from the chunks, and unsealing writes them again.
//!
//! The last two samples of a series are never sealed: the latest-value readers (the
//! overview, `dcmon query`, the shared latest values) read them from the head and rows
//! alone, also for a series that stopped reporting days ago.

use crate::points::Source;
use crate::rate::Point;
use crate::rollup::{ROLLUP_MS, bucket_of};
use crate::{Store, StoreError, chunk, sql};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Migration 15: the chunks, and the store's own marks (the retention cut).
pub(crate) const MIGRATION: &str = "
    -- One series' samples over one window, compressed (see chunk.rs). Keyed by the
    -- last sample's time: a range read seeks the first chunk ending in its range.
    CREATE TABLE chunks (
        series_id INTEGER NOT NULL,
        start_ts  INTEGER NOT NULL, -- the first sample's time, ms
        end_ts    INTEGER NOT NULL, -- the last sample's time, ms
        count     INTEGER NOT NULL,
        min       REAL,             -- NULL when every value is NaN
        max       REAL,
        sum       REAL,
        data      BLOB NOT NULL,
        PRIMARY KEY (series_id, end_ts)
    );
    -- Small settings the store keeps for its readers: key -> integer.
    CREATE TABLE marks (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
";

/// Chunks are merged into aligned windows of this length (bench part (k): 6-hour chunks
/// of the realistic mix cost 1.60 bytes a sample, 2-hour ones 1.93).
pub const SPAN_MS: i64 = 6 * 3_600_000;
/// The head is sealed by windows of this length: one rollup bucket, so sealing drops
/// whole buckets' rows.
pub const HEAD_SPAN_MS: i64 = ROLLUP_MS;
// A rollup bucket lies inside one window of each kind.
const _: () = assert!(SPAN_MS % HEAD_SPAN_MS == 0 && HEAD_SPAN_MS % ROLLUP_MS == 0);
/// A head window is sealed once it ended at least this long ago: rounds of a slow host
/// land late, and one later still unseals its chunk first.
pub const HEAD_AFTER_MS: i64 = 2 * 60_000;
/// A six-hour window still filling has its chunks merged once it holds this many: a
/// merged one and an hour of small ones (small chunks cost about 12 bytes a sample).
pub const MERGE_AT_CHUNKS: usize = 7;
/// Most samples one sealing step moves, so a step (one transaction) holds the write
/// lock well under a second even when a database from before chunks is sealed.
pub const SAMPLES_PER_STEP: usize = 100_000;

/// The mark below which every window's chunks are merged.
pub(crate) const MERGED_MARK: &str = "merged_before";
/// The mark holding the retention cut: chunk samples older than it are not read.
pub(crate) const RETENTION_MARK: &str = "samples_before";

/// Where a series' chunks and rows end (`None`: it has none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeriesEnds {
    pub chunks: Option<i64>,
    pub rows: Option<i64>,
}

/// The writer's view of each series' ends, so a write finds its part (head, or rows and
/// maybe unsealing first) with one map lookup and no query.
pub(crate) type Ends = crate::FastMap<i64, SeriesEnds>;

/// `ts` rounded down to its window's start.
fn window_of(ts: i64, span: i64) -> i64 {
    // Saturating: nothing is earlier than the first window.
    ts.saturating_sub(ts.rem_euclid(span))
}

/// Where a sealing pass stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealProgress {
    /// Series with ids up to this one are sealed; the next step starts after it.
    pub after_series: i64,
    pub samples_sealed: u64,
    pub chunks_written: u64,
    pub done: bool,
}

/// Where series `id`'s chunks and rows end, from the cache or the tables.
pub(crate) fn series_ends(
    conn: &Connection,
    cache: &mut Ends,
    id: i64,
) -> Result<SeriesEnds, StoreError> {
    if let Some(e) = cache.get(&id) {
        return Ok(*e);
    }
    let e = conn
        .prepare_cached(
            "SELECT (SELECT max(end_ts) FROM chunks WHERE series_id = ?1),
                    (SELECT max(ts) FROM samples WHERE series_id = ?1)",
        )
        .map_err(sql("prepare series ends"))?
        .query_row([id], |r| {
            Ok(SeriesEnds {
                chunks: r.get(0)?,
                rows: r.get(1)?,
            })
        })
        .map_err(sql("read series ends"))?;
    cache.insert(id, e);
    Ok(e)
}

/// The time of series `id`'s last sealed sample, if it has chunks.
pub(crate) fn last_chunk_end(
    conn: &rusqlite::Connection,
    id: i64,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT max(end_ts) FROM chunks WHERE series_id = ?1")
        .map_err(sql("prepare chunk end"))?
        .query_row([id], |r| r.get(0))
        .map_err(sql("read chunk end"))
}

/// Before a sample of series `id` at `ts` is written: when `ts` falls into sealed time,
/// moves the chunks ending at or after `ts` back into `samples` (see the module's
/// invariant). Samples older than the retention cut are not moved back.
pub(crate) fn unseal_for_write(
    src: &Source<'_>,
    cache: &mut Ends,
    id: i64,
    ts: i64,
) -> Result<(), StoreError> {
    let tx = src.conn;
    if series_ends(tx, cache, id)?
        .chunks
        .is_none_or(|end| ts > end)
    {
        return Ok(());
    }
    let cut = retention_cut(tx)?;
    let chunks: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare_cached(
                "DELETE FROM chunks WHERE series_id = ?1 AND end_ts >= ?2 RETURNING start_ts, data",
            )
            .map_err(sql("prepare unseal"))?;
        let rows = stmt
            .query_map(params![id, ts], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("unseal chunks"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("read unsealed chunk"))?
    };
    let mut insert = tx
        .prepare_cached("INSERT OR IGNORE INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3)")
        .map_err(sql("prepare unsealed sample"))?;
    let mut buckets = Vec::new();
    let mut earliest = None::<i64>;
    for (start, data) in chunks {
        earliest = Some(earliest.map_or(start, |e| e.min(start)));
        let decoded = chunk::decode(&data).map_err(|e| in_chunk(id, start, e))?;
        for (t, v) in decoded.times.iter().zip(&decoded.values) {
            if *t >= cut {
                insert
                    .execute(params![id, t, v])
                    .map_err(sql("write unsealed sample"))?;
                if buckets.last() != Some(&bucket_of(*t)) {
                    buckets.push(bucket_of(*t));
                }
            }
        }
    }
    // Their buckets get rollup rows again (sealing dropped them).
    for bucket in buckets {
        crate::rollup::recompute(src, id, bucket)?;
    }
    // Sealed again later as small chunks, their window is merged again.
    if let Some(start) = earliest {
        tx.prepare_cached("UPDATE marks SET value = min(value, ?2) WHERE key = ?1")
            .map_err(sql("prepare merge mark"))?
            .execute(params![MERGED_MARK, window_of(start, SPAN_MS)])
            .map_err(sql("lower merge mark"))?;
    }
    // Chunks and rows both moved: read afresh when next needed.
    cache.remove(&id);
    Ok(())
}

/// A chunk error named by its series and first sample.
pub(crate) fn in_chunk(id: i64, start: i64, e: StoreError) -> StoreError {
    StoreError::Refused(format!("series {id}, chunk from {start} ms: {e}"))
}

/// The retention cut readers apply to chunk samples (`i64::MIN` before any sweep).
pub(crate) fn retention_cut(conn: &rusqlite::Connection) -> Result<i64, StoreError> {
    let cut: Option<i64> = conn
        .prepare_cached("SELECT value FROM marks WHERE key = ?1")
        .map_err(sql("prepare retention mark"))?
        .query_row([RETENTION_MARK], |r| r.get(0))
        .optional()
        .map_err(sql("read retention mark"))?;
    Ok(cut.unwrap_or(i64::MIN))
}

/// What sealing one series did.
#[derive(Debug, Default)]
pub(crate) struct Sealed {
    pub samples: usize,
    pub chunks: usize,
    /// Everything due was sealed (else the budget ran out inside this series).
    pub whole: bool,
    /// The head's points of this series before this time went into chunks.
    pub head_before: Option<i64>,
}

/// Seals one series' samples (rows, then head) before `seal_before` (window starts of
/// `span`), at most `budget` of them. A series with more than the budget left is sealed
/// up to the last whole window read (or the budget, when one window alone is larger),
/// and the caller comes back to it.
pub(crate) fn seal_series(
    src: &Source<'_>,
    id: i64,
    seal_before: i64,
    span: i64,
    budget: usize,
    has_rows: bool,
) -> Result<Sealed, StoreError> {
    let tx = src.conn;
    // The last two samples stay (see the module comment).
    let Some((second_last, _)) = src.last_two(id)?[1] else {
        return Ok(Sealed {
            whole: true,
            ..Sealed::default()
        });
    };
    let cut = window_of(seal_before, span).min(window_of(second_last, span));
    let mut points: Vec<Point> = Vec::new();
    if has_rows {
        // No `LIMIT ?`: SQLite prepares a statement again whenever a parameter its plan
        // read is bound anew (a quarter of the sealing's time under perf).
        let mut stmt = tx
            .prepare_cached(
                "SELECT ts, value FROM samples WHERE series_id = ?1 AND ts < ?2 ORDER BY ts",
            )
            .map_err(sql("prepare samples to seal"))?;
        let mut rows = stmt
            .query(params![id, cut])
            .map_err(sql("read samples to seal"))?;
        while points.len() <= budget {
            let Some(r) = rows.next().map_err(sql("read sample to seal"))? else {
                break;
            };
            points.push((
                r.get(0).map_err(sql("read sample time"))?,
                r.get(1).map_err(sql("read sample value"))?,
            ));
        }
    }
    // Rows are older than the head: the head's part follows them.
    let from_rows = points.len();
    if from_rows <= budget {
        let head = src.head_points(id, i64::MIN, cut.saturating_sub(1))?;
        points.extend(head.into_iter().take(budget + 1 - from_rows));
    }
    let whole = points.len() <= budget;
    // Everything before this time is sealed once this step commits.
    let mut sealed_below = cut;
    if !whole {
        let last_window = window_of(points[budget].0, span);
        let keep = points.partition_point(|p| p.0 < last_window);
        let keep = if keep > 0 { keep } else { budget };
        sealed_below = points[keep].0;
        points.truncate(keep);
    }
    let Some(&(last_ts, _)) = points.last() else {
        return Ok(Sealed {
            whole: true,
            ..Sealed::default()
        });
    };
    let mut chunks = 0;
    for window in points.chunk_by(|a, b| window_of(a.0, span) == window_of(b.0, span)) {
        write_chunk(tx, id, window, true)?;
        chunks += 1;
    }
    if from_rows > 0 {
        tx.prepare_cached("DELETE FROM samples WHERE series_id = ?1 AND ts <= ?2")
            .map_err(sql("prepare sealed delete"))?
            .execute(params![id, last_ts])
            .map_err(sql("delete sealed samples"))?;
    }
    // The rollup rows of buckets sealed whole: readers sum those buckets from the chunks
    // (a row costs about as much as twenty samples sealed).
    tx.prepare_cached("DELETE FROM rollups WHERE series_id = ?1 AND ts <= ?2")
        .map_err(sql("prepare sealed rollup delete"))?
        .execute(params![id, sealed_below.saturating_sub(ROLLUP_MS)])
        .map_err(sql("delete sealed rollups"))?;
    Ok(Sealed {
        samples: points.len(),
        chunks,
        whole,
        head_before: (points.len() > from_rows).then(|| last_ts.saturating_add(1)),
    })
}

/// Writes one chunk of `points` (time order, one window) of series `id`: small (packed,
/// merged later) or pco.
fn write_chunk(
    conn: &Connection,
    id: i64,
    points: &[Point],
    small: bool,
) -> Result<(), StoreError> {
    let times: Vec<i64> = points.iter().map(|p| p.0).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let data = match small {
        true => chunk::encode_small(&times, &values)?,
        false => chunk::encode(&times, &values)?,
    };
    let finite = || values.iter().copied().filter(|v| !v.is_nan());
    let min = finite().reduce(f64::min);
    let max = finite().reduce(f64::max);
    let sum: f64 = values.iter().sum();
    let sum = (!sum.is_nan()).then_some(sum);
    conn.prepare_cached(
        "INSERT INTO chunks (series_id, start_ts, end_ts, count, min, max, sum, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql("prepare chunk insert"))?
    .execute(params![
        id,
        times[0],
        times[times.len() - 1],
        times.len() as i64,
        min,
        max,
        sum,
        data
    ])
    .map_err(sql("write chunk"))?;
    Ok(())
}

/// Merges series `id`'s chunks of each `span` window that ended before `merge_before`
/// (and not before `merged_from`, below which all are merged) into one chunk per
/// window, and those of a window still filling once it holds `MERGE_AT_CHUNKS`; at most
/// `budget` samples. Returns the samples merged and whether all due were.
pub(crate) fn merge_series(
    conn: &Connection,
    id: i64,
    merged_from: i64,
    merge_before: i64,
    span: i64,
    budget: usize,
) -> Result<(usize, bool), StoreError> {
    let cut = window_of(merge_before, span);
    let listed: Vec<(i64, i64, i64)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT start_ts, end_ts, count FROM chunks
                 WHERE series_id = ?1 AND end_ts >= ?2 ORDER BY end_ts",
            )
            .map_err(sql("prepare chunks to merge"))?;
        let rows = stmt
            .query_map(params![id, merged_from], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql("list chunks to merge"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("read chunk to merge"))?
    };
    let mut merged = 0usize;
    for group in listed.chunk_by(|a, b| window_of(a.0, span) == window_of(b.0, span)) {
        let ended = window_of(group[0].0, span) < cut;
        let due = if ended { 2 } else { MERGE_AT_CHUNKS };
        if group.len() < due
            || window_of(group[group.len() - 1].1, span) != window_of(group[0].0, span)
        {
            continue;
        }
        let samples: usize = group.iter().map(|c| c.2.max(0) as usize).sum();
        if merged > 0 && merged + samples > budget {
            return Ok((merged, false));
        }
        let mut points = Vec::with_capacity(samples);
        {
            let mut stmt = conn
                .prepare_cached(
                    "DELETE FROM chunks WHERE series_id = ?1 AND end_ts >= ?2 AND end_ts <= ?3
                     RETURNING start_ts, end_ts, data",
                )
                .map_err(sql("prepare chunk merge"))?;
            let mut rows = stmt
                .query(params![id, group[0].1, group[group.len() - 1].1])
                .map_err(sql("take chunks to merge"))?;
            let mut taken = Vec::new();
            while let Some(r) = rows.next().map_err(sql("read chunk to merge"))? {
                let start: i64 = r.get(0).map_err(sql("read chunk start"))?;
                let end: i64 = r.get(1).map_err(sql("read chunk end"))?;
                let data: Vec<u8> = r.get(2).map_err(sql("read chunk data"))?;
                taken.push((end, start, data));
            }
            // RETURNING gives no order: the chunks' own order is by their end.
            taken.sort_by_key(|c| c.0);
            for (_, start, data) in taken {
                let decoded = chunk::decode(&data).map_err(|e| in_chunk(id, start, e))?;
                points.extend(decoded.times.into_iter().zip(decoded.values));
            }
        }
        write_chunk(conn, id, &points, false)?;
        merged += points.len();
    }
    Ok((merged, true))
}

/// A sealing pass's times, from the time it runs at.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    /// Head and rows: windows ending before this are sealed.
    seal_before: i64,
    /// Chunks: six-hour windows ending before this are merged whole.
    merge_before: i64,
}

impl Cuts {
    fn at(now_ms: i64) -> Cuts {
        // A window's last small chunk is sealed, and the window merged, in one pass.
        let sealed = now_ms.saturating_sub(HEAD_AFTER_MS);
        Cuts {
            seal_before: sealed,
            merge_before: sealed,
        }
    }
}

/// The mark below which every window is merged (`i64::MIN`: none yet).
fn merged_mark(conn: &Connection) -> Result<i64, StoreError> {
    let mark: Option<i64> = conn
        .prepare_cached("SELECT value FROM marks WHERE key = ?1")
        .map_err(sql("prepare merge mark"))?
        .query_row([MERGED_MARK], |r| r.get(0))
        .optional()
        .map_err(sql("read merge mark"))?;
    Ok(mark.unwrap_or(i64::MIN))
}

impl Store {
    /// One sealing step in its own transaction: series after `progress.after_series`
    /// until about `SAMPLES_PER_STEP` samples moved, everything before the head window
    /// that ended `HEAD_AFTER_MS` before `now_ms` (and before each series' last two
    /// samples), and the chunks of six-hour windows that ended by then merged (those of
    /// the window filling, hourly). The step that ends a pass also cleans the head's log.
    pub fn seal_step(
        &mut self,
        now_ms: i64,
        mut progress: SealProgress,
    ) -> Result<SealProgress, StoreError> {
        let cuts = Cuts::at(now_ms);
        let merge_span = self.merge_span_ms;
        let head = self.head.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin sealing"))?;
        head.sync(&tx)?;
        let begun = crate::head::position(&tx)?;
        let merged_from = merged_mark(&tx)?;
        let mut budget = self.seal_budget;
        let mut done = true;
        let mut last = progress.after_series;
        let mut touched = Vec::new();
        let mut head_removed = Vec::new();
        {
            let src = Source::writer(&tx, &head, &self.pending);
            let mut next = tx
                .prepare_cached("SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT 1")
                .map_err(sql("prepare next series"))?;
            while budget > 0 {
                let Some(id) = next
                    .query_row([last], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(sql("read next series"))?
                else {
                    break;
                };
                let has_rows = series_ends(&tx, &mut self.ends, id)?.rows.is_some();
                let sealed =
                    seal_series(&src, id, cuts.seal_before, HEAD_SPAN_MS, budget, has_rows)?;
                budget -= sealed.samples.min(budget);
                progress.samples_sealed += sealed.samples as u64;
                progress.chunks_written += sealed.chunks as u64;
                if sealed.chunks > 0 {
                    touched.push(id);
                }
                if let Some(t) = sealed.head_before {
                    head_removed.push((id, t));
                }
                if !sealed.whole {
                    done = false;
                    break; // this series again next step
                }
                // Chunk counts change only where this pass sealed, or when a window
                // ended (or was unsealed) since the last whole pass.
                let due =
                    sealed.chunks > 0 || merged_from < window_of(cuts.merge_before, merge_span);
                let (merged, whole) = match due {
                    true => {
                        merge_series(&tx, id, merged_from, cuts.merge_before, merge_span, budget)?
                    }
                    false => (0, true),
                };
                budget -= merged.min(budget);
                if merged > 0 {
                    touched.push(id);
                }
                if !whole {
                    done = false;
                    break;
                }
                last = id;
            }
            if budget == 0 {
                done = false;
            }
        }
        // Any chunk written moves the epoch: readers of the head, and the writers'
        // caches of sealed ends in every process, look again.
        let epoch = match head_removed.is_empty() && touched.is_empty() {
            true => None,
            false => Some(crate::head::bump_epoch(&tx)?),
        };
        crate::head::commit_taking_out(
            &head,
            tx,
            begun,
            epoch,
            &head_removed,
            |tx, state, now| {
                if done {
                    // A whole pass: every merge due is done, and the log rows of sealed
                    // time can go (what the head still holds of it is carried to a new row).
                    tx.prepare_cached("INSERT OR REPLACE INTO marks (key, value) VALUES (?1, ?2)")
                        .map_err(sql("prepare merge mark"))?
                        .execute(params![
                            MERGED_MARK,
                            window_of(cuts.merge_before, merge_span)
                        ])
                        .map_err(sql("write merge mark"))?;
                    let upto = window_of(cuts.seal_before, HEAD_SPAN_MS).saturating_sub(1);
                    if let Some(carried) = crate::head::clean_log(tx, state, upto)? {
                        state.logged(now, carried);
                    }
                }
                Ok(())
            },
        )?;
        if let Some(epoch) = epoch {
            self.note_epoch(begun.epoch, epoch);
        }
        // Only after the commit: a rolled-back step sealed nothing.
        for id in touched {
            self.ends.remove(&id);
        }
        progress.after_series = last;
        progress.done = done;
        Ok(progress)
    }

    /// Seals everything sealable at `now_ms`, step after step (tests, the benchmark and
    /// one-shot use; the writer interleaves steps with rounds).
    pub fn seal(&mut self, now_ms: i64) -> Result<SealProgress, StoreError> {
        let mut progress = SealProgress::default();
        loop {
            progress = self.seal_step(now_ms, progress)?;
            if progress.done {
                return Ok(progress);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_below_zero_too() {
        assert_eq!(window_of(SPAN_MS + 5, SPAN_MS), SPAN_MS);
        assert_eq!(window_of(-1, SPAN_MS), -SPAN_MS);
        assert_eq!(window_of(i64::MIN, SPAN_MS), i64::MIN);
    }
}
