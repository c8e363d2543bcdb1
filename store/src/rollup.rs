//! Ten-minute rollups: min, max, sum, count, last value and counter increase of every
//! series per 10-minute bucket, so charts over days read one row per bucket instead of
//! twenty samples (a 7-day host page read 1.2M samples; with rollups about 60k rows).
//!
//! The writer closes a series' bucket when the series' first sample of a later bucket
//! arrives; a late sample or a restart recomputes the bucket's row from the stored
//! points (so they can only make a row more complete, never wrong). The bucket still
//! open is read from the samples themselves.

use crate::points::Source;
use crate::rate::Point;
use crate::{Store, StoreError, sql};
use rusqlite::{Connection, params};

/// Bucket length.
pub const ROLLUP_MS: i64 = 600_000;

/// Migration 4: the table, filled from the samples already stored.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE rollups (
        series_id INTEGER NOT NULL,
        ts        INTEGER NOT NULL, -- bucket start, a multiple of 600000 ms
        min       REAL NOT NULL,
        max       REAL NOT NULL,
        sum       REAL NOT NULL,
        count     INTEGER NOT NULL,
        last_ts   INTEGER NOT NULL,
        last      REAL NOT NULL,
        -- Counter growth since the previous sample (before the bucket too), resets
        -- counted as growth from zero, like Prometheus's increase().
        increase  REAL NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    INSERT INTO rollups (series_id, ts, min, max, sum, count, last_ts, last, increase)
    SELECT series_id, bucket, min(value), max(value), sum(value), count(*), max(ts), max(last_value), sum(delta)
    FROM (
        SELECT series_id, ts, value, ts - ts % 600000 AS bucket,
            last_value(value) OVER (PARTITION BY series_id, ts - ts % 600000 ORDER BY ts
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_value,
            CASE WHEN lag(value) OVER w IS NULL THEN 0
                 WHEN value >= lag(value) OVER w THEN value - lag(value) OVER w
                 ELSE value END AS delta
        FROM samples WINDOW w AS (PARTITION BY series_id ORDER BY ts)
    )
    GROUP BY series_id, bucket;
";

impl crate::Store {
    /// Recomputes every rollup row from the samples (migration 4's backfill), for
    /// samples written outside the writer (imports, benchmarks). It reads `samples`
    /// only: call it before sealing.
    pub fn rebuild_rollups(&mut self) -> Result<(), StoreError> {
        let backfill = MIGRATION
            .split_once("INSERT INTO rollups")
            .map(|(_, rest)| format!("INSERT OR REPLACE INTO rollups{rest}"))
            .unwrap_or_default();
        self.open_buckets.clear();
        self.conn
            .execute_batch(&format!("BEGIN; DELETE FROM rollups; {backfill} COMMIT;"))
            .map_err(sql("rebuild rollups"))
    }
}

pub(crate) fn bucket_of(ts: i64) -> i64 {
    // Saturating: a read from i64::MIN starts in the first bucket there is.
    ts.saturating_sub(ts.rem_euclid(ROLLUP_MS))
}

/// The bucket a series is filling, summarized in memory by the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    pub(crate) bucket: i64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) count: i64,
    pub(crate) last_ts: i64,
    pub(crate) last: f64,
    pub(crate) increase: f64,
}

impl Open {
    /// A bucket's first point; `previous` is the value before it, if any.
    fn first(ts: i64, value: f64, previous: Option<f64>) -> Open {
        Open {
            bucket: bucket_of(ts),
            min: value,
            max: value,
            sum: value,
            count: 1,
            last_ts: ts,
            last: value,
            increase: previous.map_or(0.0, |p| growth(p, value)),
        }
    }

    fn add(&mut self, ts: i64, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.count += 1;
        self.increase += growth(self.last, value);
        self.last_ts = ts;
        self.last = value;
    }
}

