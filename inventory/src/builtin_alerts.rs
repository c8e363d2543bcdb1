//! The alert rules every inventory has unless it turns them off (`[alerting] builtin =
//! false`, or `disable = ["CpuBusy"]`) or defines a rule of the same name, which then
//! wins. Thresholds come from `[alerts_defaults]`, else the dashboard's critical levels
//! (`[web.thresholds]`), so the overview's red and the alert agree. Series and labels
//! are those `/metrics` exposes.

use crate::model::{AlertRule, Thresholds};
use std::collections::BTreeMap;
use std::time::Duration;

/// The built-in rules' thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertDefaults {
    pub cpu: f64,
    pub memory: f64,
    pub filesystem: f64,
    pub gpu_temp: f64,
    pub nvme_wear: f64,
    pub probe_failures: u32,
}

impl AlertDefaults {
    /// The dashboard's critical levels.
    pub fn from_thresholds(t: &Thresholds) -> AlertDefaults {
        AlertDefaults {
            cpu: t.cpu.1,
            memory: t.memory.1,
            filesystem: 90.0,
            gpu_temp: t.gpu_temp.1,
            nvme_wear: t.nvme_wear.1,
            probe_failures: 3,
        }
    }
}

impl Default for AlertDefaults {
    fn default() -> Self {
        AlertDefaults::from_thresholds(&Thresholds::default())
    }
}

