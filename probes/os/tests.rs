//! Tests of the os probe against a real capture, this machine's live /proc, and
//! truncated or garbled input.

use super::*;
use crate::output::{Kind, ParseError, ProbeOutput};
use proptest::prelude::*;

/// Captured on a Debian 12 KVM guest with 2 vCPUs (this project's CI machine kind).
const DEBIAN12_KVM: &str = include_str!("../../tests/fixtures/os/debian12-kvm-2cpu-os.txt");

/// The same machine kind through today's script (builtins, one `grep -H`, `df`).
const DEBIAN12_KVM_GREP: &str =
    include_str!("../../tests/fixtures/os/debian12-kvm-2cpu-os-grep.txt");

/// Today's script, filesystems left to the fs probe.
const DEBIAN12_KVM_SPLIT: &str =
    include_str!("../../tests/fixtures/os/debian12-kvm-2cpu-os-split.txt");

use crate::test_support::{fact, value};

#[test]
fn todays_split_capture_gives_exact_values_and_no_filesystems() {
    let out = parse(DEBIAN12_KVM_SPLIT);
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "node_load15", &[]), Some(4.32));
    assert_eq!(
        value(
            &out,
            "node_cpu_seconds_total",
            &[("cpu", "1"), ("mode", "user")]
        ),
        Some(6250.76)
    );
    assert_eq!(fact(&out, "cpu_model"), Some("AMD EPYC"));
    assert!(
        !out.samples
            .iter()
            .any(|s| s.name.starts_with("node_filesystem"))
    );
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
/// The capture as today's script prints it: the larger files as one `grep -H` section,
/// the CPU count as /sys/devices/system/cpu/online, no clk_tck (100 on Linux).
fn in_todays_format(old: &str) -> String {
    let sections = crate::sections::Sections::split(old);
    let mut text = String::new();
    for name in ["loadavg", "uptime", "hostname", "uname", "cpu_model"] {
        text.push_str(&format!(
            "\n==dcmon== {name}\n{}",
            sections.get(name).unwrap()
        ));
    }
    let cpus: u32 = sections.get("nproc").unwrap().trim().parse().unwrap();
    text.push_str(&format!("\n==dcmon== cpu_online\n0-{}\n", cpus - 1));
    text.push_str("\n==dcmon== files\n");
    for (path, name) in [
        ("/proc/stat", "stat"),
        ("/proc/meminfo", "meminfo"),
        ("/proc/diskstats", "diskstats"),
        ("/proc/net/dev", "netdev"),
        ("/etc/os-release", "os_release"),
    ] {
        for line in sections
            .get(name)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
        {
            text.push_str(&format!("{path}:{line}\n"));
        }
    }
    text.push_str(&format!("\n==dcmon== df\n{}", sections.get("df").unwrap()));
    text.push_str("\n==dcmon== end\n");
    text
}

#[test]
fn todays_format_reads_as_the_old_captures_do() {
    let old = parse(DEBIAN12_KVM);
    let new = parse(&in_todays_format(DEBIAN12_KVM));
    assert_eq!(new.warnings, []);
    let key = |out: &ProbeOutput| {
        let mut samples: Vec<String> = out.samples.iter().map(|s| format!("{s:?}")).collect();
        samples.sort();
        let mut facts: Vec<String> = out.facts.iter().map(|f| format!("{f:?}")).collect();
        facts.sort();
        (samples, facts)
    };
    assert_eq!(key(&new), key(&old));
    assert!(new.samples.len() > 50);
}

#[test]
fn todays_capture_gives_exact_values() {
    let out = parse(DEBIAN12_KVM_GREP);
    assert_eq!(out.warnings, []);
    assert_eq!(value(&out, "node_load1", &[]), Some(3.1));
    assert_eq!(value(&out, "node_cpus", &[]), Some(2.0));
    // cpu1 user 244851 ticks at CLK_TCK 100.
    assert_eq!(
        value(
            &out,
            "node_cpu_seconds_total",
            &[("cpu", "1"), ("mode", "user")]
        ),
        Some(2448.51)
    );
    assert_eq!(fact(&out, "kernel"), Some("6.18.44-fc-v857"));
    assert_eq!(fact(&out, "arch"), Some("x86_64"));
    assert_eq!(fact(&out, "hostname"), Some("vm"));
    assert_eq!(fact(&out, "os_id"), Some("debian"));
    assert!(value(&out, "node_memory_total_bytes", &[]).is_some_and(|v| v > 1e9));
    assert!(
        value(&out, "node_filesystem_size_bytes", &[("mountpoint", "/")]).is_some_and(|v| v > 1e9)
    );
}

