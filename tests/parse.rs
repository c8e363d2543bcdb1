//! `dcmon parse` on every captured output in tests/fixtures: the same samples, facts and
//! log lines as the probe that runs that tool reads from it, every series named in the
//! probe's README; clear refusals for what cannot be read; and `dcmon probe run` against
//! a test-bed host, whose raw output `dcmon parse` reads the same way.

mod testbed;

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testbed::shims::{dell_gpu_server, fixture};
use testbed::{Sshd, dcmon};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// When the fixtures are said to be collected (`dmesg -H` dates print no year).
const AT: &str = "2024-03-01T00:00:00Z";
const AT_S: i64 = 1_709_251_200;

/// The format of each fixture, from where it lies and what it is called.
fn format_of(path: &Path) -> &'static str {
    let dir = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    match dir {
        "ipmitool" if name.contains("sensor") => "ipmitool-sensor",
        "ipmitool" if name.starts_with("sel-") => "ipmitool-sel",
        "ipmitool" if name.contains("dcmi") => "ipmitool-dcmi-power",
        "ipmitool" if name.contains("chassis-status") => "ipmitool-chassis",
        "ipmitool" if name.contains("sdr") => "ipmitool-sdr",
        "nvidia-smi" if name.ends_with(".xml") => "nvidia-smi-xml",
        "nvidia-smi" if name.starts_with("nvlink-s-") => "nvidia-smi-nvlink",
        "nvidia-smi" if name.starts_with("nvlink-e-") => "nvidia-smi-nvlink-errors",
        "nvidia-smi" if name.starts_with("lspci-") => "lspci-nvidia",
        "nvidia-smi" if name.starts_with("query-compute-apps-") => "nvidia-smi-compute-apps",
        "nvidia-smi" => "nvidia-smi-csv",
        "nvme" if name.starts_with("list-") => "nvme-list",
        "nvme" => "nvme-smart-log",
        "smartctl" if name.starts_with("scan-") => "smartctl-scan-json",
        "smartctl" => "smartctl-json",
        "journal" if name.starts_with("dmesg-") => "dmesg",
        "journal" => "journal-json",
        "os" => "os",
        "fs" => "fs",
        "apt" => "apt-get-upgrade",
        "infiniband" => "infiniband-sysfs",
        "systemctl" => "systemctl-show-fabricmanager",
        "pcie" => "pcie-sysfs",
        "redfish" => "redfish",
        _ => panic!(
            "{}: no format for this fixture: add it to format_of",
            path.display()
        ),
    }
}

/// The probe script output the captured text is part of, framed here (not by dcmon):
/// (probe, its output).
fn in_probe_output(format: &str, text: &str, path: &Path) -> (&'static str, String) {
    let section = |name: &str| format!("\n==dcmon== {name}\n{text}\n==dcmon== end\n");
    match format {
        "ipmitool-sdr" => ("ipmi", section("sdr")),
        "ipmitool-sensor" => ("ipmi", section("sensor")),
        "ipmitool-sel" => ("ipmi", section("sel")),
        "ipmitool-dcmi-power" => ("ipmi", section("dcmi")),
        "ipmitool-chassis" => ("ipmi", section("chassis")),
        "nvidia-smi-csv" => ("nvidia", section("csv")),
        "nvidia-smi-xml" => ("nvidia_details", section("xml")),
        "nvidia-smi-nvlink" => ("nvidia_details", section("nvlink")),
        "nvidia-smi-nvlink-errors" => ("nvidia_details", section("nvlink_errors")),
        "lspci-nvidia" => ("nvidia", section("pci")),
        "systemctl-show-fabricmanager" => ("nvidia_details", section("fabricmanager")),
        "nvidia-smi-compute-apps" => ("nvidia", section("apps")),
        "nvme-list" => ("nvme", section("list")),
        "nvme-smart-log" => ("nvme", section("smart-log unknown")),
        "smartctl-scan-json" => ("smart", section("scan")),
        "smartctl-json" => {
            let report: Value = serde_json::from_str(text).unwrap_or_default();
            let name = report["device"]["name"].as_str().unwrap_or("unknown");
            let kind = report["device"]["type"].as_str().unwrap_or("auto");
            ("smart", section(&format!("device {name} {kind}")))
        }
        "journal-json" => ("logs", section("journal")),
        // `dcmon parse --at` gives dmesg its collection time as the probe's line does.
        "dmesg" => (
            "logs",
            format!("\n==dcmon== dmesg\nnow={AT_S}\n{text}\n==dcmon== end\n"),
        ),
        "os" => ("os", text.to_string()),
        "fs" => ("fs", text.to_string()),
        "apt-get-upgrade" => ("apt", section("upgrade")),
        "infiniband-sysfs" => ("infiniband", section("ports")),
        "pcie-sysfs" => ("pcie", section("devices")),
        // One resource is the whole input of the bmc probe's parser.
        "redfish" => ("bmc", text.to_string()),
        other => panic!("{}: {other} has no framing here", path.display()),
    }
}

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Answers of receivers' HTTP APIs, not probe outputs: read by web's tests.
            if path.file_name().unwrap() != "prometheus-api" {
                fixtures(&path, out);
            }
        } else if path.file_name().unwrap() != "SOURCES.md" {
            out.push(path);
        }
    }
}