/// (name, severity, `for`, expr, summary). `{cpu}`, `{memory}`, `{filesystem}`, `{gpu}`,
/// `{nvme}`, `{failures}` stand for the thresholds.
const RULES: &[(&str, &str, u64, &str, &str)] = &[
    (
        "HostDown",
        "critical",
        0,
        "dcmon_host_up == 0",
        "{{ $labels.host }} is unreachable over SSH",
    ),
    (
        "HostAndBmcDown",
        "critical",
        0,
        "dcmon_bmc_up == 0 and on (host) dcmon_host_up == 0",
        "neither the OS nor the BMC of {{ $labels.host }} answers: power or network lost",
    ),
    (
        "ProbeFailing",
        "warning",
        0,
        "dcmon_probe_failures_in_a_row >= {failures} unless on (host) dcmon_host_up == 0",
        "probe {{ $labels.probe }} on {{ $labels.host }} failed {{ $value }} runs in a row",
    ),
    (
        "CpuBusy",
        "warning",
        600,
        r#"100 * (1 - sum by (host) (rate(node_cpu_all_seconds_total{mode="idle"}[5m])) / sum by (host) (rate(node_cpu_all_seconds_total[5m]))) > {cpu}"#,
        "CPU of {{ $labels.host }} {{ $value }} % busy for 10 minutes",
    ),
    (
        "MemoryHigh",
        "warning",
        600,
        "100 * (1 - node_memory_available_bytes / node_memory_total_bytes) > {memory}",
        "memory of {{ $labels.host }} {{ $value }} % used for 10 minutes",
    ),
    (
        "FilesystemFull",
        "critical",
        300,
        "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) > {filesystem}",
        "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ $value }} % full",
    ),
    (
        "FilesystemFillingUp",
        "warning",
        3600,
        "predict_linear(node_filesystem_avail_bytes[6h], 86400) < 0",
        "{{ $labels.mountpoint }} on {{ $labels.host }} is predicted full within 24 hours",
    ),
    (
        "IpmiSensorCritical",
        "critical",
        0,
        "ipmi_sensor_status >= 2 and ipmi_sensor_status < 4",
        "{{ $labels.sensor }} on {{ $labels.host }} is critical or non-recoverable (read through {{ $labels.path }})",
    ),
    (
        "ChassisFault",
        "critical",
        0,
        "ipmi_chassis_fault == 1",
        "{{ $labels.host }} reports a {{ $labels.fault }} fault",
    ),
    (
        "GpuHot",
        "critical",
        120,
        "nvidia_gpu_temperature_celsius > {gpu}",
        "GPU {{ $labels.gpu }} on {{ $labels.host }} at {{ $value }} °C",
    ),
    (
        "GpuThrottled",
        "warning",
        300,
        r#"max by (host, gpu) (nvidia_gpu_clock_event_active{reason=~"hw_slowdown|hw_thermal_slowdown|hw_power_brake_slowdown|sw_thermal_slowdown"}) == 1"#,
        "GPU {{ $labels.gpu }} on {{ $labels.host }} has been slowed down by temperature or power for 5 minutes",
    ),
    (
        "GpuEccUncorrectable",
        "critical",
        0,
        r#"increase(nvidia_gpu_ecc_errors_total{type="uncorrected",scope="volatile"}[10m]) > 0"#,
        "GPU {{ $labels.gpu }} on {{ $labels.host }} had uncorrectable ECC errors",
    ),
    (
        "GpuMissing",
        "critical",
        0,
        "nvidia_gpu_missing > 0",
        "{{ $labels.host }} has {{ $value }} GPU(s) on its bus or in the inventory that the driver does not list",
    ),
    (
        "GpuRowRemapPending",
        "warning",
        0,
        "nvidia_gpu_remapped_rows_pending == 1",
        "GPU {{ $labels.gpu }} on {{ $labels.host }} has DRAM rows waiting to be remapped: reset the GPU when it is free",
    ),
    (
        "GpuRowRemapFailure",
        "critical",
        0,
        "nvidia_gpu_remapped_rows_failure == 1",
        "GPU {{ $labels.gpu }} on {{ $labels.host }} failed to remap a DRAM row: it needs replacing",
    ),
    (
        "GpuPcieDowngraded",
        "warning",
        600,
        "nvidia_gpu_pcie_link_downgraded == 1",
        "GPU {{ $labels.gpu }} on {{ $labels.host }} runs its PCIe link below its maximum under load",
    ),
    (
        "GpuNvlinkErrorsRising",
        "warning",
        0,
        "increase(nvidia_nvlink_errors_total[1h]) > 0",
        "NVLink {{ $labels.link }} of GPU {{ $labels.gpu }} on {{ $labels.host }}: {{ $labels.counter }} errors rising (a link accumulating them tends to fail within days)",
    ),
    (
        "GpuNvlinkDown",
        "critical",
        0,
        "nvidia_nvlink_up == 0 and max_over_time(nvidia_nvlink_up[1h]) == 1",
        "NVLink {{ $labels.link }} of GPU {{ $labels.gpu }} on {{ $labels.host }} went inactive (it was up within the hour)",
    ),
    (
        "GpuFabricManagerDown",
        "critical",
        0,
        "nvidia_fabricmanager_active == 0",
        "the NVIDIA fabric manager of {{ $labels.host }} is not active: its NVSwitch GPUs cannot use NVLink",
    ),
    (
        "InfinibandPortDown",
        "critical",
        0,
        "ib_port_up == 0 and max_over_time(ib_port_up[1h]) == 1",
        "InfiniBand port {{ $labels.device }}/{{ $labels.port }} on {{ $labels.host }} went down (it was up within the hour)",
    ),
    (
        "InfinibandErrorsRising",
        "warning",
        0,
        r#"increase(ib_port_errors_total{counter=~"symbol_error|link_downed|port_rcv_errors|link_error_recovery"}[1h]) > 0"#,
        "InfiniBand port {{ $labels.device }}/{{ $labels.port }} on {{ $labels.host }}: {{ $labels.counter }} rising",
    ),
    (
        "PcieLinkDowngraded",
        "warning",
        600,
        "pcie_link_downgraded == 1",
        "{{ $labels.class }} {{ $labels.device }} on {{ $labels.host }} runs its PCIe link below its maximum speed or width",
    ),
    (
        "PcieAerUncorrectable",
        "critical",
        0,
        r#"increase(pcie_aer_errors_total{severity=~"nonfatal|fatal"}[1h]) > 0"#,
        "{{ $labels.class }} {{ $labels.device }} on {{ $labels.host }} reported uncorrectable PCIe (AER) errors",
    ),
    (
        "NvmeCriticalWarning",
        "critical",
        0,
        "nvme_critical_warning > 0",
        "NVMe {{ $labels.device }} on {{ $labels.host }} raises critical_warning {{ $value }}",
    ),
    (
        "NvmeWearHigh",
        "warning",
        0,
        "nvme_percentage_used >= {nvme}",
        "NVMe {{ $labels.device }} on {{ $labels.host }} is {{ $value }} % worn",
    ),
    (
        "SmartFailing",
        "critical",
        0,
        "smart_health_passed == 0",
        "{{ $labels.device }} on {{ $labels.host }} fails its SMART health check",
    ),
    (
        "SmartctlPrefailBelowThreshold",
        "warning",
        0,
        r#"smart_smartctl_check{check="prefail_below_threshold"} == 1"#,
        "smartctl says prefailure attributes of {{ $labels.device }} on {{ $labels.host }} are at or below their threshold",
    ),
    (
        "GpuXidCritical",
        "critical",
        0,
        r#"increase(gpu_xid_events_total{xid=~"38|48|54|57|61|62|64|74|79|95|119|120|123|140|143|149|154"}[1h]) > 0"#,
        "GPU {{ $labels.pci }} on {{ $labels.host }} logged Xid {{ $labels.xid }} in the last hour: it needs a reset, a reboot or a replacement",
    ),
    (
        "SmartReallocatedRising",
        "warning",
        0,
        "increase(smart_reallocated_sectors[1h]) > 0",
        "{{ $labels.device }} on {{ $labels.host }} reallocated sectors in the last hour",
    ),
    (
        "RebootRequired",
        "info",
        0,
        "apt_reboot_required == 1",
        "{{ $labels.host }} needs a reboot for updated packages",
    ),
];

