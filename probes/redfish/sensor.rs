//! What every Redfish reading shares: its `Status` on the `ipmi_sensor_status` scale,
//! its thresholds (only those the BMC gives: a vendor that omits one reports none,
//! never 0), and the series its unit belongs to. Also the newer schema's `Sensor`.

use super::{Reader, Resource};
use serde_json::Value;

/// `ipmi_sensor_status` values: 0 ok, 1 non-critical, 2 critical, 3 non-recoverable,
/// 4 no reading.
pub(super) const NO_READING: f64 = 4.0;

/// A resource's `Status`, as far as a reading's worth goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The component is there and reporting (`Enabled` and the like).
    pub present: bool,
    /// `Health`: 0 OK, 1 Warning, 2 Critical; None when the BMC gives none.
    pub health: Option<u8>,
}

impl Status {
    /// Reads `Status` (warning on words the Redfish schema does not define). The
    /// rollup (`HealthRollup`, the resource and all below it) wins over `Health` when
    /// `rollup` is asked and given.
    pub(super) fn of(reader: &mut Reader, at: &Resource<'_>, rollup: bool) -> Status {
        let status = at.value.get("Status").unwrap_or(&Value::Null);
        let state = status.get("State").and_then(Value::as_str);
        let present = match state {
            // Resource.State: readings only from a component that is there and on.
            None
            | Some("Enabled" | "StandbySpare" | "InTest" | "Starting" | "Updating")
            | Some("Qualified" | "Degraded" | "Deferring" | "Quiesced") => true,
            Some("Absent" | "Disabled" | "StandbyOffline" | "UnavailableOffline") => false,
            Some(other) => {
                let other = other.to_string();
                reader.warn(
                    &at.source,
                    "Status/State",
                    format!("unknown state `{other}`"),
                );
                true
            }
        };
        let word = |key: &str| status.get(key).and_then(Value::as_str);
        let chosen = if rollup {
            word("HealthRollup").or(word("Health"))
        } else {
            word("Health")
        };
        let health = match chosen {
            None | Some("") => None,
            Some("OK") => Some(0),
            Some("Warning") => Some(1),
            Some("Critical") => Some(2),
            Some(other) => {
                let other = other.to_string();
                reader.warn(
                    &at.source,
                    "Status/Health",
                    format!("unknown health `{other}`"),
                );
                None
            }
        };
        Status { present, health }
    }
}

/// The six threshold levels, named as the IPMI sensors name theirs.
pub const LEVELS: [&str; 6] = [
    "upper_non_critical",
    "upper_critical",
    "upper_non_recoverable",
    "lower_non_critical",
    "lower_critical",
    "lower_non_recoverable",
];

/// Thresholds in `LEVELS` order.
pub(super) type Thresholds = [Option<f64>; 6];

/// The older schemas' (Thermal, Power) threshold properties, in `LEVELS` order.
const FLAT: [&str; 6] = [
    "UpperThresholdNonCritical",
    "UpperThresholdCritical",
    "UpperThresholdFatal",
    "LowerThresholdNonCritical",
    "LowerThresholdCritical",
    "LowerThresholdFatal",
];

/// The `Sensor` schema's `Thresholds` members, in `LEVELS` order.
const NESTED: [&str; 6] = [
    "UpperCaution",
    "UpperCritical",
    "UpperFatal",
    "LowerCaution",
    "LowerCritical",
    "LowerFatal",
];

pub(super) fn flat_thresholds(reader: &mut Reader, at: &Resource<'_>) -> Thresholds {
    FLAT.map(|key| at.number(reader, key))
}

fn nested_thresholds(reader: &mut Reader, at: &Resource<'_>) -> Thresholds {
    let Some(within) = at.object("Thresholds") else {
        return [None; 6];
    };
    NESTED.map(|key| within.reading(reader, key))
}

/// Where a reading is stored: the series and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Series {
    pub name: &'static str,
    pub unit: &'static str,
}

impl Series {
    pub const TEMPERATURE: Series = Series::of("ipmi_temperature_celsius", "celsius");
    pub const RPM: Series = Series::of("ipmi_fan_speed_rpm", "rpm");
    pub const PERCENT: Series = Series::of("ipmi_percent", "percent");
    pub const VOLTS: Series = Series::of("ipmi_voltage_volts", "volts");
    pub const AMPERES: Series = Series::of("ipmi_current_amperes", "amperes");
    pub const WATTS: Series = Series::of("ipmi_power_watts", "watts");
    /// Any other unit, named in the `unit` label.
    pub const OTHER: Series = Series::of("ipmi_reading", "");

    const fn of(name: &'static str, unit: &'static str) -> Series {
        Series { name, unit }
    }
}

/// One reading ready to store.
pub(super) struct Reading<'a> {
    pub name: &'a str,
    pub entity: Option<&'a str>,
    pub series: Series,
    /// For `Series::OTHER`: the unit as the BMC wrote it.
    pub unit_label: Option<&'a str>,
    pub value: Option<f64>,
    pub thresholds: Thresholds,
    pub status: Status,
}

