//! `LogEntry` resources (a BMC's SEL, event and lifecycle logs under `LogServices`) as
//! log lines of source `redfish`, with one cursor over every log service of the BMC:
//! a JSON object of each service's newest entry key (its numeric `Id`, else `Created`).

use super::{Reader, Resource};
use crate::output::LogEntry;
use std::collections::BTreeMap;

/// The log source of every Redfish log line.
pub const SOURCE: &str = "redfish";

/// A `LogEntry`: its time, severity, message, and its service and key as cursor.
pub(super) fn entry(reader: &mut Reader, at: &Resource<'_>) {
    let id = at.str("Id").unwrap_or("");
    let service = service_of(&at.source);
    let created = at.str("Created").and_then(rfc3339_ms);
    if at.str("Created").is_some() && created.is_none() {
        let shown = at.str("Created").unwrap_or("").to_string();
        reader.warn(
            &at.source,
            "Created",
            format!("`{shown}` is not an RFC 3339 time"),
        );
    }
    let priority = match at.str("Severity") {
        Some("Critical") => 2,
        Some("Warning") => 4,
        Some("OK") | None => 6,
        Some(other) => {
            let other = other.to_string();
            reader.warn(
                &at.source,
                "Severity",
                format!("unknown severity `{other}`"),
            );
            6
        }
    };
    let message = at
        .str("Message")
        .filter(|m| !m.trim().is_empty())
        .or(at.name())
        .unwrap_or("(no message)");
    // MessageId says which registry message it is (`Event.1.0.TempWayTooHot`); SEL
    // entries say what crossed (`Upper Critical - going high`).
    let detail: Vec<&str> = [at.str("EntryCode"), at.str("MessageId")]
        .into_iter()
        .flatten()
        .filter(|d| !d.trim().is_empty() && !message.contains(*d))
        .collect();
    let message = if detail.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", detail.join(", "))
    };
    let key = id
        .parse::<u64>()
        .ok()
        .or(created.and_then(|c| u64::try_from(c).ok()));
    reader.out.logs.push(LogEntry {
        source: SOURCE.to_string(),
        ts_ms: created,
        priority,
        unit: at
            .str("SensorType")
            .map(str::to_string)
            .or(Some(service.clone())),
        message,
        cursor: key.map(|k| format!("{k} {service}")),
        labels: Default::default(),
    });
}

/// The log service of an entry or of its entries collection (the cursor's key):
/// `/redfish/v1/Systems/1/LogServices/Log1/Entries/7` and `.../Log1/Entries/` →
/// `/redfish/v1/Systems/1/LogServices/Log1`.
pub fn service_of(entry: &str) -> String {
    let path = entry.split('#').next().unwrap_or(entry);
    match path.rfind("/Entries") {
        Some(i) => path[..i].to_string(),
        None => path.to_string(),
    }
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The saved cursor: each log service's newest key.
pub fn saved_keys(saved: Option<&str>) -> BTreeMap<String, u64> {
    saved
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// Which entries are new since `saved`, and the cursor after them. Per service: keys
/// above the saved one are new; if no entry reaches the saved key, the log was cleared
/// and everything in it is new. An entry with no key (no numeric id, no time) is new.
pub fn after_cursor(
    entries: Vec<LogEntry>,
    saved: Option<&str>,
) -> (Vec<LogEntry>, Option<String>) {
    let saved_keys = saved_keys(saved);
    let parsed = |e: &LogEntry| -> Option<(u64, String)> {
        let (key, service) = e.cursor.as_deref()?.split_once(' ')?;
        Some((key.parse().ok()?, service.to_string()))
    };
    let mut highest: BTreeMap<String, u64> = BTreeMap::new();
    for (key, service) in entries.iter().filter_map(parsed) {
        let h = highest.entry(service).or_insert(key);
        *h = (*h).max(key);
    }
    let new = entries
        .into_iter()
        .filter(|e| match parsed(e) {
            None => true,
            Some((key, service)) => match (saved_keys.get(&service), highest.get(&service)) {
                (Some(&s), Some(&h)) if h >= s => key > s,
                _ => true, // first seen, or cleared since
            },
        })
        .collect();
    let mut next = saved_keys;
    next.extend(highest);
    let next = (!next.is_empty()).then(|| serde_json::to_string(&next).unwrap_or_default());
    (new, next.or(saved.map(str::to_string)))
}
