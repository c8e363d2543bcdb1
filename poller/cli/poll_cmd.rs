//! `dcmon poll`: one round now over the selected hosts.

use crate::args::PollArgs;
use crate::{inventory_cmd, table};
use anyhow::{Context, Result};
use dcmon_inventory::Inventory;
use dcmon_poller::ingest::Writer;
use dcmon_poller::{HostStatus, RoundOptions, poll_round};
use std::process::ExitCode;

pub fn poll(args: PollArgs) -> Result<ExitCode> {
    let inventory = match &args.inventory {
        Some(file) => match inventory_cmd::load(file)? {
            Some(inventory) => inventory,
            None => return Ok(ExitCode::from(2)),
        },
        None => Inventory::local(&local_hostname(), dcmon_probes::registry::local_defaults()),
    };
    let hosts: Vec<_> = match &args.selector {
        Some(s) => dcmon_inventory::select(&inventory, s)?
            .into_iter()
            .cloned()
            .collect(),
        None => inventory.hosts.clone(),
    };
    let store = dcmon_store::Store::open(&args.db)?;
    let options = RoundOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        // Log probes resume where the last round stopped.
        cursors: std::sync::Arc::new(store.log_cursors()?),
        ..RoundOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (writer, store_thread) = Writer::spawn(store);
    let results = runtime.block_on(poll_round(hosts, &options, &writer));
    drop(writer);
    let _ = store_thread.join();
    if args.json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                vec![
                    r.host.clone(),
                    if r.status == HostStatus::Ok {
                        "ok".into()
                    } else {
                        "error".into()
                    },
                    r.samples.to_string(),
                    r.logs.to_string(),
                    format!("{}ms", r.duration_ms),
                    r.error.clone().unwrap_or_else(|| r.absent.join("; ")),
                ]
            })
            .collect();
        table::print(
            &[
                "HOST",
                "STATUS",
                "SAMPLES",
                "LOGS",
                "DURATION",
                "ERROR / ABSENT",
            ],
            &rows,
        );
    }
    let all_ok = results.iter().all(|r| r.status == HostStatus::Ok);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The name the local machine goes by when no inventory is given.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
