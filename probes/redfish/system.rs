//! The `ComputerSystem` (power state, health rollup, BIOS), the `Manager` (the BMC
//! itself: firmware, health) and the `Chassis` (health rollup).

use super::sensor::Status;
use super::{Reader, Resource};
use crate::Labels;

/// `redfish_health{resource, name}`: the resource's health, 0 OK, 1 Warning, 2 Critical
/// (the rollup, over everything below it, where the BMC gives one).
fn health(reader: &mut Reader, at: &Resource<'_>, resource: &str) {
    let status = Status::of(reader, at, true);
    let (true, Some(h)) = (status.present, status.health) else {
        return;
    };
    let name = at.str("Id").or(at.name()).unwrap_or("");
    let labels = Labels::new([
        ("resource", resource),
        ("name", name),
        ("path", super::PATH),
    ]);
    reader.out.gauge("redfish_health", labels, f64::from(h), "");
}

pub(super) fn computer_system(reader: &mut Reader, at: &Resource<'_>) {
    health(reader, at, "system");
    if let Some(state) = at.str("PowerState") {
        // Still drawing power while it goes off; not yet running while it comes on.
        let on = match state {
            "On" | "PoweringOff" | "Paused" => Some(1.0),
            "Off" | "PoweringOn" => Some(0.0),
            other => {
                let other = other.to_string();
                reader.warn(
                    &at.source,
                    "PowerState",
                    format!("unknown power state `{other}`"),
                );
                None
            }
        };
        if let Some(on) = on {
            let labels = Labels::new([("path", super::PATH)]);
            reader.out.gauge("ipmi_chassis_power_on", labels, on, "");
        }
    }
    let made = [at.str("Manufacturer"), at.str("Model")]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    reader.out.fact("system_model", &made);
    reader
        .out
        .fact("system_serial", at.str("SerialNumber").unwrap_or(""));
    reader
        .out
        .fact("bios_version", at.str("BiosVersion").unwrap_or(""));
}

pub(super) fn manager(reader: &mut Reader, at: &Resource<'_>) {
    health(reader, at, "manager");
    reader
        .out
        .fact("bmc_firmware", at.str("FirmwareVersion").unwrap_or(""));
    reader.out.fact("bmc_model", at.str("Model").unwrap_or(""));
}

/// A `SoftwareInventory` of the `FirmwareInventory`: fact `firmware NAME` = version.
/// Dell lists the versions it could roll back to as `Previous-...`: not installed.
pub(super) fn firmware(reader: &mut Reader, at: &Resource<'_>) {
    if at.str("Id").is_some_and(|id| id.starts_with("Previous")) {
        return;
    }
    let (Some(name), Some(version)) = (at.name(), at.str("Version")) else {
        return;
    };
    let key = format!("firmware {}", name.trim());
    if reader.out.facts.iter().any(|f| f.key == key) {
        return; // the first of one name (Dell lists one per installed copy)
    }
    reader.out.fact(&key, version);
}

pub(super) fn chassis(reader: &mut Reader, at: &Resource<'_>) {
    health(reader, at, "chassis");
}
