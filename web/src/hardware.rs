//! The host page's hardware tables: the latest IPMI, GPU and NVMe readings pivoted
//! into one row per sensor, GPU and drive. Pure functions over `SeriesLatest`.

use crate::chart::number;
use dcmon_store::SeriesLatest;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize)]
pub struct Tables {
    pub sensors: Vec<SensorRow>,
    pub gpus: Vec<GpuRow>,
    pub drives: Vec<DriveRow>,
    /// Readings no table took (chassis, DCMI, SMART …): series, which, value.
    pub other: Vec<(String, String, String)>,
}

#[derive(Debug, Default, Serialize)]
pub struct SensorRow {
    pub sensor: String,
    pub entity: String,
    /// How it was read: `ssh` (through the OS) or `bmc` (over the network).
    pub via: String,
    pub value: String,
    /// `ok`, `nc`, `cr`, `nr`, `ns` (no reading) or empty.
    pub status: String,
    pub level: &'static str,
    /// The thresholds the BMC gives (Redfish), lowest first: `cr ≤5 · nc ≥42 · cr ≥45`;
    /// empty where it gives none.
    pub thresholds: String,
    #[serde(skip)]
    threshold_values: Vec<(usize, f64)>,
}

/// `ipmi_sensor_threshold`'s levels in the order they are shown (lowest first), and
/// how: the IPMI word and the side it bounds.
const THRESHOLDS: [(&str, &str); 6] = [
    ("lower_non_recoverable", "nr ≤"),
    ("lower_critical", "cr ≤"),
    ("lower_non_critical", "nc ≤"),
    ("upper_non_critical", "nc ≥"),
    ("upper_critical", "cr ≥"),
    ("upper_non_recoverable", "nr ≥"),
];

#[derive(Debug, Default, Serialize)]
pub struct GpuRow {
    pub gpu: String,
    pub name: String,
    pub temperature: String,
    pub temperature_level: &'static str,
    pub power: String,
    pub utilization: String,
    pub memory: String,
    pub fan: String,
    /// Active clock-event reasons (throttling), comma-separated.
    pub throttle: String,
    pub ecc_uncorrected: String,
}

#[derive(Debug, Default, Serialize)]
pub struct DriveRow {
    pub device: String,
    pub model: String,
    pub temperature: String,
    pub wear: String,
    pub wear_level: &'static str,
    pub spare: String,
    pub media_errors: String,
    pub critical_warning: String,
    pub power_on_hours: String,
    pub written: String,
}

/// IPMI reading series and the unit they are shown in.
const SENSOR_SERIES: [(&str, &str); 6] = [
    ("ipmi_temperature_celsius", "°C"),
    ("ipmi_fan_speed_rpm", "rpm"),
    ("ipmi_voltage_volts", "V"),
    ("ipmi_current_amperes", "A"),
    ("ipmi_power_watts", "W"),
    ("ipmi_percent", "%"),
];

fn label<'a>(r: &'a SeriesLatest, key: &str) -> &'a str {
    r.labels.get(key).map_or("", String::as_str)
}

fn status_of(code: f64) -> (&'static str, &'static str) {
    match code as i64 {
        0 => ("ok", "ok"),
        1 => ("nc", "warn"),
        2 => ("cr", "crit"),
        3 => ("nr", "crit"),
        _ => ("ns", ""),
    }
}

/// `(warn, crit)` → level of `v`.
fn level(v: f64, (warn, crit): (f64, f64)) -> &'static str {
    if v >= crit {
        "crit"
    } else if v >= warn {
        "warn"
    } else {
        "ok"
    }
}

