//! `nvidia-smi -q -x`: the full per-GPU report (DTD v10 to v13), read at a slow
//! interval for facts, details the CSV query lacks, and MIG instances.
//!
//! Element names moved between schema versions (`power_readings/power_draw` became
//! `gpu_power_readings/instant_power_draw`), so every value is looked up at each place
//! it has lived, newest first.

use super::csv::{is_absent, number};
use crate::output::{Labels, ParseError, ProbeOutput};
use roxmltree::{Document, Node, ParsingOptions};

/// Parses one `nvidia-smi -q -x` document.
///
/// ```text
/// <!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
/// <nvidia_smi_log>
///     <driver_version>535.54.03</driver_version>
///     <gpu id="00000000:01:00.0">
/// ```
pub fn parse(text: &str, out: &mut ProbeOutput) {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc = match Document::parse_with_options(text.trim(), options) {
        Ok(doc) => doc,
        Err(e) => {
            out.warnings.push(ParseError::Malformed {
                section: "xml".into(),
                line: e.pos().row as usize,
                reason: e.to_string(),
            });
            return;
        }
    };
    let root = doc.root_element();
    if root.tag_name().name() != "nvidia_smi_log" {
        out.warnings.push(ParseError::Malformed {
            section: "xml".into(),
            line: 1,
            reason: format!(
                "root element is <{}>, not <nvidia_smi_log>",
                root.tag_name().name()
            ),
        });
        return;
    }
    for (path, fact) in [
        (&["driver_version"][..], "nvidia_driver_version"),
        (&["cuda_version"], "cuda_version"),
    ] {
        if let Some(v) = value(root, path) {
            out.fact(fact, v);
        }
    }
    if let Some(dtd) = text
        .lines()
        .take(3)
        .find_map(|l| l.split("nvsmi_device_").nth(1))
        .and_then(|r| r.split(".dtd").next())
    {
        out.fact("nvidia_smi_schema", dtd);
    }
    for (i, gpu) in root
        .children()
        .filter(|n| n.has_tag_name("gpu"))
        .enumerate()
    {
        read_gpu(gpu, i, out);
    }
}

