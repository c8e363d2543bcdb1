//! The `pcie` probe: for GPUs, NICs (Ethernet, InfiniBand) and NVMe drives, the PCIe
//! link's speed and width against their maximum (a link trained down after a reseat or a
//! marginal riser reads as downgraded) and the AER error totals (correctable, non-fatal,
//! fatal) the kernel counts per device.

use crate::output::{Labels, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::collections::BTreeMap;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("pcie.sh");

pub const PROBE: Probe = Probe {
    name: "pcie",
    description: "PCIe links of GPUs, NICs and NVMe: speed and width against their maximum, AER error totals",
    script: SCRIPT,
    commands: &[
        "grep -l -E '^0x(030[02]|020[07]|0108)' /sys/bus/pci/devices/*/class",
        "grep -H -E '^(TOTAL_ERR|[0-9]|0x)' DEVICE/{class,current_link_*,max_link_*,aer_dev_*} (those devices)",
    ],
    parse,
    default_interval: Duration::from_secs(60),
    default_timeout: Duration::from_secs(15),
    privileges: "none",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

#[derive(Debug, Default)]
struct Device {
    class: Option<&'static str>,
    speed: (Option<f64>, Option<f64>),
    width: (Option<f64>, Option<f64>),
}

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    if let Some(body) = sections.get("devices") {
        devices(body, &mut out);
    }
    out
}

/// `grep -H` lines: `/sys/bus/pci/devices/0000:01:00.0/current_link_speed:8.0 GT/s PCIe`,
/// `.../aer_dev_fatal:TOTAL_ERR_FATAL 0`, `.../class:0x010802`.
pub fn devices(body: &str, out: &mut ProbeOutput) {
    let mut seen: BTreeMap<String, Device> = BTreeMap::new();
    let mut aer: Vec<(String, &'static str, f64)> = Vec::new();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((address, file, value)) = split(line) else {
            out.not_understood("devices", n + 1, line);
            continue;
        };
        let device = seen.entry(address.to_string()).or_default();
        let value = value.trim();
        let understood = match file {
            "class" => {
                device.class = class_of(value);
                device.class.is_some()
            }
            // `Unknown`: the link is down; understood, no speed to give.
            "current_link_speed" | "max_link_speed" if value == "Unknown" => true,
            "current_link_speed" => set(&mut device.speed.0, gts(value)),
            "max_link_speed" => set(&mut device.speed.1, gts(value)),
            "current_link_width" => set(&mut device.width.0, value.parse().ok()),
            "max_link_width" => set(&mut device.width.1, value.parse().ok()),
            "aer_dev_correctable" | "aer_dev_nonfatal" | "aer_dev_fatal" => {
                let severity = match file {
                    "aer_dev_correctable" => "correctable",
                    "aer_dev_nonfatal" => "nonfatal",
                    _ => "fatal",
                };
                let count = value
                    .strip_prefix("TOTAL_ERR_")
                    .and_then(|v| v.split_once(' '))
                    .and_then(|(_, count)| count.trim().parse::<f64>().ok());
                if let Some(count) = count {
                    aer.push((address.to_string(), severity, count));
                }
                count.is_some()
            }
            _ => false,
        };
        if !understood {
            out.not_understood("devices", n + 1, line);
        }
    }
    let labels = |address: &str, class: &str| Labels::new([("device", address), ("class", class)]);
    for (address, d) in &seen {
        let Some(class) = d.class else { continue };
        let labels = || labels(address, class);
        for (series, value, unit) in [
            ("pcie_link_speed_gts", d.speed.0, ""),
            ("pcie_link_speed_max_gts", d.speed.1, ""),
            ("pcie_link_width", d.width.0, ""),
            ("pcie_link_width_max", d.width.1, ""),
        ] {
            if let Some(v) = value {
                out.gauge(series, labels(), v, unit);
            }
        }
        // GPUs lower their link speed when idle on purpose: the nvidia probe judges
        // theirs under load. NICs and NVMe drives hold their trained link.
        if class != "gpu"
            && let (Some(speed), Some(max_speed), Some(width), Some(max_width)) =
                (d.speed.0, d.speed.1, d.width.0, d.width.1)
        {
            let downgraded = speed < max_speed || width < max_width;
            out.gauge(
                "pcie_link_downgraded",
                labels(),
                if downgraded { 1.0 } else { 0.0 },
                "",
            );
        }
    }
    for (address, severity, count) in aer {
        let Some(class) = seen.get(&address).and_then(|d| d.class) else {
            continue;
        };
        out.counter(
            "pcie_aer_errors_total",
            labels(&address, class).with("severity", severity),
            count,
            "",
        );
    }
}

fn set(slot: &mut Option<f64>, value: Option<f64>) -> bool {
    *slot = value;
    value.is_some()
}

/// `8.0 GT/s PCIe`, `16.0 GT/s`, `2.5 GT/s PCIe` → GT/s. `Unknown` (a link down): none.
fn gts(value: &str) -> Option<f64> {
    let (number, unit) = value.split_once(' ')?;
    unit.starts_with("GT/s")
        .then(|| number.parse().ok())
        .flatten()
}

/// `0x030200` → gpu, `0x020000`/`0x020700` → nic, `0x010802` → nvme.
fn class_of(value: &str) -> Option<&'static str> {
    let hex = value.strip_prefix("0x")?;
    match hex.get(..4)? {
        "0300" | "0302" => Some("gpu"),
        "0200" | "0207" => Some("nic"),
        "0108" => Some("nvme"),
        _ => None,
    }
}

/// `.../devices/0000:01:00.0/FILE:VALUE` → (address, file, value): the address holds
/// colons but no slash, the file name no colon.
fn split(line: &str) -> Option<(&str, &str, &str)> {
    let at = line.find("/devices/")?;
    let rest = &line[at + "/devices/".len()..];
    let (address, after) = rest.split_once('/')?;
    let (file, value) = after.split_once(':')?;
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = address.split([':', '.']).collect();
    (parts.len() == 4 && parts.iter().all(|p| hex(p))).then_some((address, file, value))
}

#[cfg(test)]
mod tests;
