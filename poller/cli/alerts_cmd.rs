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
        Some(AlertsCommand::Silence {
            matchers,
            duration,
            comment,
            db,
        }) => silence(&db, &matchers, &duration, &comment),
        Some(AlertsCommand::Unsilence { id, db }) => unsilence(&db, id),
        Some(AlertsCommand::Silences { db, json }) => silences(&db, json),
    }
}

fn now_ms() -> i64 {
    dcmon_poller::host_round::now_ms()
}

fn silence(
    db: &std::path::Path,
    matchers: &str,
    duration: &str,
    comment: &str,
) -> Result<ExitCode> {
    let matchers = dcmon_alerts::silence::parse(matchers)
        .map_err(|e| anyhow::anyhow!("dcmon alerts silence: {e}"))?;
    let length = humantime::parse_duration(duration)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| (1000..=dcmon_alerts::silence::MAX_SILENCE_MS).contains(ms))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "dcmon alerts silence: --for `{duration}` is not a duration from 1s to 366d (`2h`, `30m`)"
            )
        })?;
    if comment.trim().is_empty() {
        anyhow::bail!(
            "dcmon alerts silence: --comment must say why (it is shown with the silence)"
        );
    }
    let mut store = dcmon_store::Store::open(db)?;
    let now = now_ms();
    let id = store.add_silence(
        &matchers,
        now,
        now + length,
        comment.trim(),
        &crate::exec_cmd::who(),
    )?;
    println!(
        "silence {id}: {} until {}",
        dcmon_store::silences::matchers_text(&matchers),
        table::time_of(now + length)
    );
    Ok(ExitCode::SUCCESS)
}

fn unsilence(db: &std::path::Path, id: i64) -> Result<ExitCode> {
    let mut store = dcmon_store::Store::open(db)?;
    match store.expire_silence(id, now_ms(), &crate::exec_cmd::who())? {
        Some(true) => {
            println!("silence {id} lifted");
            Ok(ExitCode::SUCCESS)
        }
        Some(false) => {
            eprintln!("dcmon alerts unsilence: silence {id} had already ended");
            Ok(ExitCode::from(1))
        }
        None => {
            eprintln!("dcmon alerts unsilence: no silence {id} (see `dcmon alerts silences`)");
            Ok(ExitCode::from(1))
        }
    }
}

fn silences(db: &std::path::Path, json: bool) -> Result<ExitCode> {
    let store = dcmon_store::Store::open(db)?;
    let now = now_ms();
    let list = store.silences(now - 24 * 3600 * 1000)?;
    if json {
        for s in &list {
            let mut line = serde_json::to_value(s)?;
            line["state"] = if s.ends_at > now { "active" } else { "expired" }.into();
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                if s.ends_at > now { "active" } else { "expired" }.to_string(),
                dcmon_store::silences::matchers_text(&s.matchers),
                table::time_of(s.ends_at),
                s.created_by.clone(),
                s.comment.clone(),
            ]
        })
        .collect();
    table::print(&["ID", "STATE", "MATCHERS", "ENDS", "BY", "COMMENT"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// Pending and firing alerts as `dcmon serve` last stored them.
fn list(db: &std::path::Path, json: bool) -> Result<ExitCode> {
    let store = dcmon_store::Store::open(db)?;
    let now = now_ms();
    let silences = dcmon_alerts::silence::Silences::active(store.silences(now)?, now);
    let alerts: Vec<_> = store
        .alerts()?
        .into_iter()
        .filter(|a| a.state != "resolved")
        .map(|mut a| {
            if a.state == "firing" && silences.silencing(&a.labels).is_some() {
                a.state = "silenced".into();
            }
            a
        })
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
    let now = dcmon_store::now_ms();
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
