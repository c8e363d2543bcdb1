//! Alerts: the Alerts page (firing, pending and silenced; silences; receivers; the
//! history with filters), `/api/alerts`, `/api/alerts/history`, and the admins' silence
//! forms. Read from the store, where `dcmon serve`'s alert loop keeps them.

use crate::actions_page::admin_post;
use crate::{AppState, WebError};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use dcmon_alerts::silence::{self, Silences};
use dcmon_store::alerts::{AlertRow, HistoryFilter};
use dcmon_store::silences::matchers_text;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Most history rows one request reads.
const MAX_HISTORY: usize = 1000;

/// Ended silences stay listed this long.
const ENDED_SHOWN_MS: i64 = 24 * 3600 * 1000;

/// Active alerts (firing, silenced, pending), silenced ones marked with their silence.
fn active(rows: Vec<AlertRow>, silences: &Silences) -> Vec<(AlertRow, Option<i64>)> {
    let mut rows: Vec<(AlertRow, Option<i64>)> = rows
        .into_iter()
        .filter(|a| a.state != "resolved")
        .map(|mut a| {
            let by = silences.silencing(&a.labels).map(|s| s.id);
            if a.state == "firing" && by.is_some() {
                a.state = "silenced".into();
            }
            (a, by)
        })
        .collect();
    // Firing first, then silenced, then pending; the oldest first within each.
    let rank = |s: &str| match s {
        "firing" => 0,
        "silenced" => 1,
        _ => 2,
    };
    rows.sort_by_key(|(a, _)| (rank(&a.state), a.fired_at.unwrap_or(a.active_since)));
    rows
}

fn json_of((a, silenced_by): &(AlertRow, Option<i64>)) -> serde_json::Value {
    serde_json::json!({
        "name": a.rule,
        "state": a.state,
        "labels": a.labels,
        "annotations": a.annotations,
        "value": a.value,
        "since": a.fired_at.unwrap_or(a.active_since),
        "active_since": a.active_since,
        "silenced_by": silenced_by,
    })
}

async fn current(state: &AppState) -> Result<Vec<(AlertRow, Option<i64>)>, WebError> {
    let now = crate::view::now_ms();
    let (rows, stored) = state
        .query(move |s| Ok((s.alerts()?, s.silences(now)?)))
        .await?;
    Ok(active(rows, &Silences::active(stored, now)))
}

pub async fn api(State(state): State<AppState>) -> Result<impl IntoResponse, WebError> {
    let rows = current(&state).await?;
    Ok(Json(rows.iter().map(json_of).collect::<Vec<_>>()))
}

