//! The JSON API: hosts, series, time series (min/max/avg buckets or rate), logs.

use crate::{AppState, WebError, params};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use dcmon_store::SeriesFilter;
use dcmon_store::range::{Counting, Selector};
use std::collections::HashMap;
use std::time::Duration;

type Params = Query<HashMap<String, String>>;

use crate::view::now_ms;

fn get<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(String::as_str)
}

/// Refuses parameters the route does not know: a typo should not pass silently.
fn only(q: &HashMap<String, String>, known: &[&str]) -> Result<(), WebError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(WebError::BadRequest(format!(
            "unknown parameter `{k}` (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

async fn known_host(state: &AppState, host: &str) -> Result<(), WebError> {
    let name = host.to_string();
    if state.query(move |s| s.knows_host(&name)).await? {
        Ok(())
    } else {
        Err(WebError::NotFound(format!("no host `{host}` in the store")))
    }
}

pub async fn host(
    State(state): State<AppState>,
    Path(host): Path<String>,
) -> Result<impl IntoResponse, WebError> {
    known_host(&state, &host).await?;
    let name = host.clone();
    let one = host.clone();
    let now = crate::view::now_ms();
    let summary = state
        .query(move |s| crate::gpu_health::host_summary(s, &one, now))
        .await?;
    let facts: HashMap<String, String> = state
        .query(move |s| s.facts(&name))
        .await?
        .into_iter()
        .collect();
    Ok(Json(
        serde_json::json!({ "host": host, "summary": summary, "facts": facts }),
    ))
}

pub async fn series(
    State(state): State<AppState>,
    Query(q): Params,
) -> Result<impl IntoResponse, WebError> {
    only(&q, &["host", "name"])?;
    let filter = SeriesFilter {
        host: get(&q, "host").map(str::to_string),
        name: get(&q, "name").map(str::to_string),
    };
    Ok(Json(state.query(move |s| s.series_latest(&filter)).await?))
}

struct RangeRequest {
    selector: Selector,
    from: i64,
    to: i64,
    step: i64,
}

fn range_request(
    metric: String,
    q: &HashMap<String, String>,
    extra: &[&str],
) -> Result<RangeRequest, WebError> {
    let mut known = vec!["host", "labels", "from", "to", "step"];
    known.extend_from_slice(extra);
    only(q, &known)?;
    let now = now_ms();
    let from = params::time("from", get(q, "from"), now - 3_600_000, now)?;
    let to = params::time("to", get(q, "to"), now, now)?;
    let default_step = Duration::from_millis(((to - from).max(300) / 300) as u64);
    let step = params::duration("step", get(q, "step"), default_step)?;
    params::range(from, to, step)?;
    Ok(RangeRequest {
        selector: Selector {
            name: metric,
            host: get(q, "host").map(str::to_string),
            labels: params::labels(get(q, "labels"))?,
        },
        from,
        to,
        step,
    })
}

/// Min, max and average per step: `/api/timeseries/node_load1?host=gpu01&from=-6h`.
pub async fn timeseries(
    State(state): State<AppState>,
    Path(metric): Path<String>,
    Query(q): Params,
) -> Result<impl IntoResponse, WebError> {
    let r = range_request(metric, &q, &[])?;
    Ok(Json(
        state
            .query(move |s| s.downsampled(&r.selector, r.from, r.to, r.step))
            .await?,
    ))
}

/// Rate per second with Prometheus semantics: `...?window=5m`.
pub async fn rate(
    State(state): State<AppState>,
    Path(metric): Path<String>,
    Query(q): Params,
) -> Result<impl IntoResponse, WebError> {
    let r = range_request(metric, &q, &["window"])?;
    let window = params::duration("window", get(&q, "window"), Duration::from_secs(300))?;
    Ok(Json(
        state
            .query(move |s| s.counting(&r.selector, Counting::Rate, r.from, r.to, r.step, window))
            .await?,
    ))
}

/// `/api/logs/gpu01?source=journal&q=nvidia&limit=100&offset=0`, newest first.
pub async fn logs(
    State(state): State<AppState>,
    Path(host): Path<String>,
    Query(q): Params,
) -> Result<impl IntoResponse, WebError> {
    only(&q, &["source", "q", "limit", "offset"])?;
    known_host(&state, &host).await?;
    let number = |key: &str, default: u32, max: u32| -> Result<u32, WebError> {
        match get(&q, key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| {
                WebError::BadRequest(format!("{key}=`{v}` must be a whole number up to {max}"))
            }),
        }
    };
    let (limit, offset) = (number("limit", 100, 1000)?, number("offset", 0, 1_000_000)?);
    let source = get(&q, "source")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let words = get(&q, "q")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
    Ok(Json(
        state
            .query(move |s| {
                s.recent_logs(&host, source.as_deref(), words.as_deref(), limit, offset)
            })
            .await?,
    ))
}
