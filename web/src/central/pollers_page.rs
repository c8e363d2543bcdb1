//! What the central view cannot answer from the Prometheus API (logs, probe runs,
//! audit, alerts, actions): a page naming the pollers that keep it, with links.

use super::Owner;
use crate::{AppState, WebError};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Html;

/// `/hosts/{host}/logs` and the like: the host's own pollers.
pub async fn host(
    State(state): State<AppState>,
    Path(host): Path<String>,
    uri: Uri,
) -> Result<Html<String>, WebError> {
    let central = central(&state)?;
    let what = if uri.path().ends_with("/logs") {
        "logs"
    } else {
        "actions"
    };
    let owners = central.owners(&host);
    let list: Vec<String> = owners.iter().map(|o| o.index.to_string()).collect();
    let message = format!(
        "The {what} of {host} are kept by the poller that polls it (poller {} of {}), not by the metrics backend this view reads.",
        list.join(" and "),
        central.poller_count(),
    );
    page(
        &state,
        format!("{host}: {what}"),
        message,
        owners,
        uri.path(),
        None,
    )
    .await
}

/// `/probes`, `/audit`, `/alerts`: every poller keeps its own.
pub async fn all(State(state): State<AppState>, uri: Uri) -> Result<Html<String>, WebError> {
    let central = central(&state)?;
    let what = match uri.path() {
        "/probes" => "Probe runs are",
        "/audit" => "The audit trail is",
        _ => "Alerts are evaluated, silenced and their history",
    };
    let message = format!(
        "{what} kept by each poller for its own hosts, not by the metrics backend this view reads: open them on each poller."
    );
    // The alerts page lists what every poller sent as `ALERTS` (pending and firing).
    let alerts = if uri.path() == "/alerts" {
        Some(alerts(central).await?)
    } else {
        None
    };
    let pollers = central.pollers();
    let owners: Vec<Owner> = (1..=central.poller_count())
        .map(|index| Owner {
            index,
            url: pollers.get(index as usize - 1).cloned(),
        })
        .collect();
    let title = uri.path().trim_start_matches('/').to_string();
    page(&state, title, message, owners, uri.path(), alerts).await
}

/// Every poller's pending and firing alerts, firing first, each with its host's pollers.
async fn alerts(central: &super::Central) -> Result<Vec<minijinja::Value>, WebError> {
    let query = "ALERTS";
    let answer = central.instant(query, crate::view::now_ms()).await?;
    let mut rows: Vec<(String, String, String, minijinja::Value)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (mut labels, _, _) in super::vector(answer, query)? {
        labels.remove("__name__");
        labels.remove("replica");
        if !seen.insert(labels.clone()) {
            continue; // the same alert from two replicas
        }
        let state = labels.remove("alertstate").unwrap_or_default();
        let name = labels.remove("alertname").unwrap_or_default();
        let severity = labels.remove("severity").unwrap_or_default();
        let host = labels.remove("host").unwrap_or_default();
        let owners = if host.is_empty() {
            Vec::new()
        } else {
            central.owners(&host)
        };
        let rest: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let row = minijinja::context! {
            name => name, state => state, severity => severity, host => host,
            labels => rest.join(" "), owners => owners,
        };
        // Firing before pending, then by name and host.
        rows.push((
            if state == "firing" { "0" } else { "1" }.to_string(),
            name,
            host,
            row,
        ));
    }
    rows.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    Ok(rows.into_iter().map(|r| r.3).collect())
}

fn central(state: &AppState) -> Result<&super::Central, WebError> {
    state
        .central
        .as_ref()
        .ok_or_else(|| WebError::NotFound("this page belongs to the central view".into()))
}

/// The page: `pollers` linked at `path` on each, and the alerts table when given.
async fn page(
    state: &AppState,
    title: String,
    message: String,
    pollers: Vec<Owner>,
    path: &str,
    alerts: Option<Vec<minijinja::Value>>,
) -> Result<Html<String>, WebError> {
    let context = minijinja::context! {
        title => title,
        message => message,
        pollers => pollers,
        path => path,
        alerts => alerts,
        still => true,
    };
    state.page("pollers.html", context).await
}
