//! Route handlers: extract, one store call, a view model, render.

use crate::view::host_row;
use crate::{AppState, WebError, metrics};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Uri, header};
use axum::response::{Html, IntoResponse};

use crate::view::now_ms;

/// `/?sort=cpu&desc=1&status=offline&q=gpu`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    #[serde(default)]
    sort: String,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    /// Only hosts in this inventory group.
    #[serde(default)]
    group: String,
    /// Only hosts with this label: `rack=r12`.
    #[serde(default)]
    label: String,
}

/// Longest filter value accepted (each is echoed in the page's links).
const MAX_FILTER_LEN: usize = 256;

/// Sortable columns: (key, heading).
const COLUMNS: [(&str, &str); 12] = [
    ("host", "Host"),
    ("status", "Status"),
    ("cpu", "CPU"),
    ("memory", "Memory"),
    ("load", "Load"),
    ("gpus", "GPUs"),
    ("gpu_temp", "GPU max"),
    ("gpu_issues", "GPU issues"),
    ("ipmi_temp", "BMC temp max"),
    ("alarms", "Alarms"),
    ("nvme_wear", "NVMe wear"),
    ("upgrades", "Upgrades"),
];

pub async fn overview(
    State(state): State<AppState>,
    query: Result<Query<OverviewQuery>, QueryRejection>,
) -> Result<Html<String>, WebError> {
    let Query(query) = query.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let filters_given = [
        ("q", &query.q),
        ("status", &query.status),
        ("group", &query.group),
        ("label", &query.label),
    ];
    // Filters are echoed in every sort link: keep them short.
    for (name, value) in filters_given {
        if value.len() > MAX_FILTER_LEN {
            return Err(WebError::BadRequest(format!(
                "{name} is {} bytes long: filters take at most {MAX_FILTER_LEN}",
                value.len()
            )));
        }
    }
    let sort = if query.sort.is_empty() {
        "host"
    } else {
        query.sort.as_str()
    };
    if !COLUMNS.iter().any(|(k, _)| *k == sort) {
        let known: Vec<&str> = COLUMNS.iter().map(|(k, _)| *k).collect();
        return Err(WebError::BadRequest(format!(
            "cannot sort by `{sort}`: use one of {}",
            known.join(", ")
        )));
    }
    let label = match query.label.trim() {
        "" => None,
        text => Some(
            text.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "label=`{text}` is not `name=value` (like rack=r12)"
                    ))
                })?,
        ),
    };
    let now = now_ms();
    let hosts = state.host_summaries(now).await?;
    let mut firing: std::collections::HashMap<String, usize> = Default::default();
    for alert in state.query(|s| s.alerts()).await? {
        if let (Some(host), "firing") = (alert.labels.get("host"), alert.state.as_str()) {
            *firing.entry(host.clone()).or_default() += 1;
        }
    }
    // Offered in the group filter: every group some host is in.
    let groups: std::collections::BTreeSet<&str> = hosts
        .iter()
        .flat_map(|h| h.groups.iter().map(String::as_str))
        .collect();
    let mut rows: Vec<_> = hosts
        .iter()
        .filter(|h| query.group.is_empty() || h.groups.contains(&query.group))
        .filter(|h| label.is_none_or(|(k, v)| h.labels.get(k).is_some_and(|x| x == v)))
        .map(|h| {
            let mut row = host_row(h, now, &state.thresholds);
            row.firing = firing.get(&h.host).copied().unwrap_or(0);
            row
        })
        .filter(|r| query.status.is_empty() || r.status == query.status)
        .filter(|r| r.host.contains(query.q.as_str()))
        .collect();
    rows.sort_by(|a, b| {
        let number = |r: &crate::view::HostRow| match sort {
            "cpu" => r.cpu.sort,
            "memory" => r.memory.sort,
            "load" => r.load.sort,
            "gpus" => r.gpus.sort,
            "gpu_temp" => r.gpu_temp.sort,
            "gpu_issues" => r.gpu_issues.sort,
            "ipmi_temp" => r.ipmi_temp.sort,
            "alarms" => r.alarms.sort,
            "nvme_wear" => r.nvme_wear.sort,
            "upgrades" => r.upgrades.sort,
            _ => 0.0,
        };
        match sort {
            "host" => a.host.cmp(&b.host),
            "status" => a.status.cmp(&b.status).then(a.host.cmp(&b.host)),
            _ => number(a).total_cmp(&number(b)).then(a.host.cmp(&b.host)),
        }
    });
    let desc = query.desc.is_some_and(|d| !d.is_empty() && d != "0");
    if desc {
        rows.reverse();
    }
    let counts = |status: &str| rows.iter().filter(|r| r.status == status).count();
    // The filters in force, carried by every sort link (empty ones left out).
    let filters: String = filters_given
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            format!(
                "&{}",
                serde_urlencoded::to_string([(k, v)]).unwrap_or_default()
            )
        })
        .collect();
    let context = minijinja::context! {
        title => "Hosts",
        online => counts("online"),
        offline => counts("offline"),
        stale => counts("stale"),
        rows => rows,
        columns => COLUMNS,
        sort => sort,
        desc => desc,
        status => query.status,
        q => query.q,
        groups => groups,
        group => query.group,
        label => query.label,
        filters => filters,
    };
    state.page("overview.html", context).await
}

