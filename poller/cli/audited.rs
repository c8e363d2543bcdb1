//! One fan-out with its audit trail: a row per host written before anything is sent,
//! completed as each host ends. Shared by `dcmon exec`/`dcmon fan` and by `dcmon serve`'s
//! control socket.

use anyhow::{Context, Result};
use dcmon_poller::fanout::{ExecEvent, ExecOptions, ExecResult, Job, exec_hosts};
use dcmon_store::Store;
use dcmon_store::audit::output_excerpt;
use std::collections::HashMap;
use tokio::sync::{mpsc, watch};

use dcmon_store::now_ms;

/// Runs `jobs` (each with the command as shown in the audit trail); events are passed on
/// to `events` as they come. Returns every host's result.
pub async fn run_audited(
    store: Store,
    who: String,
    action: &'static str,
    jobs: Vec<(Job, String)>,
    options: ExecOptions,
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Receiver<bool>,
) -> Result<Vec<ExecResult>> {
    let started = now_ms();
    let mut audit_ids = HashMap::new();
    for (job, shown) in &jobs {
        let id = store
            .audit_start(started, &who, &job.host.name, action, shown)
            .context("writing the audit trail (nothing was run)")?;
        audit_ids.insert(job.host.name.clone(), id);
    }
    let jobs: Vec<Job> = jobs.into_iter().map(|(job, _)| job).collect();
    let (inner_tx, mut inner) = mpsc::unbounded_channel();
    let run = tokio::spawn(exec_hosts(jobs, options, inner_tx, cancel));
    let mut results = Vec::new();
    while let Some(event) = inner.recv().await {
        if let ExecEvent::Done(r) = &event {
            if let Some(id) = audit_ids.get(&r.host)
                && let Err(e) = store.audit_finish(
                    *id,
                    r.status.as_str(),
                    r.exit_code.map(i64::from),
                    r.duration_ms as i64,
                    &output_excerpt(&r.stdout, &r.stderr),
                )
            {
                dcmon_poller::log!("dcmon: audit trail: {e}");
            }
            results.push(r.clone());
        }
        let _ = events.send(event);
    }
    let _ = run.await;
    Ok(results)
}
