//! What a host's latest GPU readings say is wrong: one judgement for the host page's
//! "GPU health" section and the overview's "GPU issues" column, on the same conditions
//! as the built-in alert rules (GpuMissing, GpuRowRemap*, GpuEccUncorrectable,
//! GpuPcieDowngraded, GpuNvlinkDown, GpuXidCritical), so a page and an alert agree.

use crate::logs::nvrm;
use serde::Serialize;

/// One thing wrong with a GPU (or with the host's set of GPUs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuIssue {
    /// The GPU's index, when the reading names one.
    pub gpu: Option<String>,
    /// Needs a reset, a reboot or a replacement (the alert is critical).
    pub critical: bool,
    /// Which part: `gpus` (the host's set), `memory`, `nvlink`, `pcie` or `xid`.
    pub area: &'static str,
    /// Short words for a table cell: `rows pending remap`, `Xid 79 ×1`.
    pub what: String,
}

/// The series whose latest value can be an issue.
pub const SERIES: &[&str] = &[
    "nvidia_gpu_missing",
    "nvidia_gpu_remapped_rows_pending",
    "nvidia_gpu_remapped_rows_failure",
    "nvidia_gpu_retired_pages_pending",
    "nvidia_gpu_pcie_link_downgraded",
    "nvidia_gpu_ecc_errors_total",
    "nvidia_nvlink_up",
    "nvidia_fabricmanager_active",
];

/// The issue one latest reading shows, if any. `label` looks up the series' labels.
pub fn issue<'a>(
    name: &str,
    label: impl Fn(&str) -> Option<&'a str>,
    value: f64,
) -> Option<GpuIssue> {
    let raised = value > 0.0;
    let (critical, area, what) = match name {
        "nvidia_gpu_missing" if raised => (true, "gpus", format!("{} missing", count(value))),
        "nvidia_gpu_remapped_rows_pending" if raised => {
            (false, "memory", "rows pending remap".into())
        }
        "nvidia_gpu_remapped_rows_failure" if raised => (true, "memory", "row remap failed".into()),
        "nvidia_gpu_retired_pages_pending" if raised => {
            (false, "memory", "pages pending retirement".into())
        }
        "nvidia_gpu_pcie_link_downgraded" if raised => (false, "pcie", "PCIe below max".into()),
        "nvidia_gpu_ecc_errors_total"
            if raised
                && label("type") == Some("uncorrected")
                && label("scope") == Some("volatile") =>
        {
            (
                true,
                "memory",
                format!("{} uncorrectable ECC", count(value)),
            )
        }
        "nvidia_fabricmanager_active" if value == 0.0 => {
            (true, "gpus", "fabric manager not active".into())
        }
        "nvidia_nvlink_up" if value == 0.0 => (
            false,
            "nvlink",
            format!("NVLink {} inactive", label("link").unwrap_or("?")),
        ),
        _ => return None,
    };
    Some(GpuIssue {
        gpu: label("gpu").map(str::to_string),
        critical,
        area,
        what,
    })
}

/// Xid `xid` logged `times` times (in the window the caller counts): critical for the
/// codes NVIDIA's catalogue says need a reset, a reboot or a replacement.
pub fn xid(gpu: Option<&str>, xid: &str, times: f64) -> Option<GpuIssue> {
    if times <= 0.0 {
        return None;
    }
    let code = xid.parse::<u32>().ok();
    let critical = code.is_some_and(nvrm::xid_is_critical);
    let what = match code.and_then(nvrm::xid_name) {
        Some(name) => format!("Xid {xid} ×{} ({name})", count(times)),
        None => format!("Xid {xid} ×{}", count(times)),
    };
    Some(GpuIssue {
        gpu: gpu.map(str::to_string),
        critical,
        area: "xid",
        what,
    })
}

/// A count as a whole number where it is one.
fn count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, labels: &[(&str, &str)], value: f64) -> Option<GpuIssue> {
        issue(
            name,
            |k| labels.iter().find(|(key, _)| *key == k).map(|(_, v)| *v),
            value,
        )
    }

    #[test]
    fn readings_that_are_issues_and_readings_that_are_not() {
        let gpu = [("gpu", "3")];
        let i = of("nvidia_gpu_remapped_rows_pending", &gpu, 1.0).unwrap();
        assert_eq!(
            (i.gpu.as_deref(), i.critical, i.what.as_str()),
            (Some("3"), false, "rows pending remap")
        );
        assert!(
            of("nvidia_gpu_remapped_rows_failure", &gpu, 1.0)
                .unwrap()
                .critical
        );
        assert_eq!(of("nvidia_gpu_remapped_rows_pending", &gpu, 0.0), None);
        let missing = of("nvidia_gpu_missing", &[], 2.0).unwrap();
        assert_eq!((missing.gpu, missing.what.as_str()), (None, "2 missing"));
        let ecc = [("gpu", "0"), ("type", "uncorrected"), ("scope", "volatile")];
        assert_eq!(
            of("nvidia_gpu_ecc_errors_total", &ecc, 4.0).unwrap().what,
            "4 uncorrectable ECC"
        );
        // Corrected errors, and uncorrected ones of earlier driver loads, are no issue.
        let corrected = [("gpu", "0"), ("type", "corrected"), ("scope", "volatile")];
        assert_eq!(of("nvidia_gpu_ecc_errors_total", &corrected, 9.0), None);
        let aggregate = [
            ("gpu", "0"),
            ("type", "uncorrected"),
            ("scope", "aggregate"),
        ];
        assert_eq!(of("nvidia_gpu_ecc_errors_total", &aggregate, 9.0), None);
        let link = [("gpu", "1"), ("link", "7")];
        assert_eq!(
            of("nvidia_nvlink_up", &link, 0.0).unwrap().what,
            "NVLink 7 inactive"
        );
        assert_eq!(of("nvidia_nvlink_up", &link, 1.0), None);
        assert_eq!(of("nvidia_gpu_temperature_celsius", &gpu, 99.0), None);
        let fm = of("nvidia_fabricmanager_active", &[], 0.0).unwrap();
        assert!(fm.critical && fm.gpu.is_none());
        assert_eq!(of("nvidia_fabricmanager_active", &[], 1.0), None);
    }

    #[test]
    fn xids_are_critical_by_nvidias_catalogue() {
        let fallen = xid(Some("2"), "79", 1.0).unwrap();
        assert!(fallen.critical);
        assert_eq!(fallen.what, "Xid 79 ×1 (GPU has fallen off the bus)");
        let app = xid(None, "13", 3.0).unwrap();
        assert!(!app.critical);
        assert_eq!(app.what, "Xid 13 ×3 (Graphics Engine Exception)");
        assert_eq!(xid(None, "9999", 1.0).unwrap().what, "Xid 9999 ×1");
        assert_eq!(xid(None, "79", 0.0), None);
    }
}
