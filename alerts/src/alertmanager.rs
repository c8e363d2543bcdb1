//! Sending to a Prometheus Alertmanager (API v2, `POST /api/v2/alerts`) as Prometheus
//! does: every firing alert at every evaluation with an end time a few intervals ahead
//! (so Alertmanager resolves it by itself if dcmon goes away), resolved ones with their
//! end time. Alertmanager deduplicates, groups and repeats; a receiver that was down
//! gets everything still active at the next evaluation after it is back. dcmon's
//! silences are copied to it (`POST /api/v2/silences`) so it mutes the same alerts.

use crate::http::Http;
use dcmon_store::alerts::AlertRow;
use dcmon_store::silences::Silence;
use hyper::Method;

pub(crate) fn rfc3339(ms: i64) -> String {
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

/// Posts alerts (`body`) to the Alertmanager at `base`.
pub async fn post(http: &Http, base: &str, body: String) -> Result<(), String> {
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    http.send(Method::POST, &url, Some(body)).await.map(|_| ())
}

/// Creates `silence` there; returns Alertmanager's id for it.
pub async fn create_silence(http: &Http, base: &str, silence: &Silence) -> Result<String, String> {
    let url = format!("{}/api/v2/silences", base.trim_end_matches('/'));
    let matchers: Vec<serde_json::Value> = silence
        .matchers
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "value": m.value,
                "isRegex": m.op.contains('~'),
                "isEqual": !m.op.starts_with('!'),
            })
        })
        .collect();
    let body = serde_json::json!({
        "matchers": matchers,
        "startsAt": rfc3339(silence.starts_at),
        "endsAt": rfc3339(silence.ends_at),
        "createdBy": silence.created_by,
        "comment": format!("dcmon silence {}: {}", silence.id, silence.comment),
    });
    let answer = http
        .send(Method::POST, &url, Some(body.to_string()))
        .await?;
    serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["silenceID"].as_str().map(String::from))
        .ok_or_else(|| format!("{url}: the answer has no silenceID"))
}

/// Lifts the silence `id` there (a silence lifted early in dcmon).
pub async fn delete_silence(http: &Http, base: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("Alertmanager silence id `{id}` is not a UUID"));
    }
    let url = format!("{}/api/v2/silence/{id}", base.trim_end_matches('/'));
    http.send(Method::DELETE, &url, None).await.map(|_| ())
}
