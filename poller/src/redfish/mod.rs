//! The `bmc` probe over Redfish (HTTPS): which resources a read fetches, and the one
//! connection kept per BMC between rounds. What the resources say is read by the pure
//! parsers in `probes/redfish/`, the same that `dcmon parse redfish` runs.
//!
//! A read walks the service once (service root, chassis, systems, managers) and keeps
//! that layout for `LAYOUT_TTL`; later rounds fetch only the resources holding readings
//! (Chassis, Thermal, Power or their successors, System, Manager), each with its ETag.

mod conn;
pub mod ops;
pub mod tls;
mod walk;

pub use walk::Scope;

use dcmon_inventory::Bmc;
use dcmon_probes::ProbeOutput;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

#[derive(Debug, Error, Clone)]
pub enum RedfishError {
    /// No Redfish service answered: refused, unreachable, TLS refused, stalled.
    #[error("Redfish {0}")]
    Unreachable(String),
    /// The service refused the user or its password.
    #[error("Redfish {0}")]
    Refused(String),
    /// The service answered something dcmon cannot use.
    #[error("Redfish {0}")]
    Answer(String),
    /// The settings cannot work (a CA file with no certificate).
    #[error("Redfish: {0}")]
    Settings(String),
}

/// Reads running at once over all BMCs: each holds a socket and a little memory, no
/// thread, so more than IPMI's 32.
pub(crate) static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(256);

/// One BMC's connection, its layout, and whether `auto` fell back to IPMI last time.
#[derive(Debug)]
pub struct Service {
    conn: conn::Conn,
    layout: Option<walk::Layout>,
    /// `auto` read IPMI last round because Redfish failed (logged once per change).
    pub fell_back: bool,
    /// When the firmware inventory was last read, and how often it is.
    firmware_read: Option<Instant>,
    firmware_interval: Duration,
}

/// Each host's service and the `bmc` settings it was made for (changed settings start
/// afresh).
type Services = HashMap<String, (Bmc, Arc<tokio::sync::Mutex<Service>>)>;
static SERVICES: LazyLock<Mutex<Services>> = LazyLock::new(Default::default);

/// The service kept for this host's BMC, locked for the caller.
pub(crate) async fn locked(
    host: &str,
    bmc: &Bmc,
    connect_timeout: Duration,
) -> Result<tokio::sync::OwnedMutexGuard<Service>, RedfishError> {
    Ok(service(host, bmc, connect_timeout)?.lock_owned().await)
}

/// The service kept for this host's BMC, made on first use.
pub fn service(
    host: &str,
    bmc: &Bmc,
    connect_timeout: Duration,
) -> Result<Arc<tokio::sync::Mutex<Service>>, RedfishError> {
    let mut services = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
    match services.get(host) {
        Some((made_for, s)) if made_for == bmc => return Ok(s.clone()),
        // Made under older settings: dropped, its session ended.
        Some(_) => {
            if let (Some((_, s)), Ok(runtime)) =
                (services.remove(host), tokio::runtime::Handle::try_current())
            {
                runtime.spawn(async move {
                    let until = Instant::now() + Duration::from_secs(3);
                    s.lock().await.logout(until).await;
                });
            }
        }
        None => {}
    }
    let tls = tls::config(&bmc.tls).map_err(RedfishError::Settings)?;
    let base = base_url(bmc);
    let service = Arc::new(tokio::sync::Mutex::new(Service {
        conn: conn::Conn::new(base, bmc.user.clone(), tls, connect_timeout),
        layout: None,
        fell_back: false,
        firmware_read: None,
        firmware_interval: bmc.firmware_interval,
    }));
    services.insert(host.to_string(), (bmc.clone(), service.clone()));
    Ok(service)
}

/// The BMC's Redfish service, `https://10.1.0.11:443` (an IPv6 address in brackets).
pub fn base_url(bmc: &Bmc) -> String {
    let address = &bmc.address;
    if address.contains(':') && !address.starts_with('[') {
        format!("https://[{address}]:{}", bmc.redfish_port)
    } else {
        format!("https://{address}:{}", bmc.redfish_port)
    }
}

impl Service {
    /// Reads the BMC by `until`: its readings, health, power state and firmware.
    /// `log_cursor` is the saved `redfish` log cursor: entries up to it are not fetched.
    pub async fn read(
        &mut self,
        password: &str,
        until: Instant,
        log_cursor: Option<&str>,
    ) -> Result<ProbeOutput, RedfishError> {
        walk::read(self, password, until, log_cursor, Scope::All).await
    }

    /// Ends the session on the BMC (`dcmon poll` at its end, `serve` when it stops).
    pub(crate) async fn logout(&mut self, until: Instant) {
        self.conn.logout(until).await;
    }
}

/// Says, at every start, which hosts' BMC certificates go unchecked (`insecure_tls`).
pub fn warn_insecure<'a>(hosts: impl IntoIterator<Item = &'a dcmon_inventory::Host>) {
    for host in hosts {
        if let Some(bmc) = &host.bmc
            && bmc.tls.insecure
            && bmc.protocol != dcmon_inventory::BmcProtocol::Ipmi
        {
            crate::log!(
                "dcmon: host {}: bmc insecure_tls = true: its BMC's HTTPS certificate is not checked, so anyone on the network path can pose as the BMC and take its password; give the host a ca_file or tls_fingerprint",
                host.name
            );
        }
    }
}

/// Logs every kept session out, each within `within` (a BMC holds few sessions).
pub async fn logout_all(within: Duration) {
    let services: Vec<_> = SERVICES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, (_, s))| s)
        .collect();
    let until = Instant::now() + within;
    let mut set = tokio::task::JoinSet::new();
    for s in services {
        set.spawn(async move { s.lock().await.logout(until).await });
    }
    while set.join_next().await.is_some() {}
}
