//! `dcmon probes list` (what each probe runs, needs and emits) and `dcmon probe run`
//! (one probe on one host now: the command, the raw output, how it ended, the parsed
//! result; nothing stored).

use crate::args::ProbeRunArgs;
use anyhow::{Context, Result, bail};
use dcmon_probes::series_doc;
use std::io::Write as _;
use std::process::ExitCode;

pub fn list(json: bool) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    let bmc = &dcmon_poller::serve::plan::BMC_PROBE;
    for probe in dcmon_probes::PROBES.iter().chain([bmc]) {
        let series = if probe.name == bmc.name {
            // The ipmi probe's sensor and power series, read over the network.
            series_doc::series("ipmi")
                .into_iter()
                .filter(|s| {
                    !s.name.starts_with("ipmi_dcmi")
                        && !s.name.contains("chassis_fault")
                        && !s.name.contains("intrusion")
                })
                .collect()
        } else {
            series_doc::series(probe.name)
        };
        if json {
            let series: Vec<_> = series
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "unit": s.unit, "labels": s.labels}))
                .collect();
            let line = serde_json::json!({
                "name": probe.name,
                "description": probe.description,
                "commands": probe.commands,
                "default_interval": humantime::format_duration(probe.default_interval).to_string(),
                "default_timeout": humantime::format_duration(probe.default_timeout).to_string(),
                "privileges": probe.privileges,
                "series": series,
            });
            let _ = writeln!(stdout, "{line}");
            continue;
        }
        let _ = writeln!(stdout, "{}: {}", probe.name, probe.description);
        let _ = writeln!(
            stdout,
            "  every {}, timeout {}; privileges: {}",
            humantime::format_duration(probe.default_interval),
            humantime::format_duration(probe.default_timeout),
            probe.privileges
        );
        for command in probe.commands {
            let _ = writeln!(stdout, "  runs: {command}");
        }
        for s in &series {
            let labels = if s.labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", s.labels.join(","))
            };
            let unit = if s.unit.is_empty() {
                String::new()
            } else {
                format!("  ({})", s.unit)
            };
            let _ = writeln!(stdout, "  emits: {}{labels}{unit}", s.name);
        }
        let _ = writeln!(stdout);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: ProbeRunArgs) -> Result<ExitCode> {
    let bmc = &dcmon_poller::serve::plan::BMC_PROBE;
    let probe = match dcmon_probes::find(&args.probe) {
        Some(probe) => probe,
        None if args.probe == bmc.name => bmc,
        None => bail!(
            "unknown probe `{}`; known: {}, {}",
            args.probe,
            dcmon_probes::names().join(", "),
            bmc.name
        ),
    };
    let hosts = crate::exec_cmd::hosts_of(args.inventory.as_deref(), &args.host)?;
    let [host] = hosts.as_slice() else {
        bail!(
            "`{}` selects {} hosts: name one host",
            args.host,
            hosts.len()
        );
    };
    let timeout = args.timeout.unwrap_or(host.timeout);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if probe.name == bmc.name {
        return run_bmc(&args, host, timeout, &runtime);
    }
    let accept = args.accept_new_host_keys || host.accept_new_host_keys;
    let trial = runtime
        .block_on(dcmon_poller::trial::run(host, probe, timeout, accept))
        .with_context(|| format!("{}: the {} probe did not run", host.name, probe.name))?;
    let out = &trial.run.output;
    let verdict = match (&trial.run.error, out.warnings.is_empty()) {
        (None, true) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    };
    let exit = match &trial.exit {
        dcmon_poller::exec::Exit::Code(n) => format!("exit status {n}"),
        dcmon_poller::exec::Exit::Signal(s) => format!("killed by SIG{s}"),
        dcmon_poller::exec::Exit::Unknown => "no exit status".to_string(),
    };
    if args.raw {
        let _ = std::io::stdout().write_all(&trial.stdout);
        return Ok(verdict);
    }
    if args.json {
        let object = serde_json::json!({
            "host": host.name,
            "probe": probe.name,
            "command": trial.command,
            "script": trial.script,
            "stdout": String::from_utf8_lossy(&trial.stdout),
            "stderr": String::from_utf8_lossy(&trial.stderr),
            "exit": exit,
            "duration_ms": trial.took.as_millis() as u64,
            "status": trial.run.status.as_str(),
            "error": trial.run.error,
            "parsed": crate::parse_cmd::json_objects(out),
            "warnings": out.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        let _ = writeln!(std::io::stdout(), "{object}");
        return Ok(verdict);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{} ({}), probe {}\ncommand: {} (the {}-byte script on its stdin; --json shows it)\n{exit} after {} ms",
        host.name,
        host.address,
        probe.name,
        trial.command,
        trial.script.len(),
        trial.took.as_millis()
    );
    for command in probe.commands {
        let _ = writeln!(stdout, "runs: {command}");
    }
    let _ = writeln!(stdout, "--- stdout ({} bytes)", trial.stdout.len());
    let _ = stdout.write_all(&trial.stdout);
    if !trial.stdout.ends_with(b"\n") && !trial.stdout.is_empty() {
        let _ = writeln!(stdout);
    }
    let _ = writeln!(stdout, "--- stderr ({} bytes)", trial.stderr.len());
    let _ = stdout.write_all(&trial.stderr);
    if !trial.stderr.ends_with(b"\n") && !trial.stderr.is_empty() {
        let _ = writeln!(stdout);
    }
    let _ = writeln!(
        stdout,
        "--- parsed: {} samples, {} facts, {} log lines, {} warnings; run {}{}",
        out.samples.len(),
        out.facts.len(),
        out.logs.len(),
        out.warnings.len(),
        trial.run.status.as_str(),
        trial
            .run
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    drop(stdout);
    crate::parse_cmd::print(out, false);
    for w in &out.warnings {
        let _ = writeln!(std::io::stdout(), "warning: {w}");
    }
    Ok(verdict)
}

/// The `bmc` probe: IPMI over the network has no text output to show, so the run's
/// verdict and what it read.
fn run_bmc(
    args: &ProbeRunArgs,
    host: &dcmon_inventory::Host,
    timeout: std::time::Duration,
    runtime: &tokio::runtime::Runtime,
) -> Result<ExitCode> {
    let Some(bmc) = &host.bmc else {
        bail!("{}: has no bmc in the inventory", host.name);
    };
    if args.raw {
        bail!("the bmc probe speaks IPMI over the network: it has no raw text output");
    }
    let connect = args.timeout.unwrap_or(host.connect_timeout).min(timeout);
    let run = runtime.block_on(dcmon_poller::round::bmc_run(
        bmc,
        connect,
        &std::collections::BTreeMap::new(),
    ));
    let out = &run.output;
    let verdict = match (&run.error, out.warnings.is_empty()) {
        (None, true) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    };
    if args.json {
        let object = serde_json::json!({
            "host": host.name,
            "probe": "bmc",
            "bmc": format!("{}:{}", bmc.address, bmc.port),
            "duration_ms": run.duration_ms,
            "status": run.status.as_str(),
            "error": run.error,
            "parsed": crate::parse_cmd::json_objects(out),
            "warnings": out.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        let _ = writeln!(std::io::stdout(), "{object}");
        return Ok(verdict);
    }
    let _ = writeln!(
        std::io::stdout(),
        "{} (bmc {}:{} as {}), probe bmc\n{} after {} ms{}",
        host.name,
        bmc.address,
        bmc.port,
        bmc.user,
        run.status.as_str(),
        run.duration_ms,
        run.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    crate::parse_cmd::print(out, false);
    for w in &out.warnings {
        let _ = writeln!(std::io::stdout(), "warning: {w}");
    }
    Ok(verdict)
}
