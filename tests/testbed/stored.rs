//! What a test database holds, read through the store rather than its tables: a sample
//! may sit in the writer's head, in a row or in a sealed chunk, and only the store
//! knows how those combine.

use dcmon_store::range::SeriesPoints;
use dcmon_store::{SeriesFilter, SeriesLatest, Store};
use std::path::Path;

fn open(db: &Path) -> Store {
    Store::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// Every series named `name` (of `host` only, when given) with all its points.
pub fn points(db: &Path, name: &str, host: Option<&str>) -> Vec<SeriesPoints> {
    open(db)
        .range_by_name(name, host, i64::MIN, i64::MAX)
        .unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Every series of `host` with its latest sample.
pub fn latest(db: &Path, host: &str) -> Vec<SeriesLatest> {
    open(db)
        .series_latest(&SeriesFilter {
            host: Some(host.to_string()),
            name: None,
        })
        .unwrap_or_else(|e| panic!("read {host}'s latest samples: {e}"))
}

/// The latest value of `host`'s series `name` whose labels include every pair given.
pub fn latest_value(db: &Path, host: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    latest(db, host)
        .into_iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// How many samples the database holds, all series together.
pub fn sample_count(db: &Path) -> i64 {
    open(db)
        .db_stats()
        .unwrap_or_else(|e| panic!("count samples: {e}"))
        .samples
}

/// How many samples the database holds, counted series by series through the range
/// reads (so `dcmon db stats`'s own count can be checked against it).
pub fn counted_samples(db: &Path) -> i64 {
    let store = open(db);
    let names: std::collections::BTreeSet<String> = store
        .series_latest(&SeriesFilter::default())
        .unwrap_or_else(|e| panic!("list series: {e}"))
        .into_iter()
        .map(|s| s.name)
        .collect();
    names
        .iter()
        .flat_map(|name| points(db, name, None))
        .map(|s| s.points.len() as i64)
        .sum()
}
