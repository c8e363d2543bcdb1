//! Prometheus text exposition format (version 0.0.4), the lines a custom script prints:
//! `# HELP`, `# TYPE`, and `name{label="value",...} value [timestamp]`.
//!
//! Written here rather than taken from a crate: the maintained parsers live inside the
//! Prometheus client crates without line-numbered errors, and every malformed line must
//! be reported with its number while the good lines still count.

use crate::output::{Kind, Labels, ParseError, ProbeOutput};
use std::collections::HashMap;

/// Parses exposition text; every sample gets the `extra` labels too (the script's path).
///
/// ```text
/// # HELP raid_disks_failed Failed member disks per array.
/// # TYPE raid_disks_failed gauge
/// raid_disks_failed{array="md0"} 0
/// ```
pub fn parse(text: &str, section: &str, extra: &[(&str, &str)], out: &mut ProbeOutput) {
    let mut types: HashMap<String, Kind> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                let kind = match kind {
                    "counter" => Kind::Counter,
                    _ => Kind::Gauge,
                };
                types.insert(name.to_string(), kind);
            }
            continue;
        }
        match sample(line) {
            Ok((name, mut labels, value)) => {
                labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                // Histogram and summary parts that only grow are counters.
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_count")
                    .trim_end_matches("_sum");
                let kind = types
                    .get(name.as_str())
                    .or(types.get(base))
                    .copied()
                    .unwrap_or(Kind::Gauge);
                let kind = if name != base && types.contains_key(base) {
                    Kind::Counter
                } else {
                    kind
                };
                let unit = unit_of(&name);
                let labels = Labels::new(labels);
                match kind {
                    Kind::Counter => out.counter(&name, labels, value, unit),
                    Kind::Gauge => out.gauge(&name, labels, value, unit),
                }
            }
            Err(reason) => out.warnings.push(ParseError::Malformed {
                section: section.to_string(),
                line: n + 1,
                reason,
            }),
        }
    }
}

type LabelPairs = Vec<(String, String)>;
type Parsed = (String, LabelPairs, f64);

fn sample(line: &str) -> Result<Parsed, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!(
            "`{name}` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        ));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = label_set(after)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("`{v}` is not a number"))?,
    };
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!(
            "timestamp `{ts}` is not an integer of milliseconds"
        ));
    }
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected `{extra}` after the value"));
    }
    Ok((name.to_string(), labels, value))
}

/// `a="1",b="x\"y"}` → pairs and what follows the `}`.
fn label_set(mut text: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let Some((key, rest)) = text.split_once('=') else {
            return Err(if text.contains('}') {
                "label without `=`".to_string()
            } else {
                "label set is not closed with `}`".to_string()
            });
        };
        let key = key.trim();
        if !valid_name(key) || key.contains(':') {
            return Err(format!("`{key}` is not a label name"));
        }
        let rest = rest
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("value of label `{key}` is not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label `{key}` ends inside an escape")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("value of label `{key}` is not closed")),
            }
        };
        labels.push((key.to_string(), value));
        text = rest[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The unit a name's suffix states (Prometheus naming conventions).
fn unit_of(name: &str) -> &'static str {
    let base = name.trim_end_matches("_total");
    for (suffix, unit) in [
        ("_bytes", "bytes"),
        ("_seconds", "seconds"),
        ("_celsius", "celsius"),
        ("_watts", "watts"),
        ("_volts", "volts"),
        ("_amperes", "amperes"),
        ("_rpm", "rpm"),
        ("_percent", "percent"),
        ("_ratio", "ratio"),
        ("_hertz", "hertz"),
    ] {
        if base.ends_with(suffix) {
            return unit;
        }
    }
    ""
}