/// A sample as compared: name, labels, value (to the bit), unit.
type Key = (String, BTreeMap<String, String>, u64, String);

fn sample_of(v: &Value) -> Option<Key> {
    let labels = v["labels"]
        .as_object()?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Some((
        v["name"].as_str()?.to_string(),
        labels,
        v["value"].as_f64()?.to_bits(),
        v["unit"].as_str()?.to_string(),
    ))
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_fixture_parses_as_its_probe_reads_it() {
    let mut paths = Vec::new();
    fixtures(Path::new(FIXTURES), &mut paths);
    paths.sort();
    assert!(paths.len() >= 70, "{} fixtures", paths.len());
    let mut samples_seen = 0;
    for path in &paths {
        let format = format_of(path);
        let out = dcmon(&[
            "parse",
            format,
            path.to_str().unwrap(),
            "--json",
            "--at",
            AT,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap();
        let objects = json_lines(&out.stdout);
        let mut ours: Vec<Key> = objects.iter().filter_map(sample_of).collect();

        let text = std::fs::read_to_string(path).unwrap();
        let (probe, framed) = in_probe_output(format, &text, path);
        let expected = (dcmon_probes::find(probe).unwrap().parse)(&framed);
        let mut theirs: Vec<Key> = expected
            .samples
            .iter()
            .map(|s| {
                let labels = s.labels.pairs().iter().cloned().collect();
                (
                    s.name.clone(),
                    labels,
                    s.value.to_bits(),
                    s.unit.to_string(),
                )
            })
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{}: samples", path.display());
        let count = |key: &str| objects.iter().filter(|o| o.get(key).is_some()).count();
        assert_eq!(
            count("fact"),
            expected.facts.len(),
            "{}: facts",
            path.display()
        );
        assert_eq!(
            count("log"),
            expected.logs.len(),
            "{}: logs",
            path.display()
        );
        // Exit status: clean, or warnings that the probe path has too.
        let want = match (
            expected.warnings.is_empty(),
            ours.is_empty() && expected.facts.is_empty() && expected.logs.is_empty(),
        ) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        };
        assert_eq!(code, want, "{}: {stderr}", path.display());
        for w in &expected.warnings {
            assert!(
                stderr.contains(&w.to_string()),
                "{}: {w} in {stderr}",
                path.display()
            );
        }

        // Every series is in its probe's README table, with the labels it lists.
        let documented = dcmon_probes::series_doc::series(probe);
        for (name, labels, _, _) in &ours {
            let doc = documented
                .iter()
                .find(|d| &d.name == name)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: {name} is not in probes/{probe}/README.md",
                        path.display()
                    )
                });
            for key in labels.keys() {
                assert!(
                    doc.labels.contains(key),
                    "{}: {name} has label `{key}`, not in its README row {:?}",
                    path.display(),
                    doc.labels
                );
            }
        }
        samples_seen += ours.len();
    }
    assert!(samples_seen > 1000, "{samples_seen} samples compared");
}

