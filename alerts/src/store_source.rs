//! The store as a PromQL source, its series seen as `/metrics` shows them.

use dcmon_promql::{Labels, RawSeries, Source};
use dcmon_store::Store;

/// The store as a source.
pub struct StoreSource<'a>(pub &'a Store);

impl Source for StoreSource<'_> {
    fn series(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        let found = self
            .0
            .range_by_name(name, host, from_ms, to_ms)
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|s| RawSeries {
                labels: exposed_labels(&s.name, &s.host, s.labels),
                points: s.points,
            })
            .collect())
    }

    fn latest(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        let found = self
            .0
            .latest_by_name(name, host, from_ms, to_ms)
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|s| RawSeries {
                labels: exposed_labels(&s.name, &s.host, s.labels),
                points: s.points,
            })
            .collect())
    }
}

/// A stored series' labels as `/metrics` exposes them: its name, the host, and the
/// probe's labels (a probe's own `host` label yields, renamed `exported_host`).
pub fn exposed_labels(
    name: &str,
    host: &str,
    labels: std::collections::BTreeMap<String, String>,
) -> Labels {
    let mut out = Labels::new();
    for (k, v) in labels {
        let key = if k == "host" {
            "exported_host".to_string()
        } else {
            k
        };
        out.insert(key, v);
    }
    out.insert("host".to_string(), host.to_string());
    out.insert("__name__".to_string(), name.to_string());
    out
}
