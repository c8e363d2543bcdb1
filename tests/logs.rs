//! Log collection, custom scripts and `become` through `dcmon poll` on test-bed hosts.

mod testbed;

use rusqlite::Connection;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use testbed::{Sshd, by_host, json_lines, poll, poll_one_ok, single_host};

fn shared_dir() -> tempfile::TempDir {
    // The test-bed user must read what the test writes here.
    let dir = tempfile::Builder::new()
        .prefix("dcmon-logs-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn stored_lines(db: &Path, host: &str, source: &str) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT message FROM logs WHERE host = ?1 AND source = ?2 ORDER BY id")
        .unwrap();
    stmt.query_map([host, source], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn appended_lines_are_stored_once_across_rotation() {
    let files = shared_dir();
    let log = files.path().join("app.log");
    append(&log, "old history, never imported\n");
    let bed = Sshd::start();
    let host = "127.0.3.1";
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&[host.to_string()]));
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"{host}\"\nprobes = [\"logs\"]\nlog_files = [\"{}\"]\n",
        bed.defaults(&known_hosts, "20s"),
        log.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let source = log.display().to_string();
    let round = || {
        let out = poll(&inv, &db);
        let result = json_lines(&out).remove(0);
        assert_eq!(
            result["status"],
            "ok",
            "{result}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        result
    };
    round(); // first sight: starts at the end of the file
    assert_eq!(stored_lines(&db, host, &source), Vec::<String>::new());

    append(&log, "line 1\nline 2\nline 3 half");
    round();
    append(&log, " written\n");
    round();
    // logrotate: more lines land in the old file, it becomes app.log.1, a new file starts.
    append(&log, "line 4 before rotation\n");
    std::fs::rename(&log, files.path().join("app.log.1")).unwrap();
    append(&log, "line 5 after rotation\n");
    round();
    append(&log, "line 6\n");
    round();
    round(); // nothing new: nothing stored twice
    assert_eq!(
        stored_lines(&db, host, &source),
        [
            "line 1",
            "line 2",
            "line 3 half written",
            "line 4 before rotation",
            "line 5 after rotation",
            "line 6"
        ]
    );

    // dmesg is refused to normal users on Debian: a fact about the host, not a failure.
    let conn = Connection::open(&db).unwrap();
    let unavailable: Option<String> = conn
        .query_row(
            "SELECT value FROM facts WHERE host = ?1 AND key = 'logs_unavailable'",
            [host],
            |r| r.get(0),
        )
        .ok();
    if std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|v| v.trim() == "1") {
        assert!(
            unavailable.unwrap_or_default().starts_with("dmesg: "),
            "dmesg restricted here"
        );
    }
}