fn read_gpu(gpu: Node, position: usize, out: &mut ProbeOutput) {
    // `minor_number` is the device index on Linux; fall back to document order.
    let index = value(gpu, &["minor_number"])
        .filter(|m| m.parse::<u32>().is_ok())
        .map_or_else(|| position.to_string(), str::to_string);
    let uuid = value(gpu, &["uuid"]).unwrap_or("");
    let name = value(gpu, &["product_name"]).unwrap_or("");
    let labels = || Labels::new([("gpu", index.as_str()), ("uuid", uuid), ("name", name)]);
    for &(paths, series, unit, scale) in GAUGES {
        if let Some(v) = paths.iter().find_map(|p| value(gpu, p).and_then(number)) {
            out.gauge(series, labels(), v * scale, unit);
        }
    }
    let reading = |element: &str| {
        ["gpu_power_readings", "power_readings"]
            .iter()
            .find_map(|group| value(gpu, &[group, element]).and_then(number))
    };
    if let Some((watts, which)) = super::power_draw(
        reading("average_power_draw"),
        reading("instant_power_draw"),
        reading("power_draw"),
    ) {
        out.gauge(
            "nvidia_gpu_power_draw_watts",
            labels().with("reading", which),
            watts,
            "watts",
        );
    }
    let at = |path: &[&str]| value(gpu, path).and_then(number);
    // Generations print bare (`4`), widths with an x (`16x`).
    let link = |field: &str, group: &str| {
        value(gpu, &["pci", "pci_gpu_link_info", group, field])
            .and_then(|v| v.trim_end_matches('x').parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let power =
        |field: &str| at(&["gpu_power_readings", field]).or_else(|| at(&["power_readings", field]));
    super::health::push(
        &super::health::Health {
            generation: (
                link("current_link_gen", "pcie_gen"),
                link("max_link_gen", "pcie_gen"),
            ),
            width: (
                link("current_link_width", "link_widths"),
                link("max_link_width", "link_widths"),
            ),
            utilization: at(&["utilization", "gpu_util"]),
            remapped: (
                at(&["remapped_rows", "remapped_row_corr"]),
                at(&["remapped_rows", "remapped_row_unc"]),
            ),
            remap_pending: value(gpu, &["remapped_rows", "remapped_row_pending"])
                .and_then(super::csv::flag),
            remap_failure: value(gpu, &["remapped_rows", "remapped_row_failure"])
                .and_then(super::csv::flag),
            retired: (
                at(&[
                    "retired_pages",
                    "multiple_single_bit_retirement",
                    "retired_count",
                ]),
                at(&["retired_pages", "double_bit_retirement", "retired_count"]),
            ),
            retired_pending: value(gpu, &["retired_pages", "pending_retirement"])
                .and_then(super::csv::flag),
            enforced_limit: power("enforced_power_limit"),
            max_sm_mhz: at(&["max_clocks", "sm_clock"]),
        },
        &labels(),
        out,
    );
    // `16x` → 16
    if let Some(width) = value(
        gpu,
        &[
            "pci",
            "pci_gpu_link_info",
            "link_widths",
            "current_link_width",
        ],
    )
    .and_then(|w| w.trim_end_matches('x').parse::<f64>().ok())
    {
        out.gauge("nvidia_gpu_pcie_link_width", labels(), width, "");
    }
    // PCIe replays: the link resending what arrived corrupted, the first sign of a bad
    // riser or slot. The rollover counter counts wraps of the replay counter.
    if let Some(replays) =
        value(gpu, &["pci", "replay_counter"]).and_then(|v| v.parse::<u64>().ok())
    {
        out.counter(
            "nvidia_gpu_pcie_replays_total",
            labels(),
            replays as f64,
            "",
        );
    }
    if let Some(p) = value(gpu, &["performance_state"])
        .and_then(|p| p.strip_prefix('P'))
        .and_then(|p| p.parse::<f64>().ok())
    {
        out.gauge("nvidia_gpu_pstate", labels(), p, "");
    }
    for (path, fact) in [
        (&["product_name"][..], "name"),
        (&["uuid"], "uuid"),
        (&["serial"], "serial"),
        (&["vbios_version"], "vbios"),
        (&["pci", "pci_bus_id"], "pci_bus_id"),
        (&["mig_mode", "current_mig"], "mig_mode"),
        (&["driver_model", "current_dm"], "driver_model"),
        (&["product_architecture"], "architecture"),
    ] {
        if let Some(v) = value(gpu, path) {
            out.fact(&format!("gpu{index}_{fact}"), v);
        }
    }
    let mig_devices = gpu.children().find(|n| n.has_tag_name("mig_devices"));
    for mig in mig_devices
        .iter()
        .flat_map(|m| m.children())
        .filter(|n| n.has_tag_name("mig_device"))
    {
        let gi = value(mig, &["gpu_instance_id"]).unwrap_or("");
        let ci = value(mig, &["compute_instance_id"]).unwrap_or("");
        let mig_labels = || {
            Labels::new([
                ("gpu", index.as_str()),
                ("uuid", uuid),
                ("name", name),
                ("gpu_instance", gi),
                ("compute_instance", ci),
            ])
        };
        for (field, series) in [
            ("used", "nvidia_mig_memory_used_bytes"),
            ("total", "nvidia_mig_memory_total_bytes"),
        ] {
            if let Some(mib) = value(mig, &["fb_memory_usage", field]).and_then(number) {
                out.gauge(series, mig_labels(), mib * 1048576.0, "bytes");
            }
        }
        if let Some(sms) = value(
            mig,
            &["device_attributes", "shared", "multiprocessor_count"],
        )
        .and_then(number)
        {
            out.gauge("nvidia_mig_multiprocessors", mig_labels(), sms, "");
        }
    }
}

type Path = &'static [&'static str];

/// (places the value has lived, newest first; series; unit; scale) — the same series
/// names as the CSV query, so charts do not care which source filled them.
const GAUGES: &[(&[Path], &str, &str, f64)] = &[
    (
        &[&["temperature", "gpu_temp"]],
        "nvidia_gpu_temperature_celsius",
        "celsius",
        1.0,
    ),
    (
        &[&["temperature", "memory_temp"]],
        "nvidia_gpu_memory_temperature_celsius",
        "celsius",
        1.0,
    ),
    (
        &[
            &["gpu_power_readings", "current_power_limit"],
            &["gpu_power_readings", "power_limit"],
            &["power_readings", "power_limit"],
            &["power_readings", "enforced_power_limit"],
        ],
        "nvidia_gpu_power_limit_watts",
        "watts",
        1.0,
    ),
    (
        &[&["utilization", "gpu_util"]],
        "nvidia_gpu_utilization_percent",
        "percent",
        1.0,
    ),
    (
        &[&["utilization", "memory_util"]],
        "nvidia_gpu_memory_utilization_percent",
        "percent",
        1.0,
    ),
    (
        &[&["fan_speed"]],
        "nvidia_gpu_fan_speed_percent",
        "percent",
        1.0,
    ),
    (
        &[&["clocks", "sm_clock"]],
        "nvidia_gpu_sm_clock_hertz",
        "hertz",
        1e6,
    ),
    (
        &[&["clocks", "mem_clock"]],
        "nvidia_gpu_memory_clock_hertz",
        "hertz",
        1e6,
    ),
    (
        &[&["fb_memory_usage", "used"]],
        "nvidia_gpu_memory_used_bytes",
        "bytes",
        1048576.0,
    ),
    (
        &[&["fb_memory_usage", "total"]],
        "nvidia_gpu_memory_total_bytes",
        "bytes",
        1048576.0,
    ),
    (
        &[&["pci", "pci_gpu_link_info", "pcie_gen", "current_link_gen"]],
        "nvidia_gpu_pcie_link_gen",
        "",
        1.0,
    ),
];

/// The trimmed text at a child path, unless nvidia-smi says it has none.
fn value<'a>(node: Node<'a, 'a>, path: &[&str]) -> Option<&'a str> {
    let mut at = node;
    for step in path {
        at = at.children().find(|n| n.has_tag_name(*step))?;
    }
    let text = at.text()?.trim();
    (!is_absent(text) && !text.contains("Not Supported") && text != "Unknown Error").then_some(text)
}
