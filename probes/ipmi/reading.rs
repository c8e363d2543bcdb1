//! One sensor reading, whichever ipmitool command printed it, and how it becomes samples.

use super::states;
use crate::output::{Labels, ProbeOutput};
use std::collections::BTreeMap;

/// The BMC's threshold state of a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    NonCritical = 1,
    Critical = 2,
    NonRecoverable = 3,
    /// No reading: sensor absent, disabled or not readable.
    NoReading = 4,
}

impl Status {
    /// `ok`, `nc`, `cr`, `nr`, `ns`/`na` (list formats) or `Upper Critical` (`sdr -v`).
    /// Discrete sensors print hex state bits (`0x0180`): no threshold status.
    pub fn parse(text: &str) -> Option<Status> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "ok" => Some(Status::Ok),
            "nc" => Some(Status::NonCritical),
            "cr" => Some(Status::Critical),
            "nr" => Some(Status::NonRecoverable),
            "ns" | "na" => Some(Status::NoReading),
            _ if t.contains("non-critical") => Some(Status::NonCritical),
            _ if t.contains("non-recoverable") => Some(Status::NonRecoverable),
            _ if t.contains("critical") => Some(Status::Critical),
            _ => None,
        }
    }
}

/// A reading's unit, as far as dcmon charts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Celsius,
    Rpm,
    Volts,
    Amps,
    Watts,
    Percent,
    /// Feet, `unspecified` and the rest: `ipmi_reading{unit}` (or a percent series for a
    /// name ending in `%`).
    Other,
}

impl Unit {
    fn series(self) -> Option<(&'static str, &'static str)> {
        match self {
            Unit::Celsius => Some(("ipmi_temperature_celsius", "celsius")),
            Unit::Rpm => Some(("ipmi_fan_speed_rpm", "rpm")),
            Unit::Volts => Some(("ipmi_voltage_volts", "volts")),
            Unit::Amps => Some(("ipmi_current_amperes", "amperes")),
            Unit::Watts => Some(("ipmi_power_watts", "watts")),
            Unit::Percent => Some(("ipmi_percent", "percent")),
            Unit::Other => None,
        }
    }
}

/// Reads a value and unit: `45 degrees C`, `25 (+/- 0) degrees C`, `110 Watts, Presence
/// detected`, `7.20 Amps`. Degrees Fahrenheit become Celsius. `None` for no number.
pub fn value_and_unit(text: &str) -> Option<(f64, Unit)> {
    value_unit_text(text).map(|(value, unit, _)| (value, unit))
}

/// As `value_and_unit`, with the unit as printed (`unspecified`, `feet`).
pub fn value_unit_text(text: &str) -> Option<(f64, Unit, String)> {
    let first = text.split(',').next()?.trim();
    let (number, rest) = first.split_once(' ').unwrap_or((first, ""));
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
    // `sdr -v` puts the tolerance between number and unit.
    let rest = match rest.trim_start().strip_prefix("(+/-") {
        Some(after) => after.split_once(')').map_or("", |(_, u)| u),
        None => rest,
    };
    let (value, unit) = unit_of(value, rest);
    Some((value, unit, rest.trim().to_string()))
}

/// Whether a reading that gave no value looked like a number (`4x.5 degrees C`, `1e999
/// Watts`): a misread worth a warning. Discrete readings (`0x01`, `0h`, `Presence
/// detected`) and `No Reading` are not numbers.
pub fn looks_numeric(text: &str) -> bool {
    let first = text.split([',', ' ']).next().unwrap_or("").trim();
    let is_hex_byte = first.starts_with("0x")
        || (first.ends_with('h')
            && first[..first.len() - 1]
                .chars()
                .all(|c| c.is_ascii_hexdigit()));
    !first.is_empty()
        && !is_hex_byte
        && first
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
}

/// Maps a unit name (as ipmitool prints it) and converts the value where needed.
pub fn unit_of(value: f64, unit: &str) -> (f64, Unit) {
    match unit.trim().to_ascii_lowercase().as_str() {
        "degrees c" => (value, Unit::Celsius),
        "degrees f" => ((value - 32.0) * 5.0 / 9.0, Unit::Celsius),
        "rpm" => (value, Unit::Rpm),
        "volts" => (value, Unit::Volts),
        "amps" => (value, Unit::Amps),
        "watts" => (value, Unit::Watts),
        "percent" => (value, Unit::Percent),
        _ => (value, Unit::Other),
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    pub sensor: String,
    /// `7.1`: entity id and instance, where the format gives it.
    pub entity: Option<String>,
    pub value: Option<(f64, Unit)>,
    /// The unit as printed, kept for values no named series holds (`unspecified`, `feet`).
    pub unit_text: String,
    pub status: Option<Status>,
    /// A discrete sensor's asserted states, where the format gives them.
    pub discrete: Option<Discrete>,
}

/// A discrete sensor's asserted states, as the format gives them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Discrete {
    /// `ipmitool sensor`: the state bits (see `states::state_bits`).
    pub bits: Option<u16>,
    /// `sdr elist` / `sdr -v`: the asserted states by name.
    pub states: Vec<String>,
    /// The sensor type, where the format prints it (`sdr -v`: `Sensor Type (Discrete):
    /// Power Supply (0x08)`).
    pub type_code: Option<u8>,
}

