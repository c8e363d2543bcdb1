//! One sensor reading, whichever ipmitool command printed it, and how it becomes samples.

use crate::output::{Labels, ParseError, ProbeOutput};
use std::collections::BTreeSet;

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
    /// Feet, discrete states and the rest: status only, no series.
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
    let first = text.split(',').next()?.trim();
    let (number, rest) = first.split_once(' ').unwrap_or((first, ""));
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
    // `sdr -v` puts the tolerance between number and unit.
    let rest = match rest.trim_start().strip_prefix("(+/-") {
        Some(after) => after.split_once(')').map_or("", |(_, u)| u),
        None => rest,
    };
    Some(unit_of(value, rest))
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

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor: String,
    /// `7.1`: entity id and instance, where the format gives it.
    pub entity: Option<String>,
    pub value: Option<(f64, Unit)>,
    pub status: Option<Status>,
}

/// Turns readings into samples: the value series for its unit and `ipmi_sensor_status`
/// (0 ok, 1 nc, 2 cr, 3 nr, 4 no reading). A second sensor with the same name and entity
/// would make an ambiguous series: it is reported and skipped.
pub fn push_readings(section: &str, readings: Vec<Reading>, out: &mut ProbeOutput) {
    let mut seen = BTreeSet::new();
    for (i, r) in readings.into_iter().enumerate() {
        if !seen.insert((r.sensor.clone(), r.entity.clone())) {
            out.warnings.push(ParseError::Malformed {
                section: section.to_string(),
                line: i + 1,
                reason: format!(
                    "sensor `{}` appears twice; the first reading is kept",
                    r.sensor
                ),
            });
            continue;
        }
        let labels = || match &r.entity {
            Some(e) => Labels::new([("sensor", r.sensor.as_str()), ("entity", e.as_str())]),
            None => Labels::new([("sensor", r.sensor.as_str())]),
        };
        if let Some((value, unit)) = r.value
            && let Some((name, unit_name)) = unit.series()
        {
            out.gauge(name, labels(), value, unit_name);
        }
        if let Some(status) = r.status {
            out.gauge("ipmi_sensor_status", labels(), status as i32 as f64, "");
        }
    }
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
