//! A fan-out job sent to the host's BMC over the network (`Job::bmc`): the same result,
//! output and audit trail as a command over SSH, for hosts whose OS is down.

use crate::bmc::{BmcError, BmcOp, run_ops};
use crate::command::Stream;
use crate::fanout::{ExecResult, ExecStatus, Job};
use std::time::{Duration, Instant};

/// Commands for a BMC, in order.
#[derive(Debug, Clone)]
pub struct BmcScript {
    pub ops: Vec<BmcOp>,
    /// Go on after a failed op (a status read still lists the fans).
    pub keep_going: bool,
}

impl BmcScript {
    /// The ops for these ipmitool argument lists, or the first that has no meaning on
    /// a BMC. A BMC reached over Redfish only takes those with a Redfish equivalent
    /// (fan readings, Supermicro's fan mode); the others are refused here, with why.
    pub fn of(
        bmc: &dcmon_inventory::Bmc,
        commands: &[Vec<String>],
        keep_going: bool,
    ) -> Result<BmcScript, String> {
        let ops = commands
            .iter()
            .map(|argv| {
                BmcOp::from_argv(argv)
                    .ok_or_else(|| format!("`{}` cannot be sent to a BMC", argv.join(" ")))
            })
            .collect::<Result<_, _>>()?;
        if bmc.protocol == dcmon_inventory::BmcProtocol::Redfish {
            for op in &ops {
                crate::redfish::ops::supported(op).map_err(|why| {
                    format!(
                        "its BMC is reached over Redfish only (bmc protocol = \"redfish\"): {why}"
                    )
                })?;
            }
        }
        Ok(BmcScript { ops, keep_going })
    }

    /// As the audit trail shows it: `bmc 10.1.0.11:623: raw 0x30 0x45 0x00; sdr type Fan`.
    pub fn shown(&self, bmc: &dcmon_inventory::Bmc) -> String {
        let ops: Vec<String> = self.ops.iter().map(BmcOp::shown).collect();
        let sep = if self.keep_going { "; " } else { " && " };
        format!("bmc {}:{}: {}", bmc.address, bmc.port, ops.join(sep))
    }
}

/// Reads a BMC password file (first line, without its end).
pub fn read_password(bmc: &dcmon_inventory::Bmc) -> Result<String, String> {
    std::fs::read_to_string(&bmc.password_file)
        .map(|p| p.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| {
            format!(
                "cannot read bmc password_file {}: {e}",
                bmc.password_file.display()
            )
        })
}

/// The script over IPMI over LAN (ipmi-rs, blocking, on a blocking thread).
async fn ipmi_ops(
    bmc: dcmon_inventory::Bmc,
    script: &BmcScript,
    timeout: Duration,
) -> Result<crate::bmc::BmcAnswer, String> {
    let ops = script.ops.clone();
    let keep_going = script.keep_going;
    crate::bmc::on_blocking_thread(&bmc, "sender", move |login| {
        Ok(run_ops(login, timeout, &ops, keep_going))
    })
    .await
}

/// The script over Redfish, through the host's kept service (its session, its layout),
/// all of it by `timeout`.
async fn redfish_ops(
    job: &Job,
    bmc: &dcmon_inventory::Bmc,
    script: &BmcScript,
    timeout: Duration,
) -> Result<crate::bmc::BmcAnswer, String> {
    let until = tokio::time::Instant::now() + timeout;
    let connect = job.host.connect_timeout.min(timeout);
    let mut service = crate::redfish::locked(&job.host.name, bmc, connect)
        .await
        .map_err(|e| e.to_string())?;
    let password = read_password(bmc)?;
    Ok(crate::redfish::ops::run(
        &mut service,
        &password,
        until,
        &script.ops,
        script.keep_going,
    )
    .await)
}

/// Runs `script` on the job's host's BMC; `timeout` bounds each answer.
pub(crate) async fn run(
    job: &Job,
    script: &BmcScript,
    timeout: Duration,
    on_output: &mut (dyn FnMut(Stream, &[u8]) + Send),
) -> ExecResult {
    let started = Instant::now();
    let result = |status, exit_code, stdout: String, stderr: String, error| ExecResult {
        host: job.host.name.clone(),
        status,
        exit_code,
        stdout,
        stderr,
        duration_ms: started.elapsed().as_millis() as u64,
        error,
    };
    // Nothing was sent.
    let unreachable = |why: String| {
        result(
            ExecStatus::Unreachable,
            None,
            String::new(),
            String::new(),
            Some(why),
        )
    };
    let Some(bmc) = job.host.bmc.clone() else {
        return unreachable(format!(
            "host `{}` has no bmc in the inventory",
            job.host.name
        ));
    };
    let answer = if bmc.protocol == dcmon_inventory::BmcProtocol::Redfish {
        match redfish_ops(job, &bmc, script, timeout).await {
            Ok(answer) => answer,
            Err(why) => return unreachable(why),
        }
    } else {
        match ipmi_ops(bmc, script, timeout).await {
            Ok(answer) => answer,
            Err(why) => return unreachable(why),
        }
    };
    on_output(Stream::Stdout, answer.stdout.as_bytes());
    on_output(Stream::Stderr, answer.stderr.as_bytes());
    match answer.error {
        None => result(ExecStatus::Ok, Some(0), answer.stdout, answer.stderr, None),
        // No session: nothing was sent.
        Some(e @ BmcError::Session { .. }) => result(
            ExecStatus::Unreachable,
            None,
            answer.stdout,
            answer.stderr,
            Some(e.to_string()),
        ),
        // Sent, and refused or unanswered: as ipmitool would, exit status 1.
        Some(e) => result(
            ExecStatus::Failed,
            Some(1),
            answer.stdout,
            answer.stderr,
            Some(e.to_string()),
        ),
    }
}