#[test]
fn a_stray_line_in_the_files_section_is_a_warning_with_its_line() {
    let text = in_todays_format(DEBIAN12_KVM).replace(
        "/proc/meminfo:MemTotal",
        "grep: /proc/nope: No such file\n/proc/meminfo:MemTotal",
    );
    let out = parse(&text);
    let line = text
        .split("==dcmon== files\n")
        .nth(1)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("grep:"))
        .unwrap()
        + 1;
    assert_eq!(
        out.warnings,
        [ParseError::Malformed {
            section: "files".into(),
            line,
            reason: "expected `FILE:LINE` of a file the os probe reads".into()
        }]
    );
    assert!(value(&out, "node_memory_total_bytes", &[]).is_some());
}

#[test]
fn cpu_ranges_count_and_bad_ones_are_warnings() {
    for (ranges, cpus) in [
        ("0", 1.0),
        ("0-63", 64.0),
        ("0-3,8-11", 8.0),
        ("0,2,4-5", 4.0),
    ] {
        let out = parse(&format!("==dcmon== cpu_online\n{ranges}\n==dcmon== end\n"));
        assert_eq!(value(&out, "node_cpus", &[]), Some(cpus), "{ranges}");
    }
    for bad in ["3-1", "a-b", "0-99999999999", "-", "0-18446744073709551615"] {
        let out = parse(&format!("==dcmon== cpu_online\n{bad}\n==dcmon== end\n"));
        assert_eq!(value(&out, "node_cpus", &[]), None, "{bad}");
        assert!(
            out.warnings.iter().any(
                |w| matches!(w, ParseError::Malformed { section, .. } if section == "cpu_online")
            ),
            "{bad}: {:?}",
            out.warnings
        );
    }
}

/// The script under dash and under bash (each takes its own branch), parsed; both give
/// the same series.
#[test]
fn live_proc_of_this_machine_parses() {
    let dash = live_run("dash");
    let bash = live_run("bash");
    let names = |o: &ProbeOutput| {
        let mut n: Vec<_> = o
            .samples
            .iter()
            .map(|s| (s.name.clone(), s.labels.clone()))
            .collect();
        n.dedup();
        n
    };
    assert_eq!(names(&dash), names(&bash));
    assert_eq!(dash.facts, bash.facts);
}

/// Sources the script in `shell` itself, as the persistent shell runs it (`in_shell`),
/// and checks that the shell's variables, functions, options, directory, umask and
/// traps are as before; returns the parsed output.
fn live_run(shell: &str) -> ProbeOutput {
    let dir = std::env::temp_dir().join(format!("dcmon-os-{shell}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (before, after) = (dir.join("before"), dir.join("after"));
    let look = "set; set -o; pwd; umask; trap";
    let run = std::process::Command::new(shell)
        .arg("-c")
        .arg(format!(
            "{{ {look}; }} >\"$2\"; eval \"$1\"; {{ {look}; }} >\"$3\""
        ))
        .args([shell, SCRIPT])
        .args([&before, &after])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the shell runs");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let (before, after) = (read(&before), read(&after));
    let _ = std::fs::remove_dir_all(&dir);
    let steady = |text: &str| -> Vec<String> {
        let moving = ["_=", "BASH_", "PIPESTATUS=", "LINENO="];
        text.lines()
            .filter(|l| !moving.iter().any(|p| l.starts_with(p)))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(steady(&after), steady(&before), "{shell} kept state");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stderr.is_empty(),
        "{shell}: {stderr}"
    );
    let out = parse(&String::from_utf8_lossy(&run.stdout));
    assert_eq!(out.warnings, [], "{shell}");
    for name in [
        "node_load1",
        "node_cpu_seconds_total",
        "node_memory_available_bytes",
        "node_disk_read_bytes_total",
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
    out
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
