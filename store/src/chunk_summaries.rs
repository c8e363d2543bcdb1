//! The 10-minute bucket summaries of sealed chunks, for long-range reads (charts over
//! days, rates from rollups): sealing drops the rollup rows of what it sealed, and
//! decoding the chunks again on every render cost 40% of a 7-day host page. A chunk never
//! changes (a changed one is a new blob), so its summaries are kept in memory, keyed by
//! a 128-bit hash of the blob, for every connection of the process.
//!
//! A summary is computed without the point before the chunk; the first bucket's counter
//! growth is completed at reading from the value before it, adding the same deltas in
//! the same order the writer adds them, so the result is the same to the bit.

use crate::StoreError;
use crate::rate::Point;
use crate::rollup::{Open, growth, summaries};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// One chunk's buckets, read without the point before it.
#[derive(Debug)]
pub(crate) struct ChunkSummary {
    pub buckets: Vec<Open>,
    pub first_value: f64,
    /// The growth of each later point of the first bucket, in order.
    pub first_deltas: Vec<f64>,
    pub last_value: f64,
}

impl ChunkSummary {
    pub(crate) fn of(points: &[Point]) -> Option<ChunkSummary> {
        let (&(_, first_value), &(_, last_value)) = (points.first()?, points.last()?);
        let buckets = summaries(points, None);
        let first_count = buckets.first().map_or(0, |b| b.count as usize);
        let first_deltas = points
            .windows(2)
            .take(first_count.saturating_sub(1))
            .map(|w| growth(w[0].1, w[1].1))
            .collect();
        Some(ChunkSummary {
            buckets,
            first_value,
            first_deltas,
            last_value,
        })
    }

    /// The buckets as read after a point of value `previous` (None: the series' first).
    pub(crate) fn after(&self, previous: Option<f64>) -> Vec<Open> {
        let mut out = self.buckets.clone();
        if let (Some(p), Some(first)) = (previous, out.first_mut()) {
            let mut increase = growth(p, self.first_value);
            for d in &self.first_deltas {
                increase += d;
            }
            first.increase = increase;
        }
        out
    }
}

/// Entries kept per generation: two generations hold at most twice this many (a 7-day
/// host page reads about 2,200 chunks; each entry is about 2.5 KB).
const GENERATION: usize = 8192;

/// Recently used summaries: a lookup moves an old entry to the young generation; a
/// full young generation becomes the old one and the old one is dropped.
#[derive(Default)]
struct Generations {
    young: HashMap<u128, Arc<ChunkSummary>>,
    old: HashMap<u128, Arc<ChunkSummary>>,
}

static CACHE: Mutex<Option<Generations>> = Mutex::new(None);

fn key(data: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (0x9e37_79b9_7f4a_7c15u64, data).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// The summary of the chunk `data`, from the cache or decoded (`decode` gives its points).
pub(crate) fn summary_of(
    data: &[u8],
    decode: impl FnOnce() -> Result<Vec<Point>, StoreError>,
) -> Result<Option<Arc<ChunkSummary>>, StoreError> {
    let key = key(data);
    {
        let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let cache = guard.get_or_insert_with(Default::default);
        if let Some(s) = cache.young.get(&key) {
            return Ok(Some(s.clone()));
        }
        if let Some(s) = cache.old.remove(&key) {
            cache.young.insert(key, s.clone());
            return Ok(Some(s));
        }
    }
    let Some(summary) = ChunkSummary::of(&decode()?) else {
        return Ok(None);
    };
    let summary = Arc::new(summary);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(Default::default);
    if cache.young.len() >= GENERATION {
        cache.old = std::mem::take(&mut cache.young);
    }
    cache.young.insert(key, summary.clone());
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_read_after_a_point_is_the_summary_of_both() {
        // A counter with decimals and a reset, over three buckets.
        let points: Vec<Point> = (0..50)
            .map(|i| {
                let v = if i < 30 {
                    0.1 * i as f64 + 7.3
                } else {
                    0.3 * (i - 30) as f64
                };
                (1_800_000_000_000 + i * 30_000, v)
            })
            .collect();
        let s = ChunkSummary::of(&points).unwrap();
        for previous in [None, Some(2.0), Some(100.0)] {
            let mut with: Vec<Point> = previous.map(|p| (0, p)).into_iter().collect();
            with.extend(&points);
            let want: Vec<String> = summaries(&with, None)
                .into_iter()
                .skip(usize::from(previous.is_some()))
                .map(|o| format!("{o:?}"))
                .collect();
            let got: Vec<String> = s.after(previous).iter().map(|o| format!("{o:?}")).collect();
            assert_eq!(got, want, "after {previous:?}");
        }
    }
}
