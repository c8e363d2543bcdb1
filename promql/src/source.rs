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
}
