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
