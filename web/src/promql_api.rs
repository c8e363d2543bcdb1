//! PromQL over HTTP in Prometheus's own format (`/api/v1/query`, `/api/v1/query_range`,
//! and `/api/query`), so Grafana's Prometheus data source and `promtool query` read
//! dcmon directly. Parameters as Prometheus takes them, by GET or form POST; errors in
//! Prometheus's error shape.

use crate::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use dcmon_alerts::StoreSource;
use dcmon_promql::{self as promql, Sample, Value};
use std::collections::HashMap;

type Params = HashMap<String, String>;

/// At most this many steps in one range query (as the chart API).
const MAX_STEPS: i64 = dcmon_store::range::MAX_POINTS;

/// Prometheus's error answer.
struct PromError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"status": "error", "errorType": self.kind, "error": self.message});
        (self.status, Json(body)).into_response()
    }
}

fn error(status: StatusCode, kind: &'static str, message: String) -> PromError {
    PromError {
        status,
        kind,
        message,
    }
}

fn bad(message: String) -> PromError {
    error(StatusCode::BAD_REQUEST, "bad_data", message)
}

use crate::view::now_ms;

/// Unix seconds with a fraction (`1700000000.5`), as Prometheus's API takes times, from
/// 1970 to 9999; `default` when absent.
fn time_param(params: &Params, name: &str, default_ms: i64) -> Result<i64, PromError> {
    let Some(text) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(default_ms);
    };
    let seconds: f64 = text
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && (0.0..=253_402_300_799.0).contains(s))
        .ok_or_else(|| {
            bad(format!(
                "invalid parameter \"{name}\": `{}` is not Unix seconds from 1970 to 9999",
                crate::params::shown(text)
            ))
        })?;
    Ok((seconds * 1000.0).round() as i64)
}

/// A step in seconds (`15`, `0.5`) or as a duration (`1m`), 1 ms to 400 days.
fn step_param(params: &Params) -> Result<i64, PromError> {
    let text = params
        .get("step")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("invalid parameter \"step\": missing".to_string()))?;
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && (0.001..=400.0 * 86400.0).contains(&seconds) {
            return Ok((seconds * 1000.0).round() as i64);
        }
        return Err(bad(format!(
            "invalid parameter \"step\": `{}` must be from 0.001 to 34560000 seconds",
            crate::params::shown(text)
        )));
    }
    crate::params::duration("step", Some(text), std::time::Duration::ZERO)
        .map_err(|e| bad(format!("invalid parameter \"step\": {e}")))
}

fn parsed(params: &Params) -> Result<promql::Query, PromError> {
    let text = params
        .get("query")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| bad("invalid parameter \"query\": missing".to_string()))?;
    if text.len() > 16 * 1024 {
        return Err(bad(
            "invalid parameter \"query\": longer than 16 KiB".to_string()
        ));
    }
    promql::parse(text).map_err(|e| bad(format!("invalid parameter \"query\": {e}")))
}

/// `[1700000000.5, "42"]`: Prometheus's sample pair (values as strings, `NaN`, `+Inf`).
fn pair(at_ms: i64, value: f64) -> serde_json::Value {
    let text = if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{value}")
    };
    serde_json::json!([at_ms as f64 / 1000.0, text])
}

fn run_error(e: promql::QueryError) -> PromError {
    let text = e.to_string();
    if text.contains("interrupted") {
        error(StatusCode::SERVICE_UNAVAILABLE, "timeout", text)
    } else {
        error(StatusCode::UNPROCESSABLE_ENTITY, "execution", text)
    }
}

/// Parameters from the query string and, on POST, the form body (as Prometheus).
fn merged(method: &Method, query: Params, body: &[u8]) -> Result<Params, PromError> {
    let mut all = query;
    if method == Method::POST && !body.is_empty() {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| bad(format!("the form body is not url-encoded: {e}")))?;
        all.extend(form);
    }
    Ok(all)
}

pub async fn instant(
    State(state): State<AppState>,
    method: Method,
    Query(query): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    let params = match merged(&method, query, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let now = now_ms();
    let (q, at) = match (parsed(&params), time_param(&params, "time", now)) {
        (Ok(q), Ok(at)) => (q, at),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let result = state
        .query(move |store| Ok(promql::eval(&q, at, &StoreSource(store))))
        .await;
    match result {
        Err(e) => e.into_response(),
        Ok(Err(e)) => run_error(e).into_response(),
        Ok(Ok(Value::Scalar(v))) => success("scalar", pair(at, v)),
        Ok(Ok(Value::Vector(samples))) => {
            let result: Vec<serde_json::Value> = samples
                .into_iter()
                .map(|Sample { labels, value }| {
                    serde_json::json!({"metric": labels, "value": pair(at, value)})
                })
                .collect();
            success("vector", result.into())
        }
    }
}

pub async fn range(
    State(state): State<AppState>,
    method: Method,
    Query(query): Query<Params>,
    body: axum::body::Bytes,
) -> Response {
    let params = match merged(&method, query, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let now = now_ms();
    let q = match parsed(&params) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let (start, end, step) = match (
        time_param(&params, "start", now - 3_600_000),
        time_param(&params, "end", now),
        step_param(&params),
    ) {
        (Ok(s), Ok(e), Ok(st)) => (s, e, st),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e.into_response(),
    };
    if end < start {
        let why = "invalid parameter \"end\": end timestamp must not be before start time";
        return bad(why.into()).into_response();
    }
    if (end - start) / step > MAX_STEPS {
        return bad(format!(
            "exceeded maximum resolution of {MAX_STEPS} points per timeseries: raise step"
        ))
        .into_response();
    }
    let result = state
        .query(move |store| {
            let source = StoreSource(store);
            let mut series: std::collections::BTreeMap<promql::Labels, Vec<serde_json::Value>> =
                Default::default();
            let mut t = start;
            while t <= end {
                match promql::eval(&q, t, &source) {
                    Err(e) => return Ok(Err(e)),
                    Ok(Value::Scalar(v)) => series
                        .entry(Default::default())
                        .or_default()
                        .push(pair(t, v)),
                    Ok(Value::Vector(samples)) => {
                        for s in samples {
                            series.entry(s.labels).or_default().push(pair(t, s.value));
                        }
                    }
                }
                t += step;
            }
            Ok(Ok(series))
        })
        .await;
    match result {
        Err(e) => e.into_response(),
        Ok(Err(e)) => run_error(e).into_response(),
        Ok(Ok(series)) => {
            let result: Vec<serde_json::Value> = series
                .into_iter()
                .map(|(metric, values)| serde_json::json!({"metric": metric, "values": values}))
                .collect();
            success("matrix", result.into())
        }
    }
}

fn success(kind: &str, result: serde_json::Value) -> Response {
    Json(serde_json::json!({"status": "success", "data": {"resultType": kind, "result": result}}))
        .into_response()
}
