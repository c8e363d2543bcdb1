//! The dashboard inside `dcmon serve`: settings from the inventory's `[web]`, plain
//! HTTP or HTTPS (rustls), stopped with the poller.

use anyhow::{Context, Result, anyhow};
use dcmon_inventory::{ViewAccess, Web};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Read connections the dashboard holds.
const READERS: usize = 4;

pub fn config(web: &Web) -> dcmon_web::Config {
    let t = &web.thresholds;
    dcmon_web::Config {
        thresholds: dcmon_web::Thresholds {
            cpu: t.cpu,
            memory: t.memory,
            gpu_temp: t.gpu_temp,
            bmc_temp: t.bmc_temp,
            nvme_wear: t.nvme_wear,
        },
        access: dcmon_web::AccessConfig {
            view_needs_login: web.view == ViewAccess::Login,
            admin_token_file: web.admin_token_file.clone(),
            viewer_token_file: web.viewer_token_file.clone(),
            secure_cookies: web.tls.is_some(),
            trusted_proxies: web.trusted_proxies.clone(),
        },
    }
}

/// The dashboard of a poller: over its own store, running its actions.
pub fn local_state(
    web: &Web,
    db: &Path,
    latest: std::sync::Arc<dcmon_store::latest::Latest>,
    runner: crate::actions_runner::ServeRunner,
    own_metrics: dcmon_web::OwnMetrics,
) -> Result<dcmon_web::AppState> {
    // Readers of their own (WAL: none blocks the writer or another reader), so one slow
    // page holds one connection, never the dashboard.
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut store = dcmon_store::Store::open(db)?;
        store.share_latest(latest.clone())?;
        readers.push(store);
    }
    let first = readers.remove(0);
    Ok(dcmon_web::AppState::new(first, config(web))
        .with_readers(readers)
        .with_runner(std::sync::Arc::new(runner))
        .with_own_metrics(own_metrics))
}

/// Binds `listen`, starts serving `state` in the background and prints the address.
pub async fn start(
    listen: &str,
    web: &Web,
    state: dcmon_web::AppState,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    state
        .check()
        .map_err(|e| anyhow!("the dashboard cannot start: {e}"))?;
    let open_files = crate::web_limits::raise_open_files();
    if open_files < crate::web_limits::MAX_CONNECTIONS as u64 + 1024 {
        dcmon_poller::log!(
            "dcmon serve: only {open_files} open files allowed (ulimit -n): the dashboard may refuse connections before its cap of {}",
            crate::web_limits::MAX_CONNECTIONS
        );
    }
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .context("setting the listening socket non-blocking")?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let service = dcmon_web::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        stopping.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let scheme = match &web.tls {
        Some((cert, key)) => {
            // ring, as for SSH; installing twice is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot use TLS certificate {} with key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .context("serving HTTPS")?
                .handle(handle)
                .map(crate::web_limits::Limited::new);
            crate::web_limits::configure(server.http_builder());
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    dcmon_poller::log!("dcmon serve: dashboard stopped: {e}");
                }
            });
            "https"
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .context("serving HTTP")?
                .handle(handle)
                .map(crate::web_limits::Limited::new);
            crate::web_limits::configure(server.http_builder());
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    dcmon_poller::log!("dcmon serve: dashboard stopped: {e}");
                }
            });
            "http"
        }
    };
    // Scripts and tests read the address from here (port 0 picks any free one).
    dcmon_poller::log!("dcmon serve: dashboard on {scheme}://{address}/");
    Ok(())
}