#[test]
fn custom_scripts_and_become_failures() {
    let files = shared_dir();
    let script = files.path().join("gpu-jobs.sh");
    std::fs::write(&script, "#!/bin/sh\necho '# TYPE gpu_jobs_running gauge'\necho 'gpu_jobs_running{queue=\"train\"} 7'\necho 'gpu_jobs_running{queue=\"infer\" 2'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bed = Sshd::start();
    let (custom, root) = ("127.0.3.2", "127.0.3.3");
    let known_hosts = bed.write(
        "known_hosts",
        &bed.known_hosts_lines(&[custom.to_string(), root.to_string()]),
    );
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"{custom}\"\nprobes = [\"custom\"]\ncustom_scripts = [\"{}\"]\n\n[[hosts]]\nname = \"{root}\"\nbecome = true\n",
        bed.defaults(&known_hosts, "20s"),
        script.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let out = poll(&inv, &db);
    let results = json_lines(&out);
    let conn = Connection::open(&db).unwrap();
    let jobs: f64 = testbed::stored::points(&db, "gpu_jobs_running", Some(custom))
        .into_iter()
        .find(|s| s.labels.values().any(|v| v == "train"))
        .and_then(|s| s.points.first().map(|p| p.1))
        .unwrap();
    assert_eq!(jobs, 7.0);
    // The malformed line is reported with its number; the good line still counted.
    let warnings: String = conn
        .query_row(
            "SELECT warnings FROM probe_runs WHERE host = ?1 AND probe = 'custom'",
            [custom],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        warnings,
        format!(
            "section `{}` line 3: label set is not closed with `}}`",
            script.display()
        )
    );
    // Misread output is not an error, but not ok either: `partial`, with the warning.
    assert_eq!(by_host(&results, custom)["status"], "partial");
    assert_eq!(by_host(&results, custom)["warnings"]["count"], 1);

    // The test-bed user has no sudo rights: become = true fails as such, clearly.
    let become_error = by_host(&results, root)["error"].as_str().unwrap();
    assert!(
        become_error
            .starts_with("sudo -n failed (passwordless sudo needed for become = true): sudo:")
            || become_error.starts_with("sudo is not installed on the host"),
        "{become_error}"
    );
}

/// Runs the logs probe's own script with `sh` here, with a `dmesg` that prints `ring`
/// (and no journal), from `cursors`; returns what its parser reads.
fn logs_round_here(
    shims: &Path,
    ring: &str,
    cursors: &std::collections::BTreeMap<String, String>,
) -> dcmon_probes::ProbeOutput {
    std::fs::write(shims.join("ring.txt"), ring).unwrap();
    let script = format!(
        "{}{}",
        dcmon_probes::logs::inputs(&dcmon_probes::registry::ProbeInputs {
            cursors,
            log_files: &[],
            custom_scripts: &[],
            expected_gpus: None,
        }),
        dcmon_probes::logs::SCRIPT
    );
    let mut child = std::process::Command::new("sh")
        .arg("-s")
        .env("PATH", format!("{}:/usr/bin:/bin", shims.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    dcmon_probes::logs::parse(&String::from_utf8(out.stdout).unwrap())
}

/// The same boot read round after round stores each kernel line once: lines stamped
/// 0.000000 on the first read too, and a message's continuation line only with it.
#[test]
fn the_kernel_ring_of_one_boot_is_stored_once_across_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let shims = dir.path();
    for (name, body) in [
        ("dmesg", "#!/bin/sh\ncat \"$(dirname \"$0\")/ring.txt\"\n"),
        ("journalctl", "#!/bin/sh\nexit 0\n"),
    ] {
        std::fs::write(shims.join(name), body).unwrap();
        std::fs::set_permissions(shims.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let capture = include_str!("fixtures/journal/dmesg-raw-linux-6.18-vm-boot.txt");
    // The newest message goes on over a second line without a stamp (shape of a
    // multi-line kernel record in `dmesg -r`).
    let ring = format!(
        "{capture}<4>[    7.250000] md: resync of RAID array md0\n  continued: 2 of 4 disks\n"
    );
    let mut store = dcmon_store::Store::open(&dir.path().join("dcmon.db")).unwrap();
    let mut cursors = std::collections::BTreeMap::new();
    let mut stored_per_round = Vec::new();
    for round in 0..3 {
        let ring = if round == 2 {
            format!("{ring}<6>[    9.000000] eth0: link up\n")
        } else {
            ring.clone()
        };
        let output = logs_round_here(shims, &ring, &cursors);
        let run = dcmon_store::ProbeRun::ok("logs", 1_000 * (round + 1), output);
        let stored = store
            .write_round(&dcmon_store::HostRound::new("h", vec![run]))
            .unwrap();
        cursors.extend(stored.cursors.clone());
        stored_per_round.push(stored.logs);
    }
    let lines = capture.lines().count();
    // Round 1: the capture and the two-line message (one entry); round 2: nothing;
    // round 3: the one new line.
    assert_eq!(stored_per_round, vec![lines + 1, 0, 1]);
    let db = dir.path().join("dcmon.db");
    let messages = stored_lines(&db, "h", "dmesg");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Linux version 6.18.44"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "md: resync of RAID array md0\ncontinued: 2 of 4 disks"),
        "{messages:?}"
    );
    let unique: std::collections::BTreeSet<&String> = messages.iter().collect();
    assert_eq!(unique.len(), messages.len(), "{messages:?}");
}

fn xid_counters(db: &Path) -> Vec<(String, f64)> {
    let store = dcmon_store::Store::open(db).unwrap();
    let mut rows: Vec<(String, f64)> = store
        .series_latest(&dcmon_store::SeriesFilter {
            host: Some("h".into()),
            name: Some("gpu_xid_events_total".into()),
        })
        .unwrap()
        .into_iter()
        .map(|s| (format!("{:?}", s.labels), s.value))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Issue 18: an Xid line the kernel ring gains between two rounds is one event and one
/// more on its counter; the same line read again, or its copy in the journal, is not.
#[test]
fn an_xid_in_the_kernel_log_is_one_event_and_one_count() {
    let dir = tempfile::tempdir().unwrap();
    let shims = dir.path();
    let journal = dir.path().join("journal.json");
    std::fs::write(&journal, "").unwrap();
    for (name, body) in [
        (
            "dmesg",
            "#!/bin/sh\ncat \"$(dirname \"$0\")/ring.txt\"\n".to_string(),
        ),
        (
            "journalctl",
            format!("#!/bin/sh\ncat {}\n", journal.display()),
        ),
    ] {
        std::fs::write(shims.join(name), body).unwrap();
        std::fs::set_permissions(shims.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let xid = "NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.";
    let ring0 = "<6>[    1.000000] Linux version 6.1.0\n<6>[    2.000000] nvidia: loading out-of-tree module\n";
    let ring1 = format!("{ring0}<4>[  500.000000] {xid}\n");
    let ring2 = format!(
        "{ring1}<4>[  900.000000] NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.\n<4>[  901.000000] NVRM: Xid (PCI:0000:18:00): 13, pid=4242, name=python3, Graphics Exception\n"
    );
    let db = dir.path().join("dcmon.db");
    let mut store = dcmon_store::Store::open(&db).unwrap();
    let mut cursors = std::collections::BTreeMap::new();
    let mut counters = Vec::new();
    for (round, ring) in [ring0, &ring1, &ring1, &ring2].into_iter().enumerate() {
        // From round 2 on the journal holds its own copy of the first Xid line.
        if round >= 2 {
            std::fs::write(
                &journal,
                format!("{{\"MESSAGE\":\"{xid}\",\"PRIORITY\":\"4\",\"_TRANSPORT\":\"kernel\",\"__CURSOR\":\"j{round}\"}}\n"),
            )
            .unwrap();
        }
        let output = logs_round_here(shims, ring, &cursors);
        assert_eq!(output.kernel_log.as_deref(), Some("dmesg"));
        let run = dcmon_store::ProbeRun::ok("logs", 1_000_000 * (round as i64 + 1), output);
        let stored = store
            .write_round(&dcmon_store::HostRound::new("h", vec![run]))
            .unwrap();
        cursors.extend(stored.cursors.clone());
        counters.push(xid_counters(&db));
    }
    let gpu79 = r#"{"pci": "0000:3b:00", "xid": "79"}"#.to_string();
    let gpu13 = r#"{"pci": "0000:18:00", "xid": "13"}"#.to_string();
    assert_eq!(counters[0], vec![], "no Xid yet: no counter");
    assert_eq!(counters[1], vec![(gpu79.clone(), 1.0)]);
    assert_eq!(
        counters[2],
        vec![(gpu79.clone(), 1.0)],
        "read again, and the journal copy: not counted"
    );
    assert_eq!(counters[3], vec![(gpu13, 1.0), (gpu79, 2.0)]);
    // Each Xid is one stored event with its labels.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let events: Vec<(String, String)> = conn
        .prepare("SELECT source, labels FROM logs WHERE labels IS NOT NULL ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let from_ring = events.iter().filter(|(s, _)| s == "dmesg").count();
    assert_eq!(from_ring, 3, "{events:?}");
    assert!(events[0].1.contains("\"xid\":\"79\""), "{events:?}");
    // The counter starts from a 0 just before its first event, so increase() sees it.
    let zero_then_one: Vec<(i64, f64)> = testbed::stored::points(&db, "gpu_xid_events_total", None)
        .into_iter()
        .filter(|s| s.labels.values().any(|v| v == "13"))
        .flat_map(|s| s.points)
        .collect();
    assert_eq!(zero_then_one, [(3_999_999, 0.0), (4_000_000, 1.0)]);
}

/// Issue 18, end to end through the test sshd: a host whose kernel ring (a `dmesg` shim
/// printing a file the test appends to) gains an Xid 79 line between two `dcmon poll`
/// rounds gets exactly one event, labelled, and its counter +1; a third round with
/// nothing new changes neither.
#[test]
fn an_xid_between_two_polls_is_one_event_and_its_counter_plus_one() {
    let shims = shared_dir();
    let ring = shims.path().join("ring.txt");
    append(
        &ring,
        "<6>[    1.000000] Linux version 6.1.0\n<6>[    3.500000] nvidia: module loaded\n",
    );
    for (name, body) in [
        ("dmesg", format!("#!/bin/sh\ncat {}\n", ring.display())),
        ("journalctl", "#!/bin/sh\nexit 0\n".to_string()),
    ] {
        std::fs::write(shims.path().join(name), body).unwrap();
        std::fs::set_permissions(
            shims.path().join(name),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let host = "127.0.3.18";
    let (_bed, inv, db) = single_host(host, shims.path(), &[], "probes = [\"logs\"]");
    let round = || poll_one_ok(&inv, &db);
    let counter = || -> Vec<(String, f64)> {
        testbed::stored::latest(&db, host)
            .into_iter()
            .filter(|s| s.name == "gpu_xid_events_total")
            .map(|s| (serde_json::to_string(&s.labels).unwrap(), s.value))
            .collect()
    };
    let events = || -> Vec<(String, i64, String)> {
        let conn = Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT message, priority, labels FROM logs WHERE host = ?1 AND labels IS NOT NULL",
            )
            .unwrap();
        stmt.query_map([host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    round();
    assert_eq!(stored_lines(&db, host, "dmesg").len(), 2);
    assert_eq!(counter(), vec![], "no Xid, no counter");
    append(
        &ring,
        "<4>[  812.000000] NVRM: Xid (PCI:0000:3b:00): 79, pid=<unknown>, name=<unknown>, GPU has fallen off the bus.\n",
    );
    round();
    let stored = events();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1, 2, "Xid 79: crit");
    assert!(stored[0].2.contains(r#""xid":"79""#), "{stored:?}");
    assert!(stored[0].2.contains(r#""pci":"0000:3b:00""#), "{stored:?}");
    assert_eq!(
        counter(),
        vec![(r#"{"pci":"0000:3b:00","xid":"79"}"#.to_string(), 1.0)]
    );
    round();
    assert_eq!(events().len(), 1, "read again: not stored again");
    assert_eq!(
        counter(),
        vec![(r#"{"pci":"0000:3b:00","xid":"79"}"#.to_string(), 1.0)]
    );
}