/// The names of the built-in rules.
pub fn names() -> Vec<&'static str> {
    RULES.iter().map(|r| r.0).collect()
}

/// The built-in rules with these thresholds.
pub fn rules(d: &AlertDefaults) -> Vec<AlertRule> {
    RULES
        .iter()
        .map(|(name, severity, for_secs, expr, summary)| AlertRule {
            name: name.to_string(),
            expr: expr
                .replace("{cpu}", &d.cpu.to_string())
                .replace("{memory}", &d.memory.to_string())
                .replace("{filesystem}", &d.filesystem.to_string())
                .replace("{gpu}", &d.gpu_temp.to_string())
                .replace("{nvme}", &d.nvme_wear.to_string())
                .replace("{failures}", &d.probe_failures.to_string()),
            for_: Duration::from_secs(*for_secs),
            keep_firing_for: Duration::ZERO,
            severity: severity.to_string(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([("summary".to_string(), summary.to_string())]),
            builtin: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// GpuXidCritical fires on exactly the Xids the logs probe marks critical (and the
    /// host page shows as critical).
    #[test]
    fn xid_rule_names_the_critical_xids() {
        let critical: Vec<String> = dcmon_probes::logs::nvrm::XIDS
            .iter()
            .filter(|x| x.2)
            .map(|x| x.0.to_string())
            .collect();
        let rule = super::rules(&Default::default())
            .into_iter()
            .find(|r| r.name == "GpuXidCritical")
            .unwrap();
        assert!(
            rule.expr
                .contains(&format!("xid=~\"{}\"", critical.join("|"))),
            "{}",
            rule.expr
        );
    }

    #[test]
    fn every_builtin_rule_parses_within_the_subset() {
        for rule in super::rules(&Default::default()) {
            dcmon_promql::parse(&rule.expr).unwrap_or_else(|e| panic!("{}: {e}", rule.name));
            let env = minijinja::Environment::new();
            for text in rule.annotations.values() {
                env.template_from_str(&crate::annotation_template(text))
                    .unwrap_or_else(|e| panic!("{}: {e}", rule.name));
            }
        }
    }
}