pub async fn probes(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    let runs = state.query(|s| s.last_runs()).await?;
    let now = now_ms();
    let rows: Vec<_> = runs
        .iter()
        .map(|r| {
            minijinja::context! {
                host => r.host,
                probe => r.probe,
                status => r.status,
                ago => crate::view::ago(Some(r.started), now),
                took => format!("{} ms", r.duration_ms),
                samples => r.samples,
                warnings => r.warning_count,
                note => r.error.clone().or(r.warnings.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let hosts = runs
        .iter()
        .map(|r| r.host.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let context = minijinja::context! {
        title => "Probe health",
        hosts => hosts,
        failing => runs.iter().filter(|r| r.status == "error").count(),
        absent => runs.iter().filter(|r| r.status == "absent").count(),
        partial => runs.iter().filter(|r| r.status == "partial").count(),
        runs => rows,
    };
    state.page("probes.html", context).await
}

pub async fn api_hosts(State(state): State<AppState>) -> Result<impl IntoResponse, WebError> {
    let now = now_ms();
    Ok(Json(state.host_summaries(now).await?))
}

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, WebError> {
    // The text is written while the values are borrowed: no copy of every label set.
    let written = state.written.clone();
    let mut text = state
        .query(move |s| {
            let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
            let mut text = s.with_latest(|all| metrics::exposition(all, &mut written))?;
            metrics::alerts(&mut text, &s.alerts()?);
            metrics::receivers(&mut text, &s.receivers()?);
            Ok(text)
        })
        .await?;
    if let Some(own) = &state.own_metrics {
        own(&mut text);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn not_found(uri: Uri) -> WebError {
    WebError::NotFound(format!("no page at {}", uri.path()))
}

/// Our live-refresh script, served from here so the page's CSP can forbid inline scripts.
pub async fn live_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../templates/live.js"),
    )
}

/// The API's OpenAPI 3.0 document (web/api/openapi.json; a test checks it against the routes).
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../api/openapi.json"),
    )
}

/// The action page's script: appends output as it streams in.
pub async fn action_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../templates/action.js"),
    )
}

/// `/audit?host=`: the audit trail, newest first (admins only).
pub async fn audit(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Html<String>, WebError> {
    // It holds command output, which can hold secrets: admins only, always.
    if !state.access.caller(&headers).is_admin() {
        return Err(WebError::Forbidden(
            if state.access.config.admin_token_file.is_some() {
                "the audit trail is for admins: log in with the admin token"
            } else {
                "the audit trail is for admins, and no admin token is set: add \
                 admin_token_file to [web] in the inventory (or read it with `dcmon audit`)"
            }
            .into(),
        ));
    }
    if let Some(k) = q.keys().find(|k| k.as_str() != "host") {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{k}` (known: host)"
        )));
    }
    let host = q.get("host").filter(|h| !h.is_empty()).cloned();
    let filter = host.clone();
    let entries = state
        .query(move |s| s.audit(filter.as_deref(), None, 500))
        .await?;
    let now = now_ms();
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            minijinja::context! {
                ago => crate::view::ago(Some(e.ts), now),
                who => e.who, host => e.host, action => e.action, command => e.command,
                status => e.status, exit_code => e.exit_code,
                took => e.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
                output => e.output,
            }
        })
        .collect();
    let context = minijinja::context! { title => "Audit", host => host, entries => rows };
    state.page("audit.html", context).await
}
