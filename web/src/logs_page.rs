//! `/hosts/{host}/logs`: a host's log lines, newest first, by source, with search and
//! paging. Lines are text: HTML in a log line is shown, never interpreted.

use crate::{AppState, WebError};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use std::collections::HashMap;

const PAGE: u32 = 100;

/// syslog priority names, 0..=7.
const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

pub async fn page(
    State(state): State<AppState>,
    Path(host): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>, WebError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["source", "q", "page"].contains(&k.as_str()))
    {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{k}` (known: source, q, page)"
        )));
    }
    let page = match q.get("page").map(String::as_str) {
        None | Some("") => 1,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=10_000).contains(p))
            .ok_or_else(|| {
                WebError::BadRequest(format!("page=`{p}` must be a whole number from 1 to 10000"))
            })?,
    };
    let source = q.get("source").filter(|s| !s.is_empty()).cloned();
    let words = q.get("q").filter(|s| !s.trim().is_empty()).cloned();
    let name = host.clone();
    let (known, sources, lines) = {
        let (source, words) = (source.clone(), words.clone());
        state
            .query(move |s| {
                let known = s.knows_host(&name)?;
                // One line more than a page tells whether a next page exists.
                let lines = s.recent_logs(
                    &name,
                    source.as_deref(),
                    words.as_deref(),
                    PAGE + 1,
                    (page - 1) * PAGE,
                )?;
                Ok((known, s.log_sources(&name)?, lines))
            })
            .await?
    };
    if !known {
        return Err(WebError::NotFound(format!("no host `{host}` in the store")));
    }
    let more = lines.len() > PAGE as usize;
    let rows: Vec<_> = lines
        .iter()
        .take(PAGE as usize)
        .map(|l| {
            let time = time::OffsetDateTime::from_unix_timestamp(l.ts / 1000)
                .map(|t| {
                    format!(
                        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                        t.year(),
                        u8::from(t.month()),
                        t.day(),
                        t.hour(),
                        t.minute(),
                        t.second()
                    )
                })
                .unwrap_or_default();
            minijinja::context! {
                time => time,
                source => l.source,
                priority => PRIORITIES.get(usize::from(l.priority)).copied().unwrap_or("info"),
                level => match l.priority { 0..=3 => "crit", 4 => "warn", _ => "" },
                unit => l.unit.clone().unwrap_or_default(),
                message => l.message,
            }
        })
        .collect();
    let context = minijinja::context! {
        title => format!("{host} logs"),
        host => host,
        sources => sources,
        source => source.unwrap_or_default(),
        q => words.unwrap_or_default(),
        page => page,
        more => more,
        rows => rows,
    };
    state.page("logs.html", context).await
}
