//! `dcmon serve`: the always-on poller. Stops cleanly on SIGINT or SIGTERM (runs in
//! progress finish and are stored); reloads the inventory on SIGHUP.

use crate::args::ServeArgs;
use crate::inventory_cmd;
use crate::poll_cmd::local_hostname;
use anyhow::{Context, Result};
use dcmon_poller::RoundOptions;
use dcmon_poller::serve::{ServeOptions, Source, live::Live, serve as run_service};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let source = match &args.inventory {
        Some(file) => {
            // Refuse a broken inventory at start with every problem listed.
            if inventory_cmd::load(file)?.is_none() {
                return Ok(ExitCode::from(2));
            }
            Source::File(file.clone())
        }
        None => Source::Local(local_hostname()),
    };
    let store = dcmon_store::Store::open(&args.db)?;
    let defaults = RoundOptions::default();
    let options = ServeOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        output_cap: defaults.output_cap,
        handshake_limit: defaults.handshake_limit,
        report_json: args.json,
        reload_check: Duration::from_secs(2),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            let _ = stop.send(true);
        });
        if args.listen != "off" {
            let listener = tokio::net::TcpListener::bind(&args.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            let address = listener
                .local_addr()
                .context("reading the listening address")?;
            let web = dcmon_web::app(dcmon_web::AppState::new(dcmon_store::Store::open(
                &args.db,
            )?));
            let mut stop_web = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop_web.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(listener, web)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    dcmon_poller::log!("dcmon serve: dashboard stopped: {e}");
                }
            });
            // Scripts and tests read the address from here (port 0 picks any free one).
            dcmon_poller::log!("dcmon serve: dashboard on http://{address}/");
        }
        dcmon_poller::log!("dcmon serve: polling into {}", args.db.display());
        run_service(source, store, options, Arc::new(Live::default()), stopped).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
