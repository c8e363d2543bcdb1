//! Query parameters of the API, checked up front: a bad one is a 400 naming it.

use crate::WebError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Earliest and latest time a parameter may name: 1970 to the end of year 9999. Every
/// time is checked against these before any arithmetic, so spans and step counts
/// computed from two of them cannot overflow.
pub const MIN_TIME_MS: i64 = 0;
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Longest duration a parameter may name (step, window, `-…` before now): 400 days.
pub const MAX_DURATION_MS: i64 = 400 * 86_400_000;
/// Most points a query may return per series; checked before any work is done.
pub const MAX_POINTS: i64 = dcmon_store::range::MAX_POINTS;

fn in_time_range(name: &str, value: &str, ms: Option<i64>) -> Result<i64, WebError> {
    ms.filter(|ms| (MIN_TIME_MS..=MAX_TIME_MS).contains(ms))
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "{name}=`{}` is out of range: times run from 1970 to 9999",
                shown(value)
            ))
        })
}

/// A parameter's value as quoted back in an error: at most 64 characters, so a huge
/// value is not echoed whole.
pub fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// A humantime duration in whole ms, between 1 ms and `MAX_DURATION_MS`.
fn parse_ms(name: &str, value: &str) -> Result<i64, WebError> {
    let d = humantime::parse_duration(value)
        .map_err(|e| WebError::BadRequest(format!("{name}=`{}`: {e}", shown(value))))?;
    match i64::try_from(d.as_millis()) {
        Ok(0) => Err(WebError::BadRequest(format!(
            "{name}=`{}` is shorter than 1ms",
            shown(value)
        ))),
        Ok(ms) if ms <= MAX_DURATION_MS => Ok(ms),
        _ => Err(WebError::BadRequest(format!(
            "{name}=`{}` is longer than 400 days",
            shown(value)
        ))),
    }
}

/// `1700000000` (Unix seconds), `now`, or `-6h` (before now). Returns ms.
pub fn time(
    name: &str,
    value: Option<&str>,
    default_ms: i64,
    now_ms: i64,
) -> Result<i64, WebError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(default_ms);
    };
    if value == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = value.strip_prefix('-') {
        let ms = parse_ms(name, ago).map_err(|_| {
            WebError::BadRequest(format!(
                "{name}=`{}` is not a time: use Unix seconds, `now` or `-6h` (at most 400 days back)",
                shown(value)
            ))
        })?;
        return in_time_range(name, value, now_ms.checked_sub(ms));
    }
    let seconds = value.parse::<i64>().map_err(|_| {
        WebError::BadRequest(format!(
            "{name}=`{}` is not a time: use Unix seconds, `now` or `-6h`",
            shown(value)
        ))
    })?;
    in_time_range(name, value, seconds.checked_mul(1000))
}

/// `30s`, `5m`: a duration parameter, in ms (1 ms to 400 days).
pub fn duration(name: &str, value: Option<&str>, default: Duration) -> Result<i64, WebError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => parse_ms(name, v),
        None => Ok(i64::try_from(default.as_millis())
            .unwrap_or(MAX_DURATION_MS)
            .clamp(1, MAX_DURATION_MS)),
    }
}

/// `cpu=0,mode=user` → labels every series must carry.
pub fn labels(value: Option<&str>) -> Result<BTreeMap<String, String>, WebError> {
    let mut out = BTreeMap::new();
    for pair in value.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .ok_or_else(|| {
                WebError::BadRequest(format!(
                    "labels: `{pair}` is not `name=value` (write labels=cpu=0,mode=user)"
                ))
            })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A range that runs forward and yields at most `MAX_POINTS` steps. `from` and `to`
/// come from `time`/`page_time` (bounded), so their difference cannot overflow.
pub fn range(from_ms: i64, to_ms: i64, step_ms: i64) -> Result<(), WebError> {
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("from must be before to".into()));
    }
    let steps = to_ms
        .checked_sub(from_ms)
        .and_then(|span| span.checked_div(step_ms.max(1)))
        .unwrap_or(i64::MAX);
    if steps > MAX_POINTS {
        return Err(WebError::BadRequest(format!(
            "{steps} steps is too many: raise step (at most {MAX_POINTS} points a series)"
        )));
    }
    Ok(())
}

/// `2026-11-22T14:05` (what a browser's datetime-local field sends; read as UTC), or
/// anything `time` takes. Returns ms.
pub fn page_time(
    name: &str,
    value: Option<&str>,
    default_ms: i64,
    now_ms: i64,
) -> Result<i64, WebError> {
    const LOCAL: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    const LOCAL_SECONDS: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Some(v) = value
        && v.contains('T')
    {
        let t = time::PrimitiveDateTime::parse(v, LOCAL)
            .or_else(|_| time::PrimitiveDateTime::parse(v, LOCAL_SECONDS))
            .map_err(|e| {
                WebError::BadRequest(format!(
                    "{name}=`{}` is not a time like 2026-11-22T14:05 (UTC): {e}",
                    shown(v)
                ))
            })?;
        let ms = i64::try_from(t.assume_utc().unix_timestamp_nanos() / 1_000_000).ok();
        return in_time_range(name, v, ms);
    }
    time(name, value, default_ms, now_ms)
}

/// ms → `2026-11-22T14:05`, the value a datetime-local field shows.
pub fn datetime_local(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).map_or_else(
        |_| String::new(),
        |t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_times_read_browser_fields_as_utc() {
        let now = 1_800_000_000_000;
        let t = super::page_time("from", Some("2026-11-22T14:05"), 0, now).unwrap();
        assert_eq!(t, 1_795_356_300_000);
        assert_eq!(super::datetime_local(t), "2026-11-22T14:05");
        assert_eq!(
            super::page_time("from", Some("-1h"), 0, now).unwrap(),
            now - 3_600_000
        );
        let e = super::page_time("from", Some("2026-13-22T14:05"), 0, now).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a time like 2026-11-22T14:05"),
            "{e}"
        );
    }
}
