//! `dcmon serve`: the always-on poller. Stops cleanly on SIGINT or SIGTERM (runs in
//! progress finish and are stored); reloads the inventory on SIGHUP.

use crate::args::ServeArgs;
use crate::inventory_cmd;
use crate::poll_cmd::local_hostname;
use crate::web_cmd;
use anyhow::{Context, Result};
use dcmon_poller::RoundOptions;
use dcmon_poller::serve::{ServeOptions, Source, serve as run_service};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// A flag that turns true on SIGINT or SIGTERM (call inside the runtime).
pub fn stop_on_signals() -> Result<tokio::sync::watch::Receiver<bool>> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        let _ = stop.send(true);
    });
    Ok(stopped)
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    if args.web_only {
        return crate::central_cmd::serve(args);
    }
    let (source, web) = match &args.inventory {
        Some(file) => {
            // Refuse a broken inventory at start with every problem listed.
            let Some(inventory) = inventory_cmd::load(file)? else {
                return Ok(ExitCode::from(2));
            };
            (Source::File(file.clone()), inventory.web)
        }
        None => (Source::Local(local_hostname()), Default::default()),
    };
    let listen = args
        .listen
        .clone()
        .or(web.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let mut store = dcmon_store::Store::open(&args.db)?;
    // The writer keeps the latest values current in memory; the dashboard reads them.
    let latest = Arc::new(dcmon_store::latest::Latest::default());
    store.share_latest(latest.clone())?;
    let defaults = RoundOptions::default();
    let options = ServeOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        output_cap: defaults.output_cap,
        handshake_limit: defaults.handshake_limit,
        report_json: args.json,
        reload_check: Duration::from_secs(2),
        sessions: Default::default(),
        db: Some(args.db.clone()),
        health: Default::default(),
        shard: args.shard,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let stopped = stop_on_signals()?;
        if listen != "off" {
            let runner = crate::actions_runner::ServeRunner {
                inventory: args.inventory.clone(),
                db: args.db.clone(),
                sessions: options.sessions.clone(),
                connector: std::sync::Arc::new(dcmon_poller::ssh::Connector::new(
                    defaults.handshake_limit,
                )),
                runtime: tokio::runtime::Handle::current(),
            };
            let health = options.health.clone();
            let own = Arc::new(move |out: &mut String| health.exposition(out));
            let state = web_cmd::local_state(&web, &args.db, latest, runner, own)?;
            web_cmd::start(&listen, &web, state, stopped.clone()).await?;
        }
        let control = crate::control::Control {
            inventory: args.inventory.clone(),
            db: args.db.clone(),
            sessions: options.sessions.clone(),
            accept_new_host_keys: args.accept_new_host_keys,
        };
        let socket = crate::control::listen(control, stopped.clone()).await?;
        dcmon_poller::log!("dcmon serve: control socket {}", socket.display());
        dcmon_poller::log!("dcmon serve: polling into {}", args.db.display());
        run_service(source, store, options, stopped).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
