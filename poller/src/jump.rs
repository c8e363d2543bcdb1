//! Jump host connections, shared: every host behind one jump host (or one chain of
//! them) goes through one SSH connection to it, each target on a `direct-tcpip`
//! channel of its own. OpenSSH's ProxyJump opens one jump connection per target.

use crate::error::TransportError;
use crate::ssh::{Connector, SshSession};
use dcmon_inventory::SshEndpoint;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a jump host that failed is reported failed without being tried again:
/// the hosts queued behind one failed attempt get its answer instead of each making
/// their own (500 hosts behind a dead bastion are one failure, not 500 timeouts).
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// The open jump host connections of a connector, by chain.
#[derive(Default)]
pub(crate) struct Jumps {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    opened: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    session: Option<Arc<SshSession>>,
    /// The last failure and when it happened.
    failed: Option<(Instant, String)>,
}

/// Names a chain: its hops' logins in order, each with the known_hosts file its key is
/// checked against (hosts that trust another file for the bastion do not share a
/// connection checked against this one).
fn chain_key(chain: &[SshEndpoint]) -> String {
    chain
        .iter()
        .map(|hop| {
            format!(
                "{}@{}:{} {}",
                hop.user,
                hop.address,
                hop.port,
                hop.known_hosts.display()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

type Linked<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<SshSession>, TransportError>> + Send + 'a>>;

impl Jumps {
    pub(crate) fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// The connection to the last hop of `chain`, through the ones before it: the open
    /// one, or a new one made while the hosts that also need it wait for it.
    pub(crate) fn link<'a>(
        &'a self,
        connector: &'a Connector,
        chain: &'a [SshEndpoint],
        accept_new_host_keys: bool,
    ) -> Linked<'a> {
        Box::pin(async move {
            let Some((last, before)) = chain.split_last() else {
                return Err(TransportError::Jump {
                    hop: "(none)".to_string(),
                    why: "an empty chain of jump hosts".to_string(),
                });
            };
            let slot = self
                .slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(chain_key(chain))
                .or_default()
                .clone();
            // Held while connecting: the others behind this hop wait for this attempt.
            let mut slot = slot.lock().await;
            if let Some(session) = &slot.session
                && !session.is_closed()
            {
                return Ok(session.clone());
            }
            let failed = |why: String| TransportError::Jump {
                hop: describe(last),
                why,
            };
            if let Some((at, why)) = &slot.failed
                && at.elapsed() < FAILURE_MEMORY
            {
                return Err(failed(why.clone()));
            }
            if let Some(old) = slot.session.take()
                && let Ok(old) = Arc::try_unwrap(old)
            {
                old.close().await;
            }
            // A failure further out is reported by the hop that failed.
            let via = match before {
                [] => None,
                _ => Some(self.link(connector, before, accept_new_host_keys).await?),
            };
            match connector
                .connect_endpoint(last, via, accept_new_host_keys)
                .await
            {
                Ok(session) => {
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    let session = Arc::new(session);
                    slot.session = Some(session.clone());
                    slot.failed = None;
                    Ok(session)
                }
                Err(e) => {
                    let why = e.to_string();
                    crate::log!("jump host {}: {why}", describe(last));
                    slot.failed = Some((Instant::now(), why.clone()));
                    Err(failed(why))
                }
            }
        })
    }
}

/// `bastion (127.0.0.1:2222)`, or the hop as written when that is its address.
fn describe(hop: &SshEndpoint) -> String {
    let addr = crate::known_hosts::host_port(&hop.address, hop.port);
    if hop.name == hop.address || hop.name.contains(&hop.address) {
        hop.name.clone()
    } else {
        format!("{} ({addr})", hop.name)
    }
}
