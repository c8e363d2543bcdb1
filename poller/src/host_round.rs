//! One host's round, the only one: `dcmon poll`, `dcmon serve` and `dcmon probe run`
//! all run a host's due probes through [`run`]. Each probe goes the way its kind says:
//! a script through the host's OS (its SSH session, or locally), the BMC over the
//! network. Every script run has its deadline and output cap, and runs under the probe
//! watchdog (`command::probe_line`), which stops its process group on the host when
//! the channel closes early. After a run times out the connection is asked for a
//! keepalive reply: a host that stopped answering fails the rest of its round at once,
//! and its session is given up so its owner reconnects.

use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use crate::plan::Due;
use crate::ssh::SshSession;
use dcmon_inventory::{BmcProtocol, Host};
use dcmon_probes::{Probe, ProbeInputs, ProbeKind, ProbeOutput};
use dcmon_store::{ProbeRun, RunStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a host has to answer a keepalive after one of its runs timed out.
pub const STALL_CHECK: Duration = Duration::from_secs(3);

/// How this round reaches the host's OS.
pub enum Os<'a> {
    Ssh(&'a SshSession),
    /// The poller's own machine.
    Local,
    /// Not reached: every script probe of the round fails with this reason.
    Unreachable(String),
}

impl Os<'_> {
    /// For a round with no script probe due: the OS is not contacted.
    pub fn not_needed() -> Os<'static> {
        Os::Unreachable("not connected: no script probe was due".to_string())
    }
}

/// Whether any of `due` runs through the host's OS (and so needs a connection).
pub fn needs_os(due: &[Due]) -> bool {
    due.iter().any(|d| d.probe.kind == ProbeKind::Script)
}

/// What every run of the round shares.
pub struct Settings<'a> {
    /// The host's saved log cursors, source → cursor.
    pub cursors: &'a BTreeMap<String, String>,
    /// Most bytes of stdout or stderr one run may print.
    pub output_cap: usize,
    /// Keep each script run's raw output and the script sent (`dcmon probe run`).
    pub keep_raw: bool,
}

/// A script run as it went over the wire.
#[derive(Debug, Clone)]
pub struct RawRun {
    /// How the script reached the host's shell over SSH; None on the local machine.
    pub via: Option<crate::ssh::Via>,
    /// The command line the host ran; the script went to its stdin.
    pub command: String,
    /// The script as sent: the probe's inputs, then its script.
    pub script: String,
    pub output: ExecOutput,
}

/// What one host's round came to.
#[derive(Debug, Default)]
pub struct HostRuns {
    /// One run per due probe, in the order given.
    pub runs: Vec<ProbeRun>,
    /// With `keep_raw`: each run's raw output, where the host gave one.
    pub raw: Vec<Option<RawRun>>,
    /// Whether the host's OS answered: a script run came back with an exit status
    /// within its deadline and cap. `None` when no script probe was due.
    pub os_answered: Option<bool>,
}

impl HostRuns {
    /// The first failed run's reason, named by probe when the round had several and
    /// they did not all fail alike (an unreachable host fails every run with the same
    /// connection error, which belongs to no probe).
    pub fn first_error(&self) -> Option<String> {
        let first = self.runs.iter().find(|r| r.error.is_some())?;
        let error = first.error.clone()?;
        let all_alike = self.runs.iter().all(|r| r.error.as_ref() == Some(&error));
        if self.runs.len() > 1 && !all_alike {
            Some(format!("{}: {error}", first.probe))
        } else {
            Some(error)
        }
    }
}

/// Runs `due` on `host` one after another (runs on one host never overlap).
pub async fn run(host: &Host, due: &[Due], os: Os<'_>, settings: &Settings<'_>) -> HostRuns {
    let mut os = os;
    let mut round = HostRuns {
        runs: Vec::with_capacity(due.len()),
        ..HostRuns::default()
    };
    for d in due {
        let (run, raw) = match d.probe.kind {
            ProbeKind::Bmc => (bmc_run(host, d, settings.cursors).await, None),
            ProbeKind::Script => {
                let (run, raw, answered) = script_run(host, d, &mut os, settings).await;
                round.os_answered = Some(round.os_answered.unwrap_or(false) || answered);
                (run, raw)
            }
        };
        round.runs.push(run);
        if settings.keep_raw {
            round.raw.push(raw);
        }
    }
    round
}

