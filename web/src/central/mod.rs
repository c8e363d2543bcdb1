//! The central view (`dcmon serve --web-only`): the same overview, host pages and
//! charts, read from a Prometheus HTTP API (VictoriaMetrics, Prometheus, Mimir) that
//! every poller remote-writes to, instead of a local store. What only a poller keeps
//! (logs, facts, audit, actions, probe runs) is answered with a link to the poller
//! that owns the host.

pub mod host;
pub mod overview;
pub mod pollers_page;

use crate::WebError;
use crate::prom_answer::{self, Answer, Labels};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest answer read: a fleet's overview of some 5,000 hosts is a few tens of MB.
const MAX_ANSWER: usize = 64 << 20;

/// How far back the latest value of a series is looked for: past the hourly probes.
pub const LATEST_WINDOW_MS: i64 = 2 * 3_600_000;

/// Longest wait for one answer of the backend: a stalled backend gives a page saying
/// so, not a request held open (the store's queries have `QUERY_BUDGET`).
pub const BACKEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// One poller of a host: its number (1-based shard) and dashboard URL when known.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Owner {
    pub index: u32,
    pub url: Option<String>,
}

/// A host the inventory lists, with what the overview filters on.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub host: String,
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Which pollers poll a host (the inventory's `[cluster]`, computed by the caller).
pub type Owners = Arc<dyn Fn(&str) -> Vec<Owner> + Send + Sync>;

/// What the central view is told at start and on reload (from the inventory).
pub struct CentralConfig {
    /// The API's base URL (`http://vm:8428`).
    pub backend: String,
    /// The inventory's hosts: shown before their first sample arrives.
    pub listed: Vec<Listed>,
    pub owners: Owners,
    /// How many pollers share the hosts.
    pub poller_count: u32,
    /// Every poller's dashboard, in shard order (may be empty).
    pub pollers: Vec<String>,
    /// Labels remote write adds to every series (`external_labels`' names).
    pub external_labels: Vec<String>,
}

/// Where the central view reads, and what it knows of the fleet without asking.
#[derive(Clone)]
pub struct Central {
    /// The API's base URL, without a trailing `/` (kept on reload: a new backend is a
    /// restart).
    backend: String,
    http: dcmon_alerts::http::Http,
    /// The inventory's part, replaced whole on reload.
    fleet: Arc<std::sync::RwLock<Arc<Fleet>>>,
}

/// What the inventory says of the fleet.
pub(super) struct Fleet {
    pub(super) listed: Vec<Listed>,
    owners: Owners,
    poller_count: u32,
    pollers: Vec<String>,
    /// Labels the sending side adds to every series (`external_labels`, `replica`):
    /// not the probe's own, so left out of tables and chart legends.
    added_labels: Vec<String>,
}

impl Fleet {
    fn of(config: CentralConfig) -> Fleet {
        let mut added_labels = config.external_labels;
        added_labels.push("replica".to_string());
        Fleet {
            listed: config.listed,
            owners: config.owners,
            poller_count: config.poller_count.max(1),
            pollers: config.pollers,
            added_labels,
        }
    }
}

impl Central {
    pub fn new(config: CentralConfig) -> Central {
        Central {
            backend: config.backend.trim_end_matches('/').to_string(),
            http: Default::default(),
            fleet: Arc::new(std::sync::RwLock::new(Arc::new(Fleet::of(config)))),
        }
    }

    /// Takes a reloaded inventory's hosts, pollers and labels; false (nothing changed)
    /// when it names another backend, which needs a restart.
    pub fn reload(&self, config: CentralConfig) -> bool {
        if config.backend.trim_end_matches('/') != self.backend {
            return false;
        }
        let fleet = Arc::new(Fleet::of(config));
        *self.fleet.write().unwrap_or_else(|e| e.into_inner()) = fleet;
        true
    }

    /// The fleet as of now (a reload meanwhile does not change what one page reads).
    pub(super) fn fleet(&self) -> Arc<Fleet> {
        self.fleet.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    pub fn owners(&self, host: &str) -> Vec<Owner> {
        (self.fleet().owners)(host)
    }

    pub fn poller_count(&self) -> u32 {
        self.fleet().poller_count
    }

    pub fn pollers(&self) -> Vec<String> {
        self.fleet().pollers.clone()
    }

    pub fn is_listed(&self, host: &str) -> bool {
        self.fleet().listed.iter().any(|l| l.host == host)
    }

    /// `/api/v1/query` at `time` (ms).
    pub async fn instant(&self, query: &str, time: i64) -> Result<Answer, WebError> {
        let params = [("query", query.to_string()), ("time", seconds(time))];
        self.get("query", &params).await
    }

    /// `/api/v1/query_range` over [from, to] every `step` ms.
    pub async fn range(
        &self,
        query: &str,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Answer, WebError> {
        let params = [
            ("query", query.to_string()),
            ("start", seconds(from)),
            ("end", seconds(to)),
            ("step", seconds(step.max(1))),
        ];
        self.get("query_range", &params).await
    }

    /// `/api/v1/series`: the label sets (`__name__` included) of series matching
    /// `selector` with samples in [from, to].
    pub async fn series(
        &self,
        selector: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Labels>, WebError> {
        let params = [
            ("match[]", selector.to_string()),
            ("start", seconds(from)),
            ("end", seconds(to)),
        ];
        match self.get("series", &params).await? {
            Answer::Series(s) => Ok(s),
            other => Err(unexpected(&other, "series list", selector)),
        }
    }

    /// The latest value of every series named `names` (that `matchers`, like
    /// `host="a"`, select) within `LATEST_WINDOW`: (name, labels, value). One query a
    /// name, sent at once: `last_over_time` reaches past the API's 5-minute lookback
    /// (probes polled every 10 minutes or hourly), and the name is known from the
    /// query, since range functions drop it in Prometheus and VictoriaMetrics.
    pub async fn latest(
        &self,
        names: &[String],
        matchers: &str,
        now: i64,
    ) -> Result<Vec<(String, Labels, f64)>, WebError> {
        let queries: Vec<String> = names
            .iter()
            .map(|n| {
                format!(
                    "last_over_time({n}{{{matchers}}}[{}s])",
                    LATEST_WINDOW_MS / 1000
                )
            })
            .collect();
        let answers =
            futures_util::future::try_join_all(queries.iter().map(|q| self.instant(q, now)))
                .await?;
        let mut out = Vec::new();
        for ((name, query), answer) in names.iter().zip(&queries).zip(answers) {
            for (labels, _, value) in vector(answer, query)? {
                out.push((name.clone(), labels, value));
            }
        }
        Ok(out)
    }

    async fn get(&self, endpoint: &str, params: &[(&str, String)]) -> Result<Answer, WebError> {
        let query = serde_urlencoded::to_string(params)
            .map_err(|e| WebError::Internal(format!("encoding a backend query: {e}")))?;
        let url = format!("{}/api/v1/{endpoint}?{query}", self.backend);
        // Errors name the backend, the endpoint and the PromQL, not the encoded URL.
        let asked = params.first().map_or("", |(_, q)| q.as_str());
        let body = tokio::time::timeout(BACKEND_BUDGET, self.http.get(&url, MAX_ANSWER))
            .await
            .map_err(|_| {
                WebError::Backend(format!(
                    "the metrics backend {} did not answer {endpoint} `{asked}` within {} s",
                    self.backend,
                    BACKEND_BUDGET.as_secs()
                ))
            })?
            .map_err(|e| {
                let why = e.strip_prefix(&format!("{url}: ")).unwrap_or(&e);
                WebError::Backend(format!(
                    "the metrics backend {} failed on {endpoint} `{asked}`: {why}",
                    self.backend
                ))
            })?;
        let text = std::str::from_utf8(&body).map_err(|_| {
            WebError::Backend(format!(
                "the metrics backend {} answered {endpoint} with bytes that are not UTF-8",
                self.backend
            ))
        })?;
        prom_answer::parse(text).map_err(|e| {
            WebError::Backend(format!(
                "the metrics backend {} answered {endpoint} with what cannot be read: {e}",
                self.backend
            ))
        })
    }

    /// What turns series' labels back into the store's (one fleet for a whole answer).
    fn label_keeper(&self) -> LabelKeeper {
        LabelKeeper(self.fleet())
    }
}

/// Turns a series' labels into those the store keeps.
struct LabelKeeper(Arc<Fleet>);

impl LabelKeeper {
    /// Without `__name__`, `host` and the labels remote write added; a probe's own
    /// `host` (sent as `exported_host`) back.
    fn own(&self, mut labels: Labels) -> Labels {
        labels.remove("__name__");
        labels.remove("host");
        for added in &self.0.added_labels {
            labels.remove(added);
        }
        if let Some(h) = labels.remove("exported_host") {
            labels.insert("host".to_string(), h);
        }
        labels
    }
}

/// ms as the API's seconds (`1700000000.5`).
fn seconds(ms: i64) -> String {
    // Exact: times up to year 9999 are below 2^53 ms.
    format!("{:.3}", ms as f64 / 1000.0)
}

/// `text` as a PromQL string literal: `"…"` with `\` and `"` escaped, control
/// characters as escapes (a host name is the user's, and goes into every query).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The answer's vector, or a backend error naming the query.
fn vector(answer: Answer, query: &str) -> Result<Vec<(Labels, i64, f64)>, WebError> {
    match answer {
        Answer::Vector(v) => Ok(v),
        other => Err(unexpected(&other, "vector", query)),
    }
}

/// Series with their points (ms, value), as a matrix answer holds them.
type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

fn matrix(answer: Answer, query: &str) -> Result<Matrix, WebError> {
    match answer {
        Answer::Matrix(m) => Ok(m),
        other => Err(unexpected(&other, "matrix", query)),
    }
}

fn unexpected(answer: &Answer, wanted: &str, query: &str) -> WebError {
    let got = match answer {
        Answer::Vector(_) => "vector",
        Answer::Matrix(_) => "matrix",
        Answer::Scalar(..) => "scalar",
        Answer::Series(_) => "series list",
    };
    WebError::Backend(format!(
        "the metrics backend answered `{query}` with a {got}, not a {wanted}"
    ))
}

/// Series that differ only in `replica` (each host polled twice, not deduplicated by
/// the receiver) are one series: their points merged by time, the first kept on a tie.
fn merge_replicas(series: Matrix) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
    let mut merged: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
    for (mut labels, points) in series {
        labels.remove("replica");
        let slot = merged.entry(labels).or_default();
        for (t, v) in points {
            slot.entry(t).or_insert(v);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_in_queries_cannot_break_out() {
        assert_eq!(quoted("gpu01"), "\"gpu01\"");
        assert_eq!(quoted("a\"} or vector(1) #"), "\"a\\\"} or vector(1) #\"");
        assert_eq!(quoted("a\\b\nc\u{7}"), "\"a\\\\b\\nc\\u0007\"");
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_500), "1700000000.500");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(seconds(253_402_300_799_999), "253402300799.999");
    }

    #[test]
    fn replicas_of_one_series_merge() {
        let labels =
            |r: &str| Labels::from([("host".into(), "a".into()), ("replica".into(), r.into())]);
        let merged = merge_replicas(vec![
            (labels("1"), vec![(1000, 1.0), (3000, 3.0)]),
            (labels("2"), vec![(1000, 9.0), (2000, 2.0)]),
        ]);
        assert_eq!(merged.len(), 1);
        let points: Vec<_> = merged.into_values().next().unwrap().into_iter().collect();
        assert_eq!(points, [(1000, 1.0), (2000, 2.0), (3000, 3.0)]);
    }
}
