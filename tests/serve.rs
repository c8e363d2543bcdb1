//! `dcmon serve` against test-bed hosts: schedules, persistent sessions, a host group
//! whose sshd dies and comes back, and SIGKILL during ingest.

mod testbed;

use rusqlite::Connection;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testbed::Sshd;
use testbed::serve::Serve;

/// A group of hosts on one test bed: its port and its client key.
fn group(name: &str, range: &str, bed: &Sshd) -> String {
    format!(
        "\n[groups.{name}]\nhosts = [\"{range}\"]\nport = {}\nidentity = \"{}\"\n",
        bed.port,
        bed.client_key.display()
    )
}

fn ok_starts(reports: &[serde_json::Value], host: &str) -> Vec<i64> {
    reports
        .iter()
        .filter(|r| r["host"] == host)
        .flat_map(|r| r["probes"].as_array().unwrap().clone())
        .filter(|p| p["status"] == "ok")
        .map(|p| p["started_ms"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_dead_group_goes_offline_and_back_while_the_others_keep_their_pace() {
    let healthy = Sshd::start();
    let mut flaky = Sshd::start();
    let healthy_hosts: Vec<String> = (1..=10).map(|i| format!("127.0.4.{i}")).collect();
    let flaky_hosts: Vec<String> = (1..=10).map(|i| format!("127.0.5.{i}")).collect();
    let mut known = healthy.known_hosts_lines(&healthy_hosts);
    known.push_str(&flaky.known_hosts_lines(&flaky_hosts));
    let known_hosts = healthy.write("known_hosts", &known);
    let inventory = format!(
        "{}interval = \"1s\"\noffline_after = 2\n{}{}",
        healthy.defaults(&known_hosts, "3s"),
        group("healthy", "127.0.4.[1-10]", &healthy),
        group("flaky", "127.0.5.[1-10]", &flaky)
    );
    let inv = healthy.write("inventory.toml", &inventory);
    let db = healthy.dir.path().join("dcmon.db");
    let mut serve = Serve::start(&inv, &db);
    serve.wait_for(
        Duration::from_secs(20),
        "3 good rounds on every host",
        |r| {
            healthy_hosts
                .iter()
                .chain(&flaky_hosts)
                .all(|h| ok_starts(r, h).len() >= 3)
        },
    );

    let killed_at = Instant::now();
    flaky.kill();
    // Every flaky host misses two rounds in a row (offline_after), however loaded the
    // machine is, before its sshd comes back.
    serve.wait_for(Duration::from_secs(20), "flaky hosts marked failed", |r| {
        flaky_hosts.iter().all(|h| {
            r.iter()
                .filter(|x| x["host"] == h.as_str() && x["probes"][0]["status"] == "error")
                .count()
                >= 2
        })
    });
    std::thread::sleep(Duration::from_secs(3).saturating_sub(killed_at.elapsed()));
    flaky.restart();
    let back = Instant::now();
    serve.wait_for(Duration::from_secs(30), "flaky hosts back", |r| {
        flaky_hosts.iter().all(|h| {
            r.iter().any(|x| {
                x["host"] == h.as_str()
                    && x["probes"][0]["status"] == "ok"
                    && x["probes"][0]["started_ms"].as_i64().unwrap() > 0
                    && ok_starts(r, h).len() >= 5
            })
        })
    });
    let recovered_in = back.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    serve.signal("-TERM");

    let conn = Connection::open(&db).unwrap();
    // The affected rounds are marked, with the reason.
    let failed: i64 = conn.query_row("SELECT count(*) FROM probe_runs WHERE host LIKE '127.0.5.%' AND status = 'error' AND error LIKE '%127.0.5.%'", [], |r| r.get(0)).unwrap();
    assert!(failed >= 20, "{failed} failed runs on the dead group");
    let healthy_failed: i64 = conn
        .query_row(
            "SELECT count(*) FROM probe_runs WHERE host LIKE '127.0.4.%' AND status != 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(healthy_failed, 0);
    // Each flaky host went offline, then came back online.
    for h in &flaky_hosts {
        let events: Vec<String> = {
            let mut stmt = conn
                .prepare(
                    "SELECT message FROM logs WHERE host = ?1 AND source = 'dcmon' ORDER BY id",
                )
                .unwrap();
            stmt.query_map([h], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(events.len(), 2, "{h}: {events:?}");
        assert!(
            events[0].starts_with("host offline: 2 rounds missed:"),
            "{h}: {events:?}"
        );
        assert!(
            events[1].starts_with("host back online after"),
            "{h}: {events:?}"
        );
        let online: i64 = conn
            .query_row("SELECT online FROM hosts WHERE host = ?1", [h], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(online, 1, "{h}");
    }
    // No duplicate samples, none lost: one load sample per run that printed one.
    for h in healthy_hosts.iter().chain(&flaky_hosts) {
        let count = |name: &str, keep: fn(f64) -> bool| -> i64 {
            testbed::stored::points(&db, name, Some(h))
                .iter()
                .flat_map(|s| &s.points)
                .filter(|p| keep(p.1))
                .count() as i64
        };
        let runs = count("dcmon_probe_success", |v| v == 1.0);
        let samples = count("node_load1", |_| true);
        let producing = count("dcmon_probe_samples", |v| v > 0.0);
        let odd: Vec<(String, Option<String>, i64)> = {
            let mut stmt = conn.prepare("SELECT status, error, samples FROM probe_runs WHERE host = ?1 AND status != 'ok' AND samples > 0").unwrap();
            stmt.query_map([h], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // Nothing lost: every good run has its sample. No duplicates: no more samples
        // than runs that printed any (a run cut short by the kill keeps what it read).
        assert!(
            runs <= samples && samples <= producing,
            "{h}: {runs} good runs, {samples} samples, {producing} runs with samples; failed runs with samples: {odd:?}"
        );
    }
    // The healthy hosts kept their 1 s cadence while the others were down.
    let reports = serve.reports();
    for h in &healthy_hosts {
        let starts = ok_starts(&reports, h);
        let worst = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            worst <= 1600,
            "{h}: a round started {worst} ms after the previous one"
        );
        assert!(starts.len() >= 8, "{h}: {} rounds", starts.len());
    }
    eprintln!("flaky group recovered {recovered_in:?} after its sshd restarted");
}

#[test]
fn sigkill_during_ingest_loses_nothing_reported() {
    let bed = Sshd::start();
    let hosts: Vec<String> = (1..=30).map(|i| format!("127.0.6.{i}")).collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&hosts));
    let inventory = format!(
        "{}interval = \"500ms\"\n\n[groups.all]\nhosts = [\"127.0.6.[1-30]\"]\n",
        bed.defaults(&known_hosts, "5s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let mut serve = Serve::start(&inv, &db);
    serve.wait_for(Duration::from_secs(30), "ingest under way", |r| {
        r.len() >= 150
    });
    serve.signal("-KILL");
    let reported: Vec<serde_json::Value> = serve
        .reports()
        .into_iter()
        .filter(|r| r["event"] == "stored")
        .collect();

    // Restart on the same database, then check it.
    let mut again = Serve::start(&inv, &db);
    again.wait_for(Duration::from_secs(20), "a round after restart", |r| {
        !r.is_empty()
    });
    again.signal("-TERM");
    let conn = Connection::open(&db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let sample_counts = testbed::stored::points(&db, "dcmon_probe_samples", None);
    for r in &reported {
        let host = r["host"].as_str().unwrap();
        for p in r["probes"].as_array().unwrap() {
            let probe = p["probe"].as_str().unwrap();
            let started = p["started_ms"].as_i64().unwrap();
            let stored: Option<i64> = sample_counts
                .iter()
                .filter(|s| {
                    s.host == host && s.labels.get("probe").map(String::as_str) == Some(probe)
                })
                .flat_map(|s| &s.points)
                .find(|point| point.0 == started)
                .map(|point| point.1 as i64);
            assert_eq!(
                stored,
                Some(p["samples"].as_i64().unwrap()),
                "reported round {r} is on disk"
            );
        }
    }
    assert!(reported.len() >= 150);
}

/// Adding a host to the inventory file starts polling it and leaves the open sessions of
/// the others alone (sshd's log counts the logins); a broken edit changes nothing.
#[test]
fn inventory_edits_reload_without_reconnecting_unchanged_hosts() {
    let bed = Sshd::start();
    let addrs: Vec<String> = (1..=3).map(|i| format!("127.0.7.{i}")).collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addrs));
    let base = format!("{}interval = \"1s\"\n", bed.defaults(&known_hosts, "5s"));
    let inv = bed.write(
        "inventory.toml",
        &format!("{base}\n[groups.all]\nhosts = [\"127.0.7.[1-2]\"]\n"),
    );
    let db = bed.dir.path().join("dcmon.db");
    let serve = Serve::start(&inv, &db);
    serve.wait_for(Duration::from_secs(20), "both hosts polled twice", |r| {
        ["127.0.7.1", "127.0.7.2"]
            .iter()
            .all(|h| ok_starts(r, h).len() >= 2)
    });
    let logins = || bed.log().matches("Accepted publickey").count();
    assert_eq!(logins(), 2);

    // A broken edit: reported, the running inventory stays.
    std::fs::write(
        &inv,
        format!("{base}\n[groups.all]\nhosts = [\"127.0.7.[1-3\"]\n"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let before = serve.reports().len();
    serve.wait_for(Duration::from_secs(10), "polling goes on", |r| {
        r.len() >= before + 4
    });
    assert!(serve.reports().iter().all(|r| r["host"] != "127.0.7.3"));

    std::fs::write(
        &inv,
        format!("{base}\n[groups.all]\nhosts = [\"127.0.7.[1-3]\"]\n"),
    )
    .unwrap();
    serve.wait_for(Duration::from_secs(20), "the new host polled", |r| {
        ok_starts(r, "127.0.7.3").len() >= 2
    });
    assert_eq!(
        logins(),
        3,
        "only the new host logged in: the others kept their sessions"
    );
}

/// `dcmon serve` with no inventory watches this machine and serves the dashboard on the
/// address it prints; the overview lists the machine once its first round is stored.
#[test]
fn serve_without_inventory_shows_this_machine_on_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dcmon.db");
    let mut serve = testbed::dashboard::Dashboard::start(&["--db", db.to_str().unwrap()]);
    assert_eq!(
        serve.get("/health"),
        (200, "{\"status\":\"ok\"}".to_string())
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(45);
    let (status, page) = loop {
        let (status, page) = serve.get("/");
        // Listed from the start (status unknown); online once its first round is stored.
        if page.contains(r#"<td class="text status-online""#) || Instant::now() > deadline {
            break (status, page);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!(">{hostname}</a>")), "{page}");
    assert!(page.contains(r#"<td class="text status-online""#), "{page}");
    let _ = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "stops cleanly on SIGTERM: {status}");
}

/// Regression: `eprintln!`/`println!` panic when the reader of stderr/stdout is gone,
/// and took `dcmon serve` down with them (`dcmon serve --json | head` did). The service
/// must outlive its readers.
#[test]
fn serve_survives_closed_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dcmon.db");
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        "[[hosts]]\nname = \"me\"\ntransport = \"local\"\ninterval = \"1s\"\n",
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", testbed::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
        .args([
            "serve",
            "--json",
            "--listen",
            &listen,
            "--inventory",
            inv.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: both pipes close at once, and every round's report hits a closed stdout.
    drop(child.stdout.take());
    drop(child.stderr.take());
    std::thread::sleep(Duration::from_secs(5));
    assert!(child.try_wait().unwrap().is_none(), "dcmon serve exited");
    assert!(
        std::net::TcpStream::connect(&listen).is_ok(),
        "the dashboard still answers"
    );
    let runs = testbed::stored::points(&db, "dcmon_probe_success", Some("me"))
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| p.1 == 1.0)
        .count();
    assert!(runs >= 3, "rounds went on: {runs}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
