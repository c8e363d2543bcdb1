//! `ipmitool sel elist` / `sel list`: the BMC's event log, as log lines (source `sel`).

use crate::output::{LogEntry, ParseError, ProbeOutput};
use time::PrimitiveDateTime;
use time::macros::format_description;

/// ```text
///    9 | 08/17/2019 | 02:31:44 | Power Supply PS1 Status | Failure detected () | Asserted
///    1 | Pre-Init  |0000000001| System Event #0x83 | Timestamp Clock Sync | Asserted
/// ```
/// The record id (hex, as printed) is each entry's cursor. BMC clocks carry no zone:
/// times are read as UTC.
pub fn parse(text: &str, out: &mut ProbeOutput) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line == "SEL has no entries" {
            continue;
        }
        if super::reading::is_error_line(line) {
            super::sdr::tool_errors(line, out);
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        if f.len() < 5 || u32::from_str_radix(f[0], 16).is_err() {
            out.warnings.push(ParseError::Malformed {
                section: "sel".into(),
                line: n + 1,
                reason: format!("not a SEL line: `{line}`"),
            });
            continue;
        }
        let ts_ms = timestamp(f[1], f[2]);
        let sensor = f[3];
        let event = f[4].trim_end_matches("()").trim();
        let state = f.get(5).copied().unwrap_or("");
        let message = match (event.is_empty(), state.is_empty()) {
            (false, false) => format!("{sensor}: {event} ({state})"),
            (false, true) => format!("{sensor}: {event}"),
            (true, false) => format!("{sensor} ({state})"),
            (true, true) => sensor.to_string(),
        };
        out.logs.push(LogEntry {
            source: "sel".into(),
            ts_ms,
            priority: priority(sensor, event, state),
            unit: Some(sensor.to_string()),
            message,
            cursor: Some(f[0].to_string()),
            labels: Default::default(),
        });
    }
}

/// The syslog priority of a SEL event, whichever path read it (`ipmitool sel elist`
/// here, the poller's own RMCP+ reader): an asserted event has the severity its sensor
/// type's table gives it (see
/// `states::event_severity`); a deasserted one is it ending: a notice, except a device
/// no longer present (a PSU or drive pulled), which is a warning.
pub fn priority(sensor: &str, event: &str, state: &str) -> u8 {
    if state.eq_ignore_ascii_case("Deasserted") {
        let lower = event.to_ascii_lowercase();
        return if lower.contains("presence") || lower.contains("present") {
            4
        } else {
            5
        };
    }
    super::states::event_severity(sensor, event).priority()
}

/// `03/12/2019` `13:10:45` (older ipmitool), or `11/20/26` `10:00:00 UTC` (1.8.19,
/// which adds its local zone: the probe script runs it with TZ=UTC). A date that reads
/// as none of these ("Pre-Init", another zone) gives no time: better none than a wrong one.
fn timestamp(date: &str, clock: &str) -> Option<i64> {
    let format = format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    let (clock, zone) = clock.split_once(' ').unwrap_or((clock, "UTC"));
    if !matches!(zone.trim(), "UTC" | "GMT") {
        return None;
    }
    // A two-digit year is this century's: SEL clocks start at 1970, but no BMC printing
    // two digits predates 2000 by the time ipmitool printed them so.
    let date = match date.rsplit_once('/') {
        Some((month_day, year)) if year.len() == 2 => format!("{month_day}/20{year}"),
        _ => date.to_string(),
    };
    let at = PrimitiveDateTime::parse(&format!("{date} {clock}"), &format).ok()?;
    Some((at.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

/// SEL record ids grow until the log is cleared, then start again: entries with an id
/// above the saved one are new, unless no entry reaches the saved id (the SEL was
/// cleared since), in which case all are new. The next cursor is the highest id seen.
pub fn after_cursor(
    entries: Vec<LogEntry>,
    saved: Option<&str>,
) -> (Vec<LogEntry>, Option<String>) {
    let id = |e: &LogEntry| {
        e.cursor
            .as_deref()
            .and_then(|c| u32::from_str_radix(c, 16).ok())
    };
    let highest = entries.iter().filter_map(id).max();
    let next = highest
        .map(|h| format!("{h:x}"))
        .or(saved.map(str::to_string));
    let Some(saved) = saved.and_then(|s| u32::from_str_radix(s, 16).ok()) else {
        return (entries, next);
    };
    if highest.is_some_and(|h| h < saved) {
        return (entries, next); // cleared: everything there is new
    }
    let new = entries
        .into_iter()
        .filter(|e| id(e).is_none_or(|i| i > saved))
        .collect();
    (new, next)
}
