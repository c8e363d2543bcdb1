//! `dcmon serve --web-only`: the central view. Polls nothing; serves the overview and
//! host pages of every poller's hosts from the Prometheus API of `[web] backend`.
//! SIGHUP reads the inventory again (hosts, labels, pollers); a new backend or listen
//! address needs a restart.

use crate::args::ServeArgs;
use crate::{inventory_cmd, web_cmd};
use anyhow::{Context, Result, anyhow};
use dcmon_inventory::Inventory;
use dcmon_web::central::{Central, CentralConfig, Listed, Owner};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

/// What the central view takes from the inventory at `file`.
fn central_config(file: &Path, inventory: &Inventory) -> Result<CentralConfig> {
    let backend = inventory.web.backend.clone().ok_or_else(|| {
        anyhow!(
            "{}: --web-only reads every poller's series from a Prometheus API: add `backend = {{ prometheus = \"http://HOST:8428\" }}` to [web]",
            file.display()
        )
    })?;
    let cluster = inventory.cluster.clone();
    let poller_count = cluster.poller_count();
    let pollers = cluster.pollers.clone();
    let owners = Arc::new(move |host: &str| {
        cluster
            .owners(host)
            .into_iter()
            .map(|(index, url)| Owner { index, url })
            .collect()
    });
    let mut external_labels: Vec<String> = inventory
        .remote_writes
        .iter()
        .flat_map(|r| r.external_labels.keys().cloned())
        .collect();
    external_labels.sort();
    external_labels.dedup();
    let listed = inventory
        .hosts
        .iter()
        .map(|h| Listed {
            host: h.name.clone(),
            groups: h.groups.clone(),
            labels: h.labels.clone(),
        })
        .collect();
    Ok(CentralConfig {
        backend,
        listed,
        owners,
        poller_count,
        pollers,
        external_labels,
    })
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let file = args
        .inventory
        .clone()
        .ok_or_else(|| anyhow!("--web-only needs --inventory (its [web] backend and hosts)"))?;
    let Some(inventory) = inventory_cmd::load(&file)? else {
        return Ok(ExitCode::from(2));
    };
    let web = inventory.web.clone();
    let config = central_config(&file, &inventory)?;
    let backend = config.backend.clone();
    let poller_count = config.poller_count;
    let listen = args
        .listen
        .clone()
        .or(web.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let central = Central::new(config);
    // The store only answers what the central pages do not read (the alert count).
    let store = dcmon_store::Store::open(&args.db)?;
    let state =
        dcmon_web::AppState::new(store, web_cmd::config(&web)).with_central(central.clone());
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut stopped = crate::serve_cmd::stop_on_signals()?;
        let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        web_cmd::start(&listen, &web, state, stopped.clone()).await?;
        dcmon_poller::log!(
            "dcmon serve: central view of {poller_count} poller{}, reading {backend}",
            if poller_count == 1 { "" } else { "s" }
        );
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                _ = hangup.recv() => reload(&file, &central),
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: the inventory read again; a broken one (its problems printed) keeps the old.
fn reload(file: &Path, central: &Central) {
    let config = match inventory_cmd::load(file) {
        Ok(Some(inventory)) => central_config(file, &inventory),
        Ok(None) => Err(anyhow!("it has problems (above)")),
        Err(e) => Err(e),
    };
    match config {
        Ok(config) => {
            let hosts = config.listed.len();
            if central.reload(config) {
                dcmon_poller::log!("dcmon serve: reloaded {}: {hosts} hosts", file.display());
            } else {
                dcmon_poller::log!(
                    "dcmon serve: {} names another [web] backend: restart to read it; the hosts are not reloaded",
                    file.display()
                );
            }
        }
        Err(e) => dcmon_poller::log!(
            "dcmon serve: not reloading {}, keeping what was read before: {e:#}",
            file.display()
        ),
    }
}
