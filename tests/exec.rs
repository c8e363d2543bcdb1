//! `dcmon exec` against test-bed hosts: 50 hosts with their own exit codes, a host that
//! hangs cut at the deadline (and its command stopped on the host), arguments that a
//! shell would mangle arriving unchanged, Ctrl-C, and the audit trail of all of it.

mod testbed;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testbed::{Sshd, addresses, dcmon, json_lines};

/// A bed of `n` hosts on 127.0.5.x, plus one host on a port nobody listens on.
fn bed(n: usize) -> (Sshd, std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let bed = Sshd::start();
    let hosts: Vec<String> = addresses(n)
        .iter()
        .map(|a| a.replace("127.0.", "127.5."))
        .collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&hosts));
    let inventory = format!(
        "{}\n[groups.bed]\nhosts = [\"127.5.1.[1-{n}]\"]\n\n[[hosts]]\nname = \"nowhere\"\naddress = \"127.5.9.1\"\nport = {}\n",
        bed.defaults(&known_hosts, "5s"),
        testbed::free_port()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    (bed, inv, db, hosts)
}

fn exec(inv: &std::path::Path, db: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "exec",
        "-i",
        inv.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    dcmon(&all)
}

/// Polls `done` until it holds, or panics with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose whole command line is `line` (the command itself, on the host).
fn remote_processes(line: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["-x", "-f", line])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn fifty_hosts_report_their_own_exit_codes_and_a_hung_one_is_cut_at_the_deadline() {
    let (_bed, inv, db, hosts) = bed(50);
    // Decided on each host by its own address: exit 7 and 9 on two hosts, a hang on one.
    let script = "set -- $SSH_CONNECTION; case $3 in 127.5.1.7) exit 7;; 127.5.1.9) exit 9;; 127.5.1.3) sleep 47;; esac; echo \"hi $3\"";
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args([
            "exec",
            "-i",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .args([
            "group:bed",
            "--timeout",
            "3s",
            "--json",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The hang is real: its `sleep 47` runs on the host while dcmon waits.
    wait_until(Duration::from_secs(3), "`sleep 47` never started", || {
        remote_processes("sleep 47") > 0
    });
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = json_lines(&out);
    assert_eq!(results.len(), 50);
    for r in &results {
        let host = r["host"].as_str().unwrap();
        assert!(hosts.contains(&host.to_string()), "{host}");
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "host",
            "status",
            "exit_code",
            "stdout",
            "stderr",
            "duration_ms",
        ] {
            assert!(keys.contains(&key), "{key} in {r}");
        }
        match host {
            "127.5.1.7" => assert_eq!(
                (r["status"].as_str(), r["exit_code"].as_u64()),
                (Some("failed"), Some(7))
            ),
            "127.5.1.9" => assert_eq!(
                (r["status"].as_str(), r["exit_code"].as_u64()),
                (Some("failed"), Some(9))
            ),
            "127.5.1.3" => {
                assert_eq!(r["status"], "timeout", "{r}");
                assert!(r["exit_code"].is_null());
                let ms = r["duration_ms"].as_u64().unwrap();
                assert!((3000..4500).contains(&ms), "cut at 3 s: {ms} ms");
            }
            _ => {
                assert_eq!(r["status"], "ok", "{r}");
                assert_eq!(r["exit_code"], 0);
                assert_eq!(r["stdout"], format!("hi {host}\n"));
                assert!(
                    r["duration_ms"].as_u64().unwrap() < 2500,
                    "the others do not wait: {r}"
                );
            }
        }
    }
    assert!(
        took < Duration::from_secs(6),
        "the whole fan-out took {took:?}"
    );
    // The hung command was stopped on its host, not just abandoned.
    wait_until(
        Duration::from_secs(4),
        "`sleep 47` still runs on the host",
        || remote_processes("sleep 47") == 0,
    );

    // Every host is in the audit trail with how it ended.
    let audit = dcmon(&[
        "audit",
        "--db",
        db.to_str().unwrap(),
        "--json",
        "--limit",
        "500",
    ]);
    let entries = json_lines(&audit);
    assert_eq!(entries.len(), 50);
    let of = |host: &str| entries.iter().find(|e| e["host"] == host).unwrap().clone();
    assert_eq!(of("127.5.1.3")["status"], "timeout");
    assert_eq!(of("127.5.1.7")["exit_code"], 7);
    assert_eq!(of("127.5.1.1")["output"], "hi 127.5.1.1\n");
    assert_eq!(of("127.5.1.1")["action"], "exec");
    assert!(of("127.5.1.1")["who"].as_str().unwrap().starts_with("cli:"));
    assert!(
        of("127.5.1.1")["command"]
            .as_str()
            .unwrap()
            .starts_with("'sh' '-c' 'set -- $SSH_CONNECTION;")
    );
}

#[test]
fn arguments_reach_the_host_unchanged_and_output_is_prefixed() {
    let (_bed, inv, db, _) = bed(2);
    let hostile = [
        "a'b", "$(id)", "x;y", "l1\nl2", "`uname`", "\"q\"", "*", "", "--", "a\\b",
    ];
    let mut args = vec!["127.5.1.1", "--", "printf", "[%s]\\n"];
    args.extend(hostile);
    let out = exec(&inv, &db, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want: String = hostile
        .iter()
        .map(|h| format!("[{h}]\n"))
        .collect::<String>();
    let want_prefixed: String = want.lines().map(|l| format!("127.5.1.1: {l}\n")).collect();
    assert_eq!(stdout, want_prefixed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dcmon exec: 1 hosts: 1 ok"), "{stderr}");

    // An unreachable host, a failing one, and grouped output.
    let out = exec(
        &inv,
        &db,
        &[
            "127.5.1.2,nowhere",
            "--group-output",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== 127.5.1.2 (exit 4, "), "{stdout}");
    assert!(stdout.contains("out\nstderr: err\n"), "{stdout}");
    assert!(stdout.contains("== nowhere (unreachable, "), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 failed (127.5.1.2: exit 4), 1 unreachable (nowhere)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nowhere: TCP connect to [127.5.9.1]:"),
        "{stderr}"
    );

    // A selector that selects nothing, and no command.
    let out = exec(&inv, &db, &["group:none", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let out = exec(&inv, &db, &["127.5.1.1"]);
    assert_eq!(out.status.code(), Some(2), "a command is required");
}

#[test]
fn ctrl_c_cancels_the_remote_commands() {
    let (_bed, inv, db, _) = bed(3);
    let child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args([
            "exec",
            "-i",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "group:bed",
            "--json",
            "--",
            "sleep",
            "53",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "the commands never started",
        || remote_processes("sleep 53") >= 3,
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let results = json_lines(&out);
    assert_eq!(results.len(), 3);
    assert!(
        results.iter().all(|r| r["status"] == "cancelled"),
        "{results:?}"
    );
    wait_until(
        Duration::from_secs(5),
        "`sleep 53` still runs on the hosts",
        || remote_processes("sleep 53") == 0,
    );
    let audit = json_lines(&dcmon(&["audit", "--db", db.to_str().unwrap(), "--json"]));
    assert!(
        audit.iter().all(|e| e["status"] == "cancelled"),
        "{audit:?}"
    );
}

#[test]
fn with_serve_running_exec_goes_through_its_sessions() {
    let (bed, inv, db, _) = bed(3);
    // Rounds every second, so the hosts are online (and their sessions up) at once.
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text.replacen("[defaults]\n", "[defaults]\ninterval = \"1s\"\n", 1),
    )
    .unwrap();
    let serve = testbed::dashboard::Dashboard::serve(&inv, &db);
    serve.wait_for_json("/api/hosts", Duration::from_secs(30), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter()
                .filter(|h| {
                    h["status"] == "online" && h["host"].as_str().unwrap().starts_with("127.5.1.")
                })
                .count()
                == 3
        })
    });
    let logins = || bed.log().matches("Accepted publickey").count();
    let before = logins();
    assert!(before >= 3, "serve's own logins are in sshd's log");
    let script = "set -- $SSH_CONNECTION; echo \"via $3\"";
    let out = exec(
        &inv,
        &db,
        &["group:bed", "--json", "--", "sh", "-c", script],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("through dcmon serve"), "{stderr}");
    let results = json_lines(&out);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(
            r["stdout"],
            format!("via {}\n", r["host"].as_str().unwrap())
        );
    }
    assert_eq!(
        logins(),
        before,
        "no new SSH login: serve's sessions ran it"
    );
    let audit = json_lines(&dcmon(&["audit", "--db", db.to_str().unwrap(), "--json"]));
    assert_eq!(audit.len(), 3);
    assert!(
        audit
            .iter()
            .all(|e| e["who"].as_str().unwrap().ends_with(" via serve") && e["status"] == "ok"),
        "{audit:?}"
    );
    // --standalone: dcmon's own connections, one login a host.
    let out = exec(
        &inv,
        &db,
        &["group:bed", "--standalone", "--json", "--", "true"],
    );
    assert!(out.status.success());
    assert_eq!(logins(), before + 3);
    // serve's answer to a selector that selects nothing.
    let out = exec(&inv, &db, &["group:none", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("group `none`"), "{stderr}");
}
