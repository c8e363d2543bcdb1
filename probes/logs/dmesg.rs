//! The kernel ring buffer as `dmesg` prints it: raw (`<6>[   12.345678] msg`, what the
//! probe asks for), plain monotonic, `-T` ctime and `-H` human formats.

use crate::output::{LogEntry, ProbeOutput};
use time::PrimitiveDateTime;
use time::macros::format_description;

/// Parses dmesg output. `boot_id` and `btime` (boot time, Unix seconds) come from the
/// probe's own lines; with them, monotonic stamps become wall times and cursors. `now`
/// (the collection time, Unix seconds) gives the year of `-H` dates, which print none.
///
/// ```text
/// <3>[    2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed
/// [Fri Jul 30 11:26:11 2021] blk_update_request: critical target error, dev sda
/// [Feb 7 03:34] tsc: Fast TSC calibration failed
/// [  +2.127036] sd 3:0:0:0: [sdb] Asking for cache data failed
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let first_entry = out.logs.len();
    let (mut boot_id, mut btime, mut now) = (None, None, None);
    // `-H`: the time of the line before, which a `[  +s.uuuuuu]` offset counts from.
    let mut human_ms: Option<i64> = None;
    // `-H` lines that could not be dated: how many, and the first one's line.
    let (mut undated, mut first_undated) = (0usize, None);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if let Some(id) = line.strip_prefix("boot_id=") {
            boot_id = Some(id.trim().to_string());
            continue;
        }
        if let Some(t) = line.strip_prefix("btime=") {
            btime = t.trim().parse::<i64>().ok();
            continue;
        }
        if let Some(t) = line.strip_prefix("now=") {
            now = t.trim().parse::<i64>().ok();
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
        // (time, cursor, whether the stamp is `-H`'s)
        let (ts_ms, cursor, human) = if let Some(offset) = stamp.strip_prefix('+') {
            // `-H`: seconds since the line before (at most 60: a new minute prints a date).
            human_ms = match (human_ms, seconds_ms(offset)) {
                (Some(before), Some(delta)) => before.checked_add(delta),
                _ => None,
            };
            (human_ms, None, true)
        } else if let Some(seconds) = seconds_ms(stamp) {
            let ts = btime.and_then(|b| b.checked_mul(1000)?.checked_add(seconds));
            (
                ts,
                boot_id.as_ref().map(|id| format!("{id}:{stamp}")),
                false,
            )
        } else if let Some(at) = ctime(stamp) {
            (Some(at), None, false)
        } else if let Some(at) = human_date(stamp, now) {
            human_ms = at;
            (at, None, true)
        } else {
            out.misread("dmesg", n + 1, format!("unknown time stamp `[{stamp}]`"));
            (None, None, false)
        };
        if human && ts_ms.is_none() {
            undated += 1;
            first_undated.get_or_insert(n + 1);
        }
        push(out, priority, ts_ms, message, cursor);
    }
    // Labelled once every record is whole (NVRM's "fallen off the bus" takes three
    // lines), each with the record before it: one pass, however long a record grows.
    for i in first_entry..out.logs.len() {
        let (before, rest) = out.logs.split_at_mut(i);
        let previous = before
            .last()
            .filter(|l| i > first_entry && l.source == "dmesg")
            .map(|l| l.message.as_str());
        super::label_kernel_event(previous, &mut rest[0]);
    }
    if let Some(first) = first_undated {
        let why = if now.is_none() {
            "its dates print no year and no collection time was given"
        } else {
            "their offsets come before any date line"
        };
        out.misread(
            "dmesg",
            first,
            format!(
                "this and {} more `dmesg -H` lines have no time: {why}",
                undated - 1
            ),
        );
    }
}

/// `2.127036` or `+0.000050` without its sign: milliseconds, none for anything else
/// (or beyond a century of uptime).
fn seconds_ms(text: &str) -> Option<i64> {
    let seconds: f64 = text.trim().parse().ok()?;
    (seconds.is_finite() && (0.0..=3.2e9).contains(&seconds)).then_some((seconds * 1000.0) as i64)
}

/// `-H` date lines: `Feb 7 03:34`, `Feb14 03:36`, `Feb  7 03:34` (util-linux prints
/// `%b%e %H:%M`, so one-digit days get a space and two-digit ones none). No year: the
/// collection year, or the year before when that date would be after the collection
/// (a December line read in January). `Some(None)`: a date without a year to give it.
fn human_date(stamp: &str, now: Option<i64>) -> Option<Option<i64>> {
    let month_len = stamp.find(|c: char| !c.is_ascii_alphabetic())?;
    let (month, rest) = stamp.split_at(month_len);
    let mut fields = rest.split_whitespace();
    let (day, clock) = (fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let month: time::Month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month))
        .and_then(|i| time::Month::try_from(i as u8 + 1).ok())?;
    let day: u8 = day.parse().ok()?;
    let (hour, minute) = clock.split_once(':')?;
    let time = time::Time::from_hms(hour.parse().ok()?, minute.parse().ok()?, 0).ok()?;
    let Some(now) = now else {
        return Some(None);
    };
    let Ok(now_at) = time::OffsetDateTime::from_unix_timestamp(now) else {
        return Some(None); // a collection time beyond the calendar: no year to give
    };
    let at = |year: i32| {
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(|date| date.with_time(time).assume_utc())
    };
    // Ahead of the collection by more than a day (zones differ by less): last year's.
    let this_year = at(now_at.year());
    let dated = match this_year {
        Some(t) if t.unix_timestamp() <= now.saturating_add(86_400) => Some(t),
        _ => at(now_at.year() - 1),
    };
    Some(dated.map(|t| t.unix_timestamp().saturating_mul(1000)))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

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
        unit: unit_of(message),
        message: message.to_string(),
        cursor,
        labels: Default::default(),
    });
}

/// What a kernel message concerns: the block device of a SCSI line (`sd 2:0:0:0: [sdb]
/// ...` → `sdb`), else its `driver H:C:T:L` (`sd 2:0:0:0`, `scsi 3:0:0:0`, `ses
/// 0:0:1:0`), else its subsystem (`eth0: link up` → `eth0`).
fn unit_of(message: &str) -> Option<String> {
    let (head, rest) = message.split_once(": ")?;
    if let Some((driver, address)) = head.split_once(' ')
        && !driver.is_empty()
        && driver
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && is_hctl(address)
    {
        if let Some(device) = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(device, _)| device)
            .filter(|d| !d.is_empty() && d.len() <= 32 && !d.contains(' '))
        {
            return Some(device.to_string());
        }
        return Some(head.to_string());
    }
    Some(head)
        .filter(|s| s.len() <= 40 && !s.contains(' '))
        .map(str::to_string)
}

/// `2:0:0:0`: host, channel, target and LUN, all numbers.
fn is_hctl(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.chars().all(|c| c.is_ascii_digit()))
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