/// A counter's growth from `a` to `b`: a reset counts as growth from zero, as in
/// Prometheus's increase().
pub(crate) fn growth(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// The writer's view: the bucket each series is filling in this process.
pub(crate) type OpenBuckets = crate::FastMap<i64, Open>;

/// The summaries of `points` (in time order) per bucket; `previous` is the value of the
/// point before the first, where a counter's growth reaches back to.
pub(crate) fn summaries(points: &[Point], previous: Option<f64>) -> Vec<Open> {
    let mut out: Vec<Open> = Vec::new();
    let mut previous = previous;
    for &(ts, value) in points {
        let bucket = bucket_of(ts);
        match out.last_mut() {
            Some(o) if o.bucket == bucket => o.add(ts, value),
            _ => out.push(Open::first(ts, value, previous)),
        }
        previous = Some(value);
    }
    out
}

/// The summary of `[bucket, upto]` from the stored points (chunks and rows), if it has
/// any; the counter growth reaches back to the point before the bucket.
fn summarize(
    src: &Source<'_>,
    id: i64,
    bucket: i64,
    upto: i64,
) -> Result<Option<Open>, StoreError> {
    let points = crate::points::points_of(src, id, bucket, upto)?;
    if points.is_empty() {
        return Ok(None);
    }
    let before = crate::points::last_point(src, id, i64::MIN, bucket.saturating_sub(1))?;
    Ok(summaries(&points, before.map(|p| p.1)).pop())
}

fn write(conn: &Connection, id: i64, o: &Open) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO rollups (series_id, ts, min, max, sum, count, last_ts, last, increase)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(sql("prepare rollup write"))?
    .execute(params![id, o.bucket, o.min, o.max, o.sum, o.count, o.last_ts, o.last, o.increase])
    .map_err(sql("write rollup"))?;
    Ok(())
}

/// Redoes a closed bucket's row from the stored samples.
pub(crate) fn recompute(src: &Source<'_>, id: i64, bucket: i64) -> Result<(), StoreError> {
    if let Some(o) = summarize(src, id, bucket, bucket.saturating_add(ROLLUP_MS - 1))? {
        write(src.conn, id, &o)?;
    }
    Ok(())
}

/// After a sample of series `id` at `ts` is stored: adds it to the open bucket, and
/// writes the bucket's row when a sample of a later bucket closes it.
pub(crate) fn after_sample(
    src: &Source<'_>,
    open: &mut OpenBuckets,
    id: i64,
    ts: i64,
    value: f64,
) -> Result<(), StoreError> {
    let bucket = bucket_of(ts);
    match open.get_mut(&id) {
        Some(o) if o.bucket == bucket && ts > o.last_ts => o.add(ts, value),
        Some(o) if o.bucket < bucket && ts > o.last_ts => {
            write(src.conn, id, o)?;
            *o = Open::first(ts, value, Some(o.last));
        }
        Some(o) if bucket < o.bucket => recompute(src, id, bucket)?, // late, into a closed bucket
        Some(o) => {
            // Out of order inside the open bucket, or a sample rewritten: summarize again.
            let upto = o.last_ts.max(ts);
            if let Some(fresh) = summarize(src, id, bucket, upto)? {
                *o = fresh;
            }
        }
        None => {
            // First sight in this process. A late sample (the series has points after
            // its bucket) only redoes its closed bucket's row.
            let end = bucket.saturating_add(ROLLUP_MS - 1);
            if crate::points::last_point(src, id, end.saturating_add(1), i64::MAX)?.is_some() {
                return recompute(src, id, bucket);
            }
            // The bucket of the sample before may never have been closed (the poller
            // stopped in it), and this bucket may hold samples stored before a restart.
            let before = crate::points::last_point(src, id, i64::MIN, bucket.saturating_sub(1))?;
            if let Some((t, _)) = before {
                recompute(src, id, bucket_of(t))?;
            }
            if let Some(o) = summarize(src, id, bucket, end)? {
                open.insert(id, o);
            }
        }
    }
    Ok(())
}

/// One stored rollup row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// The bucket's start.
    pub ts: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: i64,
    pub last_ts: i64,
    pub last: f64,
    pub increase: f64,
}

