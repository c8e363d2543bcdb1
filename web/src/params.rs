//! Query parameters of the API, checked up front: a bad one is a 400 naming it.

use crate::WebError;
use std::collections::BTreeMap;
use std::time::Duration;

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
        let d = humantime::parse_duration(ago).map_err(|e| {
            WebError::BadRequest(format!(
                "{name}=`{value}`: {e}; use Unix seconds, `now` or `-6h`"
            ))
        })?;
        return Ok(now_ms - d.as_millis() as i64);
    }
    value
        .parse::<i64>()
        .map(|s| s.saturating_mul(1000))
        .map_err(|_| {
            WebError::BadRequest(format!(
                "{name}=`{value}` is not a time: use Unix seconds, `now` or `-6h`"
            ))
        })
}

/// `30s`, `5m`: a duration parameter, in ms.
pub fn duration(name: &str, value: Option<&str>, default: Duration) -> Result<i64, WebError> {
    let d = match value.filter(|v| !v.is_empty()) {
        Some(v) => humantime::parse_duration(v)
            .map_err(|e| WebError::BadRequest(format!("{name}=`{v}`: {e}")))?,
        None => default,
    };
    if d.is_zero() {
        return Err(WebError::BadRequest(format!(
            "{name} must be longer than zero"
        )));
    }
    Ok(d.as_millis() as i64)
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

/// A range that runs forward and is not absurdly long for one request.
pub fn range(from_ms: i64, to_ms: i64, step_ms: i64) -> Result<(), WebError> {
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("from must be before to".into()));
    }
    if (to_ms - from_ms) / step_ms > 11_000 {
        return Err(WebError::BadRequest(format!(
            "{} steps is too many: raise step (at most 11000 points a series)",
            (to_ms - from_ms) / step_ms
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
        return time::PrimitiveDateTime::parse(v, LOCAL)
            .or_else(|_| time::PrimitiveDateTime::parse(v, LOCAL_SECONDS))
            .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| {
                WebError::BadRequest(format!(
                    "{name}=`{v}` is not a time like 2026-11-22T14:05 (UTC): {e}"
                ))
            });
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