/// `limit`, `alert`, `host`, `state` (unknown parameters refused).
fn history_query(q: &HashMap<String, String>) -> Result<(usize, HistoryFilter), WebError> {
    const KNOWN: [&str; 4] = ["limit", "alert", "host", "state"];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{}` (known: {})",
            crate::params::shown(k),
            KNOWN.join(", ")
        )));
    }
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY).contains(n))
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "limit=`{}` is not a number from 1 to {MAX_HISTORY}",
                    crate::params::shown(v)
                ))
            })?,
    };
    let given = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let state = given("state");
    if let Some(s) = &state
        && !["pending", "firing", "resolved"].contains(&s.as_str())
    {
        return Err(WebError::BadRequest(format!(
            "state=`{}` is not pending, firing or resolved",
            crate::params::shown(s)
        )));
    }
    Ok((
        limit,
        HistoryFilter {
            rule: given("alert"),
            host: given("host"),
            state,
        },
    ))
}

pub async fn api_history(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, WebError> {
    let (limit, filter) = history_query(&q)?;
    let rows = state
        .query(move |s| s.alert_history(limit, &filter))
        .await?;
    Ok(Json(rows))
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>, WebError> {
    let (limit, filter) = history_query(&q)?;
    let now = crate::view::now_ms();
    let shown_filter = filter.clone();
    let (rows, stored, history, receivers) = state
        .query(move |s| {
            Ok((
                s.alerts()?,
                s.silences(now - ENDED_SHOWN_MS)?,
                s.alert_history(limit, &filter)?,
                s.receivers()?,
            ))
        })
        .await?;
    let rows = active(rows, &Silences::active(stored.clone(), now));
    let alerts: Vec<_> = rows
        .iter()
        .map(|(a, by)| {
            minijinja::context! {
                name => a.rule,
                state => a.state,
                silence => by,
                host => a.labels.get("host"),
                severity => a.labels.get("severity"),
                labels => labels_text(&a.labels),
                value => a.value.map(crate::view::number),
                since => crate::view::ago(Some(a.fired_at.unwrap_or(a.active_since)), now),
                summary => a.annotations.get("summary"),
            }
        })
        .collect();
    let silences: Vec<_> = stored
        .iter()
        .map(|s| {
            minijinja::context! {
                id => s.id,
                active => s.ends_at > now && s.starts_at <= now,
                matchers => matchers_text(&s.matchers),
                ends => crate::view::until(s.ends_at, now),
                by => s.created_by,
                comment => s.comment,
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
    let receivers: Vec<_> = receivers
        .iter()
        .map(|r| {
            minijinja::context! {
                name => r.name,
                sent => r.sent,
                failed => r.failed,
                dropped => r.dropped,
                last_ok => r.last_ok.map(|t| crate::view::ago(Some(t), now)),
                last_error => r.last_error,
                failing => r.last_error_at.is_some_and(|e| r.last_ok.is_none_or(|ok| e > ok)),
                last_error_at => r.last_error_at.map(|t| crate::view::ago(Some(t), now)),
            }
        })
        .collect();
    let caller = state.access.caller(&headers);
    let count = |s: &str| rows.iter().filter(|(a, _)| a.state == s).count();
    let context = minijinja::context! {
        title => "Alerts",
        firing => count("firing"),
        pending => count("pending"),
        silenced => count("silenced"),
        alerts => alerts,
        silences => silences,
        receivers => receivers,
        history => transitions,
        filter => minijinja::context! {
            alert => shown_filter.rule,
            host => shown_filter.host,
            state => shown_filter.state,
            limit => limit,
        },
        admin => caller.is_admin() && caller.session.is_some(),
        csrf => caller.csrf,
    };
    state.page("alerts.html", context).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
}

fn address(request: &axum::extract::Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// `POST /alerts/silences`: an admin silences alerts (audited); back to the page.
pub async fn add_silence(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let who = format!("web:admin@{}", address(&request));
    let form: Result<Form<SilenceForm>, FormRejection> =
        <Form<SilenceForm> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await;
    let Form(form) = form.map_err(|e| WebError::BadRequest(e.body_text()))?;
    admin_post(&state.access.caller(&headers), &form.csrf)?;
    let matchers = silence::parse(&form.matchers)
        .map_err(|e| WebError::BadRequest(format!("matchers: {e}")))?;
    let length = humantime::parse_duration(form.duration.trim())
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| (1000..=silence::MAX_SILENCE_MS).contains(ms))
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "duration `{}` is not a duration from 1s to 366d (`2h`, `30m`)",
                crate::params::shown(&form.duration)
            ))
        })?;
    let comment = form.comment.trim().to_string();
    if comment.is_empty() {
        return Err(WebError::BadRequest(
            "a silence needs a comment saying why".into(),
        ));
    }
    let now = crate::view::now_ms();
    state
        .write(move |s| s.add_silence(&matchers, now, now + length, &comment, &who))
        .await?;
    Ok(Redirect::to("/alerts#silences").into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /alerts/silences/{id}/expire`: an admin lifts a silence now (audited).
pub async fn expire_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let who = format!("web:admin@{}", address(&request));
    let form: Result<Form<CsrfForm>, FormRejection> =
        <Form<CsrfForm> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await;
    let Form(form) = form.map_err(|e| WebError::BadRequest(e.body_text()))?;
    admin_post(&state.access.caller(&headers), &form.csrf)?;
    let id: i64 = id.parse().map_err(|_| {
        WebError::BadRequest(format!(
            "silence id `{}` is not a number",
            crate::params::shown(&id)
        ))
    })?;
    let now = crate::view::now_ms();
    match state
        .write(move |s| s.expire_silence(id, now, &who))
        .await?
    {
        Some(_) => Ok(Redirect::to("/alerts#silences").into_response()),
        None => Err(WebError::NotFound(format!("no silence {id}"))),
    }
}
