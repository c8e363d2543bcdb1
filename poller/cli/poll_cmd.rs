//! `dcmon poll`: one round now over the selected hosts.

use crate::args::PollArgs;
use crate::{inventory_cmd, table};
use anyhow::{Context, Result};
use dcmon_inventory::Inventory;
use dcmon_poller::ingest::Writer;
use dcmon_poller::{HostResult, HostStatus, RoundOptions, poll_round};
use std::io::Write as _;
use std::process::ExitCode;

pub fn poll(args: PollArgs) -> Result<ExitCode> {
    let inventory = match &args.inventory {
        Some(file) => match inventory_cmd::load(file)? {
            Some(inventory) => inventory,
            None => return Ok(ExitCode::from(2)),
        },
        None => Inventory::local(&local_hostname(), dcmon_probes::registry::local_defaults()),
    };
    let hosts: Vec<&dcmon_inventory::Host> = match &args.selector {
        Some(s) => dcmon_inventory::select(&inventory, s)?,
        None => inventory.hosts.iter().collect(),
    };
    dcmon_poller::redfish::warn_insecure(hosts.iter().copied());
    let store = dcmon_store::Store::open(&args.db)?;
    let options = RoundOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        // Log probes resume where the last round stopped.
        cursors: std::sync::Arc::new(store.log_cursors()?),
        schedules: std::sync::Arc::new(inventory.probe_schedules.clone()),
        ..RoundOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (writer, store_thread) = Writer::spawn(store);
    let mut all_ok = true;
    // --json streams one line per host as it is stored; the table waits for all rows.
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    runtime.block_on(async {
        poll_round(&hosts, &options, &writer, |index, r| {
            all_ok &= r.status == HostStatus::Ok;
            if args.json {
                if let Ok(line) = serde_json::to_string(&r) {
                    let _ = writeln!(stdout, "{line}");
                }
            } else {
                rows.push((index, row(r)));
            }
        })
        .await;
        // A one-shot round leaves no Redfish session open on a BMC.
        dcmon_poller::redfish::logout_all(std::time::Duration::from_secs(3)).await;
    });
    drop(stdout);
    drop(writer);
    let _ = store_thread.join();
    // The head's ended windows into chunks, as `dcmon serve` does every few minutes: a
    // poll run from cron keeps the head (and its log) small too.
    let sealed = dcmon_store::Store::open(&args.db)
        .and_then(|mut store| store.seal(dcmon_poller::host_round::now_ms()));
    if let Err(e) = sealed {
        dcmon_poller::log!("dcmon poll: the samples stored stay in the head log: {e}");
    }
    if !args.json {
        rows.sort_unstable_by_key(|(index, _)| *index);
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, row)| row).collect();
        table::print(
            &[
                "HOST",
                "STATUS",
                "SAMPLES",
                "LOGS",
                "DURATION",
                "ERROR / WARNINGS / ABSENT",
            ],
            &rows,
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One table row; the last cell says what went wrong, else what was half understood,
/// else which tools the host lacks.
fn row(r: HostResult) -> Vec<String> {
    let warned = |w: &dcmon_poller::Warnings| {
        format!(
            "{} warning{}: {}",
            w.count,
            if w.count == 1 { "" } else { "s" },
            w.first.join("; ")
        )
    };
    let note = match (r.error, r.status) {
        (Some(error), _) => error,
        (None, HostStatus::Partial) => warned(&r.warnings),
        (None, _) if !r.absent.is_empty() => r.absent.join("; "),
        (None, _) if r.warnings.count > 0 => warned(&r.warnings),
        (None, _) => String::new(),
    };
    vec![
        r.host,
        r.status.as_str().to_string(),
        r.samples.to_string(),
        r.logs.to_string(),
        format!("{}ms", r.duration_ms),
        note,
    ]
}

/// The name the local machine goes by when no inventory is given.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
