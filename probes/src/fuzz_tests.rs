//! Every registered probe's parser against random text, and against every fixture
//! truncated and mutated inside each of its sections: no panic, no non-finite value.
//! (Each probe also has its own targeted property tests beside it.)

use crate::registry::PROBES;
use proptest::prelude::*;

/// Every fixture file's text (tests/fixtures, all tools).
fn fixtures() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut texts = Vec::new();
    for dir in std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            texts.push(String::from_utf8_lossy(&std::fs::read(file.path()).unwrap()).into_owned());
        }
    }
    assert!(texts.len() > 80, "fixtures found: {}", texts.len());
    texts
}

/// Section names the probes' scripts print, so mutated fixtures reach the parsers.
const SECTIONS: &[&str] = &[
    "sdr",
    "dcmi",
    "chassis",
    "sel",
    "sensor",
    "csv",
    "xml",
    "list",
    "smart-log /dev/nvme0n1",
    "scan",
    "device /dev/sda sat",
    "hwmon hwmon0",
    "upgrade",
    "reboot",
    "lists",
    "ps",
    "stats",
    "journal",
    "dmesg",
    "file 12 0 /var/log/syslog",
    "script 0 /x.sh",
    "loadavg",
    "stat",
    "meminfo",
    "df",
    "apps",
    "pci",
    "expected",
    "nvlink",
    "nvlink_errors",
    "fabricmanager",
    "ports",
    "devices",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_text_never_panics(text in "(==dcmon== [a-z /0-9-]{0,20}\n|[ -~\t\n|{}\\[\\]\",:]{0,80}){0,40}") {
        for probe in PROBES {
            let out = (probe.parse)(&text);
            prop_assert!(out.samples.iter().all(|s| s.value.is_finite()), "{}", probe.name);
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(which in any::<prop::sample::Index>(), section in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let texts = fixtures();
        let mut bytes = texts[which.index(texts.len())].clone().into_bytes();
        if !bytes.is_empty() {
            let at = pos.index(bytes.len());
            bytes[at] = byte;
            bytes.truncate(cut.index(bytes.len()) + 1);
        }
        let body = String::from_utf8_lossy(&bytes);
        let text = format!("\n==dcmon== {}\n{body}\n==dcmon== end\n", SECTIONS[section.index(SECTIONS.len())]);
        for probe in PROBES {
            let out = (probe.parse)(&text);
            prop_assert!(out.samples.iter().all(|s| s.value.is_finite()), "{}", probe.name);
        }
    }
}
