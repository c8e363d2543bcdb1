//! pcie probe tests: node_exporter's captured sysfs (an NVMe drive trained at 8 of 16
//! GT/s, an Ethernet NIC at its maximum), the script against a fake tree, garbage.

use super::*;
use crate::test_support::value;
use proptest::prelude::*;

const CAPTURE: &str =
    include_str!("../../tests/fixtures/pcie/sysfs-devices-nvme-nic-node-exporter.txt");

fn framed(body: &str) -> String {
    format!("\n==dcmon== devices\n{body}\n==dcmon== end\n")
}

#[test]
fn the_captured_devices_read_exactly() {
    let out = parse(&framed(CAPTURE));
    assert_eq!(out.warnings, []);
    let nvme = [("device", "0000:01:00.0"), ("class", "nvme")];
    let nic = [("device", "0000:45:00.0"), ("class", "nic")];
    assert_eq!(value(&out, "pcie_link_speed_gts", &nvme), Some(8.0));
    assert_eq!(value(&out, "pcie_link_speed_max_gts", &nvme), Some(16.0));
    assert_eq!(value(&out, "pcie_link_width", &nvme), Some(4.0));
    assert_eq!(
        value(&out, "pcie_link_downgraded", &nvme),
        Some(1.0),
        "8 of 16 GT/s"
    );
    assert_eq!(
        value(&out, "pcie_link_downgraded", &nic),
        Some(0.0),
        "5 of 5 GT/s, x4 of x4"
    );
    for severity in ["correctable", "nonfatal", "fatal"] {
        let with = [("device", "0000:01:00.0"), ("severity", severity)];
        assert_eq!(
            value(&out, "pcie_aer_errors_total", &with),
            Some(0.0),
            "{severity}"
        );
    }
}

#[test]
fn gpus_are_not_judged_here_and_odd_lines_warn() {
    let text = "/sys/bus/pci/devices/0000:3b:00.0/class:0x030200\n\
                /sys/bus/pci/devices/0000:3b:00.0/current_link_speed:2.5 GT/s PCIe\n\
                /sys/bus/pci/devices/0000:3b:00.0/max_link_speed:32.0 GT/s PCIe\n\
                /sys/bus/pci/devices/0000:3b:00.0/current_link_width:16\n\
                /sys/bus/pci/devices/0000:3b:00.0/max_link_width:16\n\
                /sys/bus/pci/devices/0000:3b:00.0/aer_dev_correctable:TOTAL_ERR_COR 17\n\
                /sys/bus/pci/devices/0000:3b:00.0/current_link_speed:Unknown\n\
                /etc/passwd:root\n";
    let out = parse(&framed(text));
    let gpu = [("device", "0000:3b:00.0"), ("class", "gpu")];
    assert_eq!(value(&out, "pcie_link_speed_max_gts", &gpu), Some(32.0));
    assert_eq!(
        value(&out, "pcie_link_downgraded", &gpu),
        None,
        "idle GPUs lower their link"
    );
    assert_eq!(
        value(
            &out,
            "pcie_aer_errors_total",
            &[("device", "0000:3b:00.0"), ("severity", "correctable")]
        ),
        Some(17.0)
    );
    let said: Vec<String> = out.warnings.iter().map(ToString::to_string).collect();
    // `Unknown` (a link down) is understood; the stray line is not.
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("line 8"), "{said:?}");
}

/// The script against a fake tree: only GPUs, NICs and NVMe are read, with two processes.
#[test]
fn the_script_reads_only_the_classes_it_watches() {
    let dir = tempfile::tempdir().unwrap();
    let devices = dir.path().join("bus/pci/devices");
    for (address, class, speed) in [
        ("0000:01:00.0", "0x010802", "16.0 GT/s PCIe"),
        ("0000:00:1f.0", "0x060100", "Unknown"), // an ISA bridge: not read
    ] {
        let d = devices.join(address);
        std::fs::create_dir_all(&d).unwrap();
        for (file, v) in [
            ("class", class),
            ("current_link_speed", speed),
            ("max_link_speed", "16.0 GT/s PCIe"),
            ("current_link_width", "4"),
            ("max_link_width", "4"),
            ("aer_dev_fatal", "Undefined 0\nDLP 0\nTOTAL_ERR_FATAL 2"),
        ] {
            std::fs::write(d.join(file), format!("{v}\n")).unwrap();
        }
    }
    let run = |sysfs: &std::path::Path| {
        parse(&crate::test_support::run_script(
            SCRIPT,
            &[("DCMON_SYSFS", sysfs.as_os_str())],
        ))
    };
    let out = run(dir.path());
    assert_eq!(out.warnings, []);
    assert_eq!(
        value(
            &out,
            "pcie_aer_errors_total",
            &[("device", "0000:01:00.0"), ("severity", "fatal")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&out, "pcie_link_downgraded", &[("device", "0000:01:00.0")]),
        Some(0.0)
    );
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("device") == Some("0000:01:00.0"))
    );
    let none = run(&dir.path().join("nothing"));
    assert!(
        none.absent
            .as_deref()
            .unwrap()
            .starts_with("no GPU, NIC or NVMe device")
    );
}

proptest! {
    #[test]
    fn never_panics(text in "([ -~]{0,60}\n){0,20}", pos in 0usize..3000, byte in any::<u8>()) {
        let _ = parse(&framed(&text));
        let damaged = crate::test_support::mutated(CAPTURE, pos, byte, usize::MAX);
        let _ = parse(&framed(&damaged));
    }
}
