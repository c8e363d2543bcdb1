//! `ipmitool sdr` in its forms: `elist` (5 columns), `list` (3 columns), `-c` (CSV, 4 or
//! 5 fields) and `-v` (one block per sensor).

use super::reading::{
    Discrete, Reading, Status, is_error_line, looks_numeric, named_states, push_readings, unit_of,
    value_unit_text,
};
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
        verbose(text, out)
    } else {
        tabular(text, out)
    };
    if readings.is_empty() {
        tool_errors(text, out);
    }
    push_readings(readings, out);
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
            _ if pipes.len() > 5 => {
                // A reading holding `|` itself: the fifth column onwards.
                let reading = pipes[4..].join("|");
                elist(pipes[0], pipes[2], Some(pipes[3]), &reading)
            }
            [_] => match line.split(',').map(str::trim).collect::<Vec<_>>()[..] {
                // `sdr elist -c`: name,value,unit,status
                [sensor, value, unit, status] if !sensor.is_empty() => Some(Reading {
                    sensor: sensor.to_string(),
                    value: value
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(|v| unit_of(v, unit)),
                    unit_text: unit.to_string(),
                    status: Status::parse(status),
                    ..Reading::default()
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
            Some(r) => {
                if r.value.is_none() && looks_numeric(pipes.last().copied().unwrap_or("")) {
                    out.misread(
                        "sdr",
                        n + 1,
                        format!(
                            "sensor `{}`: unreadable number in `{}`",
                            r.sensor,
                            line.trim()
                        ),
                    );
                }
                readings.push(r)
            }
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
    let value = value_unit_text(reading);
    let states = named_states(reading);
    Some(Reading {
        sensor: sensor.to_string(),
        entity: entity.filter(|e| !e.is_empty()).map(str::to_string),
        value: value.as_ref().map(|(v, u, _)| (*v, *u)),
        unit_text: value.map(|(_, _, text)| text).unwrap_or_default(),
        status: Status::parse(status),
        discrete: (!states.is_empty()).then_some(Discrete {
            states,
            ..Discrete::default()
        }),
    })
}

/// `sdr -v`: `Key : value` lines, a blank line between sensors. A discrete sensor lists
/// its asserted states under `States Asserted`, one `[State]` per line, and its type
/// with its code: `Sensor Type (Discrete): Power Supply (0x08)`.
fn verbose(text: &str, out: &mut ProbeOutput) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut current: Option<Reading> = None;
    let mut in_asserted = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(state) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if in_asserted && let Some(r) = current.as_mut() {
                assert_state(r, state);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            if !trimmed.is_empty() && current.is_some() {
                out.misread(
                    "sdr",
                    n + 1,
                    format!("not a `Key : value` line: `{trimmed}`"),
                );
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        in_asserted = false;
        match key {
            "Sensor ID" => {
                readings.extend(current.take());
                // `BB P1 VR Temp (0x20)`: the name without the sensor number.
                let name = value.rsplit_once(" (0x").map_or(value, |(n, _)| n);
                current = Some(Reading {
                    sensor: name.to_string(),
                    ..Reading::default()
                });
            }
            "Entity ID" => {
                if let Some(r) = current.as_mut() {
                    r.entity = value.split_whitespace().next().map(str::to_string);
                }
            }
            "Sensor Reading" => {
                if let Some(r) = current.as_mut() {
                    let read = value_unit_text(value);
                    if read.is_none() && looks_numeric(value) {
                        out.misread(
                            "sdr",
                            n + 1,
                            format!("sensor `{}`: unreadable number `{value}`", r.sensor),
                        );
                    }
                    r.value = read.as_ref().map(|(v, u, _)| (*v, *u));
                    r.unit_text = read.map(|(_, _, t)| t).unwrap_or_default();
                }
            }
            "Status" => {
                if let Some(r) = current.as_mut() {
                    r.status = Status::parse(value);
                }
            }
            "Sensor Type (Discrete)" => {
                if let Some(r) = current.as_mut() {
                    // `Power Supply (0x08)`
                    let code = value
                        .rsplit_once("(0x")
                        .and_then(|(_, c)| u8::from_str_radix(c.trim_end_matches(')'), 16).ok());
                    r.discrete.get_or_insert_with(Discrete::default).type_code = code;
                }
            }
            "States Asserted" => {
                in_asserted = true;
                // The first line names the type (`Power Supply`); a state may follow it.
                if let Some(state) = value
                    .rsplit_once('[')
                    .and_then(|(_, s)| s.strip_suffix(']'))
                    && let Some(r) = current.as_mut()
                {
                    assert_state(r, state);
                }
            }
            _ => {}
        }
    }
    readings.extend(current);
    readings
}

/// Adds one asserted state (`sdr -v`'s `[Presence detected]`) to a reading.
fn assert_state(r: &mut Reading, state: &str) {
    r.discrete
        .get_or_insert_with(Discrete::default)
        .states
        .push(state.to_string());
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