/// `dmesg -H` dates print no year: `--at` says when the capture was taken, and a wrong
/// `--at` is refused naming the option.
#[test]
fn dmesg_human_dates_take_the_year_of_at() {
    let file = fixture("journal/dmesg-human-relative-v1.txt");
    let first_ts = |at: &str| {
        let out = dcmon(&["parse", "dmesg", &file, "--json", "--at", at]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)[0]["ts_ms"].as_i64()
    };
    assert_eq!(first_ts("2024-03-01T00:00:00Z"), Some(1_707_276_840_000)); // 2024-02-07T03:34Z
    assert_eq!(first_ts("2024-01-15T00:00:00Z"), Some(1_675_740_840_000)); // 2023-02-07
    // An Xid line's labels are keys of its JSON log object.
    let dir = tempfile::tempdir().unwrap();
    let xid = dir.path().join("xid.txt");
    std::fs::write(
        &xid,
        "[Fri Aug 30 11:43:09 2024] NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 1, SM 0): Out Of Range Address\n",
    )
    .unwrap();
    let out = dcmon(&["parse", "dmesg", xid.to_str().unwrap(), "--json"]);
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(line["xid"], "13", "{line}");
    assert_eq!(line["pci"], "0000:cb:00", "{line}");
    assert_eq!(line["xid_name"], "Graphics Engine Exception", "{line}");
    assert!(line.get("pid").is_none(), "<unknown> is no pid: {line}");
    assert_eq!(line["priority"], 3);
    let out = dcmon(&["parse", "dmesg", &file, "--at", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--at"));
}

#[test]
fn what_cannot_be_read_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let parse = |args: &[&str]| {
        let out = dcmon(&[&["parse"], args].concat());
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let sdr = fixture("ipmitool/sdr-elist-dell-curated-telegraf-v2.txt");

    let (code, err) = parse(&["ipmitool-sdrr", &sdr]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown format `ipmitool-sdrr`; known: ipmitool-sdr, ipmitool-sensor"),
        "{err}"
    );
    let (code, err) = parse(&["ipmitool-sdr", "/nonexistent/sdr.txt"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read /nonexistent/sdr.txt: No such file"),
        "{err}"
    );
    let unreadable = write("secret.txt", b"x\n");
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&unreadable).is_err() {
        // (root reads anything)
        let (code, err) = parse(&["ipmitool-sdr", &unreadable]);
        assert_eq!(code, 2);
        assert!(err.contains("Permission denied"), "{err}");
    }
    let (code, err) = parse(&["dmesg", &write("empty.txt", b"  \n\n")]);
    assert_eq!(code, 2);
    assert!(err.contains("is empty: nothing to parse"), "{err}");
    let mut garbage: Vec<u8> = (0u8..=255).collect();
    garbage.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    let (code, err) = parse(&["ipmitool-sdr", &write("garbage.bin", &garbage)]);
    assert_eq!(code, 2);
    assert!(err.contains("is binary (a NUL byte at offset 0)"), "{err}");
    let (code, err) = parse(&["nvme-list", &write("latin1.txt", b"caf\xe9\n")]);
    assert_eq!(code, 2);
    assert!(err.contains("is not UTF-8 text (at byte 3)"), "{err}");

    // Text in the wrong format: nothing read, the reason and the line.
    let (code, err) = parse(&["ipmitool-sdr", &write("wrong.txt", b"hello world\n")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("could not be parsed as ipmitool-sdr: section `sdr` line 1: not an sdr line: `hello world`"),
        "{err}"
    );
    // Mostly good with one bad line: parsed, the warning printed, status 1.
    let mut text = std::fs::read_to_string(&sdr).unwrap();
    let bad_line = text.lines().count() + 1;
    text.push_str("this is not a sensor\n");
    let (code, err) = parse(&["ipmitool-sdr", &write("mixed.txt", text.as_bytes())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "warning: section `sdr` line {bad_line}: not an sdr line: `this is not a sensor`"
        )),
        "{err}"
    );
    // Standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args(["parse", "ipmitool-sdr", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&sdr).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        json_lines(&out.stdout)
            .iter()
            .any(|o| o["name"] == "ipmi_fan_speed_rpm"
                && o["labels"]["sensor"] == "Fan1"
                && o["value"] == 5040.0
                && o["unit"] == "rpm")
    );
}

#[test]
fn probe_run_shows_the_raw_output_and_what_dcmon_read_from_it() {
    let root = tempfile::Builder::new()
        .prefix("dcmon-probe-run-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dell = dell_gpu_server(root.path());
    let bed = Sshd::start_with(&[("127.0.9.1", &dell)]);
    let known_hosts = bed.write(
        "known_hosts",
        &bed.known_hosts_lines(&["127.0.9.1".to_string()]),
    );
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"gpu1\"\naddress = \"127.0.9.1\"\n",
        bed.defaults(&known_hosts, "20s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let inv = inv.to_str().unwrap();

    // The human form: command, raw output, exit, timing, parsed samples.
    let out = dcmon(&["probe", "run", "-i", inv, "gpu1", "ipmi"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("gpu1 (127.0.9.1), probe ipmi\nvia: persistent shell; the "),
        "{text}"
    );
    assert!(
        text.contains("script as one line on the shell's stdin"),
        "{text}"
    );
    assert!(text.contains("exit status 0 after "), "{text}");
    let capture =
        std::fs::read_to_string(fixture("ipmitool/sdr-elist-dell-curated-telegraf-v2.txt"))
            .unwrap();
    assert!(text.contains(capture.trim()), "the raw sdr output: {text}");
    assert!(text.contains("--- parsed: "), "{text}");
    assert!(
        text.lines().any(|l| {
            l.starts_with("ipmi_fan_speed_rpm{entity=\"7.1\",path=\"ssh\",sensor=\"Fan1\"}")
                && l.split_whitespace().skip(1).eq(["5040", "rpm"])
        }),
        "{text}"
    );

    // What the probe path read from the host contains what `dcmon parse` reads from each
    // capture the host's tools printed.
    let run = dcmon(&["probe", "run", "-i", inv, "gpu1", "ipmi", "--json"]);
    let run: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(run["exit"], "exit status 0");
    assert_eq!(run["status"], "ok");
    assert_eq!(run["via"], "persistent shell");
    let from_host: Vec<Key> = run["parsed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(sample_of)
        .collect();
    for (format, capture) in [
        (
            "ipmitool-sdr",
            "ipmitool/sdr-elist-dell-curated-telegraf-v2.txt",
        ),
        (
            "ipmitool-dcmi-power",
            "ipmitool/dcmi-power-reading-telegraf.txt",
        ),
        (
            "ipmitool-chassis",
            "ipmitool/ipmi-sim-openipmi-2.0.33-chassis-status.txt",
        ),
    ] {
        let parsed = dcmon(&["parse", format, &fixture(capture), "--json"]);
        let samples: Vec<Key> = json_lines(&parsed.stdout)
            .iter()
            .filter_map(sample_of)
            .collect();
        assert!(!samples.is_empty(), "{capture}");
        for s in &samples {
            assert!(
                from_host.contains(s),
                "{capture}: {s:?} not in the probe's run"
            );
        }
    }

    // --raw is the output byte for byte: saved, `dcmon parse PROBE` reads it as the run did.
    for probe in ["ipmi", "nvidia", "nvme"] {
        let raw = dcmon(&["probe", "run", "-i", inv, "gpu1", probe, "--raw"]);
        assert!(raw.status.success(), "{probe}");
        let saved = root.path().join(format!("{probe}.out"));
        std::fs::write(&saved, &raw.stdout).unwrap();
        let parsed = dcmon(&["parse", probe, saved.to_str().unwrap(), "--json"]);
        let mut from_file: Vec<Key> = json_lines(&parsed.stdout)
            .iter()
            .filter_map(sample_of)
            .collect();
        let run = dcmon(&["probe", "run", "-i", inv, "gpu1", probe, "--json"]);
        let run: Value = serde_json::from_slice(&run.stdout).unwrap();
        let mut from_run: Vec<Key> = run["parsed"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(sample_of)
            .collect();
        from_file.sort();
        from_run.sort();
        assert!(!from_run.is_empty(), "{probe}");
        assert_eq!(from_file, from_run, "{probe}");
    }

    // Nothing was stored: probe run has no database.
    assert!(!bed.dir.path().join("dcmon.db").exists());
    let out = dcmon(&["probe", "run", "-i", inv, "gpu1", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown probe `nope`; known: os, fs, ipmi")
    );
}