/// One script run; the bool says whether the host answered. A run that fails in a way
/// that says the connection is gone turns `os` unreachable for the rest of the round.
async fn script_run(
    host: &Host,
    due: &Due,
    os: &mut Os<'_>,
    settings: &Settings<'_>,
) -> (ProbeRun, Option<RawRun>, bool) {
    let probe = due.probe;
    let inputs = ProbeInputs {
        cursors: settings.cursors,
        log_files: &host.log_files,
        custom_scripts: &host.custom_scripts,
        expected_gpus: host.expected_gpus,
    };
    let script = format!("{}{}", (probe.inputs)(&inputs), probe.script);
    let (at, clock) = (now_ms(), Instant::now());
    // None: the local machine, always through the probe watchdog.
    let mut via = None;
    let result = match os {
        Os::Unreachable(why) => {
            return (
                failed_run(probe, at, Duration::ZERO, why.clone()),
                None,
                false,
            );
        }
        Os::Ssh(ssh) => {
            let (result, went) = ssh
                .run_probe(
                    &script,
                    probe.in_shell,
                    host.become_,
                    host.shell,
                    due.timeout,
                    settings.output_cap,
                )
                .await;
            via = Some(went);
            result
        }
        Os::Local => {
            let input = crate::command::probe_input(&script);
            let command = crate::command::probe_line(input.len(), host.become_);
            crate::local::run_script(&command, &input, due.timeout, settings.output_cap).await
        }
    };
    let took = clock.elapsed();
    if let (Err(e), Os::Ssh(ssh)) = (&result, &*os)
        && let Some(why) = connection_gone(ssh, e).await
    {
        *os = Os::Unreachable(why);
    }
    let answered = result.is_ok();
    let raw = match (&result, settings.keep_raw) {
        (Ok(output), true) => Some(RawRun {
            command: if via == Some(crate::ssh::Via::Persistent) {
                format!(
                    "{} (kept open), one command per run: dcmon_run NONCE 'SCRIPT' (dcmon_here for built-in scripts that run in the shell itself)",
                    crate::shell::shell_command(host.become_)
                )
            } else {
                let input_len = crate::command::probe_input(&script).len();
                crate::command::probe_line(input_len, host.become_)
            },
            via,
            script,
            output: output.clone(),
        }),
        _ => None,
    };
    (
        finish_run(probe, host.become_, at, took, result),
        raw,
        answered,
    )
}

/// Why the rest of the round cannot use this connection, if it cannot: it closed under
/// the run, or a run timed out and the host then left a keepalive unanswered.
async fn connection_gone(ssh: &SshSession, error: &TransportError) -> Option<String> {
    if matches!(error, TransportError::Timeout(_))
        && !ssh.is_closed()
        && ssh.answers(STALL_CHECK).await
    {
        return None;
    }
    if ssh.is_closed() {
        let why = match error {
            TransportError::Timeout(_) => format!(
                "the connection stalled: no keepalive reply within {} after a run timed out",
                crate::error::humanize(STALL_CHECK)
            ),
            e => format!("the connection was lost: {e}"),
        };
        return Some(why);
    }
    None
}

