//! `journalctl -o json`: one JSON object per line.

use crate::output::{LogEntry, ParseError, ProbeOutput};
use serde_json::Value;

/// ```text
/// { "__CURSOR" : "s=e991...;i=372a;...", "__REALTIME_TIMESTAMP" : "1534860261221373", "PRIORITY" : "1",
///   "_SYSTEMD_UNIT" : "medusa-GpsLocator.service", "MESSAGE" : "GPS Reference longitude: 7.358143333" }
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    // The kernel line before, for an event told over two records.
    let mut previous_kernel: Option<String> = None;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let entry: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if !line.trim_start().starts_with('{') => {
                // journalctl's own words: "No journal files were found.", permission hints.
                out.warnings.push(ParseError::ToolFailed {
                    tool: "journalctl".into(),
                    message: line.trim().to_string(),
                });
                continue;
            }
            Err(e) => {
                out.warnings.push(ParseError::Malformed {
                    section: "journal".into(),
                    line: n + 1,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let field = |k: &str| entry[k].as_str();
        let ts_ms = field("__REALTIME_TIMESTAMP")
            .and_then(|us| us.parse::<i64>().ok())
            .map(|us| us / 1000);
        let priority = field("PRIORITY")
            .and_then(|p| p.parse::<u8>().ok())
            .filter(|p| *p <= 7)
            .unwrap_or(6);
        let unit = field("_SYSTEMD_UNIT")
            .or(field("SYSLOG_IDENTIFIER"))
            .or(field("_COMM"))
            .map(str::to_string);
        let mut line = LogEntry {
            source: "journal".into(),
            ts_ms,
            priority,
            unit,
            message: message(&entry["MESSAGE"]),
            cursor: field("__CURSOR").map(str::to_string),
            labels: Default::default(),
        };
        // The kernel's own lines (`_TRANSPORT=kernel`) may be NVIDIA driver events or
        // PCIe AER errors.
        if field("_TRANSPORT") == Some("kernel") {
            super::label_kernel_event(previous_kernel.as_deref(), &mut line);
            previous_kernel = Some(line.message.clone());
        }
        out.logs.push(line);
    }
}

/// MESSAGE is a string, or an array of bytes when it is not valid UTF-8.
fn message(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => String::from_utf8_lossy(
            &bytes
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect::<Vec<u8>>(),
        )
        .into_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
