//! The `ipmi` probe: in-band IPMI through ipmitool — every temperature, fan, voltage,
//! current and power sensor with its threshold status, system power (DCMI), chassis
//! power and faults, and the SEL as log lines. Each ipmitool output form has its own
//! pure parser, usable alone (`dcmon parse`). The probe labels its samples path="ssh"
//! (read through the host's OS), as the `bmc` probe labels its own path="bmc".

pub mod chassis;
pub mod dcmi;
pub mod reading;
pub mod sdr;
pub mod sel;
pub mod sensor;
pub mod states;

use crate::output::ProbeOutput;
use crate::registry::Probe;
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("ipmi.sh");

pub const PROBE: Probe = Probe {
    name: "ipmi",
    description: "BMC sensors (temperature, fan, voltage, current, power), DCMI power, chassis state, SEL",
    script: SCRIPT,
    commands: &[
        "ipmitool sdr elist",
        "ipmitool dcmi power reading",
        "ipmitool chassis status",
        "TZ=UTC ipmitool sel elist last 200",
    ],
    parse,
    default_interval: Duration::from_secs(60),
    default_timeout: Duration::from_secs(30),
    privileges: "root (become = true) for /dev/ipmi0",
    new_logs: sel::after_cursor,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// The same sensors, power state, SEL and firmware read by the poller from the host's
/// BMC over the network (RMCP+), labelled path="bmc"; the reader is the poller's.
pub const BMC_PROBE: Probe = Probe {
    name: "bmc",
    description: "the host's BMC over the network, IPMI over LAN (RMCP+) or Redfish (HTTPS): power, sensors, event logs, firmware",
    script: "",
    commands: &[
        "IPMI: RMCP+ session (cipher suite 3) to the inventory's bmc address",
        "IPMI: Get Device ID, Get Chassis Status, Get SDR (16-byte chunks), Get Sensor Reading, Get SEL Entry",
        "Redfish: session login, GET Chassis, Thermal/Power (or their subsystems and Sensors), Systems, Managers, LogServices entries, FirmwareInventory",
    ],
    // Over IPMI the poller reads binary answers itself; over Redfish each resource it
    // fetched is read by this parser.
    parse: crate::redfish::parse,
    default_interval: Duration::from_secs(60),
    default_timeout: Duration::from_secs(10),
    privileges: "a BMC user (no access to the host)",
    new_logs: crate::redfish::new_logs,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Bmc,
    in_shell: false,
    brings: &[],
};

/// Parses the whole `ipmi.sh` output.
pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    if let Some(body) = sections.get("sdr") {
        sdr::parse(body, &mut out);
    }
    if let Some(body) = sections.get("sensor") {
        sensor::parse(body, &mut out);
    }
    if let Some(body) = sections.get("dcmi") {
        dcmi::parse(body, &mut out);
    }
    if let Some(body) = sections.get("chassis") {
        chassis::parse(body, &mut out);
    }
    if let Some(body) = sections.get("sel") {
        sel::parse(body, &mut out);
    }
    // In-band readings: the `bmc` probe reads the same sensors over the network under
    // the same names with path="bmc", so charts and alerts can take either.
    for sample in &mut out.samples {
        sample.labels = std::mem::take(&mut sample.labels).with("path", "ssh");
    }
    out
}

#[cfg(test)]
mod tests;
