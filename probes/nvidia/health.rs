//! A GPU's health beyond its readings, the same from the CSV query and the XML: the
//! PCIe link against its maximum, DRAM rows remapped and pages retired, the enforced
//! power limit and the SM clock's maximum.

use crate::output::{Labels, ProbeOutput};

/// GPU utilisation (%) from which a GPU counts as under load: an idle GPU lowers its
/// PCIe link speed on purpose (the RTX 2080 capture idles at Gen1 of Gen3), a busy one
/// trains its link up within a second.
pub const LOADED_PERCENT: f64 = 50.0;

/// What one GPU reports, each value absent where the driver or GPU has none.
#[derive(Debug, Default)]
pub struct Health {
    /// PCIe generation (current, max).
    pub generation: (Option<f64>, Option<f64>),
    /// PCIe link width (current, max).
    pub width: (Option<f64>, Option<f64>),
    pub utilization: Option<f64>,
    /// Rows remapped (correctable, uncorrectable): A100 and newer.
    pub remapped: (Option<f64>, Option<f64>),
    pub remap_pending: Option<f64>,
    pub remap_failure: Option<f64>,
    /// Pages retired (single-bit ECC, double-bit ECC): before A100.
    pub retired: (Option<f64>, Option<f64>),
    pub retired_pending: Option<f64>,
    pub enforced_limit: Option<f64>,
    pub max_sm_mhz: Option<f64>,
}

pub fn push(h: &Health, labels: &Labels, out: &mut ProbeOutput) {
    let with = |key: &str, value: &str| labels.clone().with(key, value);
    // One value each, under the GPU's own labels: (value, series, unit).
    let single = [
        (h.generation.1, "nvidia_gpu_pcie_link_gen_max", ""),
        (h.width.1, "nvidia_gpu_pcie_link_width_max", ""),
        (h.remap_pending, "nvidia_gpu_remapped_rows_pending", ""),
        (h.remap_failure, "nvidia_gpu_remapped_rows_failure", ""),
        (h.retired_pending, "nvidia_gpu_retired_pages_pending", ""),
        (
            h.enforced_limit,
            "nvidia_gpu_enforced_power_limit_watts",
            "watts",
        ),
        (
            h.max_sm_mhz.map(|mhz| mhz * 1e6),
            "nvidia_gpu_sm_clock_max_hertz",
            "hertz",
        ),
    ];
    for (value, name, unit) in single {
        if let Some(v) = value {
            out.gauge(name, labels.clone(), v, unit);
        }
    }
    // Trained down: below the maximum in generation or width while under load. Idle,
    // or with nothing to compare, it is not judged (no sample).
    let below = |(current, max): (Option<f64>, Option<f64>)| match (current, max) {
        (Some(c), Some(m)) => Some(c < m),
        _ => None,
    };
    if let (Some(utilization), Some(gen_below), width_below) =
        (h.utilization, below(h.generation), below(h.width))
        && utilization >= LOADED_PERCENT
    {
        let downgraded = gen_below || width_below.unwrap_or(false);
        out.gauge(
            "nvidia_gpu_pcie_link_downgraded",
            labels.clone(),
            if downgraded { 1.0 } else { 0.0 },
            "",
        );
    }
    // Two values each, told apart by a label: (values, series, label).
    let pairs = [
        (
            h.remapped,
            "nvidia_gpu_remapped_rows",
            "type",
            ["correctable", "uncorrectable"],
        ),
        (
            h.retired,
            "nvidia_gpu_retired_pages",
            "cause",
            ["single_bit_ecc", "double_bit_ecc"],
        ),
    ];
    for ((first, second), name, key, kinds) in pairs {
        for (value, kind) in [(first, kinds[0]), (second, kinds[1])] {
            if let Some(v) = value {
                out.gauge(name, with(key, kind), v, "");
            }
        }
    }
}
