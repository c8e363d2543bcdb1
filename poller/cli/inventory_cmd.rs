//! `dcmon inventory check|list`.

use crate::table;
use anyhow::Result;
use dcmon_inventory::InventoryError;
use std::path::Path;
use std::process::ExitCode;

/// Loads an inventory for a command; problems are printed, one per line.
pub fn load(file: &Path) -> Result<Option<dcmon_inventory::Inventory>> {
    match dcmon_inventory::load(file, &dcmon_probes::names()) {
        Ok(inventory) => Ok(Some(inventory)),
        Err(InventoryError::Invalid(problems)) => {
            eprintln!("{problems}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn check(file: &Path) -> Result<ExitCode> {
    match load(file)? {
        Some(inventory) => {
            println!(
                "{}: ok, {} hosts in {} groups",
                file.display(),
                inventory.hosts.len(),
                inventory.groups.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

pub fn list(
    file: &Path,
    selector: Option<&str>,
    json: bool,
    resolved: bool,
    shard: Option<&str>,
) -> Result<ExitCode> {
    let Some(inventory) = load(file)? else {
        return Ok(ExitCode::from(1));
    };
    let mut hosts = match selector {
        Some(s) => dcmon_inventory::select(&inventory, s)?,
        None => inventory.hosts.iter().collect(),
    };
    // `I/N`: poller I's hosts; `N`: every host, with its pollers among N.
    let split = match shard {
        None => None,
        Some(text) => Some(match text.parse::<u32>() {
            Ok(count) if (1..=dcmon_inventory::cluster::MAX_SHARDS).contains(&count) => {
                (None, count)
            }
            _ => {
                let s = dcmon_inventory::cluster::Shard::parse(text)
                    .map_err(|why| anyhow::anyhow!("--shard: {why}"))?;
                (Some(s.index), s.count)
            }
        }),
    };
    let replicas = inventory.cluster.replicas;
    if let Some((_, count)) = split {
        inventory
            .cluster
            .fits(count)
            .map_err(|why| anyhow::anyhow!("--shard {count}: {why}"))?;
    }
    let pollers = |h: &dcmon_inventory::Host| {
        split.map(|(_, count)| {
            let mut owners = dcmon_inventory::cluster::Shard::owners(&h.name, count, replicas);
            owners.sort_unstable();
            owners
        })
    };
    if let Some((Some(index), _)) = split {
        hosts.retain(|h| pollers(h).is_some_and(|p| p.contains(&index)));
    }
    if resolved {
        return list_resolved(&inventory, &hosts, json);
    }
    if json {
        for host in hosts {
            let mut value = serde_json::to_value(host)?;
            if let (Some(p), Some(object)) = (pollers(host), value.as_object_mut()) {
                object.insert("pollers".to_string(), serde_json::json!(p));
            }
            println!("{value}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut row = vec![
                h.name.clone(),
                format!("{}@{}:{}", h.user, h.address, h.port),
                h.groups.join(","),
                h.probes.join(","),
                labels.join(","),
            ];
            if let Some(p) = pollers(h) {
                let p: Vec<String> = p.iter().map(u32::to_string).collect();
                row.push(p.join(","));
            }
            row
        })
        .collect();
    if split.is_some() {
        table::print(
            &["HOST", "SSH", "GROUPS", "PROBES", "LABELS", "POLLERS"],
            &rows,
        );
    } else {
        table::print(&["HOST", "SSH", "GROUPS", "PROBES", "LABELS"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each host's plan: every probe with its interval or schedule and its timeout, and
/// which setting gave the timeout.
fn list_resolved(
    inventory: &dcmon_inventory::Inventory,
    hosts: &[&dcmon_inventory::Host],
    json: bool,
) -> Result<ExitCode> {
    use dcmon_poller::plan::{Trigger, plan, timeout_and_source};
    let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let mut rows = Vec::new();
    for host in hosts {
        let mut probes = Vec::new();
        for planned in plan(host, inventory) {
            let probe = planned.due.probe;
            let (timeout, from) = timeout_and_source(host, &inventory.probe_schedules, probe);
            let when = match &planned.trigger {
                Trigger::Every { interval, .. } => format!("every {}", human(*interval)),
                Trigger::Cron(cron) => format!("at {cron}"),
            };
            if json {
                probes.push(serde_json::json!({
                    "probe": probe.name,
                    "when": when,
                    "timeout": human(timeout),
                    "timeout_from": from,
                }));
            } else {
                rows.push(vec![
                    host.name.clone(),
                    probe.name.to_string(),
                    when,
                    human(timeout),
                    from.to_string(),
                ]);
            }
        }
        if json {
            let mut object = serde_json::to_value(host)?;
            object["plan"] = probes.into();
            println!("{object}");
        }
    }
    if !json {
        table::print(&["HOST", "PROBE", "RUNS", "TIMEOUT", "TIMEOUT FROM"], &rows);
        println!();
        let rows: Vec<Vec<String>> = hosts
            .iter()
            .filter(|h| h.transport == dcmon_inventory::Transport::Ssh)
            .flat_map(|h| ssh_rows(h))
            .collect();
        table::print(&["HOST", "SSH SETTING", "VALUE", "FROM"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each SSH setting of a host, its effective value and where it came from (the JSON
/// form has the same under `origins`).
fn ssh_rows(host: &dcmon_inventory::Host) -> Vec<Vec<String>> {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string())
    };
    let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
    host.origins
        .iter()
        .map(|(key, from)| {
            let value = match key.as_str() {
                "address" => host.address.clone(),
                "user" => host.user.clone(),
                "port" => host.port.to_string(),
                "identity" => match &host.identity {
                    dcmon_inventory::Identity::Default => {
                        "agent, ~/.ssh/id_ed25519, id_ecdsa, id_rsa".to_string()
                    }
                    other => serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                },
                "passphrase_file" => path(&host.passphrase_file),
                "ssh_config" => path(&host.ssh_config),
                "certificate" => path(&host.certificate),
                "known_hosts" => host.known_hosts.display().to_string(),
                "connect_timeout" => human(host.connect_timeout),
                "server_alive_interval" => host
                    .server_alive_interval
                    .map_or_else(|| "15s".to_string(), human),
                "jump" if host.jump.is_empty() => "-".to_string(),
                "jump" => host
                    .jump
                    .iter()
                    .map(|hop| format!("{}@{}:{}", hop.user, hop.address, hop.port))
                    .collect::<Vec<_>>()
                    .join(" -> "),
                _ => "-".to_string(),
            };
            vec![host.name.clone(), key.clone(), value, from.clone()]
        })
        .collect()
}
