//! `ipmitool sensor`: name | value | unit | status | lnr | lcr | lnc | unc | ucr | unr.

use super::reading::{Reading, Status, is_error_line, push_readings, unit_of};
use super::sdr::tool_errors;
use crate::output::{ParseError, ProbeOutput};

/// Parses `ipmitool sensor` output into sensor samples.
///
/// ```text
/// CPU Temp         | 52.000     | degrees C  | ok    | 0.000     | 0.000     | 0.000     | 96.000    | 101.000   | 101.000
/// DIMMA2 Temp      | na         |            | na    | na        | na        | na        | na        | na        | na
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let mut readings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || is_error_line(line) {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        if f.len() < 4 || f[0].is_empty() {
            out.warnings.push(ParseError::Malformed {
                section: "sensor".into(),
                line: n + 1,
                reason: format!("expected at least 4 `|` columns: `{}`", line.trim()),
            });
            continue;
        }
        let value = match f[1].parse::<f64>() {
            Ok(v) if v.is_finite() && f[2] != "discrete" => Some(unit_of(v, f[2])),
            _ => None,
        };
        readings.push(Reading {
            sensor: f[0].to_string(),
            entity: None,
            value,
            status: Status::parse(f[3]),
        });
    }
    if readings.is_empty() {
        tool_errors(text, out);
    }
    push_readings("sensor", readings, out);
}