pub fn failed_run(probe: &Probe, started_ms: i64, took: Duration, error: String) -> ProbeRun {
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

/// Milliseconds since the epoch: the store's one clock.
pub use dcmon_store::now_ms;

/// BMC sessions open at once: ipmi-rs blocks a thread per session.
pub(crate) static BMC_SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(32);

/// Reads the host's BMC over the network, by the protocol its `bmc` names: Redfish
/// (HTTPS, async), IPMI over LAN (ipmi-rs, blocking, on a blocking thread), or `auto`
/// (Redfish, and IPMI when Redfish fails: said once when it starts and once when it
/// ends). The password is read from its file here and goes nowhere else.
async fn bmc_run(host: &Host, due: &Due, cursors: &BTreeMap<String, String>) -> ProbeRun {
    let started_ms = now_ms();
    let started = Instant::now();
    let Some(bmc) = host.bmc.clone() else {
        return failed_run(
            due.probe,
            started_ms,
            Duration::ZERO,
            "the host has no bmc in the inventory".to_string(),
        );
    };
    let sel_cursor = cursors.get("sel").cloned();
    let result = match bmc.protocol {
        BmcProtocol::Ipmi => ipmi_read(host, &bmc, due.timeout, sel_cursor).await,
        BmcProtocol::Redfish => redfish_read(host, &bmc, due.timeout, false, cursors)
            .await
            .map_err(|e| e.to_string()),
        BmcProtocol::Auto => {
            // Redfish gets half the run, so a stalled service leaves IPMI its time.
            let half = due.timeout / 2;
            match redfish_read(host, &bmc, half, true, cursors).await {
                Ok(out) => Ok(out),
                Err(e) => {
                    let left = due.timeout.saturating_sub(started.elapsed());
                    ipmi_read(host, &bmc, left, sel_cursor)
                        .await
                        .map_err(|ipmi| format!("{e}; then over IPMI: {ipmi}"))
                }
            }
        }
    };
    let (status, error, output) = match result {
        Ok(output) => (RunStatus::Ok, None, output),
        Err(e) => (RunStatus::Error, Some(e), ProbeOutput::default()),
    };
    ProbeRun {
        probe: due.probe.name.to_string(),
        started_ms,
        duration_ms: started.elapsed().as_millis() as i64,
        status,
        error,
        output,
        new_logs: due.probe.new_logs,
    }
}

/// IPMI over LAN, on a blocking thread: each answer is awaited as long as a connection
/// would be, within `timeout`, so a silent BMC holds a blocking thread no longer.
async fn ipmi_read(
    host: &Host,
    bmc: &dcmon_inventory::Bmc,
    timeout: Duration,
    sel_cursor: Option<String>,
) -> Result<ProbeOutput, String> {
    let wait = host.connect_timeout.min(timeout);
    crate::bmc::on_blocking_thread(bmc, "reader", move |login| {
        let mut out =
            crate::bmc::read(login, wait, sel_cursor.as_deref()).map_err(|e| e.to_string())?;
        out.fact("bmc_protocol", "ipmi");
        Ok(out)
    })
    .await
}

/// Redfish within `timeout`. Under `auto`, a failure is logged when IPMI takes over,
/// and the return of Redfish when it ends, once each.
async fn redfish_read(
    host: &Host,
    bmc: &dcmon_inventory::Bmc,
    timeout: Duration,
    under_auto: bool,
    cursors: &BTreeMap<String, String>,
) -> Result<ProbeOutput, crate::redfish::RedfishError> {
    let until = tokio::time::Instant::now() + timeout;
    let password =
        crate::fanout_bmc::read_password(bmc).map_err(crate::redfish::RedfishError::Settings)?;
    let _slot = crate::redfish::READS.acquire().await;
    let mut service =
        crate::redfish::locked(&host.name, bmc, host.connect_timeout.min(timeout)).await?;
    let log_cursor = cursors.get(dcmon_probes::redfish::logs::SOURCE);
    let result = service
        .read(&password, until, log_cursor.map(String::as_str))
        .await;
    if under_auto {
        match (&result, service.fell_back) {
            (Err(e), false) => crate::log!(
                "dcmon: host {}: bmc protocol auto: {e}; reading the BMC over IPMI (RMCP+) until Redfish answers",
                host.name
            ),
            (Ok(_), true) => crate::log!(
                "dcmon: host {}: bmc protocol auto: Redfish answers again; IPMI over LAN no longer used",
                host.name
            ),
            _ => {}
        }
        service.fell_back = result.is_err();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(errors: &[(&'static Probe, Option<&str>)]) -> HostRuns {
        let runs = errors
            .iter()
            .map(|(probe, error)| match error {
                Some(e) => failed_run(probe, 0, Duration::ZERO, e.to_string()),
                None => ProbeRun::ok(probe.name, 0, Default::default()),
            })
            .collect();
        HostRuns {
            runs,
            raw: Vec::new(),
            os_answered: None,
        }
    }

    #[test]
    fn the_first_error_names_its_probe_only_where_runs_failed_differently() {
        let (os, fs) = (&dcmon_probes::os::PROBE, &dcmon_probes::fs::PROBE);
        let down = "no SSH session with [10.0.0.1]:22 within 10s";
        assert_eq!(
            runs(&[(os, Some(down)), (fs, Some(down))]).first_error(),
            Some(down.to_string()),
            "an unreachable host: the connection's error, no probe"
        );
        assert_eq!(
            runs(&[(os, None), (fs, Some("did not finish within 10s"))]).first_error(),
            Some("fs: did not finish within 10s".to_string())
        );
        assert_eq!(
            runs(&[(os, Some("x")), (fs, Some("y"))]).first_error(),
            Some("os: x".to_string())
        );
        assert_eq!(
            runs(&[(os, Some("x"))]).first_error(),
            Some("x".to_string())
        );
        assert_eq!(runs(&[(os, None), (fs, None)]).first_error(), None);
    }
}
