//! `dcmon poll` end to end against a real OpenSSH sshd standing for many hosts.

mod testbed;

use rusqlite::Connection;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testbed::{Sshd, addresses, by_host, dcmon, json_lines, poll};

/// Series names every host must have after one round, one per family the issue names.
const REQUIRED: &[&str] = &[
    "node_load1",
    "node_memory_available_bytes",
    "node_cpu_seconds_total",
    "node_disk_read_bytes_total",
    "node_filesystem_size_bytes",
    "node_network_receive_bytes_total",
];

fn hosts_with_series(db: &std::path::Path, name: &str) -> BTreeSet<String> {
    testbed::stored::points(db, name, None)
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| s.host)
        .collect()
}

#[test]
fn fifty_hosts_store_os_samples() {
    let bed = Sshd::start();
    let addrs = addresses(50);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    let inventory = format!(
        "{}\n[groups.all]\nhosts = [\"127.0.1.[1-50]\"]\n",
        bed.defaults(&known_hosts, "10s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let out = poll(&inv, &db);
    let results = json_lines(&out);
    assert!(
        out.status.success(),
        "stderr: {}\nstdout: {:?}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        results,
        bed.log()
    );
    assert_eq!(results.len(), 50);
    let mut reported = 0;
    for r in &results {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["error"], serde_json::Value::Null);
        assert!(r["duration_ms"].as_u64().is_some());
        reported += r["samples"].as_u64().unwrap();
    }
    let expected: BTreeSet<String> = addrs.iter().cloned().collect();
    for name in REQUIRED {
        assert_eq!(hosts_with_series(&db, name), expected, "hosts with {name}");
    }
    let conn = Connection::open(&db).unwrap();
    let stored = testbed::stored::counted_samples(&db);
    // Each run also gave its three run series (duration, samples, success).
    let run_series: i64 = [
        "dcmon_probe_duration_seconds",
        "dcmon_probe_samples",
        "dcmon_probe_success",
    ]
    .into_iter()
    .flat_map(|name| testbed::stored::points(&db, name, None))
    .map(|s| s.points.len() as i64)
    .sum();
    // Two runs a host: os and the fs it brings.
    assert_eq!(run_series, 50 * 2 * 3);
    assert_eq!(
        (stored - run_series) as u64,
        reported,
        "every reported sample is in SQLite"
    );
    let runs: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_runs WHERE status = 'ok' AND probe = 'os'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 50);
    let kernel: String = conn
        .query_row(
            "SELECT value FROM facts WHERE host = '127.0.1.7' AND key = 'kernel'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!kernel.is_empty());

    // `dcmon series` reads the same data back for a shell.
    let out = dcmon(&[
        "series",
        "--db",
        db.to_str().unwrap(),
        "--host",
        "127.0.1.3",
        "--name",
        "node_load*",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = json_lines(&out);
    let names: Vec<&str> = series.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node_load1", "node_load15", "node_load5"]);
    for s in &series {
        assert_eq!(s["host"], "127.0.1.3");
        assert!(s["value"].as_f64().unwrap() >= 0.0);
        assert!(s["ts"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(s["labels"].is_object());
    }

    // `dcmon db`: the same samples counted, an online copy, an integrity check.
    let db_arg = db.to_str().unwrap();
    let out = dcmon(&["db", "stats", "--db", db_arg, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["samples"].as_i64(), Some(stored));
    // The os runs and as many fs runs.
    assert_eq!(stats["probe_runs"].as_i64(), Some(runs * 2));
    assert!(stats["bytes_per_sample"].as_f64().unwrap() > 0.0);
    assert!(stats["oldest"].as_i64().unwrap() <= stats["newest"].as_i64().unwrap());
    let out = dcmon(&["db", "stats", "--db", db_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("samples           {stored}")),
        "{text}"
    );
    assert!(text.contains("TABLE"), "{text}");
    let copy = db.with_file_name("copy.db");
    let out = dcmon(&["db", "backup", "--db", db_arg, copy.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = testbed::stored::counted_samples(&copy);
    assert_eq!(copied, stored);
    let again = dcmon(&["db", "backup", "--db", db_arg, copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let out = dcmon(&["db", "check", "--db", db_arg]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
    // A damaged database: `check` reports it (exit 1), other commands refuse it once.
    let bytes = std::fs::read(&copy).unwrap();
    let mut damaged = bytes.clone();
    damaged[4096..8192].fill(0xff);
    std::fs::write(&copy, &damaged).unwrap();
    let out = dcmon(&["db", "check", "--db", copy.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(&copy, b"not a database").unwrap();
    let out = dcmon(&["db", "check", "--db", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read it as a database"));
    let out = dcmon(&["db", "stats", "--db", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("file is not a database").count(), 1, "{said}");
    let missing = dcmon(&["db", "check", "--db", "/nonexistent/dcmon.db"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn broken_hosts_fail_alone_within_the_timeout() {
    let bed = Sshd::start();
    let addrs = addresses(50);
    let closed = testbed::free_port();
    let closed_hosts = [
        "127.0.1.10",
        "127.0.1.11",
        "127.0.1.12",
        "127.0.1.13",
        "127.0.1.14",
    ];
    let wrong_key_host = "127.0.1.20";
    // The wrong-key host's line holds the client key: a valid key, not the server's.
    let client_pub = std::fs::read_to_string(bed.client_key.with_extension("pub")).unwrap();
    let client_pub: Vec<&str> = client_pub.split_whitespace().take(2).collect();
    let known: String = addrs
        .iter()
        .map(|a| {
            let key = if a == wrong_key_host {
                client_pub.join(" ")
            } else {
                bed.host_key.clone()
            };
            format!("[{a}]:{} {key}\n", bed.port)
        })
        .collect();
    let known_hosts = bed.write("known_hosts", &known);
    let mut inventory = format!(
        "{}\n[groups.all]\nhosts = [\"127.0.1.[1-50]\"]\n",
        bed.defaults(&known_hosts, "5s")
    );
    for h in closed_hosts {
        inventory.push_str(&format!("\n[[hosts]]\nname = \"{h}\"\nport = {closed}\n"));
    }
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let started = Instant::now();
    let out = poll(&inv, &db);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "exit 1 when any host fails");
    let results = json_lines(&out);
    assert_eq!(results.len(), 50);
    let failed: BTreeSet<&str> = results
        .iter()
        .filter(|r| r["status"] == "error")
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    let mut expected: BTreeSet<&str> = closed_hosts.into_iter().collect();
    expected.insert(wrong_key_host);
    assert_eq!(failed, expected);
    for r in &results {
        let host = r["host"].as_str().unwrap();
        let error = r["error"].as_str().unwrap_or_default();
        if closed_hosts.contains(&host) {
            assert!(
                error.starts_with(&format!(
                    "TCP connect to [{host}]:{closed} failed: Connection refused"
                )),
                "{error}"
            );
        } else if host == wrong_key_host {
            assert!(
                error.starts_with(&format!("HOST KEY CHANGED for [{host}]:{}", bed.port)),
                "{error}"
            );
            assert!(
                error.contains(&format!("{}:20 holds", known_hosts.display())),
                "{error}"
            );
        } else {
            assert_eq!(r["status"], "ok", "{r}");
            assert!(r["samples"].as_u64().unwrap() > 50);
        }
    }
    // The failed hosts' attempts are recorded as probe runs with their reasons.
    let conn = Connection::open(&db).unwrap();
    let errors: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_runs WHERE status = 'error' AND error IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Six failed hosts, each with its os and fs run.
    assert_eq!(errors, 6 * 2);
    // Refusals are immediate: the round is bounded by the 5 s timeout, plus a margin
    // for starting the process on a loaded 2-core machine.
    assert!(
        took < Duration::from_secs(5) + Duration::from_secs(3),
        "round took {took:?}"
    );
}

/// A host whose TCP port accepts but never speaks SSH (a hung sshd) costs its own
/// connect timeout and nothing more.
#[test]
fn a_silent_host_times_out_alone() {
    let bed = Sshd::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let addrs = addresses(5);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    let inventory = format!(
        "{}\n[groups.all]\nhosts = [\"127.0.1.[1-5]\"]\n\n[[hosts]]\nname = \"hung\"\naddress = \"127.0.0.1\"\nport = {silent_port}\nconnect_timeout = \"2s\"\n",
        bed.defaults(&known_hosts, "10s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let started = Instant::now();
    let out = poll(&inv, &db);
    let took = started.elapsed();
    let results = json_lines(&out);
    let hung = results.iter().find(|r| r["host"] == "hung").unwrap();
    assert_eq!(
        hung["error"],
        format!(
            "no SSH session with [127.0.0.1]:{silent_port} within 2s: TCP connected but no SSH banner came (sshd stopped or overloaded, or not an SSH port)"
        )
    );
    assert_eq!(results.iter().filter(|r| r["status"] == "ok").count(), 5);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(2 + 3),
        "round took {took:?}"
    );
    drop(silent);
}

#[test]
fn unknown_host_keys_need_consent_and_are_then_remembered() {
    let bed = Sshd::start();
    let known_hosts = bed.dir.path().join("known_hosts"); // does not exist yet
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"127.0.0.9\"\n",
        bed.defaults(&known_hosts, "10s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let poll = |extra: &[&str]| {
        let mut args = vec![
            "poll",
            "--inventory",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = dcmon(&args);
        json_lines(&out).remove(0)
    };
    let refused = poll(&[]);
    assert_eq!(refused["status"], "error");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "host key of [127.0.0.9]:{} (ssh-ed25519 SHA256:",
            bed.port
        )),
        "{error}"
    );
    assert!(error.contains("--accept-new-host-keys"), "{error}");
    assert!(!known_hosts.exists(), "nothing recorded without consent");

    let accepted = poll(&["--accept-new-host-keys"]);
    assert_eq!(accepted["status"], "ok", "{accepted}");
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(
        recorded,
        format!("[127.0.0.9]:{} {}\n", bed.port, bed.host_key)
    );
    // Created for its owner alone, as OpenSSH keeps it, whatever the umask.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&known_hosts)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "known_hosts mode {mode:o}");

    let again = poll(&[]);
    assert_eq!(again["status"], "ok", "{again}");
}

#[test]
fn table_output_and_exit_code_for_the_local_machine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dcmon.db");
    let out = dcmon(&["poll", "--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("HOST"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[1], "ok", "{text}");
    assert!(row[2].parse::<u32>().unwrap() > 50, "{text}");
}

#[test]
fn refused_authentication_names_user_and_key() {
    let bed = Sshd::start();
    let addrs = addresses(2);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    // A key the server does not know, and a user sshd does not allow.
    let other_key = bed.dir.path().join("other_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(keygen.success());
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"127.0.1.1\"\nidentity = \"{}\"\n\n[[hosts]]\nname = \"127.0.1.2\"\nuser = \"nobody-here\"\n",
        bed.defaults(&known_hosts, "10s"),
        other_key.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let out = poll(&inv, &db);
    assert_eq!(out.status.code(), Some(1));
    let results = json_lines(&out);
    assert_eq!(
        by_host(&results, "127.0.1.1")["error"],
        format!(
            "[127.0.1.1]:{} refused public key authentication for user `{}` with {}",
            bed.port,
            bed.user,
            other_key.display()
        )
    );
    assert_eq!(
        by_host(&results, "127.0.1.2")["error"],
        format!(
            "[127.0.1.2]:{} refused public key authentication for user `nobody-here` with {}",
            bed.port,
            bed.client_key.display()
        )
    );
}