/// Stores a reading: its status always, its value and thresholds when it has one.
pub(super) fn store(reader: &mut Reader, r: Reading<'_>) {
    let labels = reader.claim(r.name, r.entity);
    let value = r.value.filter(|_| r.status.present);
    let Some(value) = value else {
        reader
            .out
            .gauge("ipmi_sensor_status", labels, NO_READING, "");
        return;
    };
    let status = f64::from(
        r.status
            .health
            .unwrap_or(0)
            .max(crossed(value, &r.thresholds)),
    );
    reader
        .out
        .gauge("ipmi_sensor_status", labels.clone(), status, "");
    let labels = match r.unit_label {
        Some(unit) => labels.with("unit", unit),
        None => labels,
    };
    for (level, threshold) in LEVELS.iter().zip(r.thresholds) {
        if let Some(t) = threshold {
            reader.out.gauge(
                "ipmi_sensor_threshold",
                labels.clone().with("threshold", level),
                t,
                r.series.unit,
            );
        }
    }
    reader
        .out
        .gauge(r.series.name, labels, value, r.series.unit);
}

/// A reading of the older schemas (Thermal's temperatures, Power's voltages): its
/// value at `value_key`, the six flat thresholds, its status. `what` names it in the
/// warning for one with no name.
pub(super) fn store_flat(
    reader: &mut Reader,
    at: &Resource<'_>,
    what: &str,
    series: Series,
    value_key: &str,
) {
    store_named(reader, at, what, (series, None), value_key, flat_thresholds);
}

/// A named resource's reading (`value_key`), thresholds (read by `thresholds`) and
/// status, stored as `series` (with its unit label for `Series::OTHER`); one with no
/// name is a warning.
fn store_named(
    reader: &mut Reader,
    at: &Resource<'_>,
    what: &str,
    (series, unit_label): (Series, Option<&str>),
    value_key: &str,
    thresholds: fn(&mut Reader, &Resource<'_>) -> Thresholds,
) {
    let Some(name) = at.name() else {
        reader.warn(&at.source, "Name", format!("a {what} with no name"));
        return;
    };
    let value = at.number(reader, value_key);
    let thresholds = thresholds(reader, at);
    let status = Status::of(reader, at, false);
    store(
        reader,
        Reading {
            name,
            entity: at.str("PhysicalContext"),
            series,
            unit_label,
            value,
            thresholds,
            status,
        },
    );
}

/// A component with a health but no reading (a PSU, a redundancy set): its status only.
pub(super) fn store_status(reader: &mut Reader, name: &str, entity: Option<&str>, s: Status) {
    let labels = reader.claim(name, entity);
    let status = match (s.present, s.health) {
        (true, h) => f64::from(h.unwrap_or(0)),
        (false, _) => NO_READING,
    };
    reader.out.gauge("ipmi_sensor_status", labels, status, "");
}

/// The worst threshold `value` is at or past: 0 none, 1 non-critical, 2 critical,
/// 3 non-recoverable (fatal).
fn crossed(value: f64, t: &Thresholds) -> u8 {
    let mut worst = 0;
    for (i, threshold) in t.iter().enumerate() {
        let Some(t) = threshold else { continue };
        let upper = i < 3;
        let past = if upper { value >= *t } else { value <= *t };
        if past {
            worst = worst.max((i % 3) as u8 + 1);
        }
    }
    worst
}

/// The series a `Sensor` of this `ReadingType` (or, for older ones, `ReadingUnits`) is
/// stored as.
fn sensor_series(reading_type: Option<&str>, units: Option<&str>) -> Option<Series> {
    Some(match (reading_type, units) {
        (Some("Temperature"), _) | (None, Some("Cel")) => Series::TEMPERATURE,
        (Some("Rotational"), Some("RPM" | "{rev}/min")) | (None, Some("RPM" | "{rev}/min")) => {
            Series::RPM
        }
        (Some("Percent"), _) | (_, Some("%")) => Series::PERCENT,
        (Some("Voltage"), _) | (None, Some("V")) => Series::VOLTS,
        (Some("Current"), _) | (None, Some("A")) => Series::AMPERES,
        (Some("Power"), _) | (None, Some("W")) => Series::WATTS,
        _ => return None,
    })
}

/// A `Sensor` resource (the `Sensors` collection, Redfish 2020.4 on).
pub(super) fn sensor(reader: &mut Reader, at: &Resource<'_>) {
    let units = at.str("ReadingUnits");
    let series = sensor_series(at.str("ReadingType"), units).unwrap_or(Series::OTHER);
    let unit_label = (series == Series::OTHER).then(|| units.unwrap_or("unspecified"));
    store_named(
        reader,
        at,
        "sensor",
        (series, unit_label),
        "Reading",
        nested_thresholds,
    );
}