impl Store {
    /// The buckets of series `id`'s chunk points in `[from, to]` (`from` a bucket start):
    /// whole chunks from their kept summaries, the chunks at the range's edges (or the
    /// retention cut) from their points.
    fn sealed_buckets(&self, id: i64, from: i64, to: i64) -> Result<Vec<Open>, StoreError> {
        let cut = crate::sealing::retention_cut(&self.conn)?;
        let mut previous = self
            .last_point(id, i64::MIN, from.saturating_sub(1))?
            .map(|p| p.1);
        let mut out = Vec::new();
        crate::points::each_chunk(&self.conn, id, from, to, |start, end, data| {
            if start >= from && end <= to && start >= cut {
                let decode = || {
                    Ok(
                        crate::points::points_in(id, start, data, i64::MIN, i64::MAX, i64::MIN)?
                            .collect(),
                    )
                };
                if let Some(s) = crate::chunk_summaries::summary_of(data, decode)? {
                    out.extend(s.after(previous));
                    previous = Some(s.last_value);
                }
            } else {
                let points: Vec<Point> =
                    crate::points::points_in(id, start, data, from, to, cut)?.collect();
                out.extend(summaries(&points, previous));
                if let Some(&(_, v)) = points.last() {
                    previous = Some(v);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl From<Open> for Row {
    fn from(o: Open) -> Row {
        Row {
            ts: o.bucket,
            min: o.min,
            max: o.max,
            sum: o.sum,
            count: o.count,
            last_ts: o.last_ts,
            last: o.last,
            increase: o.increase,
        }
    }
}

/// One series' rows from its rollups and its open bucket's samples, in `[from, to]`.
pub(crate) struct Rolled {
    pub rows: Vec<Row>,
    /// Samples after the last rollup row (the open bucket).
    pub tail: Vec<Point>,
}

impl Store {
    pub(crate) fn rolled(&self, id: i64, from_ms: i64, to_ms: i64) -> Result<Rolled, StoreError> {
        let last: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(ts) FROM rollups WHERE series_id = ?1")
            .map_err(sql("prepare rollup end"))?
            .query_row([id], |r| r.get(0))
            .map_err(sql("read rollup end"))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, min, max, sum, count, last_ts, last, increase FROM rollups
                 WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
            )
            .map_err(sql("prepare rollup read"))?;
        let rows = stmt
            .query_map(params![id, bucket_of(from_ms), to_ms], |r| {
                Ok(Row {
                    ts: r.get(0)?,
                    min: r.get(1)?,
                    max: r.get(2)?,
                    sum: r.get(3)?,
                    count: r.get(4)?,
                    last_ts: r.get(5)?,
                    last: r.get(6)?,
                    increase: r.get(7)?,
                })
            })
            .map_err(sql("read rollups"))?
            .collect::<Result<Vec<Row>, _>>()
            .map_err(sql("read rollup row"))?;
        // Sealing drops the rows of the buckets it sealed whole: theirs are summed from
        // the chunks here (the same sums, in the same order, as the writer's).
        let sealed_end = crate::sealing::last_chunk_end(&self.conn, id)?;
        let mut rows = rows;
        let from_bucket = bucket_of(from_ms);
        if sealed_end.is_some_and(|end| end >= from_bucket) {
            let sealed = self.sealed_buckets(id, from_bucket, to_ms)?;
            if !sealed.is_empty() {
                let stored: std::collections::HashSet<i64> = rows.iter().map(|r| r.ts).collect();
                rows.extend(
                    sealed
                        .into_iter()
                        .filter(|o| !stored.contains(&o.bucket))
                        .map(Row::from),
                );
                rows.sort_by_key(|r| r.ts);
            }
        }
        // The tail starts after the last bucket rows or chunks cover.
        let covered = last.into_iter().chain(sealed_end.map(bucket_of)).max();
        let tail_from = covered.map_or(from_ms, |l| l.saturating_add(ROLLUP_MS).max(from_ms));
        let tail = self.points_of(id, tail_from, to_ms)?;
        Ok(Rolled { rows, tail })
    }
}

/// A counter's rate (or increase) at every step from its rollups: the growth over each
/// window is the sum of the bucket increases it covers (a partly covered bucket counts
/// in proportion), then the open bucket's sample-to-sample growth. Resets count as
/// growth from zero, as in Prometheus. Buckets keep no samples' positions inside them,
/// so this is the window's true average rate rather than Prometheus's extrapolation
/// from the first and last sample; on steady counters the two agree.
pub(crate) fn counter_steps(
    rolled: &Rolled,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    window_ms: i64,
    per_second: bool,
) -> Vec<Point> {
    // (start, end, growth): growth spread evenly over (start, end].
    let mut segments: Vec<(i64, i64, f64)> = rolled
        .rows
        .iter()
        .map(|r| (r.ts, r.ts.saturating_add(ROLLUP_MS), r.increase))
        .collect();
    let mut previous = rolled.rows.last().map(|r| (r.last_ts, r.last));
    for &(ts, value) in &rolled.tail {
        if let Some((pts, pv)) = previous {
            segments.push((pts, ts, growth(pv, value)));
        }
        previous = Some((ts, value));
    }
    let mut out = Vec::new();
    let mut first = 0; // segments before this one end before every later window
    let mut t = from_ms;
    while t <= to_ms && out.len() as i64 <= crate::range::MAX_POINTS {
        let (start, end) = (t.saturating_sub(window_ms), t);
        while first < segments.len() && segments[first].1 <= start {
            first += 1;
        }
        let mut growth = 0.0;
        let mut covered = false;
        for &(s, e, g) in segments[first..].iter().take_while(|seg| seg.0 < end) {
            let overlap = (e.min(end) - s.max(start)).max(0) as f64;
            if overlap > 0.0 && e > s {
                growth += g * overlap / (e - s) as f64;
                covered = true;
            }
        }
        if covered {
            let v = if per_second {
                growth / (window_ms as f64 / 1000.0)
            } else {
                growth
            };
            out.push((t, v));
        }
        match t.checked_add(step_ms.max(1)) {
            Some(next) => t = next,
            None => break,
        }
    }
    out
}
