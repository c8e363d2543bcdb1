//! `smartctl --json` for one device (ATA/SAT, SCSI/SAS, NVMe), and `smartctl --scan --json`.

use crate::output::{Labels, ParseError, ProbeOutput};
use serde_json::Value;

/// ATA attribute ids whose raw value counts bad sectors (the ones that predict failure).
const ATA_SECTOR_ATTRIBUTES: [(u64, &str); 3] = [
    (5, "smart_reallocated_sectors"),
    (197, "smart_pending_sectors"),
    (198, "smart_offline_uncorrectable_sectors"),
];

/// Parses one device's report.
///
/// ```text
/// {"device": {"name": "/dev/sda", "type": "sat", "protocol": "ATA"}, "model_name": "...",
///  "smart_status": {"passed": true}, "temperature": {"current": 26}, ...}
/// ```
/// `device` and `kind` (from the script's section) label the drive when the report
/// lacks them, as it does for a drive in standby.
pub fn parse(text: &str, device: &str, kind: &str, out: &mut ProbeOutput) {
    let report: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            out.warnings.push(ParseError::Malformed {
                section: format!("device {device}"),
                line: e.line(),
                reason: e.to_string(),
            });
            return;
        }
    };
    let name = report["device"]["name"].as_str().unwrap_or(device);
    let kind = report["device"]["type"].as_str().unwrap_or(kind);
    let model = ["model_name", "scsi_model_name", "product"]
        .iter()
        .find_map(|k| report[*k].as_str())
        .unwrap_or("");
    let serial = report["serial_number"].as_str().unwrap_or("");
    let labels = || {
        Labels::new([
            ("device", name),
            ("type", kind),
            ("model", model),
            ("serial", serial),
        ])
    };
    // smartctl's exit status is a bit mask (smartctl(8) RETURN VALUES); bit 1 = open failed.
    let exit = report["smartctl"]["exit_status"].as_u64().unwrap_or(0);
    let said = |needle: &str| {
        report["smartctl"]["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["string"].as_str().is_some_and(|s| s.contains(needle)))
    };
    if said("STANDBY") || said("SLEEP") {
        out.gauge("smart_device_standby", labels(), 1.0, "");
        return;
    }
    if exit & 0b10 != 0 && report.get("smart_status").is_none() {
        out.gauge("smart_device_open_failed", labels(), 1.0, "");
        let why = report["smartctl"]["messages"][0]["string"]
            .as_str()
            .unwrap_or("open failed");
        out.warnings.push(ParseError::ToolFailed {
            tool: "smartctl".into(),
            message: format!("{name}: {why}"),
        });
        return;
    }
    out.gauge("smart_device_standby", labels(), 0.0, "");
    if let Some(passed) = report["smart_status"]["passed"].as_bool() {
        out.gauge(
            "smart_health_passed",
            labels(),
            if passed { 1.0 } else { 0.0 },
            "",
        );
    }
    if let Some(t) = report["temperature"]["current"].as_f64() {
        out.gauge("smart_temperature_celsius", labels(), t, "celsius");
    }
    if let Some(h) = report["power_on_time"]["hours"].as_f64() {
        // Seconds, the base unit Prometheus expects (the drive counts hours).
        out.gauge("smart_power_on_seconds", labels(), h * 3600.0, "seconds");
    }
    if let Some(c) = report["power_cycle_count"].as_f64() {
        out.counter("smart_power_cycles_total", labels(), c, "");
    }
    for attribute in report["ata_smart_attributes"]["table"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = attribute["id"].as_u64().unwrap_or(0);
        if let Some((_, series)) = ATA_SECTOR_ATTRIBUTES.iter().find(|(a, _)| *a == id)
            && let Some(raw) = attribute["raw"]["value"].as_f64()
        {
            out.gauge(series, labels(), raw, "");
        }
    }
    if let Some(defects) = report["scsi_grown_defect_list"].as_f64() {
        out.gauge("smart_grown_defects", labels(), defects, "");
    }
    for op in ["read", "write", "verify"] {
        if let Some(n) = report["scsi_error_counter_log"][op]["total_uncorrected_errors"].as_f64() {
            out.counter(
                "smart_uncorrected_errors_total",
                Labels::new([
                    ("device", name),
                    ("type", kind),
                    ("model", model),
                    ("serial", serial),
                    ("op", op),
                ]),
                n,
                "",
            );
        }
    }
    let nvme = &report["nvme_smart_health_information_log"];
    for (key, series, counter) in [
        ("media_errors", "smart_media_errors_total", true),
        ("percentage_used", "smart_percentage_used", false),
        ("available_spare", "smart_available_spare_percent", false),
        ("critical_warning", "smart_nvme_critical_warning", false),
    ] {
        if let Some(v) = nvme[key].as_f64() {
            if counter {
                out.counter(series, labels(), v, "");
            } else {
                out.gauge(
                    series,
                    labels(),
                    v,
                    if series.ends_with("percent") {
                        "percent"
                    } else {
                        ""
                    },
                );
            }
        }
    }
    let device_key = name.trim_start_matches("/dev/");
    for (key, fact) in [
        ("model_name", "model"),
        ("serial_number", "serial"),
        ("firmware_version", "firmware"),
    ] {
        if let Some(v) = report[key].as_str() {
            out.fact(&format!("disk_{device_key}_{fact}"), v);
        }
    }
    if let Some(bytes) = report["user_capacity"]["bytes"].as_u64() {
        out.fact(
            &format!("disk_{device_key}_capacity_bytes"),
            &bytes.to_string(),
        );
    }
}

/// `smartctl --scan --json`: the devices found, as (name, type).
pub fn scan(text: &str, out: &mut ProbeOutput) -> Vec<(String, String)> {
    let report: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            out.warnings.push(ParseError::Malformed {
                section: "scan".into(),
                line: e.line(),
                reason: e.to_string(),
            });
            return Vec::new();
        }
    };
    let devices: Vec<(String, String)> = report["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d["name"].as_str()?.to_string(),
                d["type"].as_str().unwrap_or("auto").to_string(),
            ))
        })
        .collect();
    out.fact("disk_count", &devices.len().to_string());
    devices
}
