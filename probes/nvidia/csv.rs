//! `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`: one line per GPU.
//!
//! With a header, columns are found by name (`power.draw [W]` or `power.draw`); without
//! one, the caller says which fields were asked for. Values may carry units (`631.95 W`,
//! `81559 MiB`). `[N/A]`, `[Not Supported]` and their kin are absent values: no sample.

use crate::output::{Labels, ParseError, ProbeOutput};

/// Parses query-gpu CSV. `fields` names the columns when the text has no header.
///
/// ```text
/// name, uuid, fan.speed [%], pstate, memory.used [MiB], temperature.gpu, power.draw [W]
/// Tesla P100-PCIE-16GB, GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6, [N/A], P0, 0, 37, 28.16
/// ```
/// Returns the GPUs listed: UUID → index (a GPU without a UUID is counted, not mapped),
/// and how many rows there were.
pub fn parse(text: &str, fields: &[&str], out: &mut ProbeOutput) -> Listed {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let header: Vec<String> = match lines.peek() {
        Some((_, first)) if is_header(first) => {
            let first = first.to_string();
            lines.next();
            first.split(',').map(field_name).collect()
        }
        _ => fields.iter().map(|f| f.to_string()).collect(),
    };
    let has_header = header.len() != fields.len() || header.iter().zip(fields).any(|(h, f)| h != f);
    let mut driver = None;
    let mut count = 0;
    let mut by_uuid = std::collections::BTreeMap::new();
    for (n, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        // Without a header, a capture of an older driver's shorter query (the script's
        // fallbacks drop the newest fields from the end) reads by the fields it has.
        let header = if !has_header && cells.len() < header.len() && cells.len() > 3 {
            &header[..cells.len()]
        } else {
            &header[..]
        };
        if cells.len() != header.len() {
            if line.contains("is not a valid field")
                || line.starts_with("NVIDIA-SMI has failed")
                || line.contains("No devices were found")
            {
                out.warnings.push(ParseError::ToolFailed {
                    tool: "nvidia-smi".into(),
                    message: line.trim().to_string(),
                });
            } else {
                out.warnings.push(ParseError::Malformed {
                    section: "csv".into(),
                    line: n + 1,
                    reason: format!("{} values for {} columns", cells.len(), header.len()),
                });
            }
            continue;
        }
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| header.iter().position(|h| h == name))
                .map(|i| cells[i])
                .filter(|v| !is_absent(v))
        };
        let index = get(&["index"])
            .map(str::to_string)
            .unwrap_or_else(|| count.to_string());
        let uuid = get(&["uuid"]).unwrap_or("");
        let name = get(&["name"]).unwrap_or("");
        let labels = || Labels::new([("gpu", index.as_str()), ("uuid", uuid), ("name", name)]);
        count += 1;
        if !uuid.is_empty() {
            by_uuid.insert(uuid.to_string(), index.clone());
        }
        for &(fields, series, unit, scale) in GAUGES {
            if let Some(v) = get(fields).and_then(number) {
                out.gauge(series, labels(), v * scale, unit);
            }
        }
        for (field, kind, scope) in ECC {
            if let Some(v) = get(&[field]).and_then(number) {
                out.counter(
                    "nvidia_gpu_ecc_errors_total",
                    Labels::new([
                        ("gpu", index.as_str()),
                        ("uuid", uuid),
                        ("name", name),
                        ("type", kind),
                        ("scope", scope),
                    ]),
                    v,
                    "",
                );
            }
        }
        if let Some((watts, reading)) = super::power_draw(
            get(&["power.draw.average"]).and_then(number),
            get(&["power.draw.instant"]).and_then(number),
            get(&["power.draw"]).and_then(number),
        ) {
            out.gauge(
                "nvidia_gpu_power_draw_watts",
                labels().with("reading", reading),
                watts,
                "watts",
            );
        }
        super::health::push(
            &super::health::Health {
                generation: (
                    get(&["pcie.link.gen.current"]).and_then(number),
                    get(&["pcie.link.gen.max"]).and_then(number),
                ),
                width: (
                    get(&["pcie.link.width.current"]).and_then(number),
                    get(&["pcie.link.width.max"]).and_then(number),
                ),
                utilization: get(&["utilization.gpu"]).and_then(number),
                remapped: (
                    get(&["remapped_rows.correctable"]).and_then(number),
                    get(&["remapped_rows.uncorrectable"]).and_then(number),
                ),
                remap_pending: get(&["remapped_rows.pending"]).and_then(flag),
                remap_failure: get(&["remapped_rows.failure"]).and_then(flag),
                retired: (
                    get(&["retired_pages.single_bit_ecc.count"]).and_then(number),
                    get(&["retired_pages.double_bit.count"]).and_then(number),
                ),
                retired_pending: get(&["retired_pages.pending"]).and_then(flag),
                enforced_limit: get(&["enforced.power.limit"]).and_then(number),
                max_sm_mhz: get(&["clocks.max.sm"]).and_then(number),
            },
            &labels(),
            out,
        );
        if let Some(mode) = get(&["persistence_mode"]).and_then(flag) {
            out.gauge("nvidia_gpu_persistence_mode", labels(), mode, "");
        }
        if let Some(p) = get(&["pstate"])
            .and_then(|p| p.strip_prefix('P'))
            .and_then(|p| p.parse::<f64>().ok())
        {
            out.gauge("nvidia_gpu_pstate", labels(), p, "");
        }
        if let Some(mask) = get(&[
            "clocks_event_reasons.active",
            "clocks_throttle_reasons.active",
        ])
        .and_then(hex)
        {
            for (bit, reason) in CLOCK_EVENT_REASONS {
                let active = if mask & bit != 0 { 1.0 } else { 0.0 };
                out.gauge(
                    "nvidia_gpu_clock_event_active",
                    Labels::new([
                        ("gpu", index.as_str()),
                        ("uuid", uuid),
                        ("name", name),
                        ("reason", reason),
                    ]),
                    active,
                    "",
                );
            }
        }
        for (field, fact) in [
            ("serial", "serial"),
            ("vbios_version", "vbios"),
            ("pci.bus_id", "pci_bus_id"),
            ("name", "name"),
            ("uuid", "uuid"),
            // WDDM/TCC on Windows (`[N/A]` on Linux: no fact); Enabled/Disabled.
            ("driver_model.current", "driver_model"),
            ("mig.mode.current", "mig_mode"),
            // What the driver asks of the operator after an error (R550+): None,
            // Reset, Reboot, Drain P2P, Drain and Reset.
            ("gpu_recovery_action", "recovery_action"),
            // NVSwitch systems: the GPU's place in the NVLink fabric.
            ("fabric.state", "fabric_state"),
            ("fabric.status", "fabric_status"),
        ] {
            if let Some(v) = get(&[field]) {
                out.fact(&format!("gpu{index}_{fact}"), v);
            }
        }
        driver = driver.or(get(&["driver_version"]).map(str::to_string));
    }
    if let Some(d) = driver {
        out.fact("nvidia_driver_version", &d);
    }
    if count > 0 {
        out.fact("gpu_count", &count.to_string());
    }
    Listed { count, by_uuid }
}

