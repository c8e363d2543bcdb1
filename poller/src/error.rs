//! One error type for reaching a host and running something on it, a variant per
//! cause, each message saying what to do about it.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("TCP connect to {addr} failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("no SSH session with {addr} within {}: {}", humanize(*.after), .stage.waiting_for())]
    ConnectTimeout {
        addr: String,
        after: Duration,
        stage: crate::connect_stage::Stage,
    },
    #[error("SSH {} with {addr} failed: {source}", .stage.name())]
    Handshake {
        addr: String,
        stage: crate::connect_stage::Stage,
        source: russh::Error,
    },
    #[error(
        "host key of {host} ({key}) is not in {known_hosts}: verify it, then run with \
         --accept-new-host-keys or set accept_new_host_keys = true to record it"
    )]
    HostKeyUnknown {
        host: String,
        key: String,
        known_hosts: String,
    },
    #[error(
        "HOST KEY CHANGED for {host}: it offered {key}, but {known_hosts}:{line} holds {known}; \
         if the host was reinstalled, remove that line (possible man-in-the-middle)"
    )]
    HostKeyChanged {
        host: String,
        key: String,
        known_hosts: String,
        line: usize,
        known: String,
    },
    #[error("host key of {host} ({key}) is marked @revoked in {known_hosts}:{line}")]
    HostKeyRevoked {
        host: String,
        key: String,
        known_hosts: String,
        line: usize,
    },
    #[error("host certificate of {host} refused: {why}")]
    HostCertificate { host: String, why: String },
    #[error("cannot record the host key of {host} in {known_hosts}: {source}")]
    KnownHostsWrite {
        host: String,
        known_hosts: String,
        source: std::io::Error,
    },
    #[error("cannot read known_hosts {path}: {source}")]
    KnownHostsRead {
        path: String,
        source: std::io::Error,
    },
    #[error("identity file {path}: {why}")]
    Identity { path: String, why: String },
    #[error(
        "wrong passphrase for identity file {path}: the passphrase in {passphrase_file} does not open it"
    )]
    Passphrase {
        path: String,
        passphrase_file: String,
    },
    #[error("ssh-agent at {socket}: {why}")]
    Agent { socket: String, why: String },
    #[error(
        "no identity: set `identity` in the inventory, or run ssh-agent (tried SSH_AUTH_SOCK, ~/.ssh/id_ed25519, id_ecdsa, id_rsa)"
    )]
    NoIdentity,
    #[error("{addr} refused public key authentication for user `{user}` with {identity}")]
    AuthRejected {
        addr: String,
        user: String,
        identity: String,
    },
    #[error("jump host {via} could not open a connection to {addr}: {source}")]
    Forward {
        via: String,
        addr: String,
        source: Box<russh::Error>,
    },
    #[error("jump host {hop} failed, so hosts behind it were not tried: {why}")]
    Jump { hop: String, why: String },
    #[error("SSH channel to {addr}: {source}")]
    Channel { addr: String, source: russh::Error },
    #[error("did not finish within {}", humanize(*.0))]
    Timeout(Duration),
    #[error("the persistent shell ended during the run ({0}); the next run starts a new one")]
    ShellEnded(String),
    #[error("output exceeded {0} bytes; the run was stopped")]
    OutputTooLarge(usize),
    #[error("the script is over {0} bytes, more than a persistent shell's frame holds")]
    ScriptTooLarge(usize),
    #[error("the script holds a NUL byte at byte {0}, which no shell reads as written; not sent")]
    ScriptHasNul(usize),
    #[error("cannot run sh locally: {0}")]
    Local(std::io::Error),
}

/// `10s`, `1.5s`, `250ms`: short enough for a table cell.
pub(crate) fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
