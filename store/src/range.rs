//! Time-range reads: raw points, min/max/avg buckets for charts, and per-series
//! rate/increase on a step grid (see `rate`).

use crate::rate::{self, Point};
use crate::{Store, StoreError, sql};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;

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

struct Matched {
    id: i64,
    host: String,
    labels: BTreeMap<String, String>,
}

impl Store {
    fn matching(&self, sel: &Selector) -> Result<Vec<Matched>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, host, labels FROM series WHERE name = ?1 AND (?2 IS NULL OR host = ?2) ORDER BY host, labels")
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

    fn points_of(&self, id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<Point>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT ts, value FROM samples WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts")
            .map_err(sql("prepare range read"))?;
        let rows = stmt
            .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("read range"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read sample row"))
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
        let step = step_ms.max(1);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT (ts - ?2) / ?4, min(value), max(value), avg(value), count(*) FROM samples
                 WHERE series_id = ?1 AND ts >= ?2 AND ts <= ?3 GROUP BY 1 ORDER BY 1",
            )
            .map_err(sql("prepare downsampled read"))?;
        let mut out = Vec::new();
        for m in self.matching(sel)? {
            let rows = stmt
                .query_map(params![m.id, from_ms, to_ms, step], |r| {
                    Ok(Bucket {
                        ts: from_ms + r.get::<_, i64>(0)? * step,
                        min: r.get(1)?,
                        max: r.get(2)?,
                        avg: r.get(3)?,
                        count: r.get(4)?,
                    })
                })
                .map_err(sql("read buckets"))?;
            let buckets = rows
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read bucket row"))?;
            out.push(SeriesBuckets {
                host: m.host,
                name: sel.name.clone(),
                labels: m.labels,
                buckets,
            });
        }
        Ok(out)
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
        self.matching(sel)?
            .into_iter()
            .map(|m| {
                let raw = self.points_of(m.id, from_ms - window_ms, to_ms)?;
                let points = match how {
                    Counting::Rate => rate::rate_steps(&raw, from_ms, to_ms, step_ms, window_ms),
                    Counting::Increase => {
                        rate::increase_steps(&raw, from_ms, to_ms, step_ms, window_ms)
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
