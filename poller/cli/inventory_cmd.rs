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

pub fn list(file: &Path, selector: Option<&str>, json: bool) -> Result<ExitCode> {
    let Some(inventory) = load(file)? else {
        return Ok(ExitCode::from(1));
    };
    let hosts = match selector {
        Some(s) => dcmon_inventory::select(&inventory, s)?,
        None => inventory.hosts.iter().collect(),
    };
    if json {
        for host in hosts {
            println!("{}", serde_json::to_string(host)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                h.name.clone(),
                format!("{}@{}:{}", h.user, h.address, h.port),
                h.groups.join(","),
                h.probes.join(","),
                labels.join(","),
            ]
        })
        .collect();
    table::print(&["HOST", "SSH", "GROUPS", "PROBES", "LABELS"], &rows);
    Ok(ExitCode::SUCCESS)
}
