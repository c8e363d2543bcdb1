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
    if let Some(max) = h.generation.1 {
        out.gauge("nvidia_gpu_pcie_link_gen_max", labels.clone(), max, "");
    }
    if let Some(max) = h.width.1 {
        out.gauge("nvidia_gpu_pcie_link_width_max", labels.clone(), max, "");
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
    for (value, kind) in [
        (h.remapped.0, "correctable"),
        (h.remapped.1, "uncorrectable"),
    ] {
        if let Some(rows) = value {
            out.gauge("nvidia_gpu_remapped_rows", with("type", kind), rows, "");
        }
    }
    if let Some(pending) = h.remap_pending {
        out.gauge(
            "nvidia_gpu_remapped_rows_pending",
            labels.clone(),
            pending,
            "",
        );
    }
    if let Some(failure) = h.remap_failure {
        out.gauge(
            "nvidia_gpu_remapped_rows_failure",
            labels.clone(),
            failure,
            "",
        );
    }
    for (value, cause) in [
        (h.retired.0, "single_bit_ecc"),
        (h.retired.1, "double_bit_ecc"),
    ] {
        if let Some(pages) = value {
            out.gauge("nvidia_gpu_retired_pages", with("cause", cause), pages, "");
        }
    }
    if let Some(pending) = h.retired_pending {
        out.gauge(
            "nvidia_gpu_retired_pages_pending",
            labels.clone(),
            pending,
            "",
        );
    }
    if let Some(watts) = h.enforced_limit {
        out.gauge(
            "nvidia_gpu_enforced_power_limit_watts",
            labels.clone(),
            watts,
            "watts",
        );
    }
    if let Some(mhz) = h.max_sm_mhz {
        out.gauge(
            "nvidia_gpu_sm_clock_max_hertz",
            labels.clone(),
            mhz * 1e6,
            "hertz",
        );
    }
}
