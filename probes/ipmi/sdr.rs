//! `ipmitool sdr` in its forms: `elist` (5 columns), `list` (3 columns), `-c` (CSV, 4 or
//! 5 fields) and `-v` (one block per sensor).

use super::reading::{Reading, Status, is_error_line, push_readings, unit_of, value_and_unit};
use crate::output::{ParseError, ProbeOutput};

/// Parses any `ipmitool sdr` output into sensor samples.
///
/// ```text
/// Inlet Temp       | 04h | ok  |  7.1 | 25 degrees C
/// Fan 1A Tach      | 2610 RPM          | ok
/// Sensor ID              : BB P1 VR Temp (0x20)
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let readings = if text.lines().any(|l| l.starts_with("Sensor ID")) {
        verbose(text)
    } else {
        tabular(text, out)
    };
    if readings.is_empty() {
        tool_errors(text, out);
    }
    push_readings("sdr", readings, out);
}

fn tabular(text: &str, out: &mut ProbeOutput) -> Vec<Reading> {
    let mut readings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || is_error_line(line) {
            continue;
        }
        let pipes: Vec<&str> = line.split('|').map(str::trim).collect();
        let reading = match pipes[..] {
            [sensor, _id, status, entity, reading] => elist(sensor, status, Some(entity), reading),
            [sensor, reading, status] => elist(sensor, status, None, reading),
            [_] => match line.split(',').map(str::trim).collect::<Vec<_>>()[..] {
                // `sdr elist -c`: name,value,unit,status
                [sensor, value, unit, status] => Some(Reading {
                    sensor: sensor.to_string(),
                    entity: None,
                    value: value
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(|v| unit_of(v, unit)),
                    status: Status::parse(status),
                }),
                // `sdr type X -c`: name,id,status,entity,reading
                [sensor, _id, status, entity, ref reading @ ..] if !reading.is_empty() => {
                    elist(sensor, status, Some(entity), &reading.join(","))
                }
                _ => None,
            },
            _ => None,
        };
        match reading {
            Some(r) => readings.push(r),
            None => out.warnings.push(ParseError::Malformed {
                section: "sdr".into(),
                line: n + 1,
                reason: format!("not an sdr line: `{}`", line.trim()),
            }),
        }
    }
    readings
}

fn elist(sensor: &str, status: &str, entity: Option<&str>, reading: &str) -> Option<Reading> {
    if sensor.is_empty() {
        return None;
    }
    Some(Reading {
        sensor: sensor.to_string(),
        entity: entity.filter(|e| !e.is_empty()).map(str::to_string),
        value: value_and_unit(reading),
        status: Status::parse(status),
    })
}

/// `sdr -v`: `Key : value` lines, a blank line between sensors.
fn verbose(text: &str) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut current: Option<Reading> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "Sensor ID" => {
                readings.extend(current.take());
                // `BB P1 VR Temp (0x20)`: the name without the sensor number.
                let name = value.rsplit_once(" (0x").map_or(value, |(n, _)| n);
                current = Some(Reading {
                    sensor: name.to_string(),
                    entity: None,
                    value: None,
                    status: None,
                });
            }
            "Entity ID" => {
                if let Some(r) = current.as_mut() {
                    r.entity = value.split_whitespace().next().map(str::to_string);
                }
            }
            "Sensor Reading" => {
                if let Some(r) = current.as_mut() {
                    r.value = value_and_unit(value);
                }
            }
            "Status" => {
                if let Some(r) = current.as_mut() {
                    r.status = Status::parse(value);
                }
            }
            _ => {}
        }
    }
    readings.extend(current);
    readings
}

/// When nothing was read, ipmitool's own error lines say why.
pub fn tool_errors(text: &str, out: &mut ProbeOutput) {
    for line in text.lines().filter(|l| is_error_line(l)) {
        let line = line.trim();
        if line.starts_with("Could not open device") && out.absent.is_none() {
            out.absent = Some(format!("no in-band IPMI device: {line}"));
        } else if !out
            .warnings
            .iter()
            .any(|w| matches!(w, ParseError::ToolFailed { message, .. } if message == line))
        {
            out.warnings.push(ParseError::ToolFailed {
                tool: "ipmitool".into(),
                message: line.to_string(),
            });
        }
    }
}
