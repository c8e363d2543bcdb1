//! Time-range reads: raw points, min/max/avg buckets for charts, and per-series
//! rate/increase on a step grid (see `rate`).

use crate::rate::{self, Point};
use crate::rollup::{ROLLUP_MS, counter_steps};
use crate::{Store, StoreError, sql};
use rusqlite::params;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Most points a range query returns per series (steps of the grid). Every grid is
/// checked against it before any row is read, so no request can make a reader walk an
/// absurd number of steps while the store is held.
pub const MAX_POINTS: i64 = 11_000;

/// Refuses a grid that runs backwards, overflows, or has more than `MAX_POINTS` steps.
pub fn check_grid(from_ms: i64, to_ms: i64, step_ms: i64) -> Result<(), StoreError> {
    let steps = to_ms
        .checked_sub(from_ms)
        .filter(|span| *span >= 0)
        .and_then(|span| span.checked_div(step_ms))
        .filter(|_| step_ms > 0);
    match steps {
        Some(n) if n <= MAX_POINTS => Ok(()),
        Some(n) => Err(StoreError::Refused(format!(
            "{n} steps is too many (at most {MAX_POINTS} points a series)"
        ))),
        None => Err(StoreError::Refused(format!(
            "no step grid from {from_ms} to {to_ms} by {step_ms} ms"
        ))),
    }
}

/// Which series: one name, optionally one host, and labels every match must carry.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub name: String,
    pub host: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoints {
    pub host: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// One chart bucket: `ts` is the bucket's start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    pub ts: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesBuckets {
    pub host: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub buckets: Vec<Bucket>,
}

/// Rate or increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    Rate,
    Increase,
}

pub(crate) struct Matched {
    pub(crate) id: i64,
    host: String,
    labels: BTreeMap<String, String>,
}

impl Store {
    pub(crate) fn matching(&self, sel: &Selector) -> Result<Vec<Matched>, StoreError> {
        let mut stmt = self
            .conn
            // Two statements, so each has its index: (host, name, …) for one host's
            // charts, (name, host) for a name across the fleet.
            .prepare_cached(if sel.host.is_some() {
                "SELECT id, host, labels FROM series WHERE name = ?1 AND host = ?2 ORDER BY host, labels"
            } else {
                "SELECT id, host, labels FROM series WHERE name = ?1 AND ?2 IS NULL ORDER BY host, labels"
            })
            .map_err(sql("prepare series match"))?;
        let rows = stmt
            .query_map(params![sel.name, sel.host], |r| {
                let labels: String = r.get(2)?;
                Ok(Matched {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                })
            })
            .map_err(sql("match series"))?;
        let all = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read series row"))?;
        Ok(all
            .into_iter()
            .filter(|m| sel.labels.iter().all(|(k, v)| m.labels.get(k) == Some(v)))
            .collect())
    }

    /// Every series named `name` (of `host` only, when given) with its points in
    /// `[from, to]`, in one statement: PromQL selects a name across the fleet, and one
    /// read per series cost 8,000 statements for one rule over 1,000 hosts.
    pub fn range_by_name(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(if host.is_some() {
                "SELECT s.id, s.host, s.labels, x.ts, x.value FROM series s
                 JOIN samples x ON x.series_id = s.id AND x.ts >= ?2 AND x.ts <= ?3
                 WHERE s.name = ?1 AND s.host = ?4"
            } else {
                "SELECT s.id, s.host, s.labels, x.ts, x.value FROM series s
                 JOIN samples x ON x.series_id = s.id AND x.ts >= ?2 AND x.ts <= ?3
                 WHERE s.name = ?1 AND ?4 IS NULL"
            })
            .map_err(sql("prepare range by name"))?;
        let mut rows = stmt
            .query(params![name, from_ms, to_ms, host])
            .map_err(sql("read range by name"))?;
        // Sealed points first (they are older), then each series' rows of `samples`.
        let mut out: Vec<SeriesPoints> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        for c in self.chunk_points_by_name(name, host, from_ms, to_ms)? {
            index.insert(c.id, out.len());
            out.push(SeriesPoints {
                host: c.host,
                name: name.to_string(),
                labels: serde_json::from_str(&c.labels).unwrap_or_default(),
                points: c.points,
            });
        }
        // A nested loop: each series' samples come together, in time order (the samples'
        // key), so no ORDER BY (which would sort every row first).
        let mut current = None;
        while let Some(r) = rows.next().map_err(sql("read range row"))? {
            let id: i64 = r.get(0).map_err(sql("read series id"))?;
            if current != Some(id) {
                current = Some(id);
                if let std::collections::hash_map::Entry::Vacant(e) = index.entry(id) {
                    let labels: String = r.get(2).map_err(sql("read series labels"))?;
                    e.insert(out.len());
                    out.push(SeriesPoints {
                        host: r.get(1).map_err(sql("read series host"))?,
                        name: name.to_string(),
                        labels: serde_json::from_str(&labels).unwrap_or_default(),
                        points: Vec::new(),
                    });
                }
            }
            if let Some(series) = index.get(&id).and_then(|i| out.get_mut(*i)) {
                series.points.push((
                    r.get(3).map_err(sql("read sample time"))?,
                    r.get(4).map_err(sql("read sample value"))?,
                ));
            }
        }
        // Then each series' head, the newest part.
        let src = self.source()?;
        for m in self.matching(&Selector {
            name: name.to_string(),
            host: host.map(str::to_string),
            labels: BTreeMap::new(),
        })? {
            let head = src.head_points(m.id, from_ms, to_ms)?;
            if head.is_empty() {
                continue;
            }
            match index.get(&m.id).and_then(|i| out.get_mut(*i)) {
                Some(series) => series.points.extend(head),
                None => out.push(SeriesPoints {
                    host: m.host,
                    name: name.to_string(),
                    labels: m.labels,
                    points: head,
                }),
            }
        }
        Ok(out)
    }

