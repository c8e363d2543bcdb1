//! `Thermal` (temperatures, fans and fan redundancy in one resource, which every BMC
//! of the last decade serves), and the newer `ThermalSubsystem` with its `Fan`s.

use super::sensor::{self, Reading, Series, Status};
use super::{Reader, Resource};

pub(super) fn thermal(reader: &mut Reader, at: &Resource<'_>) {
    for t in at.members("Temperatures") {
        sensor::store_flat(
            reader,
            &t,
            "temperature",
            Series::TEMPERATURE,
            "ReadingCelsius",
        );
    }
    for f in at.members("Fans") {
        let Some(name) = f.name() else {
            reader.warn(&f.source, "Name", "a fan with no name".into());
            continue;
        };
        // Thermal 1.0 said `ReadingRPM`; 1.1 on say `Reading` in `ReadingUnits`.
        let (value, series) = match f.value.get("Reading") {
            Some(_) => {
                let series = match f.str("ReadingUnits") {
                    Some("Percent") => Series::PERCENT,
                    Some("RPM") | None => Series::RPM,
                    Some(other) => {
                        let other = other.to_string();
                        reader.warn(
                            &f.source,
                            "ReadingUnits",
                            format!("unknown fan unit `{other}`"),
                        );
                        continue;
                    }
                };
                (f.number(reader, "Reading"), series)
            }
            None => (f.number(reader, "ReadingRPM"), Series::RPM),
        };
        let thresholds = sensor::flat_thresholds(reader, &f);
        let status = Status::of(reader, &f, false);
        sensor::store(
            reader,
            Reading {
                name,
                entity: f.str("PhysicalContext"),
                series,
                unit_label: None,
                value,
                thresholds,
                status,
            },
        );
    }
    redundancy(reader, at, "Redundancy");
}

/// Redundancy sets (`Redundancy` in Thermal and Power, `FanRedundancy` and
/// `PowerSupplyRedundancy` in the subsystems): each one's health as a status.
pub(super) fn redundancy(reader: &mut Reader, at: &Resource<'_>, key: &str) {
    for (i, r) in at.members(key).into_iter().enumerate() {
        let status = Status::of(reader, &r, false);
        // The subsystems' sets have no name: `Fan redundancy 1`, as people count.
        let fallback = format!(
            "{} {}",
            match key {
                "FanRedundancy" => "Fan redundancy",
                "PowerSupplyRedundancy" => "Power supply redundancy",
                _ => "Redundancy",
            },
            i.saturating_add(1)
        );
        let name = r.str("Name").filter(|n| !n.trim().is_empty());
        sensor::store_status(reader, name.unwrap_or(&fallback), None, status);
    }
}

pub(super) fn subsystem(reader: &mut Reader, at: &Resource<'_>) {
    redundancy(reader, at, "FanRedundancy");
    if let Some(fans) = at.inline("Fans") {
        reader.members(&fans);
    }
}

/// A `Fan` of the ThermalSubsystem: its speed in percent (and in RPM where given).
pub(super) fn fan(reader: &mut Reader, at: &Resource<'_>) {
    let Some(name) = at.name() else {
        reader.warn(&at.source, "Name", "a fan with no name".into());
        return;
    };
    let status = Status::of(reader, at, false);
    let speed = at.object("SpeedPercent");
    let percent = speed.as_ref().and_then(|s| s.number(reader, "Reading"));
    let rpm = speed.as_ref().and_then(|s| s.number(reader, "SpeedRPM"));
    let entity = at.str("PhysicalContext");
    // One status per fan: with the RPM reading where given, else with the percent.
    let (first, second) = match rpm {
        Some(_) => ((Series::RPM, rpm), Some((Series::PERCENT, percent))),
        None => ((Series::PERCENT, percent), None),
    };
    sensor::store(
        reader,
        Reading {
            name,
            entity,
            series: first.0,
            unit_label: None,
            value: first.1,
            thresholds: [None; 6],
            status,
        },
    );
    if let (Some((series, Some(value))), true) = (second, status.present) {
        let labels = reader.labels_of(name, entity);
        reader.out.gauge(series.name, labels, value, series.unit);
    }
}
