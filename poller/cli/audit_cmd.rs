//! `dcmon audit`: the audit trail, newest first.

use crate::args::AuditArgs;
use crate::table;
use anyhow::{Result, bail};
use std::process::ExitCode;

/// `1h` (ago) or Unix seconds → ms.
fn since_ms(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds.saturating_mul(1000));
    }
    match humantime::parse_duration(text) {
        // `--since 500000000000y`: from the beginning, not a wrapped number.
        Ok(ago) => Ok(dcmon_store::now_ms()
            .saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))),
        Err(e) => bail!("--since `{text}`: {e}; write a duration like 1h (ago) or Unix seconds"),
    }
}

pub fn audit(args: AuditArgs) -> Result<ExitCode> {
    let since = args.since.as_deref().map(since_ms).transpose()?;
    let store = dcmon_store::Store::open(&args.db)?;
    let entries = store.audit(args.host.as_deref(), since, args.limit)?;
    if args.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let when = table::time_of(e.ts);
            vec![
                when,
                e.who.clone(),
                e.host.clone(),
                e.action.clone(),
                e.status.clone(),
                e.exit_code.map_or_else(String::new, |c| c.to_string()),
                e.duration_ms.map_or_else(String::new, |d| format!("{d}ms")),
                e.command.clone(),
            ]
        })
        .collect();
    table::print(
        &[
            "WHEN (UTC)",
            "WHO",
            "HOST",
            "ACTION",
            "STATUS",
            "EXIT",
            "TOOK",
            "COMMAND",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
