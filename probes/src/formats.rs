//! Tool output formats `dcmon parse` reads: each is one section of one probe's output
//! (or a probe's whole output), so a captured `ipmitool sdr elist` is read by exactly the
//! parser the `ipmi` probe runs on it, with the same labels, never a second one.

use crate::output::ProbeOutput;
use crate::sections::MARKER;

/// One format: which probe reads it, and how the captured text sits in that probe's
/// script output.
#[derive(Debug)]
pub struct Format {
    pub name: &'static str,
    pub description: &'static str,
    pub probe: &'static str,
    place: Place,
}

#[derive(Debug, Clone, Copy)]
enum Place {
    /// The probe's whole script output, as captured.
    Whole,
    /// The body of the section of this name.
    Section(&'static str),
    /// The body of `smart-log DEVICE` (a lone smart log does not name its drive).
    NvmeSmartLog,
    /// The body of `device DEVICE TYPE`, both read from the report itself.
    SmartctlDevice,
    /// The body of `script 0 SOURCE`, each line behind `|` (the custom probe's framing).
    CustomScript,
}

pub static FORMATS: &[Format] = &[
    Format {
        name: "ipmitool-sdr",
        description: "ipmitool sdr elist | sdr list | sdr -c | sdr -v type T",
        probe: "ipmi",
        place: Place::Section("sdr"),
    },
    Format {
        name: "ipmitool-sensor",
        description: "ipmitool sensor",
        probe: "ipmi",
        place: Place::Section("sensor"),
    },
    Format {
        name: "ipmitool-sel",
        description: "ipmitool sel elist | sel list",
        probe: "ipmi",
        place: Place::Section("sel"),
    },
    Format {
        name: "ipmitool-dcmi-power",
        description: "ipmitool dcmi power reading",
        probe: "ipmi",
        place: Place::Section("dcmi"),
    },
    Format {
        name: "ipmitool-chassis",
        description: "ipmitool chassis status",
        probe: "ipmi",
        place: Place::Section("chassis"),
    },
    Format {
        name: "nvidia-smi-csv",
        description: "nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits] (without a header: the probe's fields)",
        probe: "nvidia",
        place: Place::Section("csv"),
    },
    Format {
        name: "nvidia-smi-xml",
        description: "nvidia-smi -q -x",
        probe: "nvidia_details",
        place: Place::Section("xml"),
    },
    Format {
        name: "nvidia-smi-compute-apps",
        description: "nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_gpu_memory --format=csv[,nounits] (with or without the script's user, container columns)",
        probe: "nvidia",
        place: Place::Section("apps"),
    },
    Format {
        name: "nvidia-smi-nvlink",
        description: "nvidia-smi nvlink -s",
        probe: "nvidia_details",
        place: Place::Section("nvlink"),
    },
    Format {
        name: "lspci-nvidia",
        description: "lspci -Dnn -d 10de: (the NVIDIA devices on the PCIe bus)",
        probe: "nvidia",
        place: Place::Section("pci"),
    },
    Format {
        name: "systemctl-show-fabricmanager",
        description: "systemctl show -p LoadState,ActiveState,SubState,NRestarts,Result nvidia-fabricmanager",
        probe: "nvidia_details",
        place: Place::Section("fabricmanager"),
    },
    Format {
        name: "nvidia-smi-nvlink-errors",
        description: "nvidia-smi nvlink -e",
        probe: "nvidia_details",
        place: Place::Section("nvlink_errors"),
    },
    Format {
        name: "nvme-list",
        description: "nvme list -o json",
        probe: "nvme",
        place: Place::Section("list"),
    },
    Format {
        name: "nvme-smart-log",
        description: "nvme smart-log DEVICE -o json (device label `unknown`)",
        probe: "nvme",
        place: Place::NvmeSmartLog,
    },
    Format {
        name: "smartctl-json",
        description: "smartctl -j -a DEVICE (device and type from the report)",
        probe: "smart",
        place: Place::SmartctlDevice,
    },
    Format {
        name: "smartctl-scan-json",
        description: "smartctl --scan -j",
        probe: "smart",
        place: Place::Section("scan"),
    },
    Format {
        name: "journal-json",
        description: "journalctl -o json",
        probe: "logs",
        place: Place::Section("journal"),
    },
    Format {
        name: "dmesg",
        description: "dmesg (raw -r, plain, -T ctime, -H human: dated with --at)",
        probe: "logs",
        place: Place::Section("dmesg"),
    },
    Format {
        name: "infiniband-sysfs",
        description: "grep -H '' /sys/class/infiniband/*/ports/*/{state,phys_state,rate,link_layer,counters/*}",
        probe: "infiniband",
        place: Place::Section("ports"),
    },
    Format {
        name: "pcie-sysfs",
        description: "grep -H -E '^(TOTAL_ERR|[0-9]|0x)' /sys/bus/pci/devices/DEVICE/{class,current_link_*,max_link_*,aer_dev_*}",
        probe: "pcie",
        place: Place::Section("devices"),
    },
    Format {
        name: "apt-get-upgrade",
        description: "apt-get -s dist-upgrade (LC_ALL=C)",
        probe: "apt",
        place: Place::Section("upgrade"),
    },
    Format {
        name: "redfish",
        description: "one Redfish resource as a BMC serves it (Thermal, Power, PowerSubsystem, PowerSupply, Sensor, ComputerSystem, Manager, Chassis..., by its @odata.type)",
        probe: "bmc",
        place: Place::Whole,
    },
    Format {
        name: "prometheus-text",
        description: "Prometheus text exposition, as a custom script prints it (label script = the file)",
        probe: "custom",
        place: Place::CustomScript,
    },
    Format {
        name: "df",
        description: "df -P -k | df -P",
        probe: "fs",
        place: Place::Section("df"),
    },
];

/// Every format: the section formats above, then each probe's whole script output
/// under the probe's own name (`os`, `ipmi`, ...).
pub fn all() -> Vec<(&'static str, &'static str, &'static str)> {
    let sections = FORMATS.iter().map(|f| (f.name, f.description, f.probe));
    let whole = crate::PROBES
        .iter()
        .map(|p| (p.name, "the probe script's whole output", p.name));
    sections.chain(whole).collect()
}

/// Reads `text` as `format` with the probe's own parser; `source` names the input
/// (a file path) where the format has a place for it; `collected_s` (Unix seconds) is
/// when it was captured, for dates that print no year. None: no such format.
pub fn parse(format: &str, text: &str, source: &str, collected_s: i64) -> Option<ProbeOutput> {
    let (probe, place) = match FORMATS.iter().find(|f| f.name == format) {
        Some(f) => (f.probe, f.place),
        None => (crate::find(format)?.name, Place::Whole),
    };
    let probe = crate::find(probe)?;
    let text = match place {
        // The probe's own dmesg section carries the collection time the same way.
        Place::Section("dmesg") => format!("now={collected_s}\n{text}"),
        _ => text.to_string(),
    };
    Some((probe.parse)(&as_probe_output(place, &text, source)))
}

/// The probe script output that `text` would be part of.
fn as_probe_output(place: Place, text: &str, source: &str) -> String {
    let section = |name: &str, body: &str| {
        let newline = if body.ends_with('\n') { "" } else { "\n" };
        format!("\n{MARKER}{name}\n{body}{newline}{MARKER}end\n")
    };
    match place {
        Place::Whole => text.to_string(),
        Place::Section(name) => section(name, text),
        Place::NvmeSmartLog => section("smart-log unknown", text),
        Place::SmartctlDevice => {
            let report: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let name = report["device"]["name"].as_str().unwrap_or("unknown");
            let kind = report["device"]["type"].as_str().unwrap_or("auto");
            section(&format!("device {name} {kind}"), text)
        }
        Place::CustomScript => {
            let framed: String = text.lines().map(|l| format!("|{l}\n")).collect();
            section(&format!("script 0 {source}"), &framed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_names_a_probe_and_names_are_unique() {
        let all = all();
        for (name, _, probe) in &all {
            assert!(crate::find(probe).is_some(), "{name}: probe {probe}");
            assert_eq!(
                all.iter().filter(|(n, _, _)| n == name).count(),
                1,
                "{name}"
            );
        }
        assert!(parse("no-such-format", "", "-", 0).is_none());
    }

    #[test]
    fn a_section_reads_as_the_probe_reads_it() {
        let sdr = "FAN1             | 41h | ok  | 29.1 | 5400 RPM\n";
        let alone = parse("ipmitool-sdr", sdr, "-", 0).unwrap();
        let in_probe = (crate::find("ipmi").unwrap().parse)(&format!(
            "\n==dcmon== sdr\n{sdr}\n==dcmon== end\n"
        ));
        assert_eq!(alone, in_probe);
        assert_eq!(alone.samples[0].labels.get("path"), Some("ssh"));
    }

    #[test]
    fn prometheus_text_is_labelled_with_its_file_as_the_custom_probe_labels_its_script() {
        let text = "# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\nbroken line\n";
        let out = parse("prometheus-text", text, "/opt/jobs.sh", 0).unwrap();
        assert_eq!(out.samples.len(), 1);
        assert_eq!(out.samples[0].labels.get("script"), Some("/opt/jobs.sh"));
        assert_eq!(out.samples[0].labels.get("queue"), Some("a"));
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    }
}
