//! `nvme list -o json`: which drives there are, in either layout nvme-cli has printed.

use crate::output::{ParseError, ProbeOutput};
use serde_json::Value;

/// One namespace and the controller it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// `/dev/nvme0n1`
    pub device: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    pub capacity_bytes: Option<u64>,
}

/// Reads both layouts:
///
/// ```text
/// {"Devices": [{"DevicePath": "/dev/nvme0n1", "ModelNumber": "...", "SerialNumber": "...", ...}]}
/// {"Devices": [{"HostNQN": "...", "Subsystems": [{"Controllers": [{"ModelNumber": "...",
///     "Namespaces": [{"NameSpace": "nvme0n1", "PhysicalSize": ...}]}]}]}]}
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) -> Vec<Drive> {
    let root: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            report(text, e, out);
            return Vec::new();
        }
    };
    let mut drives = Vec::new();
    for entry in root["Devices"].as_array().into_iter().flatten() {
        if entry.get("DevicePath").is_some() {
            drives.push(Drive {
                device: str_of(&entry["DevicePath"]),
                model: str_of(&entry["ModelNumber"]),
                serial: str_of(&entry["SerialNumber"]),
                firmware: str_of(&entry["Firmware"]),
                capacity_bytes: entry["PhysicalSize"].as_u64(),
            });
            continue;
        }
        for subsystem in entry["Subsystems"].as_array().into_iter().flatten() {
            for ctrl in subsystem["Controllers"].as_array().into_iter().flatten() {
                for ns in ctrl["Namespaces"].as_array().into_iter().flatten() {
                    drives.push(Drive {
                        device: format!("/dev/{}", str_of(&ns["NameSpace"])),
                        model: str_of(&ctrl["ModelNumber"]),
                        serial: str_of(&ctrl["SerialNumber"]),
                        firmware: str_of(&ctrl["Firmware"]),
                        capacity_bytes: ns["PhysicalSize"].as_u64(),
                    });
                }
            }
        }
    }
    for d in &drives {
        let name = d.device.trim_start_matches("/dev/");
        out.fact(&format!("{name}_model"), &d.model);
        out.fact(&format!("{name}_serial"), &d.serial);
        out.fact(&format!("{name}_firmware"), &d.firmware);
        if let Some(bytes) = d.capacity_bytes {
            out.fact(&format!("{name}_capacity_bytes"), &bytes.to_string());
        }
    }
    out.fact("nvme_count", &drives.len().to_string());
    drives
}

fn str_of(v: &Value) -> String {
    v.as_str().map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Not JSON: nvme-cli printed an error instead (`Failed to scan topology: ...`).
pub(super) fn report(text: &str, e: serde_json::Error, out: &mut ProbeOutput) {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if !line.starts_with('{') => out.warnings.push(ParseError::ToolFailed {
            tool: "nvme".into(),
            message: line.to_string(),
        }),
        _ => out.warnings.push(ParseError::Malformed {
            section: "nvme json".into(),
            line: e.line(),
            reason: e.to_string(),
        }),
    }
}
