//! One poll round: every selected host at once, each through its own transport, each
//! host's results stored in one transaction.

use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use crate::ingest::Writer;
use crate::local;
use crate::ssh::{Connector, DEFAULT_HANDSHAKE_LIMIT, SshSession};
use dcmon_inventory::{Host, Transport};
use dcmon_probes::{Probe, ProbeInputs, ProbeOutput};
use dcmon_store::{HostRound, ProbeRun, RunStatus, Stored};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct RoundOptions {
    /// `--accept-new-host-keys`: trust on first use for every host this round.
    pub accept_new_host_keys: bool,
    /// Most bytes of stdout or stderr one run may print.
    pub output_cap: usize,
    pub handshake_limit: usize,
    /// Saved log cursors, host → source → cursor, handed to the probes that read logs.
    pub cursors: Arc<BTreeMap<String, BTreeMap<String, String>>>,
}

impl Default for RoundOptions {
    fn default() -> Self {
        RoundOptions {
            accept_new_host_keys: false,
            output_cap: 16 << 20,
            handshake_limit: DEFAULT_HANDSHAKE_LIMIT,
            cursors: Arc::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Ok,
    Error,
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
    /// Probes whose tool is not installed on the host, with the reason: not errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

/// Polls every host concurrently; results come back in the order of `hosts`.
pub async fn poll_round(
    hosts: Vec<Host>,
    options: &RoundOptions,
    writer: &Writer,
) -> Vec<HostResult> {
    let connector = Arc::new(Connector::new(options.handshake_limit));
    let tasks: Vec<_> = hosts
        .into_iter()
        .map(|host| {
            let name = host.name.clone();
            let task = tokio::spawn(poll_host(
                host,
                connector.clone(),
                options.clone(),
                writer.clone(),
            ));
            (name, task)
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (name, task) in tasks {
        results.push(task.await.unwrap_or_else(|e| HostResult {
            host: name,
            status: HostStatus::Error,
            samples: 0,
            logs: 0,
            duration_ms: 0,
            error: Some(format!("internal error: {e}")),
            absent: Vec::new(),
        }));
    }
    results
}

async fn poll_host(
    host: Host,
    connector: Arc<Connector>,
    options: RoundOptions,
    writer: Writer,
) -> HostResult {
    let started = Instant::now();
    let probes: Vec<&'static Probe> = host
        .probes
        .iter()
        .filter_map(|p| dcmon_probes::find(p))
        .collect();
    let mut runs = Vec::with_capacity(probes.len());
    let session = match host.transport {
        Transport::Ssh => connector
            .connect(&host, options.accept_new_host_keys)
            .await
            .map(Some),
        Transport::Local => Ok(None),
    };
    match session {
        Err(e) => {
            let error = e.to_string();
            for probe in &probes {
                runs.push(failed_run(
                    probe,
                    now_ms(),
                    started.elapsed(),
                    error.clone(),
                ));
            }
        }
        Ok(session) => {
            let no_cursors = BTreeMap::new();
            let cursors = options.cursors.get(&host.name).unwrap_or(&no_cursors);
            for probe in &probes {
                runs.push(
                    run_probe(
                        session.as_ref(),
                        &host,
                        probe,
                        cursors,
                        host.timeout,
                        options.output_cap,
                    )
                    .await,
                );
            }
            if let Some(ssh) = session {
                ssh.close().await;
            }
        }
    }
    // The BMC answers even when the OS does not: read it whatever SSH did.
    if let Some(bmc) = &host.bmc {
        let no_cursors = BTreeMap::new();
        let cursors = options.cursors.get(&host.name).unwrap_or(&no_cursors);
        runs.push(bmc_run(bmc, host.connect_timeout, cursors).await);
    }
    let error = runs.iter().find_map(|r| {
        r.error.as_ref().map(|e| {
            if runs.len() > 1 {
                format!("{}: {e}", r.probe)
            } else {
                e.clone()
            }
        })
    });
    let absent = absent_probes(&runs);
    let stored = writer.write(HostRound::new(host.name.clone(), runs)).await;
    let (stored, error) = match stored {
        Ok(stored) => (stored, error),
        Err(e) => (
            Stored::default(),
            Some(format!("storing the round failed: {e}")),
        ),
    };
    HostResult {
        host: host.name,
        status: if error.is_none() {
            HostStatus::Ok
        } else {
            HostStatus::Error
        },
        samples: stored.samples,
        logs: stored.logs,
        duration_ms: started.elapsed().as_millis() as u64,
        error,
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

/// Runs one probe on a host, over its SSH session or locally: its inputs as a shell
/// prelude, the script on stdin, the deadline and output cap, the output parsed.
pub(crate) async fn run_probe(
    session: Option<&SshSession>,
    host: &Host,
    probe: &Probe,
    cursors: &BTreeMap<String, String>,
    timeout: Duration,
    output_cap: usize,
) -> ProbeRun {
    let inputs = ProbeInputs {
        cursors,
        log_files: &host.log_files,
        custom_scripts: &host.custom_scripts,
    };
    let script = format!("{}{}", (probe.inputs)(&inputs), probe.script);
    let (at, clock) = (now_ms(), Instant::now());
    let result = match session {
        Some(ssh) => {
            ssh.run_script(&script, host.become_, timeout, output_cap)
                .await
        }
        None => local::run_script(&script, host.become_, timeout, output_cap).await,
    };
    finish_run(probe, host.become_, at, clock.elapsed(), result)
}

pub(crate) fn failed_run(
    probe: &Probe,
    started_ms: i64,
    took: Duration,
    error: String,
) -> ProbeRun {
    ProbeRun {
        probe: probe.name.to_string(),
        started_ms,
        duration_ms: took.as_millis() as i64,
        status: RunStatus::Error,
        error: Some(error),
        output: ProbeOutput::default(),
        new_logs: probe.new_logs,
    }
}

/// Parses what a run printed; a failed exit keeps whatever samples still parsed.
pub(crate) fn finish_run(
    probe: &Probe,
    become_root: bool,
    started_ms: i64,
    took: Duration,
    result: Result<ExecOutput, TransportError>,
) -> ProbeRun {
    let exec = match result {
        Ok(exec) => exec,
        Err(e) => return failed_run(probe, started_ms, took, e.to_string()),
    };
    let output = (probe.parse)(&String::from_utf8_lossy(&exec.stdout));
    let stderr = exec.stderr_excerpt();
    let error = if output.absent.is_some() && exec.success() {
        None
    } else if !exec.success() {
        if become_root && stderr.starts_with("sudo:") {
            Some(format!(
                "sudo -n failed (passwordless sudo needed for become = true): {stderr}"
            ))
        } else if become_root && exec.exit == Exit::Code(127) && stderr.contains("sudo") {
            Some(format!(
                "sudo is not installed on the host (needed for become = true): {stderr}"
            ))
        } else {
            Some(format!("exited with {:?}: {stderr}", exec.exit))
        }
    } else if output.samples.is_empty() && output.logs.is_empty() && !output.warnings.is_empty() {
        // Nothing read and something said why: the run failed. Nothing read and
        // nothing wrong (no containers, no new log lines) is a normal empty run.
        let why: Vec<String> = output.warnings.iter().map(ToString::to_string).collect();
        Some(format!("no samples in the output: {}", why.join("; ")))
    } else {
        None
    };
    ProbeRun {
        probe: probe.name.to_string(),
        started_ms,
        duration_ms: took.as_millis() as i64,
        status: match (&error, &output.absent) {
            (Some(_), _) => RunStatus::Error,
            (None, Some(_)) => RunStatus::Absent,
            (None, None) => RunStatus::Ok,
        },
        error,
        output,
        new_logs: probe.new_logs,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// BMC sessions open at once: ipmi-rs blocks a thread per session.
pub(crate) static BMC_SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(32);

/// Reads a BMC over the network (the `bmc` probe) on a blocking thread; `timeout` is the
/// wait for each answer. The password is read from its file here and goes nowhere else.
/// `cursors` are the host's saved log cursors (the SEL resumes after its own).
pub async fn bmc_run(
    bmc: &dcmon_inventory::Bmc,
    timeout: Duration,
    cursors: &BTreeMap<String, String>,
) -> ProbeRun {
    let started_ms = now_ms();
    let started = Instant::now();
    let _slot = BMC_SESSIONS.acquire().await;
    let bmc = bmc.clone();
    let sel_cursor = cursors.get("sel").cloned();
    let result = tokio::task::spawn_blocking(move || {
        let password = crate::fanout_bmc::read_password(&bmc)?;
        let login = crate::bmc::BmcLogin {
            address: &bmc.address,
            port: bmc.port,
            user: &bmc.user,
            password: password.as_bytes(),
        };
        crate::bmc::read(&login, timeout, sel_cursor.as_deref()).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("the BMC reader stopped: {e}")));
    let (status, error, output) = match result {
        Ok(output) => (RunStatus::Ok, None, output),
        Err(e) => (RunStatus::Error, Some(e), ProbeOutput::default()),
    };
    ProbeRun {
        probe: "bmc".to_string(),
        started_ms,
        duration_ms: started.elapsed().as_millis() as i64,
        status,
        error,
        output,
        new_logs: dcmon_probes::ipmi::sel::after_cursor,
    }
}
