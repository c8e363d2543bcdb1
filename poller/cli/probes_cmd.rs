//! `dcmon probes list` (what each probe runs, needs and emits) and `dcmon probe run`
//! (one probe on one host now: the command, the raw output, how it ended, the parsed
//! result; nothing stored).

use crate::args::ProbeRunArgs;
use anyhow::{Context, Result, bail};
use dcmon_probes::{ProbeKind, series_doc};
use std::io::Write as _;
use std::process::ExitCode;

pub fn list(json: bool) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    for probe in dcmon_probes::PROBES {
        let series = series_doc::series(probe.name);
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
    let Some(probe) = dcmon_probes::find(&args.probe) else {
        bail!(
            "unknown probe `{}`; known: {}",
            args.probe,
            dcmon_probes::names().join(", ")
        );
    };
    let inventory = crate::exec_cmd::inventory_of(args.inventory.as_deref())?;
    let hosts = crate::exec_cmd::selected(&inventory, &args.host)?;
    let [host] = hosts.as_slice() else {
        bail!(
            "`{}` selects {} hosts: name one host",
            args.host,
            hosts.len()
        );
    };
    if probe.kind == ProbeKind::Bmc {
        if host.bmc.is_none() {
            bail!("{}: has no bmc in the inventory", host.name);
        }
        if args.raw {
            bail!(
                "the {} probe reads the BMC over the network: it has no raw text output",
                probe.name
            );
        }
    }
    let timeout = args
        .timeout
        .unwrap_or_else(|| dcmon_poller::plan::timeout_of(host, &inventory.probe_schedules, probe));
    let due = dcmon_poller::plan::Due { probe, timeout };
    let accept = args.accept_new_host_keys || host.accept_new_host_keys;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    dcmon_poller::redfish::warn_insecure([host]);
    let trial = runtime.block_on(async {
        let trial = dcmon_poller::trial::run(host, due, accept).await;
        // A one-shot run leaves no Redfish session open on the BMC.
        dcmon_poller::redfish::logout_all(std::time::Duration::from_secs(3)).await;
        trial
    });
    let run = &trial.run;
    let out = &run.output;
    let verdict = match (&run.error, out.warnings.is_empty()) {
        (None, true) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    };
    let raw = match (&trial.raw, probe.kind) {
        (Some(raw), _) => Some(raw),
        // A script the host never answered: no output to show, only why.
        (None, ProbeKind::Script) => {
            return Err(anyhow::anyhow!(
                "{}: the {} probe did not run: {}",
                host.name,
                probe.name,
                run.error.as_deref().unwrap_or("no output")
            ));
        }
        (None, ProbeKind::Bmc) => None,
    };
    let exit = raw.map(|raw| match &raw.output.exit {
        dcmon_poller::exec::Exit::Code(n) => format!("exit status {n}"),
        dcmon_poller::exec::Exit::Signal(s) => format!("killed by SIG{s}"),
        dcmon_poller::exec::Exit::Unknown => "no exit status".to_string(),
    });
    if args.raw {
        if let Some(raw) = raw {
            let _ = std::io::stdout().write_all(&raw.output.stdout);
        }
        return Ok(verdict);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if args.json {
        let mut object = serde_json::json!({
            "host": host.name,
            "probe": probe.name,
            "duration_ms": trial.took.as_millis() as u64,
            "status": run.status.as_str(),
            "error": run.error,
            "parsed": crate::parse_cmd::json_objects(out),
            "warnings": out.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        if let Some(raw) = raw {
            object["via"] = via_text(raw).into();
            object["command"] = raw.command.clone().into();
            object["script"] = raw.script.clone().into();
            object["stdout"] = text(&raw.output.stdout).into();
            object["stderr"] = text(&raw.output.stderr).into();
            object["exit"] = exit.clone().into();
        }
        if let Some(bmc) = host.bmc.as_ref().filter(|_| probe.kind == ProbeKind::Bmc) {
            let (protocol, at) = answered(bmc, out);
            object["bmc"] = at.into();
            object["bmc_protocol"] = protocol.into();
        }
        let _ = writeln!(std::io::stdout(), "{object}");
        return Ok(verdict);
    }
    let mut stdout = std::io::stdout().lock();
    match (raw, &host.bmc) {
        (Some(raw), _) => {
            let how = if raw.via == Some(dcmon_poller::ssh::Via::Persistent) {
                "as one line on the shell's stdin"
            } else {
                "on the stdin of the probe watchdog (sh -c ... dcmon-probe)"
            };
            let _ = writeln!(
                stdout,
                "{} ({}), probe {}\nvia: {}; the {}-byte script {how}; --json shows both\n{} after {} ms",
                host.name,
                host.address,
                probe.name,
                via_text(raw),
                raw.script.len(),
                exit.unwrap_or_default(),
                trial.took.as_millis()
            );
            for command in probe.commands {
                let _ = writeln!(stdout, "runs: {command}");
            }
            for (name, bytes) in [
                ("stdout", &raw.output.stdout),
                ("stderr", &raw.output.stderr),
            ] {
                let _ = writeln!(stdout, "--- {name} ({} bytes)", bytes.len());
                let _ = stdout.write_all(bytes);
                if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                    let _ = writeln!(stdout);
                }
            }
        }
        (None, Some(bmc)) => {
            let (protocol, at) = answered(bmc, out);
            let _ = writeln!(
                stdout,
                "{} (bmc {at} as {}), probe {}\nanswered over: {protocol} (bmc protocol = \"{}\")\n{} after {} ms",
                host.name,
                bmc.user,
                probe.name,
                bmc.protocol.as_str(),
                run.status.as_str(),
                trial.took.as_millis()
            );
        }
        (None, None) => {}
    }
    let _ = writeln!(
        stdout,
        "--- parsed: {} samples, {} facts, {} log lines, {} warnings; run {}{}",
        out.samples.len(),
        out.facts.len(),
        out.logs.len(),
        out.warnings.len(),
        run.status.as_str(),
        run.error
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

/// How a run reached the host: `persistent shell`, `exec channel`, `exec channel
/// (persistent shell refused: ...)`, or `local`.
fn via_text(raw: &dcmon_poller::host_round::RawRun) -> String {
    raw.via
        .as_ref()
        .map_or_else(|| "local".to_string(), ToString::to_string)
}

/// Which protocol answered a bmc run (the `bmc_protocol` fact its reader set), and
/// where: `("redfish", "https://10.1.0.11:443")`, `("ipmi", "10.1.0.11:623")`, or
/// `("none", ...)` when neither did.
fn answered(bmc: &dcmon_inventory::Bmc, out: &dcmon_probes::ProbeOutput) -> (String, String) {
    let protocol = out
        .facts
        .iter()
        .find(|f| f.key == "bmc_protocol")
        .map_or("none", |f| f.value.as_str());
    let at = match (protocol, bmc.protocol) {
        ("redfish", _) | ("none", dcmon_inventory::BmcProtocol::Redfish) => {
            dcmon_poller::redfish::base_url(bmc)
        }
        _ => format!("{}:{}", bmc.address, bmc.port),
    };
    (protocol.to_string(), at)
}
