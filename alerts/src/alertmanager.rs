//! Sending to a Prometheus Alertmanager (API v2, `POST /api/v2/alerts`) as Prometheus
//! does: every firing alert at every evaluation with an end time a few intervals ahead
//! (so Alertmanager resolves it by itself if dcmon goes away), resolved ones with their
//! end time. Alertmanager deduplicates, groups and repeats; a receiver that was down
//! gets everything still active at the next evaluation after it is back.

use bytes::Bytes;
use dcmon_store::alerts::AlertRow;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Longest wait for Alertmanager's answer.
const DEADLINE: Duration = Duration::from_secs(10);

/// One HTTP client, its connections reused across evaluations.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The JSON body Alertmanager's API v2 takes. `valid_ms`: how long a firing alert holds
/// without news. `generator` (a link back to dcmon) must be a URL when given:
/// Alertmanager refuses the whole batch otherwise.
pub fn body(alerts: &[&AlertRow], now: i64, valid_ms: i64, generator: Option<&str>) -> String {
    let list: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let ends = a.resolved_at.unwrap_or(now + valid_ms);
            let mut alert = serde_json::json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.active_since),
                "endsAt": rfc3339(ends),
            });
            if let Some(url) = generator {
                alert["generatorURL"] = url.into();
            }
            alert
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

impl Sender {
    /// Posts `body` to `base`/api/v2/alerts; an error says what went wrong.
    pub async fn post(&self, base: &str, body: String) -> Result<(), String> {
        let url = format!("{base}/api/v2/alerts");
        let request = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{url}: {e}"))?;
        let response = tokio::time::timeout(DEADLINE, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within 10s"))?
            .map_err(|e| format!("{url}: {e}"))?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        // Alertmanager says why it refused a batch: keep the start of it.
        let why = tokio::time::timeout(DEADLINE, response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .unwrap_or_default();
        Err(format!("{url}: answered {status}: {}", why.trim()))
    }
}