pub fn tables(readings: &[SeriesLatest], gpu_temp: (f64, f64), nvme_wear: (f64, f64)) -> Tables {
    let mut t = Tables::default();
    let mut sensors: BTreeMap<(String, String, String, String), SensorRow> = BTreeMap::new();
    let mut gpus: BTreeMap<String, GpuRow> = BTreeMap::new();
    let mut gpu_memory: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let mut gpu_power: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let mut drives: BTreeMap<String, DriveRow> = BTreeMap::new();
    for r in readings {
        let name = r.name.as_str();
        if let Some((_, unit)) = SENSOR_SERIES.iter().find(|(n, _)| *n == name) {
            let row = sensor_row(&mut sensors, r);
            row.value = number(r.value, unit);
        } else if name == "ipmi_sensor_status" {
            let row = sensor_row(&mut sensors, r);
            let (status, level) = status_of(r.value);
            row.status = status.to_string();
            row.level = level;
        } else if name == "ipmi_reading" {
            // A value of a unit no named series holds: shown with the unit as printed.
            let row = sensor_row(&mut sensors, r);
            let unit = label(r, "unit");
            row.value = match unit {
                "unspecified" | "none" => number(r.value, ""),
                unit => format!("{} {unit}", number(r.value, "")),
            };
        } else if name == "ipmi_discrete_state" {
            // A discrete sensor's row reads as its asserted states: `Presence detected,
            // Failure detected`.
            let row = sensor_row(&mut sensors, r);
            if r.value > 0.0 {
                let state = label(r, "state");
                row.value = if row.value == "–" || row.value.is_empty() {
                    state.to_string()
                } else {
                    format!("{}, {state}", row.value)
                };
            }
        } else if name == "ipmi_sensor_threshold" {
            let at = THRESHOLDS
                .iter()
                .position(|(l, _)| *l == label(r, "threshold"));
            if let Some(at) = at {
                sensor_row(&mut sensors, r)
                    .threshold_values
                    .push((at, r.value));
            }
        } else if name == "ipmi_discrete_state_mask" {
            // Shown through the named states (above); the bits alone say nothing readable.
        } else if let Some(field) = name
            .strip_prefix("nvidia_gpu_")
            .filter(|_| !label(r, "gpu").is_empty())
        {
            // Series of no one GPU (`nvidia_gpu_missing`) are the GPU health section's.
            let gpu = label(r, "gpu").to_string();
            let row = gpus.entry(gpu.clone()).or_insert_with(|| GpuRow {
                gpu: gpu.clone(),
                name: label(r, "name").to_string(),
                ..GpuRow::default()
            });
            match field {
                "temperature_celsius" => {
                    row.temperature = number(r.value, "°C");
                    row.temperature_level = level(r.value, gpu_temp);
                }
                "power_draw_watts" => gpu_power.entry(gpu).or_default().0 = Some(r.value),
                "power_limit_watts" => gpu_power.entry(gpu).or_default().1 = Some(r.value),
                "utilization_percent" => row.utilization = number(r.value, "%"),
                "memory_used_bytes" => gpu_memory.entry(gpu).or_default().0 = Some(r.value),
                "memory_total_bytes" => gpu_memory.entry(gpu).or_default().1 = Some(r.value),
                "fan_speed_percent" => row.fan = number(r.value, "%"),
                "clock_event_active" if r.value > 0.0 => {
                    if !row.throttle.is_empty() {
                        row.throttle.push_str(", ");
                    }
                    row.throttle.push_str(label(r, "reason"));
                }
                "ecc_errors_total"
                    if label(r, "type") == "uncorrected" && label(r, "scope") == "volatile" =>
                {
                    row.ecc_uncorrected = number(r.value, "");
                }
                _ => {}
            }
        } else if let Some(field) = name.strip_prefix("nvme_") {
            let device = label(r, "device").to_string();
            let row = drives.entry(device.clone()).or_insert_with(|| DriveRow {
                device,
                model: label(r, "model").to_string(),
                ..DriveRow::default()
            });
            match field {
                "temperature_celsius" => row.temperature = number(r.value, "°C"),
                "percentage_used" => {
                    row.wear = number(r.value, "%");
                    row.wear_level = level(r.value, nvme_wear);
                }
                "available_spare_percent" => row.spare = number(r.value, "%"),
                "media_errors_total" => row.media_errors = number(r.value, ""),
                "critical_warning" => row.critical_warning = number(r.value, ""),
                "power_on_seconds" => row.power_on_hours = number(r.value / 3600.0, "h"),
                "data_written_bytes_total" => row.written = number(r.value, "bytes"),
                _ => {}
            }
        } else if name.starts_with("nvidia_") {
            // Shown in the GPU health section.
        } else {
            let which = r.labels.values().cloned().collect::<Vec<_>>().join(" ");
            t.other
                .push((r.name.clone(), which, number(r.value, &r.unit)));
        }
    }
    for (gpu, (used, total)) in gpu_memory {
        if let (Some(row), Some(used)) = (gpus.get_mut(&gpu), used) {
            row.memory = match total {
                Some(total) => format!("{} / {}", number(used, "bytes"), number(total, "bytes")),
                None => number(used, "bytes"),
            };
        }
    }
    for (gpu, (draw, limit)) in gpu_power {
        if let (Some(row), Some(draw)) = (gpus.get_mut(&gpu), draw) {
            row.power = match limit {
                Some(limit) => format!("{} / {}", number(draw, "W"), number(limit, "W")),
                None => number(draw, "W"),
            };
        }
    }
    for row in sensors.values_mut() {
        row.threshold_values.sort_by_key(|(at, _)| *at);
        row.thresholds = row
            .threshold_values
            .iter()
            .map(|(at, v)| format!("{}{}", THRESHOLDS[*at].1, number(*v, "")))
            .collect::<Vec<_>>()
            .join(" · ");
    }
    t.sensors = sensors.into_values().collect();
    // GPU indexes sort as numbers: 2 before 10.
    t.gpus = gpus.into_values().collect();
    t.gpus
        .sort_by_key(|g| (g.gpu.parse::<u32>().unwrap_or(u32::MAX), g.gpu.clone()));
    t.drives = drives.into_values().collect();
    t
}

