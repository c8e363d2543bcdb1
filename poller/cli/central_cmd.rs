//! `dcmon serve --web-only`: the central view. Polls nothing; serves the overview and
//! host pages of every poller's hosts from the Prometheus API of `[web] backend`.

use crate::args::ServeArgs;
use crate::{inventory_cmd, web_cmd};
use anyhow::{Context, Result, anyhow};
use dcmon_web::central::{Central, CentralConfig, Listed, Owner};
use std::process::ExitCode;
use std::sync::Arc;

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let file = args
        .inventory
        .as_ref()
        .ok_or_else(|| anyhow!("--web-only needs --inventory (its [web] backend and hosts)"))?;
    let Some(inventory) = inventory_cmd::load(file)? else {
        return Ok(ExitCode::from(2));
    };
    let web = inventory.web.clone();
    let backend = web.backend.clone().ok_or_else(|| {
        anyhow!(
            "{}: --web-only reads every poller's series from a Prometheus API: add `backend = {{ prometheus = \"http://HOST:8428\" }}` to [web]",
            file.display()
        )
    })?;
    let listen = args
        .listen
        .clone()
        .or(web.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
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
    let central = Central::new(CentralConfig {
        backend: backend.clone(),
        listed,
        owners,
        poller_count,
        pollers,
        external_labels,
    });
    // The store only answers what the central pages do not read (the alert count).
    let store = dcmon_store::Store::open(&args.db)?;
    let state = dcmon_web::AppState::new(store, web_cmd::config(&web)).with_central(central);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut stopped = crate::serve_cmd::stop_on_signals()?;
        web_cmd::start(&listen, &web, state, stopped.clone()).await?;
        dcmon_poller::log!(
            "dcmon serve: central view of {poller_count} poller{}, reading {backend}",
            if poller_count == 1 { "" } else { "s" }
        );
        let _ = stopped.wait_for(|stop| *stop).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
