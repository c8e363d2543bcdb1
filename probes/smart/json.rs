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
    let key = disk_key(name, kind);
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
    verdicts(&report, exit, name, &key, &labels(), out);
    // smartctl's own verdict counts even where the report has no `smart_status`: bit 3
    // is "SMART status check returned DISK FAILING".
    let passed = report["smart_status"]["passed"]
        .as_bool()
        .map(|passed| passed && exit & 0b1000 == 0)
        .or((exit & 0b1000 != 0).then_some(false));
    if let Some(passed) = passed {
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
    // SAS/SCSI: start-stop and load-unload cycles (the drive's log page 0x0e).
    let cycles = &report["scsi_start_stop_cycle_counter"];
    for (key, series) in [
        (
            "accumulated_start_stop_cycles",
            "smart_start_stop_cycles_total",
        ),
        (
            "accumulated_load_unload_cycles",
            "smart_load_unload_cycles_total",
        ),
    ] {
        if let Some(n) = cycles[key].as_f64() {
            out.counter(series, labels(), n, "");
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
    // NVMe counts data in units of 1,000 512-byte blocks (NVMe base spec, SMART log).
    for (field, series) in [
        ("data_units_read", "smart_read_bytes_total"),
        ("data_units_written", "smart_written_bytes_total"),
    ] {
        if let Some(units) = nvme[field].as_f64() {
            out.counter(series, labels(), units * 512_000.0, "bytes");
        }
    }
    // The same facts whatever the protocol: ATA and NVMe name them `model_name`,
    // `firmware_version`; SCSI `scsi_vendor`/`vendor`, `scsi_model_name`, `scsi_revision`.
    for (fact, keys) in [
        ("model", &["model_name", "scsi_model_name", "product"][..]),
        ("vendor", &["scsi_vendor", "vendor"][..]),
        ("product", &["scsi_product", "product"][..]),
        ("serial", &["serial_number"][..]),
        (
            "firmware",
            &["firmware_version", "scsi_revision", "revision"][..],
        ),
    ] {
        if let Some(v) = keys.iter().find_map(|k| report[*k].as_str()) {
            out.fact(&format!("disk_{key}_{fact}"), v);
        }
    }
    let capacity = report["user_capacity"]["bytes"]
        .as_u64()
        .or(report["nvme_total_capacity"].as_u64());
    if let Some(bytes) = capacity {
        out.fact(&format!("disk_{key}_capacity_bytes"), &bytes.to_string());
    }
}

/// What each bit of smartctl's exit status means (smartctl(8), RETURN VALUES), from
/// bit 2 on; bits 0 (command line) and 1 (open failed, or standby) are handled apart.
const EXIT_BITS: [(u32, &str, &str); 6] = [
    (
        2,
        "command_failed",
        "a SMART or other ATA command to the disk failed, or a checksum error",
    ),
    (
        3,
        "disk_failing",
        "SMART status check returned DISK FAILING",
    ),
    (
        4,
        "prefail_below_threshold",
        "some prefail attributes are at or below their threshold",
    ),
    (
        5,
        "past_below_threshold",
        "some attributes were at or below their threshold in the past",
    ),
    (
        6,
        "error_log",
        "the device error log contains records of errors",
    ),
    (
        7,
        "self_test_errors",
        "the self-test log contains records of errors",
    ),
];

/// smartctl's own verdicts: the exit status as a series and one 0/1 series per bit, and
/// every bit set or message at warning/error severity as a warning, so a disk smartctl
/// complains about never reads as healthy in silence.
fn verdicts(
    report: &Value,
    exit: u64,
    name: &str,
    key: &str,
    labels: &Labels,
    out: &mut ProbeOutput,
) {
    out.gauge(
        "smart_smartctl_exit_status",
        labels.clone(),
        exit as f64,
        "",
    );
    for (bit, check, meaning) in EXIT_BITS {
        let set = exit & (1 << bit) != 0;
        out.gauge(
            "smart_smartctl_check",
            labels.clone().with("check", check),
            if set { 1.0 } else { 0.0 },
            "",
        );
        if set {
            out.warnings.push(ParseError::ToolFailed {
                tool: "smartctl".into(),
                message: format!("{name}: exit status bit {bit}: {meaning}"),
            });
        }
    }
    if exit & 1 != 0 {
        out.warnings.push(ParseError::ToolFailed {
            tool: "smartctl".into(),
            message: format!("{name}: exit status bit 0: the command line did not parse"),
        });
    }
    let mut said = Vec::new();
    for message in report["smartctl"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(text) = message["string"].as_str() else {
            continue;
        };
        let severity = message["severity"].as_str().unwrap_or("information");
        said.push(format!("{severity}: {text}"));
        if matches!(severity, "warning" | "error") {
            out.warnings.push(ParseError::ToolFailed {
                tool: "smartctl".into(),
                message: format!("{name}: {text}"),
            });
        }
    }
    if !said.is_empty() {
        out.fact(&format!("disk_{key}_smartctl_messages"), &said.join("; "));
    }
}

/// A disk's key in fact names: its device path without `/dev/` and, for a disk behind
/// a RAID controller (`-d megaraid,3`, `cciss,0`, `sat+megaraid,1`, `areca,2/1`), the
/// type and number, so disks sharing `/dev/bus/0` or `/dev/sg1` never share a key.
/// Only letters, digits and `_`: no `/` reaches a key.
pub fn disk_key(device: &str, kind: &str) -> String {
    let path = device.strip_prefix("/dev/").unwrap_or(device);
    let behind_controller = kind.contains(',');
    let raw = if behind_controller {
        format!("{path}_{kind}")
    } else {
        path.to_string()
    };
    let mut key = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && key.ends_with('_')) {
            key.push(c);
        }
    }
    key.trim_matches('_').to_string()
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
