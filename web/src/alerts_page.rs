//! Alerts: the Alerts page (firing and pending, then the history), `/api/alerts` and
//! `/api/alerts/history`. Read from the store, where `dcmon serve`'s alert loop keeps
//! them.

use crate::{AppState, WebError};
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use dcmon_store::alerts::AlertRow;
use std::collections::HashMap;

/// Most history rows one request reads.
const MAX_HISTORY: usize = 1000;

fn active(rows: Vec<AlertRow>) -> Vec<AlertRow> {
    let mut rows: Vec<AlertRow> = rows.into_iter().filter(|a| a.state != "resolved").collect();
    // Firing first, then pending; the oldest first within each.
    rows.sort_by_key(|a| (a.state != "firing", a.fired_at.unwrap_or(a.active_since)));
    rows
}

fn json_of(a: &AlertRow) -> serde_json::Value {
    serde_json::json!({
        "name": a.rule,
        "state": a.state,
        "labels": a.labels,
        "annotations": a.annotations,
        "value": a.value,
        "since": a.fired_at.unwrap_or(a.active_since),
        "active_since": a.active_since,
    })
}

pub async fn api(State(state): State<AppState>) -> Result<impl IntoResponse, WebError> {
    let rows = active(state.query(|s| s.alerts()).await?);
    Ok(Json(rows.iter().map(json_of).collect::<Vec<_>>()))
}

fn limit(q: &HashMap<String, String>) -> Result<usize, WebError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "limit") {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{}` (known: limit)",
            crate::params::shown(k)
        )));
    }
    match q.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY).contains(n))
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "limit=`{}` is not a number from 1 to {MAX_HISTORY}",
                    crate::params::shown(v)
                ))
            }),
    }
}

pub async fn api_history(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, WebError> {
    let limit = limit(&q)?;
    let rows = state.query(move |s| s.alert_history(limit)).await?;
    Ok(Json(rows))
}

pub async fn page(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    let rows = active(state.query(|s| s.alerts()).await?);
    let history = state.query(|s| s.alert_history(200)).await?;
    let now = crate::view::now_ms();
    let labels_text = |labels: &std::collections::BTreeMap<String, String>| {
        labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let alerts: Vec<_> = rows
        .iter()
        .map(|a| {
            minijinja::context! {
                name => a.rule,
                state => a.state,
                host => a.labels.get("host"),
                severity => a.labels.get("severity"),
                labels => labels_text(&a.labels),
                value => a.value.map(crate::view::number),
                since => crate::view::ago(Some(a.fired_at.unwrap_or(a.active_since)), now),
                summary => a.annotations.get("summary"),
            }
        })
        .collect();
    let transitions: Vec<_> = history
        .iter()
        .map(|t| {
            minijinja::context! {
                name => t.rule,
                state => t.state,
                host => t.labels.get("host"),
                labels => labels_text(&t.labels),
                value => t.value.map(crate::view::number),
                ago => crate::view::ago(Some(t.ts), now),
            }
        })
        .collect();
    let context = minijinja::context! {
        title => "Alerts",
        firing => rows.iter().filter(|a| a.state == "firing").count(),
        pending => rows.iter().filter(|a| a.state == "pending").count(),
        alerts => alerts,
        history => transitions,
    };
    Ok(Html(state.render("alerts.html", context)?))
}
