//! Tests of the os probe against a real capture, this machine's live /proc, and
//! truncated or garbled input.

use super::*;
use crate::output::{Kind, ParseError, ProbeOutput};
use proptest::prelude::*;

/// Captured on a Debian 12 KVM guest with 2 vCPUs (this project's CI machine kind).
const DEBIAN12_KVM: &str = include_str!("../../tests/fixtures/os/debian12-kvm-2cpu-os.txt");

fn value(out: &ProbeOutput, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| s.value)
}

fn fact<'a>(out: &'a ProbeOutput, key: &str) -> Option<&'a str> {
    out.facts
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.as_str())
}

#[test]
fn capture_gives_exact_values() {
    let out = parse(DEBIAN12_KVM);
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "node_load1", &[]), Some(0.69));
    assert_eq!(value(&out, "node_load15", &[]), Some(0.12));
    // cpu1 user 3172 ticks at CLK_TCK 100.
    assert_eq!(
        value(
            &out,
            "node_cpu_seconds_total",
            &[("cpu", "1"), ("mode", "user")]
        ),
        Some(31.72)
    );
    assert_eq!(
        value(&out, "node_cpu_all_seconds_total", &[("mode", "idle")]),
        Some(534.32)
    );
    assert_eq!(
        value(&out, "node_context_switches_total", &[]),
        Some(259903.0)
    );
    assert_eq!(value(&out, "node_intr_total", &[]), Some(149632.0));
    assert_eq!(
        value(&out, "node_memory_total_bytes", &[]),
        Some(24684084.0 * 1024.0)
    );
    assert_eq!(
        value(&out, "node_memory_used_bytes", &[]),
        Some((24684084.0 - 24309952.0) * 1024.0)
    );
    assert_eq!(value(&out, "node_swap_total_bytes", &[]), Some(0.0));
    assert_eq!(
        value(&out, "node_disk_read_bytes_total", &[("device", "vda")]),
        Some(3322250.0 * 512.0)
    );
    assert_eq!(
        value(
            &out,
            "node_disk_writes_completed_total",
            &[("device", "vda")]
        ),
        Some(6628.0)
    );
    assert_eq!(
        value(
            &out,
            "node_network_receive_bytes_total",
            &[("device", "eth0")]
        ),
        Some(118845443.0)
    );
    assert_eq!(
        value(
            &out,
            "node_network_transmit_packets_total",
            &[("device", "eth0")]
        ),
        Some(3271.0)
    );
    assert_eq!(
        value(&out, "node_filesystem_avail_bytes", &[("mountpoint", "/")]),
        Some(82946648.0 * 1024.0)
    );
    assert_eq!(value(&out, "node_uptime_seconds", &[]), Some(312.83));
    assert_eq!(value(&out, "node_cpus", &[]), Some(2.0));
    assert_eq!(
        fact(&out, "os_name"),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(fact(&out, "kernel"), Some("6.18.44-fc-v669"));
    assert_eq!(fact(&out, "cpu_model"), Some("AMD EPYC"));
    // Pseudo filesystems, loop devices and lo are left out.
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("mountpoint") != Some("/dev/shm"))
    );
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("device") != Some("loop0"))
    );
    assert!(
        out.samples
            .iter()
            .all(|s| s.labels.get("device") != Some("lo"))
    );
    let counters = out
        .samples
        .iter()
        .filter(|s| s.kind == Kind::Counter)
        .count();
    assert!(counters > 20, "{counters} counters");
}

/// The same script, run here with `sh`, parses cleanly: the parser keeps up with a
/// real kernel's /proc, not only with the capture.
#[test]
fn live_proc_of_this_machine_parses() {
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .output()
        .expect("sh runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = parse(&String::from_utf8_lossy(&run.stdout));
    assert_eq!(out.warnings, []);
    for name in [
        "node_load1",
        "node_cpu_seconds_total",
        "node_memory_available_bytes",
        "node_disk_read_bytes_total",
        "node_filesystem_size_bytes",
        "node_uptime_seconds",
    ] {
        assert!(out.samples.iter().any(|s| s.name == name), "no {name}");
    }
    let cpus = value(&out, "node_cpus", &[]).unwrap();
    let cores = out
        .samples
        .iter()
        .filter(|s| s.name == "node_cpu_seconds_total" && s.labels.get("mode") == Some("user"))
        .count();
    assert_eq!(cores as f64, cpus);
}

#[test]
fn cut_output_is_reported_truncated_and_keeps_earlier_sections() {
    let cut = &DEBIAN12_KVM[..DEBIAN12_KVM.find("==dcmon== diskstats").unwrap()];
    let out = parse(cut);
    assert!(out.warnings.contains(&ParseError::Truncated));
    assert_eq!(value(&out, "node_load5", &[]), Some(0.29));
    assert!(value(&out, "node_memory_total_bytes", &[]).is_some());
}

#[test]
fn a_garbled_section_is_a_typed_error_and_others_still_count() {
    let garbled = DEBIAN12_KVM.replace("0.69 0.29 0.12", "0.69 zero 0.12");
    let out = parse(&garbled);
    assert_eq!(
        out.warnings,
        [ParseError::Malformed {
            section: "loadavg".into(),
            line: 1,
            reason: "node_load5 `zero` is not a number".into()
        }]
    );
    assert!(value(&out, "node_memory_total_bytes", &[]).is_some());
}

#[test]
fn empty_and_foreign_output_report_missing_sections() {
    for text in ["", "sh: 1: cat: not found\n", "\0\0\u{fffd}"] {
        let out = parse(text);
        assert!(out.samples.is_empty());
        assert!(out.warnings.contains(&ParseError::MissingSection {
            section: "stat".into()
        }));
        assert!(out.warnings.contains(&ParseError::Truncated));
    }
}

#[test]
fn every_prefix_parses_without_panic() {
    for end in (0..DEBIAN12_KVM.len()).filter(|i| DEBIAN12_KVM.is_char_boundary(*i)) {
        let out = parse(&DEBIAN12_KVM[..end]);
        assert!(out.samples.iter().all(|s| s.value.is_finite()));
    }
}

#[test]
fn partitions_and_virtual_devices_are_not_disks() {
    for disk in [
        "sda", "vdb", "xvda", "nvme0n1", "mmcblk0", "dm-0", "md127", "sdaa",
    ] {
        assert!(is_whole_disk_for_test(disk), "{disk}");
    }
    for part in [
        "sda1",
        "vdb12",
        "xvda1",
        "nvme0n1p2",
        "mmcblk0p1",
        "loop7",
        "ram0",
        "zram0",
        "sr0",
    ] {
        assert!(!is_whole_disk_for_test(part), "{part}");
    }
}

fn is_whole_disk_for_test(device: &str) -> bool {
    let line = format!("8 0 {device} 1 0 8 0 1 0 8 0 0 0 0\n");
    let out = parse(&format!("==dcmon== diskstats\n{line}"));
    !out.samples.is_empty()
}

proptest! {
    #[test]
    fn mutated_capture_never_panics(pos in 0usize..5000, byte in any::<u8>(), cut in 0usize..5000) {
        let mut bytes = DEBIAN12_KVM.as_bytes().to_vec();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        bytes.truncate(cut.max(pos + 1));
        let out = parse(&String::from_utf8_lossy(&bytes));
        prop_assert!(out.samples.iter().all(|s| s.value.is_finite()));
    }

    #[test]
    fn random_text_never_panics(text in "(==dcmon== [a-z_]{0,10}\n|[ -~\t\n]{0,40}){0,30}") {
        let _ = parse(&text);
    }
}
