//! The `nvme` probe: every NVMe drive's health from nvme-cli — temperature, spare,
//! wear, critical warnings, media errors, power-on hours, unsafe shutdowns, data
//! read and written — labelled by device, model and serial.

pub mod list;
pub mod smart_log;

use crate::output::ProbeOutput;
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("nvme.sh");

pub const PROBE: Probe = Probe {
    name: "nvme",
    description: "NVMe drives: temperature, spare, wear, critical warning, media errors, power-on hours, unsafe shutdowns, bytes read/written",
    script: SCRIPT,
    commands: &[
        "nvme list -o json",
        "nvme smart-log DEVICE -o json (each listed drive)",
    ],
    parse,
    default_interval: Duration::from_secs(300),
    default_timeout: Duration::from_secs(30),
    privileges: "root (become = true) for the admin commands",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// What `nvme list` prints where there is no NVMe controller (nvme-cli 2.3, libnvme 1.3,
/// on the build machine).
const NO_TOPOLOGY: &str = "Failed to scan topology";

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    // nvme-cli 2.x on a host with no NVMe controller (no /sys/class/nvme) fails its list
    // with this line: nothing to read there, not a failure.
    if let Some(why) = sections
        .get("list")
        .map(str::trim)
        .filter(|body| body.starts_with(NO_TOPOLOGY))
    {
        out.absent = Some(format!("no NVMe controllers (nvme list: {why})"));
        return out;
    }
    let drives = sections
        .get("list")
        .map(|body| list::parse(body, &mut out))
        .unwrap_or_default();
    for (device, body) in sections.with_prefix("smart-log ") {
        // A drive the list did not name still gets its device label.
        let drive = drives
            .iter()
            .find(|d| d.device == device)
            .cloned()
            .unwrap_or_else(|| list::Drive {
                device: device.to_string(),
                model: String::new(),
                serial: String::new(),
                firmware: String::new(),
                capacity_bytes: None,
            });
        smart_log::parse(body, &drive, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;
