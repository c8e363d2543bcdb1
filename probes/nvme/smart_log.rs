//! `nvme smart-log DEV -o json`: the drive's SMART / health information log.

use super::list::{Drive, report};
use crate::output::{Labels, ProbeOutput};
use serde_json::Value;

/// Kelvin to Celsius as nvme-cli does it (integers from the drive).
const ABSOLUTE_ZERO: f64 = -273.0;

/// Reads one drive's log; `drive` gives the labels.
///
/// ```text
/// {"critical_warning": 0, "temperature": 310, "avail_spare": 100, "percent_used": 2, ...}
/// {"critical_warning": {"value": 0, "available_spare": 0, ...}, "temperature": 324, ...}
/// ```
pub fn parse(text: &str, drive: &Drive, out: &mut ProbeOutput) {
    let log: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => return report(text, e, out),
    };
    let labels = || {
        Labels::new([
            ("device", drive.device.as_str()),
            ("model", drive.model.as_str()),
            ("serial", drive.serial.as_str()),
        ])
    };
    let num = |key: &str| log.get(key).and_then(number);
    if let Some(k) = num("temperature") {
        out.gauge(
            "nvme_temperature_celsius",
            labels(),
            k + ABSOLUTE_ZERO,
            "celsius",
        );
    }
    // 1.x and 2.x print a number; 2.11 an object with the bits spelled out and `value`.
    let critical = log
        .get("critical_warning")
        .and_then(|c| number(c).or_else(|| c.get("value").and_then(number)));
    if let Some(c) = critical {
        out.gauge("nvme_critical_warning", labels(), c, "");
    }
    for (key, series, unit) in [
        ("avail_spare", "nvme_available_spare_percent", "percent"),
        (
            "spare_thresh",
            "nvme_available_spare_threshold_percent",
            "percent",
        ),
        ("percent_used", "nvme_percentage_used", "percent"),
    ] {
        if let Some(v) = num(key) {
            out.gauge(series, labels(), v, unit);
        }
    }
    // Seconds, the base unit Prometheus expects (the drive counts hours).
    if let Some(hours) = num("power_on_hours") {
        out.gauge("nvme_power_on_seconds", labels(), hours * 3600.0, "seconds");
    }
    for (key, series) in [
        ("media_errors", "nvme_media_errors_total"),
        ("unsafe_shutdowns", "nvme_unsafe_shutdowns_total"),
        ("power_cycles", "nvme_power_cycles_total"),
        ("num_err_log_entries", "nvme_error_log_entries_total"),
    ] {
        if let Some(v) = num(key) {
            out.counter(series, labels(), v, "");
        }
    }
    // Data units are thousands of 512-byte blocks (NVMe base spec, SMART log).
    for (key, series) in [
        ("data_units_read", "nvme_data_read_bytes_total"),
        ("data_units_written", "nvme_data_written_bytes_total"),
    ] {
        if let Some(units) = num(key) {
            out.counter(series, labels(), units * 512_000.0, "bytes");
        }
    }
    for n in 1..=8 {
        if let Some(k) = num(&format!("temperature_sensor_{n}")) {
            let sensor_labels = Labels::new([
                ("device", drive.device.as_str()),
                ("model", drive.model.as_str()),
                ("serial", drive.serial.as_str()),
                ("sensor", &n.to_string()),
            ]);
            out.gauge(
                "nvme_temperature_sensor_celsius",
                sensor_labels,
                k + ABSOLUTE_ZERO,
                "celsius",
            );
        }
    }
}

/// A JSON number, or a number in a string (some versions print 128-bit counters so).
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|f: &f64| f.is_finite())
}
