//! Where a selector's series come from (the store, through `dcmon_alerts::StoreSource`).

use super::Labels;

/// One stored series with its points in the window asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// `__name__` and every label, `host` included.
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// Series by name, each with its points in `[from, to]`.
pub trait Source {
    /// `host`: when the query pins it (`host="gpu01"`), only that host's series.
    fn series(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String>;

    /// Only each series' last point in `[from, to]` (an instant selector needs no
    /// more); a store answers it with one index seek per series.
    fn latest(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        let mut found = self.series(name, host, from_ms, to_ms)?;
        for s in &mut found {
            if let Some(last) = s.points.last().copied() {
                s.points = vec![last];
            }
        }
        Ok(found)
    }
}

/// What one read asked for.
type ReadKey = (bool, String, Option<String>, i64, i64);

/// A source that answers each distinct read once: the rules of one evaluation share
/// their selectors (`dcmon_host_up` in several rules, a counter twice in a ratio).
pub struct Memo<'a> {
    inner: &'a dyn Source,
    reads: std::cell::RefCell<std::collections::HashMap<ReadKey, Vec<RawSeries>>>,
}

impl<'a> Memo<'a> {
    pub fn new(inner: &'a dyn Source) -> Memo<'a> {
        Memo {
            inner,
            reads: Default::default(),
        }
    }

    fn read(
        &self,
        key: ReadKey,
        fetch: impl FnOnce() -> Result<Vec<RawSeries>, String>,
    ) -> Result<Vec<RawSeries>, String> {
        if let Some(found) = self.reads.borrow().get(&key) {
            return Ok(found.clone());
        }
        let found = fetch()?;
        self.reads.borrow_mut().insert(key, found.clone());
        Ok(found)
    }
}

impl Source for Memo<'_> {
    fn series(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        let key = (
            false,
            name.to_string(),
            host.map(str::to_string),
            from_ms,
            to_ms,
        );
        self.read(key, || self.inner.series(name, host, from_ms, to_ms))
    }

    fn latest(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        let key = (
            true,
            name.to_string(),
            host.map(str::to_string),
            from_ms,
            to_ms,
        );
        self.read(key, || self.inner.latest(name, host, from_ms, to_ms))
    }
}
