//! Tests of the fs probe against a real capture, the df sections of the os probe's older
//! captures, this machine's live df, and hostile input.

use super::*;
use crate::output::ParseError;
use crate::test_support::value;
use proptest::prelude::*;

/// `sh probes/fs/fs.sh` on the build machine (Debian 12 KVM guest).
const DEBIAN12_KVM: &str = include_str!("../../tests/fixtures/fs/debian12-kvm-2cpu-fs.txt");

/// The os probe's capture from before the split, df section included.
const OS_WITH_DF: &str = include_str!("../../tests/fixtures/os/debian12-kvm-2cpu-os-grep.txt");

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[test]
fn capture_gives_exact_values_and_leaves_pseudo_filesystems_out() {
    let out = parse(DEBIAN12_KVM);
    assert_eq!(out.warnings, []);
    let root = [("device", "/dev/vda"), ("mountpoint", "/")];
    assert_eq!(
        value(&out, "node_filesystem_size_bytes", &root),
        Some(264212084.0 * 1024.0)
    );
    assert_eq!(
        value(&out, "node_filesystem_used_bytes", &root),
        Some(24528688.0 * 1024.0)
    );
    assert_eq!(
        value(&out, "node_filesystem_avail_bytes", &root),
        Some(70757200.0 * 1024.0)
    );
    // devtmpfs on /dev, tmpfs on /dev/shm and /sys/fs/cgroup: not filesystems to watch.
    assert_eq!(out.samples.len(), 3, "{:?}", out.samples);
}

/// `dcmon parse os` of a capture from before the split and `fs` of its df section give
/// the same filesystem samples.
#[test]
fn the_os_probes_older_captures_read_the_same() {
    let os = crate::os::parse(OS_WITH_DF);
    let df = OS_WITH_DF
        .split("==dcmon== df\n")
        .nth(1)
        .unwrap()
        .split("==dcmon== end")
        .next()
        .unwrap();
    let fs = parse(&format!("==dcmon== df\n{df}==dcmon== end\n"));
    assert_eq!(fs.warnings, []);
    let filesystems: Vec<_> = os
        .samples
        .iter()
        .filter(|s| s.name.starts_with("node_filesystem_"))
        .cloned()
        .collect();
    assert_eq!(fs.samples, filesystems);
    assert!(!fs.samples.is_empty());
}

#[test]
fn mount_points_with_spaces_and_512_byte_blocks() {
    let text = "==dcmon== df\nFilesystem 512-blocks Used Available Capacity Mounted on\n\
                /dev/sdb1 2000 500 1500 25% /mnt/my disk\n==dcmon== end\n";
    let out = parse(text);
    assert_eq!(out.warnings, []);
    let labels = [("device", "/dev/sdb1"), ("mountpoint", "/mnt/my disk")];
    assert_eq!(
        value(&out, "node_filesystem_size_bytes", &labels),
        Some(2000.0 * 512.0)
    );
}

#[test]
fn a_bad_line_is_a_warning_with_its_line_and_a_cut_run_is_truncated() {
    let text = DEBIAN12_KVM.replace("264212084", "26421208x");
    let out = parse(&text);
    assert_eq!(
        out.warnings,
        [ParseError::Malformed {
            section: "df".to_string(),
            line: 4,
            reason: "size `26421208x` is not a number".to_string(),
        }]
    );
    let cut = &DEBIAN12_KVM[..DEBIAN12_KVM.find("==dcmon== end").unwrap()];
    assert!(parse(cut).warnings.contains(&ParseError::Truncated));
    let out = parse("");
    assert!(out.warnings.contains(&ParseError::MissingSection {
        section: "df".to_string()
    }));
}

#[test]
fn live_df_of_this_machine_parses() {
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .output()
        .expect("sh runs");
    assert!(run.status.success());
    let out = parse(&String::from_utf8_lossy(&run.stdout));
    assert_eq!(out.warnings, []);
    let root = [("mountpoint", "/")];
    assert!(value(&out, "node_filesystem_size_bytes", &root).is_some_and(|v| v > GIB));
}

proptest! {
    #[test]
    fn mutated_capture_never_panics(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let mut bytes = DEBIAN12_KVM.as_bytes().to_vec();
        if pos < bytes.len() {
            bytes[pos] = byte;
        }
        bytes.truncate(cut.max(1));
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}