    /// Each series of this name (and host) with only its last point in `[from, to]`:
    /// a few lookups per series (head, then rows, then chunks), for instant PromQL
    /// selectors.
    pub fn latest_by_name(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        let src = self.source()?;
        let mut out = Vec::new();
        for m in self.matching(&Selector {
            name: name.to_string(),
            host: host.map(str::to_string),
            labels: BTreeMap::new(),
        })? {
            if let Some(point) = crate::points::last_point(&src, m.id, from_ms, to_ms)? {
                out.push(SeriesPoints {
                    host: m.host,
                    name: name.to_string(),
                    labels: m.labels,
                    points: vec![point],
                });
            }
        }
        Ok(out)
    }

    /// Every stored point of the matching series in `[from, to]`.
    pub fn range(
        &self,
        sel: &Selector,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        self.matching(sel)?
            .into_iter()
            .map(|m| {
                Ok(SeriesPoints {
                    points: self.points_of(m.id, from_ms, to_ms)?,
                    host: m.host,
                    name: sel.name.clone(),
                    labels: m.labels,
                })
            })
            .collect()
    }

    /// Min, max and average per `step` bucket: what a chart of a long range draws.
    pub fn downsampled(
        &self,
        sel: &Selector,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesBuckets>, StoreError> {
        check_grid(from_ms, to_ms, step_ms)?;
        let step = step_ms;
        let mut out = Vec::new();
        for m in self.matching(sel)? {
            let buckets = if step >= ROLLUP_MS {
                self.buckets_from_rollups(m.id, from_ms, to_ms, step)?
            } else {
                self.buckets_from_samples(m.id, from_ms, to_ms, step)?
            };
            out.push(SeriesBuckets {
                host: m.host,
                name: sel.name.clone(),
                labels: m.labels,
                buckets,
            });
        }
        Ok(out)
    }

    pub(crate) fn buckets_from_samples(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
        step: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let mut out: Vec<Bucket> = Vec::new();
        // In time order, so each bucket's points come together; sums in time order,
        // as SQLite's avg() added them.
        let mut sum = 0.0;
        for (ts, v) in self.points_of(id, from_ms, to_ms)? {
            // In i128: the grid may start at i64::MIN; a start lies between from and ts.
            let (f, t, st) = (i128::from(from_ms), i128::from(ts), i128::from(step));
            let start = (f + (t - f) / st * st) as i64;
            match out.last_mut() {
                Some(b) if b.ts == start => {
                    b.min = b.min.min(v);
                    b.max = b.max.max(v);
                    b.count += 1;
                    sum += v;
                }
                _ => {
                    if let Some(b) = out.last_mut() {
                        b.avg = sum / b.count as f64;
                    }
                    out.push(Bucket {
                        ts: start,
                        min: v,
                        max: v,
                        avg: v,
                        count: 1,
                    });
                    sum = v;
                }
            }
        }
        if let Some(b) = out.last_mut() {
            b.avg = sum / b.count as f64;
        }
        Ok(out)
    }

    /// Buckets of at least one rollup length: from the rollup rows (each falls in the
    /// step its start is in) and the open bucket's samples.
    fn buckets_from_rollups(
        &self,
        id: i64,
        from_ms: i64,
        to_ms: i64,
        step: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let rolled = self.rolled(id, from_ms, to_ms)?;
        // step index → (min, max, sum, count)
        let mut steps: BTreeMap<i64, (f64, f64, f64, i64)> = BTreeMap::new();
        let mut add = |ts: i64, min: f64, max: f64, sum: f64, count: i64| {
            let s = steps.entry((ts.max(from_ms) - from_ms) / step).or_insert((
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.0,
                0,
            ));
            s.0 = s.0.min(min);
            s.1 = s.1.max(max);
            s.2 += sum;
            s.3 += count;
        };
        for r in &rolled.rows {
            add(r.ts, r.min, r.max, r.sum, r.count);
        }
        for &(ts, v) in &rolled.tail {
            add(ts, v, v, v, 1);
        }
        Ok(steps
            .into_iter()
            .filter(|(_, s)| s.3 > 0)
            .map(|(i, (min, max, sum, count))| Bucket {
                ts: from_ms + i * step,
                min,
                max,
                avg: sum / count as f64,
                count,
            })
            .collect())
    }

    /// `rate` or `increase` of each matching counter at every step of `[from, to]`.
    pub fn counting(
        &self,
        sel: &Selector,
        how: Counting,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
        window_ms: i64,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        check_grid(from_ms, to_ms, step_ms)?;
        let window_ms = window_ms.max(1);
        let from_window = from_ms.saturating_sub(window_ms);
        self.matching(sel)?
            .into_iter()
            .map(|m| {
                // Long steps read rollups: ten-minute bucket increases.
                let points = if step_ms >= ROLLUP_MS && window_ms >= 2 * ROLLUP_MS {
                    let rolled = self.rolled(m.id, from_window, to_ms)?;
                    let per_second = how == Counting::Rate;
                    counter_steps(&rolled, from_ms, to_ms, step_ms, window_ms, per_second)
                } else {
                    let raw = self.points_of(m.id, from_window, to_ms)?;
                    match how {
                        Counting::Rate => {
                            rate::rate_steps(&raw, from_ms, to_ms, step_ms, window_ms)
                        }
                        Counting::Increase => {
                            rate::increase_steps(&raw, from_ms, to_ms, step_ms, window_ms)
                        }
                    }
                };
                Ok(SeriesPoints {
                    host: m.host,
                    name: sel.name.clone(),
                    labels: m.labels,
                    points,
                })
            })
            .collect()
    }
}
