//! `POST /hosts/{host}/actions` (admin, CSRF), `/actions/{id}` (its output) and
//! `/actions/{id}/events` (the same as server-sent events while it runs).

use crate::actions::{Action, Actions, parse_raw_bytes};
use crate::auth::{self, Caller};
use crate::{AppState, WebError};
use axum::Form;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::convert::Infallible;
use std::net::SocketAddr;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    bytes: String,
    #[serde(default)]
    confirm: String,
}

/// Only an admin acts; a session must send its CSRF token (a bearer token is not sent
/// by browsers on their own, so it needs none).
pub fn admin_post(caller: &Caller, sent_csrf: &str) -> Result<(), WebError> {
    if !caller.is_admin() {
        return Err(WebError::Forbidden(
            "only an admin may act: log in with the admin token".into(),
        ));
    }
    if caller.session.is_some() && !auth::csrf_ok(caller.csrf.as_deref(), Some(sent_csrf)) {
        return Err(WebError::Forbidden(
            "the form's CSRF token does not match this session: reload the page".into(),
        ));
    }
    Ok(())
}

fn action_of(form: &ActionForm) -> Result<Action, WebError> {
    match form.action.as_str() {
        "fan-status" => Ok(Action::FanStatus),
        "sysinfo" => Ok(Action::SysInfo),
        "fan-set" => {
            if form.mode.trim().is_empty() {
                return Err(WebError::BadRequest("fan-set needs a mode".into()));
            }
            if form.confirm != "yes" {
                return Err(WebError::BadRequest(
                    "confirm the fan mode change (tick the box)".into(),
                ));
            }
            Ok(Action::FanSet {
                mode: form.mode.trim().to_string(),
            })
        }
        "ipmi-raw" => parse_raw_bytes(&form.bytes)
            .map(|bytes| Action::IpmiRaw { bytes })
            .map_err(WebError::BadRequest),
        other => Err(WebError::BadRequest(format!(
            "unknown action `{other}` (known: fan-status, fan-set, sysinfo, ipmi-raw)"
        ))),
    }
}

pub async fn start(
    State(state): State<AppState>,
    Path(host): Path<String>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let form: Result<Form<ActionForm>, FormRejection> =
        <Form<ActionForm> as axum::extract::FromRequest<AppState>>::from_request(request, &state)
            .await;
    let Form(form) = form.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let caller = state.access.caller(&headers);
    admin_post(&caller, &form.csrf)?;
    let action = action_of(&form)?;
    let Some(runner) = state.runner.clone() else {
        return Err(WebError::Unavailable(
            "actions run only inside `dcmon serve`".into(),
        ));
    };
    let name = host.clone();
    if !state.query(move |s| s.knows_host(&name)).await? {
        return Err(WebError::NotFound(format!("no host `{host}` in the store")));
    }
    let who = format!("web:admin@{ip}");
    let record = state.actions.create(&host, &action, &who);
    let sink = Actions::sink(&record);
    // The runner writes the audit row before sending anything: off the async threads.
    let started = tokio::task::spawn_blocking(move || runner.start(&host, action, &who, sink))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    if let Err(reason) = started {
        // The record exists: end it as refused, so its page says why instead of
        // "running…" forever (the runner audits the refusal).
        let sink = Actions::sink(&record);
        sink.output(&format!("dcmon: refused: {reason}\n"));
        sink.finish("refused", None);
    }
    Ok(Redirect::to(&format!("/actions/{}", record.id)).into_response())
}

fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    if state.access.caller(headers).is_admin() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "only an admin sees actions: log in with the admin token".into(),
        ))
    }
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Html<String>, WebError> {
    admin_only(&state, &headers)?;
    let record = state.actions.get(id).ok_or_else(|| {
        WebError::NotFound(format!(
            "no action {id} (kept: the last 200 since the server started)"
        ))
    })?;
    let p = record.progress();
    let context = minijinja::context! {
        title => format!("{} on {}", record.action, record.host),
        id => record.id,
        host => record.host,
        action => record.action,
        who => record.who,
        command => p.command,
        output => p.output,
        status => p.done.as_ref().map(|d| d.0.clone()),
        exit_code => p.done.as_ref().and_then(|d| d.1),
    };
    state.page("action.html", context).await
}

/// `output` events carry new text as a JSON string; one `done` event carries
/// `{"status", "exit_code"}`.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    admin_only(&state, &headers)?;
    let record = state
        .actions
        .get(id)
        .ok_or_else(|| WebError::NotFound(format!("no action {id}")))?;
    let changes = record.subscribe();
    // (record, changes, bytes sent, finished)
    let stream = futures_util::stream::unfold(
        (record, changes, 0usize, false),
        |(record, mut changes, sent, finished)| async move {
            if finished {
                return None;
            }
            loop {
                let p = record.progress();
                if p.output.len() > sent {
                    // As a JSON string: one line, whatever the output holds (CR, blank lines).
                    let text = serde_json::to_string(&p.output[sent..]).unwrap_or_default();
                    let event = Event::default().event("output").data(text);
                    return Some((
                        Ok::<_, Infallible>(event),
                        (record, changes, p.output.len(), false),
                    ));
                }
                if let Some((status, exit_code)) = &p.done {
                    let data =
                        serde_json::json!({ "status": status, "exit_code": exit_code }).to_string();
                    let event = Event::default().event("done").data(data);
                    return Some((Ok(event), (record, changes, sent, true)));
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
