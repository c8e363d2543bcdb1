//! `dcmon alerts`: what fires now, the rules in force, and a dry run of them.

use crate::args::{AlertsArgs, AlertsCommand};
use crate::{inventory_cmd, table};
use anyhow::Result;
use dcmon_alerts::StoreSource;
use std::process::ExitCode;

pub fn alerts(args: AlertsArgs) -> Result<ExitCode> {
    match args.command {
        None => list(&args.db, args.json),
        Some(AlertsCommand::Rules { inventory, json }) => rules(inventory.as_deref(), json),
        Some(AlertsCommand::Check { file }) => inventory_cmd::check(&file),
        Some(AlertsCommand::Test { file, db, json }) => test(&file, &db, json),
    }
}

/// Pending and firing alerts as `dcmon serve` last stored them.
fn list(db: &std::path::Path, json: bool) -> Result<ExitCode> {
    let store = dcmon_store::Store::open(db)?;
    let alerts: Vec<_> = store
        .alerts()?
        .into_iter()
        .filter(|a| a.state != "resolved")
        .collect();
    if json {
        for a in &alerts {
            let line = serde_json::json!({
                "name": a.rule,
                "state": a.state,
                "labels": a.labels,
                "value": a.value,
                "since": a.fired_at.unwrap_or(a.active_since),
                "summary": a.annotations.get("summary"),
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.rule.clone(),
                a.state.clone(),
                a.labels.get("host").cloned().unwrap_or_default(),
                a.value.map(|v| v.to_string()).unwrap_or_default(),
                a.annotations.get("summary").cloned().unwrap_or_default(),
            ]
        })
        .collect();
    table::print(&["ALERT", "STATE", "HOST", "VALUE", "SUMMARY"], &rows);
    Ok(ExitCode::SUCCESS)
}

fn alerting_of(inventory: Option<&std::path::Path>) -> Result<Option<dcmon_inventory::Alerting>> {
    Ok(match inventory {
        Some(file) => inventory_cmd::load(file)?.map(|i| i.alerting),
        None => Some(dcmon_inventory::Alerting {
            rules: dcmon_inventory::load::builtin_alerts::rules(&Default::default()),
            ..Default::default()
        }),
    })
}

fn rules(inventory: Option<&std::path::Path>, json: bool) -> Result<ExitCode> {
    let Some(alerting) = alerting_of(inventory)? else {
        return Ok(ExitCode::from(1));
    };
    if json {
        for r in &alerting.rules {
            let line = serde_json::json!({
                "name": r.name,
                "expr": r.expr,
                "for": humantime::format_duration(r.for_).to_string(),
                "severity": r.severity,
                "builtin": r.builtin,
                "labels": r.labels,
                "annotations": r.annotations,
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = alerting
        .rules
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.severity.clone(),
                humantime::format_duration(r.for_).to_string(),
                if r.builtin { "built-in" } else { "inventory" }.to_string(),
                r.expr.clone(),
            ]
        })
        .collect();
    table::print(&["ALERT", "SEVERITY", "FOR", "FROM", "EXPR"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// Every rule now, against the database: what would be active, with values.
fn test(file: &std::path::Path, db: &std::path::Path, json: bool) -> Result<ExitCode> {
    let Some(alerting) = alerting_of(Some(file))? else {
        return Ok(ExitCode::from(1));
    };
    let store = dcmon_store::Store::open(db)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut rows = Vec::new();
    let mut failed = false;
    for rule in &alerting.rules {
        let query = dcmon_promql::parse(&rule.expr)?;
        match dcmon_promql::eval(&query, now, &StoreSource(&store)) {
            Err(e) => {
                failed = true;
                eprintln!("dcmon alerts test: {}: {e}", rule.name);
            }
            Ok(dcmon_promql::Value::Scalar(v)) => rows.push((rule, Default::default(), v)),
            Ok(dcmon_promql::Value::Vector(samples)) => {
                for s in samples {
                    let mut labels = s.labels;
                    labels.remove("__name__");
                    rows.push((rule, labels, s.value));
                }
            }
        }
    }
    if json {
        for (rule, labels, value) in &rows {
            let line = serde_json::json!({
                "name": rule.name,
                "severity": rule.severity,
                "for": humantime::format_duration(rule.for_).to_string(),
                "labels": labels,
                "value": value,
            });
            println!("{line}");
        }
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(rule, labels, value)| {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                vec![
                    rule.name.clone(),
                    rule.severity.clone(),
                    labels.join(","),
                    value.to_string(),
                ]
            })
            .collect();
        table::print(&["ALERT", "SEVERITY", "LABELS", "VALUE"], &table_rows);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