/// One row per sensor and path: when both paths read a sensor, both readings show (the
/// one through a dead OS is the last it gave).
fn sensor_row<'a>(
    sensors: &'a mut BTreeMap<(String, String, String, String), SensorRow>,
    r: &SeriesLatest,
) -> &'a mut SensorRow {
    // A second sensor of the same name is `instance="2"`: its own row, `Temp #2`.
    let key = (
        label(r, "sensor").to_string(),
        label(r, "entity").to_string(),
        label(r, "path").to_string(),
        label(r, "instance").to_string(),
    );
    let shown = match key.3.as_str() {
        "" => key.0.clone(),
        n => format!("{} #{n}", key.0),
    };
    sensors.entry(key.clone()).or_insert_with(|| SensorRow {
        sensor: shown,
        entity: key.1,
        via: key.2,
        value: "–".to_string(),
        ..SensorRow::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_level_the_parser_writes_has_a_place_in_the_table() {
        let mut shown: Vec<&str> = THRESHOLDS.iter().map(|(level, _)| *level).collect();
        let mut written = dcmon_probes::redfish::THRESHOLD_LEVELS.to_vec();
        shown.sort_unstable();
        written.sort_unstable();
        assert_eq!(shown, written);
    }

    fn reading(name: &str, labels: &[(&str, &str)], value: f64) -> SeriesLatest {
        SeriesLatest {
            host: "h".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: "gauge".into(),
            unit: String::new(),
            value,
            ts: 0,
        }
    }

    #[test]
    fn readings_pivot_into_one_row_per_sensor_gpu_and_drive() {
        let gpu = |i: &'static str| [("gpu", i), ("name", "NVIDIA H100 80GB HBM3")];
        let nvme = [("device", "/dev/nvme0n1"), ("model", "FireCuda 530")];
        let fan = [("sensor", "Fan1"), ("entity", "7.1"), ("path", "ssh")];
        let fan_bmc = [("sensor", "Fan1"), ("entity", "7.1"), ("path", "bmc")];
        let readings = vec![
            reading("ipmi_fan_speed_rpm", &fan, 5400.0),
            reading("ipmi_sensor_status", &fan, 2.0),
            reading("ipmi_fan_speed_rpm", &fan_bmc, 5300.0),
            reading("ipmi_sensor_status", &fan_bmc, 0.0),
            reading("ipmi_sensor_status", &[("sensor", "PS Redundancy")], 0.0),
            // A second `Fan1` on the same entity and path (issue 17).
            reading(
                "ipmi_fan_speed_rpm",
                &[
                    ("sensor", "Fan1"),
                    ("entity", "7.1"),
                    ("path", "ssh"),
                    ("instance", "2"),
                ],
                5100.0,
            ),
            // A failed PSU: its asserted states are its value.
            reading(
                "ipmi_discrete_state",
                &[("sensor", "PS1 Status"), ("state", "Presence detected")],
                1.0,
            ),
            reading(
                "ipmi_discrete_state",
                &[("sensor", "PS1 Status"), ("state", "Failure detected")],
                1.0,
            ),
            reading(
                "ipmi_discrete_state",
                &[("sensor", "PS1 Status"), ("state", "Power Supply AC lost")],
                0.0,
            ),
            reading("ipmi_discrete_state_mask", &[("sensor", "PS1 Status")], 3.0),
            reading("ipmi_sensor_status", &[("sensor", "PS1 Status")], 2.0),
            reading(
                "ipmi_reading",
                &[("sensor", "Airflow"), ("unit", "cfm")],
                26.5,
            ),
            reading("nvidia_gpu_temperature_celsius", &gpu("10"), 85.0),
            reading("nvidia_gpu_temperature_celsius", &gpu("2"), 40.0),
            reading("nvidia_gpu_power_draw_watts", &gpu("2"), 312.5),
            reading("nvidia_gpu_power_limit_watts", &gpu("2"), 700.0),
            reading(
                "nvidia_gpu_memory_used_bytes",
                &gpu("2"),
                1024.0 * 1024.0 * 1024.0,
            ),
            reading(
                "nvidia_gpu_memory_total_bytes",
                &gpu("2"),
                80.0 * 1024.0 * 1024.0 * 1024.0,
            ),
            reading(
                "nvidia_gpu_clock_event_active",
                &[("gpu", "2"), ("reason", "sw_power_cap")],
                1.0,
            ),
            reading(
                "nvidia_gpu_clock_event_active",
                &[("gpu", "2"), ("reason", "hw_slowdown")],
                0.0,
            ),
            reading("nvme_percentage_used", &nvme, 96.0),
            reading("nvme_temperature_celsius", &nvme, 41.0),
            reading("ipmi_chassis_power_on", &[], 1.0),
        ];
        let t = tables(&readings, (80.0, 90.0), (80.0, 95.0));
        let rows: Vec<_> = t
            .sensors
            .iter()
            .map(|s| {
                (
                    s.sensor.as_str(),
                    s.via.as_str(),
                    s.value.as_str(),
                    s.status.as_str(),
                    s.level,
                )
            })
            .collect();
        // One row per path: the two readings of one sensor are not merged.
        assert_eq!(
            rows,
            [
                ("Airflow", "", "26.5 cfm", "", ""),
                ("Fan1", "bmc", "5300 rpm", "ok", "ok"),
                ("Fan1", "ssh", "5400 rpm", "cr", "crit"),
                ("Fan1 #2", "ssh", "5100 rpm", "", ""),
                ("PS Redundancy", "", "–", "ok", "ok"),
                (
                    "PS1 Status",
                    "",
                    "Presence detected, Failure detected",
                    "cr",
                    "crit"
                ),
            ]
        );
        assert_eq!(
            t.gpus.iter().map(|g| g.gpu.as_str()).collect::<Vec<_>>(),
            ["2", "10"]
        );
        let g = &t.gpus[0];
        assert_eq!(g.power, "312 W / 700 W");
        assert_eq!(g.memory, "1 GiB / 80 GiB");
        assert_eq!(g.throttle, "sw_power_cap");
        assert_eq!(t.gpus[1].temperature_level, "warn");
        assert_eq!(t.drives[0].wear, "96 %");
        assert_eq!(t.drives[0].wear_level, "crit");
        assert_eq!(t.drives[0].model, "FireCuda 530");
        assert_eq!(
            t.other,
            [(
                "ipmi_chassis_power_on".to_string(),
                String::new(),
                "1".to_string()
            )]
        );
    }
}
