//! One probe on one host, now, for `dcmon probe run`: the command, what the host printed,
//! how it ended and what the probe's parser made of it. Nothing is stored.

use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit, script_command};
use crate::round::{finish_run, now_ms};
use crate::ssh::Connector;
use dcmon_inventory::{Host, Transport};
use dcmon_probes::{Probe, ProbeInputs};
use dcmon_store::ProbeRun;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Trial {
    /// The remote command; the script goes to its stdin.
    pub command: String,
    /// The script as sent (the probe's inputs, then its script).
    pub script: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
    pub took: Duration,
    /// The output parsed exactly as a poll parses it, and the run's verdict.
    pub run: ProbeRun,
}

/// Connects (or runs locally) and runs `probe` once, with no saved log cursors (a log
/// probe reads as on its first round).
pub async fn run(
    host: &Host,
    probe: &Probe,
    timeout: Duration,
    accept_new_host_keys: bool,
) -> Result<Trial, TransportError> {
    let no_cursors = BTreeMap::new();
    let inputs = ProbeInputs {
        cursors: &no_cursors,
        log_files: &host.log_files,
        custom_scripts: &host.custom_scripts,
    };
    let script = format!("{}{}", (probe.inputs)(&inputs), probe.script);
    // Nothing is kept of the output but what is printed: no cap below the SSH path's own.
    let cap = 64 << 20;
    let (at, clock) = (now_ms(), Instant::now());
    let exec: ExecOutput = match host.transport {
        Transport::Ssh => {
            let ssh = Connector::new(1)
                .connect(host, accept_new_host_keys)
                .await?;
            let result = ssh.run_script(&script, host.become_, timeout, cap).await;
            ssh.close().await;
            result?
        }
        Transport::Local => crate::local::run_script(&script, host.become_, timeout, cap).await?,
    };
    let took = clock.elapsed();
    let run = finish_run(probe, host.become_, at, took, Ok(exec.clone()));
    Ok(Trial {
        command: script_command(host.become_).to_string(),
        script,
        stdout: exec.stdout,
        stderr: exec.stderr,
        exit: exec.exit,
        took,
        run,
    })
}
