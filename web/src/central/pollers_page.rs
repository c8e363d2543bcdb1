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
    )
    .await
}

/// `/probes`, `/audit`, `/alerts`: every poller keeps its own.
pub async fn all(State(state): State<AppState>, uri: Uri) -> Result<Html<String>, WebError> {
    let central = central(&state)?;
    let what = match uri.path() {
        "/probes" => "Probe runs are",
        "/audit" => "The audit trail is",
        _ => "Alerts are evaluated and",
    };
    let message = format!(
        "{what} kept by each poller for its own hosts, not by the metrics backend this view reads: open them on each poller."
    );
    let owners = (1..=central.poller_count())
        .map(|index| Owner {
            index,
            url: central.pollers().get(index as usize - 1).cloned(),
        })
        .collect();
    let title = uri.path().trim_start_matches('/');
    page(&state, title.to_string(), message, owners, uri.path()).await
}

fn central(state: &AppState) -> Result<&super::Central, WebError> {
    state
        .central
        .as_ref()
        .ok_or_else(|| WebError::NotFound("this page belongs to the central view".into()))
}

async fn page(
    state: &AppState,
    title: String,
    message: String,
    pollers: Vec<Owner>,
    path: &str,
) -> Result<Html<String>, WebError> {
    let context = minijinja::context! {
        title => title,
        message => message,
        pollers => pollers,
        path => path,
        still => true,
    };
    state.page("pollers.html", context).await
}
