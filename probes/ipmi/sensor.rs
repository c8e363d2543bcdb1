//! `ipmitool sensor`: name | value | unit | status | lnr | lcr | lnc | unc | ucr | unr.

use super::reading::{Discrete, Reading, Status, is_error_line, push_readings, unit_of};
use super::sdr::tool_errors;
use super::states;
use crate::output::{ParseError, ProbeOutput};

/// Parses `ipmitool sensor` output into sensor samples; discrete rows give their state
/// bits (and named states where the sensor's name tells its type).
///
/// ```text
/// CPU Temp         | 52.000     | degrees C  | ok    | 0.000     | 0.000     | 0.000     | 96.000    | 101.000   | 101.000
/// DIMMA2 Temp      | na         |            | na    | na        | na        | na        | na        | na        | na
/// PS1 Status       | 0x1        | discrete   | 0x0300| na        | na        | na        | na        | na        | na
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
        let mut reading = Reading {
            sensor: f[0].to_string(),
            unit_text: f[2].to_string(),
            status: Status::parse(f[3]),
            ..Reading::default()
        };
        if f[2] == "discrete" {
            // `| 0x0        | discrete   | 0x0180|`: the value column is the raw reading
            // byte, the status column the asserted state bits.
            reading.discrete = states::state_bits(f[3]).map(|bits| Discrete {
                bits: Some(bits),
                ..Discrete::default()
            });
            if reading.discrete.is_none() && reading.status.is_none() {
                out.misread(
                    "sensor",
                    n + 1,
                    format!("discrete sensor `{}`: unreadable state `{}`", f[0], f[3]),
                );
            }
        } else {
            match f[1].parse::<f64>() {
                Ok(v) if v.is_finite() => reading.value = Some(unit_of(v, f[2])),
                _ if f[1] == "na" || f[1].is_empty() => {}
                _ => out.misread(
                    "sensor",
                    n + 1,
                    format!("sensor `{}`: unreadable value `{}`", f[0], f[1]),
                ),
            }
        }
        readings.push(reading);
    }
    if readings.is_empty() {
        tool_errors(text, out);
    }
    push_readings(readings, out);
}
