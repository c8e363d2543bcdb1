//! Sealing: a series' samples older than a few hours move from `samples` (one row a
//! sample, about 27 bytes with its key) into compressed chunks (`chunk.rs`, under 2
//! bytes a sample), one chunk per series per aligned six-hour window.
//!
//! One invariant keeps every read simple (`points.rs`): **all of a series' chunks hold
//! older samples than any of its rows in `samples`.** The sealer keeps it by sealing,
//! series by series, everything before one cut; a write at or before the end of a
//! series' last chunk keeps it by first unsealing (moving back into `samples`) every
//! chunk ending at or after that time.
//!
//! Sealing also deletes the rollup rows of the buckets it sealed whole (a window holds
//! whole buckets); readers sum those from the chunks, and unsealing writes them again.
//!
//! The last two samples of a series are never sealed: the latest-value readers (the
//! overview, `dcmon query`, the shared latest values) read them from `samples` alone,
//! also for a series that stopped reporting days ago.

use crate::rate::Point;
use crate::rollup::{ROLLUP_MS, bucket_of};
use crate::{Store, StoreError, chunk, sql};
use rusqlite::{OptionalExtension, Transaction, params};

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

/// Samples are sealed by aligned windows of this length (bench part (k): 6-hour chunks
/// of the realistic mix cost 1.60 bytes a sample, 2-hour ones 1.93).
pub const SPAN_MS: i64 = 6 * 3_600_000;
// A rollup bucket lies inside one window, so the bucket a series is filling (and the
// one before a restart) is always whole in `samples`, where the writer summarizes it.
const _: () = assert!(SPAN_MS % crate::rollup::ROLLUP_MS == 0);
/// A window is sealed once it ended at least this long ago: late samples rarely come
/// later, and one that does unseals its chunk first.
pub const AFTER_MS: i64 = 3_600_000;
/// Most samples one sealing step moves, so a step (one transaction) holds the write
/// lock well under a second even when a database from before chunks is sealed.
pub const SAMPLES_PER_STEP: usize = 100_000;

/// The mark holding the retention cut: chunk samples older than it are not read.
pub(crate) const RETENTION_MARK: &str = "samples_before";

/// The writer's view of each series' last chunk end (`i64::MIN`: none), so a write
/// checks whether it falls into sealed time without a query.
pub(crate) type SealedUntil = crate::FastMap<i64, i64>;

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

/// The end of a series' last chunk, from the cache or the table.
pub(crate) fn sealed_until(
    tx: &Transaction<'_>,
    cache: &mut SealedUntil,
    id: i64,
) -> Result<i64, StoreError> {
    if let Some(t) = cache.get(&id) {
        return Ok(*t);
    }
    let t = last_chunk_end(tx, id)?.unwrap_or(i64::MIN);
    cache.insert(id, t);
    Ok(t)
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
    tx: &Transaction<'_>,
    cache: &mut SealedUntil,
    id: i64,
    ts: i64,
) -> Result<(), StoreError> {
    if ts > sealed_until(tx, cache, id)? {
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
    for (start, data) in chunks {
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
        crate::rollup::recompute(tx, id, bucket)?;
    }
    cache.remove(&id);
    sealed_until(tx, cache, id)?;
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

/// Seals one series' samples before `cut` (window starts), at most `budget` of them;
/// returns how many it sealed and the chunks written. A series with more than the
/// budget left is sealed up to the last whole window read (or the budget, when one
/// window alone is larger), and the caller comes back to it.
pub(crate) fn seal_series(
    tx: &Transaction<'_>,
    id: i64,
    seal_before: i64,
    span: i64,
    budget: usize,
) -> Result<(usize, usize, bool), StoreError> {
    // The last two samples stay (see the module comment).
    let second_last: Option<i64> = tx
        .prepare_cached(
            "SELECT ts FROM samples WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1 OFFSET 1",
        )
        .map_err(sql("prepare second last sample"))?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(sql("read second last sample"))?;
    let Some(second_last) = second_last else {
        return Ok((0, 0, true));
    };
    let cut = window_of(seal_before, span).min(window_of(second_last, span));
    let mut points: Vec<Point> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT ts, value FROM samples WHERE series_id = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3",
            )
            .map_err(sql("prepare samples to seal"))?;
        let rows = stmt
            .query_map(params![id, cut, budget as i64 + 1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql("read samples to seal"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("read sample to seal"))?
    };
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
        return Ok((0, 0, true));
    };
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO chunks (series_id, start_ts, end_ts, count, min, max, sum, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(sql("prepare chunk insert"))?;
    let mut chunks = 0;
    for window in points.chunk_by(|a, b| window_of(a.0, span) == window_of(b.0, span)) {
        let times: Vec<i64> = window.iter().map(|p| p.0).collect();
        let values: Vec<f64> = window.iter().map(|p| p.1).collect();
        let data = chunk::encode(&times, &values)?;
        let finite = || values.iter().copied().filter(|v| !v.is_nan());
        let min = finite().reduce(f64::min);
        let max = finite().reduce(f64::max);
        let sum: f64 = values.iter().sum();
        let sum = (!sum.is_nan()).then_some(sum);
        insert
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
        chunks += 1;
    }
    tx.prepare_cached("DELETE FROM samples WHERE series_id = ?1 AND ts <= ?2")
        .map_err(sql("prepare sealed delete"))?
        .execute(params![id, last_ts])
        .map_err(sql("delete sealed samples"))?;
    // The rollup rows of buckets sealed whole: readers sum those buckets from the chunks
    // (a row costs about as much as twenty samples sealed).
    tx.prepare_cached("DELETE FROM rollups WHERE series_id = ?1 AND ts <= ?2")
        .map_err(sql("prepare sealed rollup delete"))?
        .execute(params![id, sealed_below.saturating_sub(ROLLUP_MS)])
        .map_err(sql("delete sealed rollups"))?;
    Ok((points.len(), chunks, whole))
}

impl Store {
    /// One sealing step in its own transaction: series after `progress.after_series`
    /// until about `SAMPLES_PER_STEP` samples moved, everything before the window
    /// holding `seal_before_ms` (and before each series' last two samples).
    pub fn seal_step(
        &mut self,
        seal_before_ms: i64,
        mut progress: SealProgress,
    ) -> Result<SealProgress, StoreError> {
        let span = self.chunk_span_ms;
        let tx = self.conn.transaction().map_err(sql("begin sealing"))?;
        let mut budget = SAMPLES_PER_STEP;
        let mut done = true;
        let mut last = progress.after_series;
        let mut touched = Vec::new();
        {
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
                let (sealed, chunks, whole) = seal_series(&tx, id, seal_before_ms, span, budget)?;
                budget -= sealed.min(budget);
                progress.samples_sealed += sealed as u64;
                progress.chunks_written += chunks as u64;
                if chunks > 0 {
                    touched.push(id);
                }
                if !whole {
                    done = false;
                    break; // this series again next step
                }
                last = id;
            }
            if budget == 0 {
                done = false;
            }
        }
        tx.commit().map_err(sql("commit sealing"))?;
        // Only after the commit: a rolled-back step sealed nothing.
        for id in touched {
            self.sealed_until.remove(&id);
        }
        progress.after_series = last;
        progress.done = done;
        Ok(progress)
    }

    /// Seals everything sealable before `seal_before_ms`, step after step (tests, the
    /// benchmark and one-shot use; the writer interleaves steps with rounds).
    pub fn seal(&mut self, seal_before_ms: i64) -> Result<SealProgress, StoreError> {
        let mut progress = SealProgress::default();
        loop {
            progress = self.seal_step(seal_before_ms, progress)?;
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
