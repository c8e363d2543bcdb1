//! One poll round (`dcmon poll`): every selected host, many at once, each through the
//! one host round (`host_round::run`), each host's results stored in one transaction
//! and handed back as soon as they are on disk.

use crate::host_round::{self, HostRuns, Os, Settings};
use crate::ingest::Writer;
use crate::plan::{Schedules, due_now};
use crate::ssh::{Connector, DEFAULT_HANDSHAKE_LIMIT};
use dcmon_inventory::{Host, Transport};
use dcmon_store::{HostRound, ProbeRun, Stored};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct RoundOptions {
    /// `--accept-new-host-keys`: trust on first use for every host this round.
    pub accept_new_host_keys: bool,
    /// Most bytes of stdout or stderr one run may print.
    pub output_cap: usize,
    pub handshake_limit: usize,
    /// Saved log cursors, host → source → cursor, handed to the probes that read logs.
    pub cursors: Arc<BTreeMap<String, BTreeMap<String, String>>>,
    /// `[probes.NAME]` settings (each run's timeout).
    pub schedules: Arc<Schedules>,
}

impl Default for RoundOptions {
    fn default() -> Self {
        RoundOptions {
            accept_new_host_keys: false,
            output_cap: 16 << 20,
            handshake_limit: DEFAULT_HANDSHAKE_LIMIT,
            cursors: Arc::default(),
            schedules: Arc::default(),
        }
    }
}

/// Hosts in flight at once. Connecting is limited further by the handshake limit; this
/// bounds what waits, so a round of 100,000 hosts holds a few thousand hosts' state.
const HOSTS_AT_ONCE: usize = 2048;

/// How many warnings a result quotes; the count says how many there were.
const WARNINGS_QUOTED: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Ok,
    /// Every probe ran, but some output was only partly understood (see `warnings`;
    /// a tool reporting its own failure is a warning, not this).
    Partial,
    Error,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Partial => "partial",
            HostStatus::Error => "error",
        }
    }
}

/// What one host's round came to: the `dcmon poll` row.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub status: HostStatus,
    pub samples: usize,
    /// New log lines stored (journal, SEL, ...).
    pub logs: usize,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub warnings: Warnings,
    /// Probes whose tool is not installed on the host, with the reason: not errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

/// Lines of probe output that were not understood, and tools' own complaints: how
/// many, how many each probe's run had, and the first few.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Warnings {
    pub count: usize,
    /// probe → its run's warning count, for runs that had any.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_probe: std::collections::BTreeMap<String, usize>,
    pub first: Vec<String>,
}

impl Warnings {
    fn of(runs: &[ProbeRun]) -> Warnings {
        let all = runs
            .iter()
            .flat_map(|r| r.output.warnings.iter().map(move |w| (r, w)));
        let count = all.clone().count();
        let by_probe = runs
            .iter()
            .filter(|r| !r.output.warnings.is_empty())
            .map(|r| (r.probe.to_string(), r.output.warnings.len()))
            .collect();
        let first = all
            .take(WARNINGS_QUOTED)
            .map(|(r, w)| format!("{}: {w}", r.probe))
            .collect();
        Warnings {
            count,
            by_probe,
            first,
        }
    }
}

/// Polls every host; each result goes to `on_result` with the host's index in `hosts`
/// as soon as it is stored (in the order hosts finish).
pub async fn poll_round(
    hosts: &[&Host],
    options: &RoundOptions,
    writer: &Writer,
    mut on_result: impl FnMut(usize, HostResult),
) {
    let connector = Arc::new(Connector::new(options.handshake_limit));
    let mut running = JoinSet::new();
    let mut next = 0;
    loop {
        while next < hosts.len() && running.len() < HOSTS_AT_ONCE {
            let (index, host) = (next, Host::clone(hosts[next]));
            let (connector, options, writer) = (connector.clone(), options.clone(), writer.clone());
            running.spawn(async move {
                let name = host.name.clone();
                let task = tokio::spawn(poll_host(host, connector, options, writer));
                let result = task.await.unwrap_or_else(|e| HostResult {
                    host: name,
                    status: HostStatus::Error,
                    samples: 0,
                    logs: 0,
                    duration_ms: 0,
                    error: Some(format!("internal error: {e}")),
                    warnings: Warnings::default(),
                    absent: Vec::new(),
                });
                (index, result)
            });
            next += 1;
        }
        match running.join_next().await {
            Some(Ok((index, result))) => on_result(index, result),
            Some(Err(e)) => crate::log!("dcmon poll: a host task failed: {e}"),
            None => break,
        }
    }
}

async fn poll_host(
    host: Host,
    connector: Arc<Connector>,
    options: RoundOptions,
    writer: Writer,
) -> HostResult {
    let started = Instant::now();
    let due = due_now(&host, &options.schedules);
    let no_cursors = BTreeMap::new();
    let settings = Settings {
        cursors: options.cursors.get(&host.name).unwrap_or(&no_cursors),
        output_cap: options.output_cap,
        keep_raw: false,
    };
    let runs = match host.transport {
        Transport::Local => host_round::run(&host, &due, Os::Local, &settings).await,
        // A BMC-only round does not connect.
        Transport::Ssh if !host_round::needs_os(&due) => {
            host_round::run(&host, &due, Os::not_needed(), &settings).await
        }
        Transport::Ssh => match connector.connect(&host, options.accept_new_host_keys).await {
            Ok(ssh) => {
                let runs = host_round::run(&host, &due, Os::Ssh(&ssh), &settings).await;
                ssh.close().await;
                runs
            }
            Err(e) => host_round::run(&host, &due, Os::Unreachable(e.to_string()), &settings).await,
        },
    };
    finish(host.name, runs, started, &writer).await
}

/// Stores the host's runs and makes its row.
async fn finish(host: String, runs: HostRuns, started: Instant, writer: &Writer) -> HostResult {
    let error = runs.first_error();
    let warnings = Warnings::of(&runs.runs);
    let misread = runs.runs.iter().any(|r| r.output.partly_misread());
    let absent = absent_probes(&runs.runs);
    let stored = writer.write(HostRound::new(host.clone(), runs.runs)).await;
    let (stored, error) = match stored {
        Ok(stored) => (stored, error),
        Err(e) => (
            Stored::default(),
            Some(format!("storing the round failed: {e}")),
        ),
    };
    let status = match (&error, misread) {
        (Some(_), _) => HostStatus::Error,
        (None, false) => HostStatus::Ok,
        (None, true) => HostStatus::Partial,
    };
    HostResult {
        host,
        status,
        samples: stored.samples,
        logs: stored.logs,
        duration_ms: started.elapsed().as_millis() as u64,
        error,
        warnings,
        absent,
    }
}

/// `probe: why` for each probe whose tool the host does not have.
fn absent_probes(runs: &[ProbeRun]) -> Vec<String> {
    runs.iter()
        .filter_map(|r| {
            r.output
                .absent
                .as_ref()
                .map(|why| format!("{}: {why}", r.probe))
        })
        .collect()
}