/// Turns readings into samples: the value series for its unit, `ipmi_sensor_status`
/// (0 ok, 1 nc, 2 cr, 3 nr, 4 no reading) and, for discrete sensors, their states. A
/// name used by a second sensor (same entity, or none printed) keeps both: the later ones
/// are told apart by `instance="2"`, `"3"`, ... in the order the BMC lists them.
pub fn push_readings(readings: Vec<Reading>, out: &mut ProbeOutput) {
    let mut seen: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for r in readings {
        let count = seen
            .entry((r.sensor.clone(), r.entity.clone()))
            .and_modify(|n| *n += 1)
            .or_insert(1);
        let mut labels = match &r.entity {
            Some(e) => Labels::new([("sensor", r.sensor.as_str()), ("entity", e.as_str())]),
            None => Labels::new([("sensor", r.sensor.as_str())]),
        };
        if *count > 1 {
            labels = labels.with("instance", &count.to_string());
        }
        if let Some((value, unit)) = r.value {
            match unit.series() {
                Some((name, unit_name)) => out.gauge(name, labels.clone(), value, unit_name),
                // A current in percent (`PS1 Curr Out %`) prints its unit as `unspecified`.
                None if r.sensor.trim_end().ends_with('%') => {
                    out.gauge("ipmi_percent", labels.clone(), value, "percent")
                }
                None => {
                    let unit_text = r.unit_text.trim().to_ascii_lowercase();
                    let unit_label = if unit_text.is_empty() {
                        "none"
                    } else {
                        unit_text.as_str()
                    };
                    out.gauge(
                        "ipmi_reading",
                        labels.clone().with("unit", unit_label),
                        value,
                        "",
                    )
                }
            }
        }
        // A sensor with no reading (`ns`, `Disabled`) asserts nothing.
        let state_status = r
            .discrete
            .as_ref()
            .filter(|_| r.status != Some(Status::NoReading))
            .and_then(|d| push_states(d, &r.sensor, &labels, out));
        let status = match (r.status, state_status) {
            (Some(Status::NoReading), _) => Some(Status::NoReading as i32 as f64),
            (Some(s), Some(worst)) => Some((s as i32 as f64).max(worst)),
            (Some(s), None) => Some(s as i32 as f64),
            (None, worst) => worst,
        };
        if let Some(status) = status {
            out.gauge("ipmi_sensor_status", labels, status, "");
        }
    }
}

/// A discrete sensor's states as series: `ipmi_discrete_state_mask` (the asserted bits)
/// and `ipmi_discrete_state{state}` 0/1 for every state its type defines, where the type
/// is known. Returns the status its asserted states amount to (from their severity), or
/// none when nothing says what they mean.
fn push_states(
    discrete: &Discrete,
    sensor: &str,
    labels: &Labels,
    out: &mut ProbeOutput,
) -> Option<f64> {
    let (table, bits) = match discrete.bits {
        Some(bits) => (states::table_for_name(sensor), bits),
        None => {
            let names: Vec<&str> = discrete.states.iter().map(String::as_str).collect();
            let table = discrete
                .type_code
                .and_then(states::table_for_code)
                .or_else(|| states::table_for_states(sensor, &names));
            let Some(table) = table else {
                // Named states no table holds all of: their severity still counts.
                return names
                    .iter()
                    .filter_map(|n| states::severity_of(n))
                    .max()
                    .map(|s| s.status());
            };
            let bits = table
                .states
                .iter()
                .enumerate()
                .filter(|(_, (name, _))| names.iter().any(|n| n.trim().eq_ignore_ascii_case(name)))
                .fold(0u16, |acc, (i, _)| acc | (1 << i));
            (Some(table), bits)
        }
    };
    let table = table?;
    out.gauge(
        "ipmi_discrete_state_mask",
        labels.clone(),
        f64::from(bits),
        "",
    );
    let mut worst = states::Severity::Notice;
    for (i, (name, severity)) in table.states.iter().enumerate() {
        if *name == "Reserved" {
            continue;
        }
        let asserted = bits & (1 << i) != 0;
        if asserted {
            worst = worst.max(*severity);
        }
        out.gauge(
            "ipmi_discrete_state",
            labels.clone().with("state", name),
            if asserted { 1.0 } else { 0.0 },
            "",
        );
    }
    Some(worst.status())
}

/// The asserted states an `sdr elist` reading names after its value, if any:
/// `110 Watts, Presence detected` → `Presence detected`; `Presence detected, Failure
/// detected` → both. State names holding a comma (`AC out-of-range, but present`) are
/// kept whole. `No Reading` and an empty reading name none.
pub fn named_states(reading: &str) -> Vec<String> {
    let mut parts: Vec<&str> = reading.split(',').map(str::trim).collect();
    if parts.first().is_some_and(|p| value_and_unit(p).is_some()) {
        parts.remove(0);
    }
    let mut states: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let joined = parts.get(i + 1).map(|next| format!("{}, {next}", parts[i]));
        match joined {
            Some(j) if states::severity_of(&j).is_some() => {
                states.push(j);
                i += 2;
            }
            _ => {
                states.push(parts[i].to_string());
                i += 1;
            }
        }
    }
    // `0x00` (`sdr list` of a discrete sensor) is a raw byte, not a state.
    states
        .retain(|s| !s.is_empty() && !s.eq_ignore_ascii_case("no reading") && !s.starts_with("0x"));
    states
}

/// ipmitool's own error lines inside a section (`Unable to send command: ...`,
/// `Could not open device at /dev/ipmi0 ...`).
pub fn is_error_line(line: &str) -> bool {
    let l = line.trim();
    l.starts_with("Unable to ")
        || l.starts_with("Could not open device")
        || l.starts_with("Error")
        || l.starts_with("Get Device ID command failed")
        || l.contains("request failed because")
        || l.starts_with("Invalid ")
}
