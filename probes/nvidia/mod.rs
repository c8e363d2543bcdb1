//! The `nvidia` probes: per-GPU readings from nvidia-smi's CSV query every round
//! (`nvidia`), and the full `nvidia-smi -q -x` report at a slow interval
//! (`nvidia_details`: facts, MIG instances), since -q takes seconds on multi-GPU hosts.

pub mod apps;
pub mod csv;
pub mod fabricmanager;
pub mod health;
pub mod issues;
pub mod nvlink;
pub mod pci;
pub mod xml;

use crate::output::ProbeOutput;
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("nvidia.sh");
pub const DETAILS_SCRIPT: &str = include_str!("nvidia_details.sh");

/// The fields `nvidia.sh` asks for, for CSV captured without a header.
pub const QUERY_FIELDS: &[&str] = &[
    "index",
    "uuid",
    "name",
    "serial",
    "driver_version",
    "vbios_version",
    "pci.bus_id",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "utilization.gpu",
    "utilization.memory",
    "fan.speed",
    "clocks.sm",
    "clocks.mem",
    "memory.used",
    "memory.total",
    "ecc.errors.corrected.volatile.total",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total",
    "ecc.errors.uncorrected.aggregate.total",
    "pcie.link.gen.current",
    "pcie.link.width.current",
    "persistence_mode",
    "pstate",
    "pcie.link.gen.max",
    "pcie.link.width.max",
    "clocks.max.sm",
    "enforced.power.limit",
    "temperature.memory",
    "clocks_event_reasons.active",
    "power.draw.average",
    "power.draw.instant",
    "driver_model.current",
    "mig.mode.current",
    "remapped_rows.correctable",
    "remapped_rows.uncorrectable",
    "remapped_rows.pending",
    "remapped_rows.failure",
    "retired_pages.single_bit_ecc.count",
    "retired_pages.double_bit.count",
    "retired_pages.pending",
    "gpu_recovery_action",
    "fabric.state",
    "fabric.status",
];

pub const PROBE: Probe = Probe {
    name: "nvidia",
    description: "per GPU: temperatures, power draw and limit, utilisation, fan, clocks, memory, ECC errors, clock event reasons, PCIe link",
    script: SCRIPT,
    commands: &[
        "nvidia-smi --query-gpu=... --format=csv,nounits",
        "nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_gpu_memory --format=csv,nounits",
        "lspci -Dnn -d 10de:",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(15),
    privileges: "none",
    new_logs: all_logs_new,
    inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

pub const DETAILS_PROBE: Probe = Probe {
    name: "nvidia_details",
    description: "nvidia-smi -q -x: GPU facts (driver, CUDA, VBIOS, serials), MIG instances, PCIe replays; NVLink state and error counters; the NVSwitch fabric manager's service state",
    script: DETAILS_SCRIPT,
    commands: &[
        "nvidia-smi -q -x",
        "nvidia-smi nvlink -s",
        "nvidia-smi nvlink -e",
    ],
    parse: parse_details,
    default_interval: Duration::from_secs(600),
    default_timeout: Duration::from_secs(60),
    privileges: "none",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// The inventory's `expected_gpus`, as a shell assignment.
pub fn inputs(given: &crate::registry::ProbeInputs) -> String {
    given
        .expected_gpus
        .map(|n| format!("DCMON_EXPECTED_GPUS={n}\n"))
        .unwrap_or_default()
}

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    // The GPUs the driver lists (none when nvidia-smi failed).
    let listed = sections
        .get("csv")
        .map(|body| csv::parse(body, QUERY_FIELDS, &mut out))
        .unwrap_or_default();
    let visible = listed.count as f64;
    if let Some(body) = sections.get("apps") {
        apps::parse(body, &listed.by_uuid, &mut out);
    }
    let on_bus = sections.get("pci").map(|body| pci::parse(body, &mut out));
    let expected = sections.get("expected").and_then(|body| {
        let text = body.trim();
        let n = text.parse::<u32>().ok();
        if n.is_none() {
            out.not_understood("expected", 1, text);
        }
        n
    });
    missing(visible, on_bus, expected, &mut out);
    out
}

/// `nvidia_gpu_missing`: GPUs the bus holds or the inventory expects that the driver
/// does not list. Without either to compare with, nothing is judged.
fn missing(visible: f64, on_bus: Option<pci::OnBus>, expected: Option<u32>, out: &mut ProbeOutput) {
    if on_bus.is_none() && expected.is_none() {
        return;
    }
    let none = crate::output::Labels::default;
    out.gauge("nvidia_gpus_visible", none(), visible, "");
    let mut should = 0.0_f64;
    if let Some(bus) = on_bus {
        out.gauge("nvidia_gpus_on_bus", none(), bus.gpus as f64, "");
        out.gauge(
            "nvidia_nvswitches_on_bus",
            none(),
            bus.nvswitches as f64,
            "",
        );
        should = should.max(bus.gpus as f64);
    }
    if let Some(n) = expected {
        out.gauge("nvidia_gpus_expected", none(), f64::from(n), "");
        should = should.max(f64::from(n));
    }
    out.gauge(
        "nvidia_gpu_missing",
        none(),
        (should - visible).max(0.0),
        "",
    );
}

pub fn parse_details(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    if let Some(body) = sections.get("xml") {
        xml::parse(body, &mut out);
    }
    if let Some(body) = sections.get("nvlink") {
        nvlink::status(body, &mut out);
    }
    if let Some(body) = sections.get("nvlink_errors") {
        nvlink::errors(body, &mut out);
    }
    if let Some(body) = sections.get("fabricmanager") {
        fabricmanager::parse(body, &mut out);
    }
    out
}

/// Which power reading a GPU's `nvidia_gpu_power_draw_watts` is, the same from the CSV
/// and the XML: the 1-second average where the driver reports one (`power.draw.average`,
/// `average_power_draw`: R535 and newer), else the instant reading, else the driver's
/// plain `power.draw`/`power_draw` (`reading="draw"`: NVIDIA documents it as the 1 s
/// average on Ampere and newer and as instantaneous before). One sample per GPU, so a
/// chart and a sum see each GPU once.
pub fn power_draw(
    average: Option<f64>,
    instant: Option<f64>,
    draw: Option<f64>,
) -> Option<(f64, &'static str)> {
    average
        .map(|w| (w, "average"))
        .or(instant.map(|w| (w, "instant")))
        .or(draw.map(|w| (w, "draw")))
}

#[cfg(test)]
mod tests;