/// The GPUs a query listed.
#[derive(Debug, Default)]
pub struct Listed {
    pub count: usize,
    /// UUID → the GPU's index.
    pub by_uuid: std::collections::BTreeMap<String, String>,
}

/// (query fields, first present wins; series; unit; scale)
const GAUGES: &[(&[&str], &str, &str, f64)] = &[
    (
        &["temperature.gpu"],
        "nvidia_gpu_temperature_celsius",
        "celsius",
        1.0,
    ),
    (
        &["temperature.memory"],
        "nvidia_gpu_memory_temperature_celsius",
        "celsius",
        1.0,
    ),
    (
        &["power.limit", "enforced.power.limit"],
        "nvidia_gpu_power_limit_watts",
        "watts",
        1.0,
    ),
    (
        &["utilization.gpu"],
        "nvidia_gpu_utilization_percent",
        "percent",
        1.0,
    ),
    (
        &["utilization.memory"],
        "nvidia_gpu_memory_utilization_percent",
        "percent",
        1.0,
    ),
    (
        &["fan.speed"],
        "nvidia_gpu_fan_speed_percent",
        "percent",
        1.0,
    ),
    (
        &["clocks.sm", "clocks.current.sm"],
        "nvidia_gpu_sm_clock_hertz",
        "hertz",
        1e6,
    ),
    (
        &["clocks.mem", "clocks.current.memory"],
        "nvidia_gpu_memory_clock_hertz",
        "hertz",
        1e6,
    ),
    (
        &["memory.used"],
        "nvidia_gpu_memory_used_bytes",
        "bytes",
        1048576.0,
    ),
    (
        &["memory.total"],
        "nvidia_gpu_memory_total_bytes",
        "bytes",
        1048576.0,
    ),
    (
        &["pcie.link.gen.current", "pcie.link.gen.gpucurrent"],
        "nvidia_gpu_pcie_link_gen",
        "",
        1.0,
    ),
    (
        &["pcie.link.width.current"],
        "nvidia_gpu_pcie_link_width",
        "",
        1.0,
    ),
];

const ECC: [(&str, &str, &str); 4] = [
    (
        "ecc.errors.corrected.volatile.total",
        "corrected",
        "volatile",
    ),
    (
        "ecc.errors.uncorrected.volatile.total",
        "uncorrected",
        "volatile",
    ),
    (
        "ecc.errors.corrected.aggregate.total",
        "corrected",
        "aggregate",
    ),
    (
        "ecc.errors.uncorrected.aggregate.total",
        "uncorrected",
        "aggregate",
    ),
];

/// NVML's clocks event reason bits (nvml.h `nvmlClocksEventReason*`).
pub const CLOCK_EVENT_REASONS: [(u64, &str); 9] = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// A header line names fields (`power.draw [W]`), never GPU values (`GPU-…`, `37`).
fn is_header(line: &str) -> bool {
    let cells: Vec<String> = line.split(',').map(field_name).collect();
    cells
        .iter()
        .any(|c| c == "index" || c == "uuid" || c == "name" || c == "timestamp")
        && cells.iter().all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '_')
        })
}

/// `power.draw [W]` → `power.draw`
fn field_name(cell: &str) -> String {
    cell.split('[').next().unwrap_or("").trim().to_string()
}

/// nvidia-smi's ways of saying "no value".
pub fn is_absent(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v == "N/A" || (v.starts_with('[') && v.ends_with(']'))
}

/// `631.95 W`, `81559 MiB`, `100 %`, `37` → the number.
pub fn number(value: &str) -> Option<f64> {
    value
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

pub fn flag(value: &str) -> Option<f64> {
    match value.trim() {
        "Enabled" | "Yes" | "Active" => Some(1.0),
        "Disabled" | "No" | "Not Active" => Some(0.0),
        _ => None,
    }
}

fn hex(value: &str) -> Option<u64> {
    u64::from_str_radix(value.trim().trim_start_matches("0x"), 16).ok()
}
