//! Log files read by byte offset: `==dcmon== file INODE OFFSET PATH`, then each line
//! from OFFSET on behind a `|` (so no log line can pass for a section marker). Only
//! complete lines are taken; a line still being written is read whole next round. The
//! position after the last complete line is the file's new cursor.

use crate::output::{LogEntry, ProbeOutput};

/// Files whose lines count as the `syslog` source.
pub const SYSLOG_FILES: [&str; 2] = ["/var/log/syslog", "/var/log/messages"];

/// The log source a path is stored under.
pub fn source_of(path: &str) -> String {
    if SYSLOG_FILES.contains(&path) {
        "syslog".to_string()
    } else {
        path.to_string()
    }
}

/// Parses one file section; `header` is `INODE OFFSET PATH`.
///
/// ```text
/// ==dcmon== file 1835093 20480 /var/log/syslog
/// Nov 22 02:00:01 gpu01 CRON[4123]: (root) CMD (command -v debian-sa1 > /dev/null)
/// ```
pub fn parse(header: &str, body: &str, out: &mut ProbeOutput) {
    let mut fields = header.splitn(3, ' ');
    let (Some(inode), Some(offset), Some(path)) = (
        fields.next(),
        fields.next().and_then(|o| o.parse::<u64>().ok()),
        fields.next(),
    ) else {
        return;
    };
    let source = source_of(path);
    // The newline before the next marker is the marker's, not the file's.
    let body = body.strip_suffix('\n').unwrap_or(body);
    let mut position = offset;
    let complete = match body.rfind('\n') {
        Some(end) => &body[..=end],
        None => "",
    };
    for (n, line) in complete.split_inclusive('\n').enumerate() {
        let Some(original) = line.strip_prefix('|') else {
            // Not a line of the file: the script's marker guard is missing.
            if !line.trim().is_empty() {
                out.not_understood(&format!("file {path}"), n + 1, line);
            }
            continue;
        };
        position += original.len() as u64;
        let text = original.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        out.logs.push(LogEntry {
            source: source.clone(),
            ts_ms: None,
            priority: 6,
            unit: syslog_program(text),
            message: text.to_string(),
            cursor: Some(format!("{inode}:{position}")),
            labels: Default::default(),
        });
    }
    out.cursors.insert(source, format!("{inode}:{position}"));
}

/// `Nov 22 02:00:01 gpu01 CRON[4123]: msg` → `CRON`
fn syslog_program(line: &str) -> Option<String> {
    let after_host = line.splitn(5, ' ').filter(|s| !s.is_empty()).nth(4)?;
    let tag = after_host.split(": ").next()?;
    let program = tag.split('[').next()?;
    (!program.is_empty() && program.len() <= 64 && !program.contains(' '))
        .then(|| program.to_string())
}
