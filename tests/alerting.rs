//! Alerts that reach a person: `dcmon serve` evaluates its rules and a real Prometheus
//! Alertmanager (Debian's) delivers them to a webhook receiver in this test.

mod testbed;

use rusqlite::Connection;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testbed::Killed;
use testbed::Sshd;
use testbed::serve::Serve;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A webhook receiver: every JSON body Alertmanager posts, in order.
fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(json) = serde_json::from_slice(&body)
            {
                sink.lock().unwrap().push(json);
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (address, received)
}

fn wait_for(
    received: &Mutex<Vec<serde_json::Value>>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = received.lock().unwrap().iter().find(|b| pred(b)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {limit:?}; received: {:#?}",
            received.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alerts of one webhook body with this name and status.
fn alerts_in<'a>(
    body: &'a serde_json::Value,
    name: &str,
    status: &str,
) -> Vec<&'a serde_json::Value> {
    body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == name && a["status"] == status)
        .collect()
}

/// A real Alertmanager posting to the webhook at `hook`, grouped by alert and host with
/// 1 s waits; its address and a function (re)starting it on that address and storage.
fn alertmanager_for(hook: &str, dir: &std::path::Path) -> (String, impl Fn() -> Killed) {
    assert!(
        std::path::Path::new(ALERTMANAGER).exists(),
        "{ALERTMANAGER} is missing: run tests/run.sh, which installs prometheus-alertmanager"
    );
    let config = dir.join("am.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, host]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{hook}/\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let am_address = format!("127.0.0.1:{}", testbed::free_port());
    let storage = dir.join("am");
    let listen = am_address.clone();
    let start = move || {
        Killed(
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", storage.display()))
                .arg(format!("--web.listen-address={listen}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    (am_address, start)
}

#[test]
fn a_host_going_offline_reaches_alertmanager_and_resolves() {
    let (hook, received) = webhook();
    let dir = tempfile::tempdir().unwrap();
    let (am_address, alertmanager) = alertmanager_for(&hook, dir.path());
    let mut am = alertmanager();

    // A real SMTP server (aiosmtpd) printing every message it receives.
    let smtp_port = testbed::free_port();
    let mut smtpd = Killed(
        Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
                "-l",
            ])
            .arg(format!("127.0.0.1:{smtp_port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mail = Arc::new(Mutex::new(String::new()));
    let mail_sink = mail.clone();
    let smtp_out = smtpd.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(smtp_out).lines().map_while(Result::ok) {
            let mut text = mail_sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });

    // One host's nvidia-smi reports its GPU at 95 °C: a real capture, that one value changed.
    let hot_dir = dir.path().join("hot-gpu");
    std::fs::create_dir_all(&hot_dir).unwrap();
    let capture = std::fs::read_to_string(testbed::shims::fixture(
        "nvidia-smi/query-gpu-h100-80gb-hbm3-590.48.01-linux-load.csv",
    ))
    .unwrap();
    let mut lines: Vec<Vec<String>> = capture
        .lines()
        .map(|l| l.split(", ").map(str::to_string).collect())
        .collect();
    let column = lines[0]
        .iter()
        .position(|h| h == "temperature.gpu")
        .unwrap();
    lines[1][column] = "95".to_string();
    let hot_csv = hot_dir.join("query-gpu.csv");
    std::fs::write(
        &hot_csv,
        lines
            .iter()
            .map(|l| l.join(", ") + "\n")
            .collect::<String>(),
    )
    .unwrap();
    testbed::shims::shim(
        &hot_dir,
        "nvidia-smi",
        &format!(
            "--query-gpu=*) cat {} ;;\n--query-compute-apps=*) echo 'gpu_uuid, pid, process_name, used_gpu_memory [MiB]' ;;",
            hot_csv.display()
        ),
    );
    let bed = Sshd::start_with(&[("127.0.8.3", &hot_dir)]);
    let mut flaky = Sshd::start();
    let healthy: Vec<String> = (1..=3).map(|i| format!("127.0.8.{i}")).collect();
    let mut known = bed.known_hosts_lines(&healthy);
    known.push_str(&flaky.known_hosts_lines(&["127.0.9.1".to_string()]));
    let known_hosts = bed.write("known_hosts", &known);
    let inventory = format!(
        "{}interval = \"1s\"\noffline_after = 2\n\n[groups.healthy]\nhosts = [\"127.0.8.[1-3]\"]\n\n[[hosts]]\nname = \"127.0.8.3\"\ngroups = [\"healthy\"]\nprobes = [\"os\", \"nvidia\"]\n\n[[hosts]]\nname = \"flaky\"\naddress = \"127.0.9.1\"\nport = {}\nidentity = \"{}\"\nconnect_timeout = \"1s\"\n\n[alerting]\nevaluation_interval = \"1s\"\n\n[[alerts]]\nname = \"HostDown\"\nexpr = 'dcmon_host_up == 0'\nseverity = \"critical\"\nannotations = {{ summary = \"{{{{ $labels.host }}}} is offline (up = {{{{ $value }}}})\" }}\n\n[[alerts]]\nname = \"GpuHot\"\nexpr = 'max by (host, gpu) (nvidia_gpu_temperature_celsius) > 85'\nseverity = \"critical\"\nannotations = {{ summary = \"GPU {{{{ $labels.gpu }}}} on {{{{ $labels.host }}}} at {{{{ $value }}}} °C\" }}\n\n[[notify]]\nname = \"am\"\nalertmanager = \"http://{am_address}\"\n\n[[notify]]\nname = \"mail\"\nsmtp = {{ server = \"127.0.0.1:{smtp_port}\", from = \"dcmon@example.net\", to = [\"ops@example.net\"], tls = \"none\" }}\nmatch = {{ alertname = \"HostDown\" }}\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n",
        bed.defaults(&known_hosts, "5s"),
        flaky.port,
        flaky.client_key.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let check = testbed::dcmon(&["inventory", "check", inv.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let db = bed.dir.path().join("dcmon.db");
    let serve = Serve::start(&inv, &db);
    serve.wait_for(Duration::from_secs(20), "flaky's first round", |reports| {
        reports
            .iter()
            .any(|r| r["host"] == "flaky" && r["probes"][0]["status"] == "ok")
    });

    // The hot GPU fires with its value in the summary.
    let hot = wait_for(&received, "GpuHot firing", Duration::from_secs(30), |b| {
        !alerts_in(b, "GpuHot", "firing").is_empty()
    });
    let gpu = alerts_in(&hot, "GpuHot", "firing");
    assert_eq!(gpu.len(), 1, "{hot:#}");
    assert_eq!(gpu[0]["labels"]["host"], "127.0.8.3");
    assert_eq!(
        gpu[0]["annotations"]["summary"],
        "GPU 0 on 127.0.8.3 at 95.0 °C"
    );

    // The host goes down while Alertmanager is down too, for a minute: the alert reaches
    // it once it is back (dcmon sends every active alert at every evaluation).
    drop(am);
    flaky.kill();
    std::thread::sleep(Duration::from_secs(60));
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|b| alerts_in(b, "HostDown", "firing").is_empty()),
        "nothing can reach a stopped Alertmanager"
    );
    am = alertmanager();
    let down = wait_for(&received, "HostDown firing", Duration::from_secs(30), |b| {
        !alerts_in(b, "HostDown", "firing").is_empty()
    });
    let firing = alerts_in(&down, "HostDown", "firing");
    assert_eq!(firing.len(), 1, "{down:#}");
    assert_eq!(firing[0]["labels"]["host"], "flaky");
    assert_eq!(firing[0]["labels"]["severity"], "critical");
    assert_eq!(
        firing[0]["annotations"]["summary"],
        "flaky is offline (up = 0.0)"
    );

    // The same alert by e-mail, subject and body naming host, alert and value.
    let mailed = |what: &str| mail.lock().unwrap().matches(what).count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while mailed("Subject: [FIRING] HostDown on flaky: flaky is offline (up = 0.0)") == 0 {
        assert!(
            Instant::now() < deadline,
            "no mail: {}",
            mail.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(mailed("value: 0") >= 1, "{}", mail.lock().unwrap());
    assert!(mailed("host = flaky") >= 1, "{}", mail.lock().unwrap());

    // SIGKILL of serve while the alert fires, and a restart: the same alert (same start
    // time from the stored state), so Alertmanager does not announce it again.
    let mut serve = serve;
    serve.signal("-9");
    let serve = Serve::start(&inv, &db);
    std::thread::sleep(Duration::from_secs(5));
    let notified = |status: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|b| !alerts_in(b, "HostDown", status).is_empty())
            .count()
    };
    assert_eq!(notified("firing"), 1, "{:#?}", received.lock().unwrap());
    assert_eq!(
        mailed("[FIRING] HostDown"),
        1,
        "mailed once: {}",
        mail.lock().unwrap()
    );

    flaky.restart();
    wait_for(
        &received,
        "HostDown resolved",
        Duration::from_secs(30),
        |b| !alerts_in(b, "HostDown", "resolved").is_empty(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while mailed("Subject: [RESOLVED] HostDown on flaky") == 0 {
        assert!(
            Instant::now() < deadline,
            "no resolved mail: {}",
            mail.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing else ever fired: not for the healthy hosts, not a built-in rule.
    for body in received.lock().unwrap().iter() {
        for alert in body["alerts"].as_array().unwrap() {
            let (name, host) = (&alert["labels"]["alertname"], &alert["labels"]["host"]);
            let expected = (name == "HostDown" && host == "flaky")
                || (name == "GpuHot" && host == "127.0.8.3");
            assert!(expected, "{alert}");
        }
    }
    // Flaky's OS probe counted its failures in a row while it was down (ProbeFailing
    // stayed quiet: HostDown says it all), and counts from zero again now.
    let failures: Vec<f64> =
        testbed::stored::points(&db, "dcmon_probe_failures_in_a_row", Some("flaky"))
            .into_iter()
            .flat_map(|s| s.points)
            .map(|p| p.1)
            .collect();
    let most = failures.iter().copied().fold(0.0, f64::max);
    assert!(most >= 3.0, "{failures:?}");
    assert_eq!(failures.last(), Some(&0.0), "{failures:?}");
    // The history holds both transitions, with their values.
    let conn = Connection::open(&db).unwrap();
    let history: Vec<(String, f64)> = conn
        .prepare("SELECT state, value FROM alert_history WHERE rule = 'HostDown' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        history,
        [("firing".to_string(), 0.0), ("resolved".to_string(), 0.0)]
    );
    drop(serve);
    drop(am);
}

/// Any webhook body (Alertmanager's JSON or Slack's text) that names `host`'s `Up`.
fn names_host(body: &serde_json::Value, host: &str) -> bool {
    let in_alerts = body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["labels"]["host"] == host && a["status"] == "firing");
    let in_text = body["text"]
        .as_str()
        .is_some_and(|t| t.contains("[FIRING") && t.contains(&format!("on {host}")));
    in_alerts || in_text
}

#[test]
fn silences_mute_alertmanager_and_direct_receivers_until_they_end() {
    let (am_hook, am_received) = webhook();
    let (direct, direct_received) = webhook();
    let (slack, slack_received) = webhook();
    let dir = tempfile::tempdir().unwrap();
    let (am_address, alertmanager) = alertmanager_for(&am_hook, dir.path());
    let _am = alertmanager();
    let bed = Sshd::start();
    let hosts: Vec<String> = (1..=3).map(|i| format!("127.0.10.{i}")).collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&hosts));
    let inventory = format!(
        "{}interval = \"1s\"\n\n[groups.all]\nhosts = [\"127.0.10.[1-3]\"]\n\n[alerting]\nevaluation_interval = \"1s\"\nbuiltin = false\n\n[[alerts]]\nname = \"Up\"\nexpr = 'dcmon_host_up == 1'\nannotations = {{ summary = \"{{{{ $labels.host }}}} is up\" }}\n\n[[notify]]\nname = \"am\"\nalertmanager = \"http://{am_address}\"\n\n[[notify]]\nname = \"hook\"\nwebhook = \"http://{direct}/hook\"\ngroup_by = [\"alertname\", \"host\"]\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n\n[[notify]]\nname = \"slack\"\nslack = \"http://{slack}/services/T0/B0/x\"\ngroup_by = [\"...\"]\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\n",
        bed.defaults(&known_hosts, "5s"),
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let db_arg = db.to_str().unwrap();

    // Bad silences are refused with the reason, before anything is stored.
    for (args, why) in [
        (vec!["host=", "--for", "1h"], "--comment"),
        (
            vec!["host=~\"(\"", "--for", "1h", "--comment", "x"],
            "bad regular expression",
        ),
        (
            vec!["host=a", "--for=-5m", "--comment", "x"],
            "is not a duration",
        ),
        (
            vec!["host=a", "--for", "400d", "--comment", "x"],
            "is not a duration",
        ),
        (
            vec!["host=a", "--for", "1h", "--comment", " "],
            "must say why",
        ),
        (
            vec!["host!=a", "--for", "1h", "--comment", "x"],
            "at least one must need a value",
        ),
    ] {
        let mut all = vec!["alerts", "silence"];
        all.extend(args.iter().copied());
        all.extend(["--db", db_arg]);
        let out = testbed::dcmon(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(why),
            "{all:?}: {stderr}"
        );
    }
    let silence = |matchers: &str, length: &str, comment: &str| {
        let out = testbed::dcmon(&[
            "alerts",
            "silence",
            matchers,
            "--for",
            length,
            "--comment",
            comment,
            "--db",
            db_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let created = Instant::now();
    assert!(silence("host=127.0.10.1", "25s", "expires by itself").starts_with("silence 1: "));
    assert!(
        silence(
            r#"host="127.0.10.2",alertname=~"U.*""#,
            "1h",
            "lifted by hand"
        )
        .starts_with("silence 2: ")
    );

    let serve = Serve::start(&inv, &db);
    // The host nobody silenced reaches every receiver: Alertmanager, the webhook in
    // Alertmanager's JSON, and Slack's text.
    for (received, what) in [
        (&am_received, "Alertmanager"),
        (&direct_received, "webhook"),
        (&slack_received, "slack"),
    ] {
        wait_for(received, what, Duration::from_secs(30), |b| {
            names_host(b, "127.0.10.3")
        });
    }
    let hook = direct_received.lock().unwrap()[0].clone();
    assert_eq!(hook["version"], "4", "{hook:#}");
    assert_eq!(hook["receiver"], "hook");
    assert_eq!(hook["groupLabels"]["host"], "127.0.10.3");
    assert_eq!(hook["commonAnnotations"]["summary"], "127.0.10.3 is up");
    assert_eq!(hook["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);

    // Both silences were copied to Alertmanager, and the CLI shows the muted alerts.
    let silences: serde_json::Value =
        serde_json::from_str(&testbed::http_get(&am_address, "/api/v2/silences").unwrap()).unwrap();
    let comments: Vec<&str> = silences
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"]["state"] == "active")
        .filter_map(|s| s["comment"].as_str())
        .collect();
    assert!(
        comments.contains(&"dcmon silence 1: expires by itself"),
        "{silences:#}"
    );
    assert!(
        comments.contains(&"dcmon silence 2: lifted by hand"),
        "{silences:#}"
    );
    let states = || -> Vec<(String, String)> {
        let out = testbed::dcmon(&["alerts", "--json", "--db", db_arg]);
        let mut found: Vec<(String, String)> = testbed::json_lines(&out)
            .iter()
            .map(|a| {
                (
                    a["labels"]["host"].as_str().unwrap().to_string(),
                    a["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        states(),
        [
            ("127.0.10.1".into(), "silenced".into()),
            ("127.0.10.2".into(), "silenced".into()),
            ("127.0.10.3".into(), "firing".into())
        ]
    );
    std::thread::sleep(Duration::from_secs(3));
    let heard = |host: &str| {
        [&am_received, &direct_received, &slack_received]
            .iter()
            .filter(|r| r.lock().unwrap().iter().any(|b| names_host(b, host)))
            .count()
    };
    assert!(
        created.elapsed() < Duration::from_secs(25),
        "the test bed is too slow to check silence 1"
    );
    assert_eq!(
        (heard("127.0.10.1"), heard("127.0.10.2")),
        (0, 0),
        "silenced hosts were announced"
    );

    // Lifting silence 2 resumes its alerts everywhere; a second lift says it had ended.
    let out = testbed::dcmon(&["alerts", "unsilence", "2", "--db", db_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (received, receiver) in [
        (&am_received, "Alertmanager"),
        (&direct_received, "webhook"),
        (&slack_received, "slack"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !received
            .lock()
            .unwrap()
            .iter()
            .any(|b| names_host(b, "127.0.10.2"))
        {
            assert!(
                Instant::now() < deadline,
                "no lifted host at {receiver} within 30s; Alertmanager's silences {:?}, alerts {:?}",
                testbed::http_get(&am_address, "/api/v2/silences"),
                testbed::http_get(&am_address, "/api/v2/alerts")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let again = testbed::dcmon(&["alerts", "unsilence", "2", "--db", db_arg]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already ended"));
    let unknown = testbed::dcmon(&["alerts", "unsilence", "99", "--db", db_arg]);
    assert!(!unknown.status.success());
    // Alertmanager's copy of silence 2 was lifted too.
    let silences: serde_json::Value =
        serde_json::from_str(&testbed::http_get(&am_address, "/api/v2/silences").unwrap()).unwrap();
    let copy = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["comment"] == "dcmon silence 2: lifted by hand")
        .unwrap();
    assert_eq!(copy["status"]["state"], "expired", "{copy:#}");

    // Silence 1 ends by itself: its host is announced too.
    for (received, receiver) in [
        (&am_received, "Alertmanager"),
        (&direct_received, "webhook"),
        (&slack_received, "slack"),
    ] {
        wait_for(
            received,
            &format!("host after expiry at {receiver}"),
            Duration::from_secs(40),
            |b| names_host(b, "127.0.10.1"),
        );
    }
    assert!(
        created.elapsed() >= Duration::from_secs(25),
        "announced before its silence ended"
    );
    assert_eq!(states().iter().filter(|s| s.1 == "firing").count(), 3);

    // Every silence and its lifting is in the audit trail, and each receiver's record
    // counts what it delivered.
    let conn = Connection::open(&db).unwrap();
    let audited: Vec<(String, String)> = conn
        .prepare("SELECT action, host FROM audit WHERE action LIKE '%silence' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        audited,
        [
            ("silence".to_string(), "127.0.10.1".to_string()),
            ("silence".to_string(), "127.0.10.2".to_string()),
            ("unsilence".to_string(), "127.0.10.2".to_string())
        ]
    );
    let delivered: i64 = conn
        .query_row("SELECT sent FROM receivers WHERE name = 'slack'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(delivered >= 3, "slack messages: {delivered}");
    drop(serve);
}
