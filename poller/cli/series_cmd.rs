//! `dcmon series`: stored series and their latest values, for a shell or a script.

use crate::args::SeriesArgs;
use crate::table;
use anyhow::{Result, bail};
use dcmon_store::{SeriesFilter, Store};
use std::process::ExitCode;

pub fn series(args: SeriesArgs) -> Result<ExitCode> {
    if !args.db.exists() {
        bail!(
            "database {} does not exist: run `dcmon poll --db {0}` first",
            args.db.display()
        );
    }
    let store = Store::open(&args.db)?;
    let filter = SeriesFilter {
        host: args.host,
        name: args.name,
    };
    let series = store.series_latest(&filter)?;
    if args.json {
        for s in &series {
            let line = serde_json::json!({"host": s.host, "name": s.name, "labels": s.labels, "value": s.value, "ts": s.ts});
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = series
        .iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let age = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.ts.max(0) as u64),
            );
            vec![
                s.host.clone(),
                s.name.clone(),
                labels.join(","),
                format_value(s.value, &s.unit),
                age.to_string(),
            ]
        })
        .collect();
    table::print(&["HOST", "SERIES", "LABELS", "VALUE", "TIME"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// Whole numbers without a fraction, others with up to 3 decimals, plus the unit.
fn format_value(v: f64, unit: &str) -> String {
    let number = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    };
    if unit.is_empty() {
        number
    } else {
        format!("{number} {unit}")
    }
}
