//! `dcmon db`: the database's figures, an online backup, an integrity check.

use crate::args::DbCommand;
use crate::table;
use anyhow::{Context, Result, bail};
use dcmon_store::Store;
use std::path::Path;
use std::process::ExitCode;

pub fn db(command: DbCommand) -> Result<ExitCode> {
    match command {
        DbCommand::Stats { db, json } => stats(&open(&db)?, json),
        DbCommand::Backup { db, out } => {
            open(&db)?
                .backup_to(&out)
                .with_context(|| format!("backing up {} to {}", db.display(), out.display()))?;
            println!("{} copied to {}", db.display(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Check { db } => {
            if !db.exists() {
                bail!("database {} does not exist", db.display());
            }
            // As the file is: a damaged database is what this command is for.
            let problems = Store::check_file(&db)?;
            if problems == ["ok"] {
                println!("{}: ok", db.display());
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                println!("{}: {p}", db.display());
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// An existing database (never a new empty one made by a typo).
fn open(db: &Path) -> Result<Store> {
    if !db.exists() {
        bail!(
            "database {} does not exist: run `dcmon poll --db {0}` first",
            db.display()
        );
    }
    Store::open(db).with_context(|| format!("opening {}", db.display()))
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

fn stats(store: &Store, json: bool) -> Result<ExitCode> {
    let s = store.db_stats()?;
    if json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = vec![
        vec!["series".into(), s.series.to_string()],
        vec!["samples".into(), s.samples.to_string()],
        vec!["chunks".into(), s.chunks.to_string()],
        vec!["bytes".into(), s.bytes.to_string()],
        vec![
            "bytes per sample".into(),
            s.bytes_per_sample
                .map_or_else(|| "-".into(), |b| format!("{b:.2}")),
        ],
        vec!["oldest sample".into(), time(s.oldest)],
        vec!["newest sample".into(), time(s.newest)],
        vec!["probe runs".into(), s.probe_runs.to_string()],
        vec!["log lines".into(), s.log_lines.to_string()],
    ];
    table::print(&["FIGURE", "VALUE"], &rows);
    let total = s.tables.iter().map(|(_, b)| *b).sum::<i64>().max(1);
    let tables: Vec<Vec<String>> = s
        .tables
        .iter()
        .map(|(name, bytes)| {
            vec![
                name.clone(),
                bytes.to_string(),
                format!("{:.1}%", 100.0 * *bytes as f64 / total as f64),
            ]
        })
        .collect();
    println!();
    table::print(&["TABLE", "BYTES", "SHARE"], &tables);
    Ok(ExitCode::SUCCESS)
}
