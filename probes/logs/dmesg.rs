//! The kernel ring buffer as `dmesg` prints it: raw (`<6>[   12.345678] msg`, what the
//! probe asks for), plain monotonic, `-T` ctime and `-H` human formats.

use crate::output::{LogEntry, ProbeOutput};
use time::PrimitiveDateTime;
use time::macros::format_description;

/// Parses dmesg output. `boot_id` and `btime` (boot time, Unix seconds) come from the
/// probe's own lines; with them, monotonic stamps become wall times and cursors.
///
/// ```text
/// <3>[    2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed
/// [Fri Jul 30 11:26:11 2021] blk_update_request: critical target error, dev sda
/// [Feb 7 03:34] tsc: Fast TSC calibration failed
/// [  +2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let (mut boot_id, mut btime) = (None, None);
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(id) = line.strip_prefix("boot_id=") {
            boot_id = Some(id.trim().to_string());
            continue;
        }
        if let Some(t) = line.strip_prefix("btime=") {
            btime = t.trim().parse::<i64>().ok();
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (priority, rest) = raw_priority(line);
        let Some(stamp_end) = rest
            .trim_start()
            .starts_with('[')
            .then(|| rest.find(']'))
            .flatten()
        else {
            // A line without a stamp continues the previous message.
            match out.logs.last_mut() {
                Some(prev) if prev.source == "dmesg" => {
                    prev.message.push('\n');
                    prev.message.push_str(line.trim());
                }
                _ => push(out, priority, None, line.trim(), None),
            }
            continue;
        };
        let stamp = rest[rest.find('[').unwrap_or(0) + 1..stamp_end].trim();
        let message = rest[stamp_end + 1..].trim();
        let (ts_ms, cursor) = match stamp.parse::<f64>() {
            Ok(seconds) if seconds.is_finite() && !stamp.starts_with('+') => {
                let ts = btime.map(|b| b * 1000 + (seconds * 1000.0) as i64);
                (ts, boot_id.as_ref().map(|id| format!("{id}:{stamp}")))
            }
            _ => (ctime(stamp), None),
        };
        push(out, priority, ts_ms, message, cursor);
    }
}

fn push(
    out: &mut ProbeOutput,
    priority: u8,
    ts_ms: Option<i64>,
    message: &str,
    cursor: Option<String>,
) {
    out.logs.push(LogEntry {
        source: "dmesg".into(),
        ts_ms,
        priority,
        unit: message
            .split_once(": ")
            .map(|(subsystem, _)| subsystem)
            .filter(|s| s.len() <= 40 && !s.contains(' '))
            .map(str::to_string),
        message: message.to_string(),
        cursor,
    });
}

/// `<6>` → level 6 (facility bits dropped); lines without it are info.
fn raw_priority(line: &str) -> (u8, &str) {
    if let Some(rest) = line.strip_prefix('<')
        && let Some((n, after)) = rest.split_once('>')
        && let Ok(code) = n.parse::<u32>()
    {
        return ((code & 7) as u8, after);
    }
    (6, line)
}

/// `Fri Jul 30 11:26:11 2021` (dmesg -T). Formats without a year (`Feb 7 03:34`) and
/// relative ones (`+2.127036`) give no time: the collection time stands in.
fn ctime(stamp: &str) -> Option<i64> {
    let squeezed = stamp.split_whitespace().collect::<Vec<_>>().join(" ");
    let format = format_description!(
        "[weekday repr:short] [month repr:short] [day padding:none] [hour]:[minute]:[second] [year]"
    );
    let at = PrimitiveDateTime::parse(&squeezed, &format).ok()?;
    Some((at.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}
