//! The `smart` probe: SMART health of every SATA, SAS and NVMe disk smartctl finds —
//! pass/fail, temperature, power-on hours, bad sectors, SAS grown defects, NVMe media
//! errors — without waking disks in standby.

pub mod json;

use crate::output::{Labels, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("smart.sh");

pub const PROBE: Probe = Probe {
    name: "smart",
    description: "SMART of SATA/SAS/NVMe disks: health, temperature, power-on hours, bad sectors, grown defects, media errors",
    script: SCRIPT,
    commands: &[
        "smartctl --scan --json",
        "smartctl --json --info --health --attributes --log=error --tolerance=verypermissive --nocheck=standby -d TYPE DEVICE (each scanned device)",
    ],
    parse,
    default_interval: Duration::from_secs(600),
    default_timeout: Duration::from_secs(60),
    privileges: "root (become = true) to open the disks",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    let scanned = sections
        .get("scan")
        .map(|body| json::scan(body, &mut out))
        .unwrap_or_default();
    let mut reported = Vec::new();
    for (rest, body) in sections.with_prefix("device ") {
        let (device, kind) = rest.split_once(' ').unwrap_or((rest, "auto"));
        json::parse(body, device, kind, &mut out);
        reported.push((device.to_string(), kind.to_string()));
    }
    // A disk the scan found but that printed no report (the run was cut short) is a
    // state to show, not silence. Disks behind one controller share a path: the type
    // (`megaraid,0`, `megaraid,1`) tells them apart.
    for (device, kind) in scanned
        .iter()
        .filter(|d| !reported.iter().any(|r| r.0 == d.0 && r.1 == d.1))
    {
        out.gauge(
            "smart_device_open_failed",
            Labels::new([
                ("device", device.as_str()),
                ("type", kind.as_str()),
                ("model", ""),
                ("serial", ""),
            ]),
            1.0,
            "",
        );
    }
    out
}

#[cfg(test)]
mod tests;
