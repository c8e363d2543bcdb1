//! `dcmon fan SELECTOR status|set MODE`: fan modes through each host's `fan_profile`,
//! over the same fan-out, audit trail and Ctrl-C handling as `dcmon exec`.

use crate::args::{FanAction, FanArgs, FanPath};
use crate::exec_cmd::{Display, exit_code, hosts_of, run_jobs, summary};
use crate::table;
use anyhow::Result;
use dcmon_poller::command::{all_of, each_of};
use dcmon_poller::fan::{self, FANS_MARK, Fan};
use dcmon_poller::fanout::{ExecOptions, ExecResult, ExecStatus, Job};
use dcmon_poller::fanout_bmc::BmcScript;
use dcmon_store::Store;
use std::io::Write;
use std::process::ExitCode;

pub fn fan(args: FanArgs) -> Result<ExitCode> {
    let hosts = hosts_of(args.inventory.as_deref(), &args.selector)?;
    let options = ExecOptions {
        timeout: args.timeout,
        concurrency: 256,
        accept_new_host_keys: args.accept_new_host_keys,
        output_cap: 1 << 20,
        sessions: None,
    };
    match &args.action {
        FanAction::Set { mode, dry_run } => set(&args, hosts, mode, *dry_run, options),
        FanAction::Status => status(&args, hosts, options),
    }
}

fn set(
    args: &FanArgs,
    hosts: Vec<dcmon_inventory::Host>,
    mode: &str,
    dry_run: bool,
    options: ExecOptions,
) -> Result<ExitCode> {
    // Every host's commands first: one unknown mode or read-only profile and nothing is sent.
    let mut jobs = Vec::new();
    let mut refused = Vec::new();
    for host in hosts {
        match fan::set_commands(host.fan_profile, mode) {
            Ok(commands) => match job(host, &commands, args.via, false) {
                Ok(job) => jobs.push(job),
                Err(e) => refused.push(e),
            },
            Err(e) => refused.push(format!("{}: {e}", host.name)),
        }
    }
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("dcmon fan: {r}");
        }
        eprintln!("dcmon fan: nothing was sent");
        return Ok(ExitCode::from(2));
    }
    if dry_run {
        for (job, shown) in &jobs {
            println!("{}: {shown}", job.host.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(&args.db)?;
    let display = if args.json {
        Display::Json
    } else {
        Display::Quiet
    };
    let (results, interrupted) = run_jobs(store, "fan-set", jobs, options, display)?;
    if !args.json {
        for r in &results {
            let outcome = match r.status {
                ExecStatus::Ok => format!("fan mode {mode}: ok"),
                _ => format!(
                    "fan mode {mode}: {} {}",
                    r.status.as_str(),
                    r.stderr.trim().lines().next().unwrap_or_default()
                ),
            };
            let _ = writeln!(std::io::stdout(), "{}: {outcome}", r.host);
        }
    }
    summary("fan", &results);
    Ok(exit_code(&results, interrupted))
}

/// One host's job for `commands` (all must succeed, unless `keep_going`), by `via`, with
/// the command line the audit trail shows. Over the BMC, a host needs one.
fn job(
    host: dcmon_inventory::Host,
    commands: &[Vec<String>],
    via: FanPath,
    keep_going: bool,
) -> Result<(Job, String), String> {
    let line = if keep_going {
        each_of(commands)
    } else {
        all_of(commands)
    };
    if via == FanPath::Bmc {
        let Some(bmc) = &host.bmc else {
            return Err(format!(
                "{}: has no bmc in the inventory (set bmc = {{ address, user, password_file }})",
                host.name
            ));
        };
        let script =
            BmcScript::of(bmc, commands, keep_going).map_err(|e| format!("{}: {e}", host.name))?;
        let shown = script.shown(bmc);
        let job = Job {
            host,
            line: shown.clone(),
            become_root: false,
            bmc: Some(script),
        };
        return Ok((job, shown));
    }
    let shown = if host.become_ {
        format!("sudo {line}")
    } else {
        line.clone()
    };
    let become_root = host.become_;
    let job = Job {
        host,
        line,
        become_root,
        bmc: None,
    };
    Ok((job, shown))
}

/// One host's fan status, read from its answer.
#[derive(serde::Serialize)]
struct FanStatus<'a> {
    host: &'a str,
    profile: &'static str,
    /// The mode the BMC reports; `null` where the profile cannot read it.
    mode: Option<String>,
    fans: Vec<Fan>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn status(
    args: &FanArgs,
    hosts: Vec<dcmon_inventory::Host>,
    options: ExecOptions,
) -> Result<ExitCode> {
    let profiles: std::collections::HashMap<String, dcmon_inventory::FanProfile> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.fan_profile))
        .collect();
    // The mode's answer first, then a marker, then the fans: one round trip.
    let mut jobs = Vec::new();
    let mut refused = Vec::new();
    for host in hosts {
        let commands = fan::status_commands(host.fan_profile);
        match job(host, &commands, args.via, true) {
            Ok(job) => jobs.push(job),
            Err(e) => refused.push(e),
        }
    }
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("dcmon fan: {r}");
        }
        eprintln!("dcmon fan: nothing was sent");
        return Ok(ExitCode::from(2));
    }
    let store = Store::open(&args.db)?;
    let (results, interrupted) = run_jobs(store, "fan-status", jobs, options, Display::Quiet)?;
    let statuses: Vec<FanStatus> = results
        .iter()
        .map(|r| read_status(r, profiles.get(&r.host).copied().unwrap_or_default()))
        .collect();
    if args.json {
        for s in &statuses {
            let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(s)?);
        }
    } else {
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                let fans = s
                    .fans
                    .iter()
                    .map(|f| match f.rpm {
                        Some(rpm) => format!("{} {rpm:.0} rpm ({})", f.sensor, f.status),
                        None => format!("{} – ({})", f.sensor, f.status),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    s.host.to_string(),
                    s.profile.to_string(),
                    s.mode.clone().unwrap_or_else(|| "–".to_string()),
                    if s.error.is_some() {
                        s.error.clone().unwrap_or_default()
                    } else {
                        fans
                    },
                ]
            })
            .collect();
        table::print(&["HOST", "PROFILE", "MODE", "FANS"], &rows);
    }
    summary("fan", &results);
    Ok(exit_code(&results, interrupted))
}

fn read_status(r: &ExecResult, profile: dcmon_inventory::FanProfile) -> FanStatus<'_> {
    let (mode_part, fans_part) = r
        .stdout
        .split_once(&format!("{FANS_MARK}\n"))
        .unwrap_or(("", r.stdout.as_str()));
    let first_error = r.stderr.trim().lines().next().map(str::to_string);
    let mode = fan::mode_command(profile).map(|_| {
        fan::supermicro_mode(mode_part).unwrap_or_else(|| {
            format!(
                "unreadable: {}",
                first_error
                    .clone()
                    .unwrap_or_else(|| "no answer".to_string())
            )
        })
    });
    let fans = fan::fans(fans_part);
    let error = match r.status {
        ExecStatus::Ok if !fans.is_empty() => None,
        ExecStatus::Ok => Some(format!(
            "no fan sensors in the answer{}",
            first_error.map(|e| format!(": {e}")).unwrap_or_default()
        )),
        _ => Some(
            r.error
                .clone()
                .or(first_error)
                .unwrap_or_else(|| r.status.as_str().to_string()),
        ),
    };
    FanStatus {
        host: &r.host,
        profile: profile.name(),
        mode,
        fans,
        status: if error.is_none() { "ok" } else { "failed" },
        error,
    }
}
