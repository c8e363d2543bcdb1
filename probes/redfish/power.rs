//! `Power` (system power draw, voltages, PSUs and their redundancy in one resource),
//! the newer `PowerSubsystem` with its `PowerSupply`s and their `Metrics`, and the
//! chassis' `EnvironmentMetrics` (power draw where `Power` is gone).

use super::sensor::{self, Series, Status};
use super::thermal::redundancy;
use super::{Reader, Resource};

/// The system's input power as DCMI's power reading names it, so a host reads the same
/// through `ipmitool dcmi power reading` and through Redfish.
const SYSTEM_POWER: &str = "ipmi_dcmi_power_watts";

pub(super) fn power(reader: &mut Reader, at: &Resource<'_>) {
    for (i, c) in at.members("PowerControl").into_iter().enumerate() {
        let Some(watts) = c.number(reader, "PowerConsumedWatts") else {
            continue;
        };
        let path = || crate::Labels::new([("path", super::PATH)]);
        // The first is the system's input; a second (a second node, a zone) by name.
        if i == 0 {
            reader.out.gauge(SYSTEM_POWER, path(), watts, "watts");
            let metrics = c.object("PowerMetrics");
            for (key, series) in [
                ("MinConsumedWatts", "ipmi_dcmi_power_min_watts"),
                ("MaxConsumedWatts", "ipmi_dcmi_power_max_watts"),
                ("AverageConsumedWatts", "ipmi_dcmi_power_avg_watts"),
            ] {
                if let Some(w) = metrics.as_ref().and_then(|m| m.number(reader, key)) {
                    reader.out.gauge(series, path(), w, "watts");
                }
            }
        } else {
            let name = c.name().unwrap_or("Power control");
            value(reader, name, None, Series::WATTS, watts);
        }
    }
    for v in at.members("Voltages") {
        sensor::store_flat(reader, &v, "voltage", Series::VOLTS, "ReadingVolts");
    }
    for p in at.members("PowerSupplies") {
        let Some(name) = p.name() else {
            reader.warn(&p.source, "Name", "a power supply with no name".into());
            continue;
        };
        let status = Status::of(reader, &p, false);
        sensor::store_status(reader, name, Some("PowerSupply"), status);
        if !status.present {
            continue;
        }
        // Power 1.5 added `PowerOutputWatts`; before it, `LastPowerOutputWatts`.
        for (keys, suffix, series) in [
            (&["PowerInputWatts"][..], "input power", Series::WATTS),
            (
                &["PowerOutputWatts", "LastPowerOutputWatts"][..],
                "output power",
                Series::WATTS,
            ),
            (&["LineInputVoltage"][..], "input voltage", Series::VOLTS),
        ] {
            if let Some(x) = keys.iter().find_map(|k| p.number(reader, k)) {
                value(reader, &format!("{name} {suffix}"), None, series, x);
            }
        }
    }
    redundancy(reader, at, "Redundancy");
}

pub(super) fn subsystem(reader: &mut Reader, at: &Resource<'_>) {
    redundancy(reader, at, "PowerSupplyRedundancy");
    if let Some(supplies) = at.inline("PowerSupplies") {
        reader.members(&supplies);
    }
}

/// A `PowerSupply`: its health, and its `Metrics` when given inline.
pub(super) fn supply(reader: &mut Reader, at: &Resource<'_>) {
    let Some(name) = at.name() else {
        reader.warn(&at.source, "Name", "a power supply with no name".into());
        return;
    };
    let status = Status::of(reader, at, false);
    sensor::store_status(reader, name, Some("PowerSupply"), status);
    if let (Some(metrics), true) = (at.inline("Metrics"), status.present) {
        supply_metrics(reader, &metrics, Some(name));
    }
}

/// A PSU's `Metrics`, named after its PSU (`owner`) when known.
pub(super) fn supply_metrics(reader: &mut Reader, at: &Resource<'_>, owner: Option<&str>) {
    let Some(name) = owner.or(at.name()) else {
        return;
    };
    for (key, suffix, series) in [
        ("InputPowerWatts", "input power", Series::WATTS),
        ("OutputPowerWatts", "output power", Series::WATTS),
        ("InputVoltage", "input voltage", Series::VOLTS),
        ("InputCurrentAmps", "input current", Series::AMPERES),
        ("TemperatureCelsius", "temperature", Series::TEMPERATURE),
    ] {
        if let Some(x) = at.reading(reader, key) {
            value(reader, &format!("{name} {suffix}"), None, series, x);
        }
    }
}

/// The chassis' `EnvironmentMetrics`: its power draw.
pub(super) fn environment(reader: &mut Reader, at: &Resource<'_>) {
    if let Some(watts) = at.reading(reader, "PowerWatts") {
        let labels = crate::Labels::new([("path", super::PATH)]);
        reader.out.gauge(SYSTEM_POWER, labels, watts, "watts");
    }
}

/// A reading with no status of its own (a PSU's watts: the PSU's status says it).
fn value(reader: &mut Reader, name: &str, entity: Option<&str>, series: Series, x: f64) {
    let labels = reader.claim(name, entity);
    reader.out.gauge(series.name, labels, x, series.unit);
}
