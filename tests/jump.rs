//! Jump hosts against real OpenSSH: a bastion sshd whose user may only forward, and
//! test-bed hosts that refuse any login not coming through it (see testbed/bastion.rs).

mod testbed;

use std::path::PathBuf;
use std::time::Duration;
use testbed::bastion::{Bastion, FORWARDED_FROM, private_network};
use testbed::serve::Serve;
use testbed::{Sshd, by_host, json_lines, poll};

/// The targets, the bastion, and a known_hosts file that knows both.
struct Bed {
    hosts: Sshd,
    bastion: Bastion,
    known_hosts: PathBuf,
}

fn bed(targets: &[String], bastion_addresses: &[&str]) -> Bed {
    private_network();
    let hosts = Sshd::start_full(&[], Some(FORWARDED_FROM), &|_| String::new());
    let bastion = Bastion::start(&hosts);
    let mut lines = hosts.known_hosts_lines(targets);
    for a in bastion_addresses {
        lines.push_str(&bastion.known_hosts_line(a));
    }
    let known_hosts = hosts.write("known_hosts", &lines);
    Bed {
        hosts,
        bastion,
        known_hosts,
    }
}

fn inventory(bed: &Bed, extra_defaults: &str, hosts: &[String], tail: &str) -> PathBuf {
    let list: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    let text = format!(
        "{}{extra_defaults}\n[groups.all]\nhosts = [{}]\n{tail}",
        bed.hosts.defaults(&bed.known_hosts, "10s"),
        list.join(", ")
    );
    bed.hosts.write("inventory.toml", &text)
}

/// `inventory` with every host behind the bastion at 127.0.0.1, and `more` defaults.
fn through_bastion(bed: &Bed, hosts: &[String], more: &str) -> PathBuf {
    let jump = format!("jump = \"{}\"\n{more}", bed.bastion.hop("127.0.0.1"));
    inventory(bed, &jump, hosts, "")
}

fn targets(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("127.0.3.{i}")).collect()
}

#[test]
fn hosts_behind_a_bastion_are_polled_through_one_shared_connection() {
    let names = targets(4);
    let bed = bed(&names, &["127.0.0.1"]);
    let db = bed.hosts.dir.path().join("db.sqlite");
    // Direct logins are refused: the hosts are reachable only through the bastion.
    let direct = inventory(&bed, "", &names, "");
    let out = poll(&direct, &db);
    let results = json_lines(&out);
    for name in &names {
        let r = by_host(&results, name);
        assert_ne!(r["status"], "ok", "{name} was reached directly: {r}");
    }
    let through = through_bastion(&bed, &names, "");
    let out = poll(&through, &db);
    let results = json_lines(&out);
    for name in &names {
        let r = by_host(&results, name);
        assert_eq!(r["status"], "ok", "{name}: {r}\n{}", bed.hosts.log());
    }
    assert_eq!(
        bed.bastion.logins_from("127.0.0.1"),
        1,
        "one bastion connection for all hosts:\n{}",
        bed.bastion.log()
    );
    // Nothing left behind on the hosts or the bastion once the poll is over.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let left = || {
        testbed::descendants(bed.hosts.pid()).len() + testbed::descendants(bed.bastion.pid()).len()
    };
    while left() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left(), 0, "processes left on the hosts or the bastion");
    assert!(
        bed.hosts.log().contains(&format!("from {FORWARDED_FROM} ")),
        "the hosts saw the bastion's connections:\n{}",
        bed.hosts.log()
    );
}

#[test]
fn a_two_hop_chain_of_inventory_hosts_reaches_the_hosts() {
    let names = targets(2);
    // One bastion sshd stands for two bastions: the second is reached through the first.
    let bed = bed(&names, &["127.0.0.1", "127.0.0.4"]);
    let db = bed.hosts.dir.path().join("db.sqlite");
    let tail = format!(
        "\n[[hosts]]\nname = \"outer\"\naddress = \"127.0.0.1\"\nport = {port}\nuser = \"dcmon-jump\"\njump = \"none\"\nprobes = []\n\
         \n[[hosts]]\nname = \"inner\"\naddress = \"127.0.0.4\"\nport = {port}\nuser = \"dcmon-jump\"\njump = \"outer\"\nprobes = []\n",
        port = bed.bastion.port
    );
    let inv = inventory(&bed, "jump = \"inner\"\n", &names, &tail);
    let out = poll(&inv, &db);
    let results = json_lines(&out);
    for name in &names {
        let r = by_host(&results, name);
        assert_eq!(r["status"], "ok", "{name}: {r}\n{}", bed.bastion.log());
    }
    // The bastions have no probes: polled, they are not logged in to.
    for name in ["outer", "inner"] {
        let r = by_host(&results, name);
        assert_eq!(r["status"], "ok", "{name}: {r}");
        assert_eq!(r["samples"], 0, "{name}: {r}");
    }
    // outer from the poller, inner from outer's forwarding: both once.
    assert_eq!(
        bed.bastion.logins_from("127.0.0.1"),
        1,
        "{}",
        bed.bastion.log()
    );
    assert_eq!(
        bed.bastion.logins_from(FORWARDED_FROM),
        1,
        "{}",
        bed.bastion.log()
    );
}

#[test]
fn a_wrong_bastion_host_key_is_refused_naming_the_bastion_once() {
    let names = targets(3);
    let bed = bed(&names, &[]);
    // The bastion's address holds the targets' key: a changed key for the bastion.
    let mut lines = std::fs::read_to_string(&bed.known_hosts).unwrap();
    lines.push_str(&format!(
        "[127.0.0.1]:{} {}\n",
        bed.bastion.port, bed.hosts.host_key
    ));
    std::fs::write(&bed.known_hosts, lines).unwrap();
    let db = bed.hosts.dir.path().join("db.sqlite");
    let inv = through_bastion(&bed, &names, "");
    let out = poll(&inv, &db);
    let results = json_lines(&out);
    for name in &names {
        let error = by_host(&results, name)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains(&format!("jump host {}", bed.bastion.hop("127.0.0.1")))
                && error.contains(&format!(
                    "HOST KEY CHANGED for [127.0.0.1]:{}",
                    bed.bastion.port
                )),
            "{name}: {error}"
        );
    }
    // The hosts queued behind the failed attempt got its answer: one key exchange.
    // (The bed's check that sshd listens is a connection that sends no banner.)
    let log = bed.bastion.log();
    let tries = log.matches("Connection from 127.0.0.1").count()
        - log.matches("kex_exchange_identification").count();
    assert_eq!(tries, 1, "{}", bed.bastion.log());
    assert_eq!(bed.bastion.logins_from("127.0.0.1"), 0);
}

/// Probe runs of `host` that went well, by start time.
fn ok_runs(reports: &[serde_json::Value], host: &str) -> Vec<i64> {
    reports
        .iter()
        .filter(|r| r["host"] == host)
        .flat_map(|r| r["probes"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["status"] == "ok")
        .filter_map(|p| p["started_ms"].as_i64())
        .collect()
}

#[test]
fn serve_reaches_hosts_through_a_bastion_and_comes_back_after_it_restarts() {
    let names = targets(3);
    let mut bed = bed(&names, &["127.0.0.1"]);
    let db = bed.hosts.dir.path().join("db.sqlite");
    let inv = through_bastion(&bed, &names, "interval = \"1s\"\n");
    let serve = Serve::start(&inv, &db);
    serve.wait_for(
        Duration::from_secs(20),
        "2 good rounds on every host",
        |r| names.iter().all(|h| ok_runs(r, h).len() >= 2),
    );
    assert_eq!(
        bed.bastion.logins_from("127.0.0.1"),
        1,
        "{}",
        bed.bastion.log()
    );

    bed.bastion.kill();
    serve.wait_for(Duration::from_secs(20), "the bastion reported down", |r| {
        r.iter()
            .any(|r| r.to_string().contains("jump host dcmon-jump@127.0.0.1"))
    });
    let down_at = serve.reports().len();
    bed.bastion.restart();
    serve.wait_for(Duration::from_secs(30), "every host back", |r| {
        let after = &r[down_at.min(r.len())..];
        names.iter().all(|h| !ok_runs(after, h).is_empty())
    });
}

#[test]
fn ssh_config_aliases_reach_hosts_named_only_in_the_inventory() {
    let addresses = targets(2);
    let bed = bed(&addresses, &["127.0.0.1"]);
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
    // The bastion lives in an included file, as fleets split their configs.
    std::fs::write(
        ssh.join("conf.d/bastion.conf"),
        format!(
            "Host bastion\n    HostName 127.0.0.1\n    Port {}\n    User dcmon-jump\n",
            bed.bastion.port
        ),
    )
    .unwrap();
    let config = format!(
        "Include conf.d/*.conf\n\
         Host gpu1\n    HostName 127.0.3.1\n\
         Host gpu2\n    HostName 127.0.3.2\n\
         Host gpu*\n    User {user}\n    Port {port}\n    IdentityFile {key}\n    IdentitiesOnly yes\n\
         \x20   ProxyJump bastion\n    UserKnownHostsFile {known_hosts}\n    ConnectTimeout 7\n",
        user = bed.hosts.user,
        port = bed.hosts.port,
        key = bed.hosts.client_key.display(),
        known_hosts = bed.known_hosts.display(),
    );
    std::fs::write(ssh.join("config"), config).unwrap();
    // Names only; `db1` has no alias and is not selected.
    let inv = bed.hosts.write(
        "names-only.toml",
        "[groups.gpu]\nhosts = [\"gpu1\", \"gpu2\"]\n\n[[hosts]]\nname = \"db1\"\n",
    );
    let db = bed.hosts.dir.path().join("db.sqlite");
    let env = [
        ("HOME", home.path()),
        ("SSH_AUTH_SOCK", std::path::Path::new("")),
    ];
    let inv_arg = inv.display().to_string();
    let db_arg = db.display().to_string();
    let out = testbed::dcmon_env(
        &[
            "poll",
            "gpu*",
            "--inventory",
            &inv_arg,
            "--db",
            &db_arg,
            "--json",
        ],
        &env,
    );
    let results = json_lines(&out);
    assert_eq!(
        results.len(),
        2,
        "{results:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["gpu1", "gpu2"] {
        let r = by_host(&results, name);
        assert_eq!(r["status"], "ok", "{name}: {r}");
    }
    assert_eq!(
        bed.bastion.logins_from("127.0.0.1"),
        1,
        "{}",
        bed.bastion.log()
    );

    // Where each value came from.
    let out = testbed::dcmon_env(
        &[
            "inventory",
            "list",
            "--resolved",
            "--json",
            &inv_arg,
            "gpu1",
        ],
        &env,
    );
    let listed = json_lines(&out);
    assert_eq!(listed.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let origins = &listed[0]["origins"];
    let file = ssh.join("config").display().to_string();
    assert_eq!(
        origins["address"],
        format!("ssh_config {file}:3 (Host gpu1)"),
        "{origins}"
    );
    assert_eq!(
        origins["user"],
        format!("ssh_config {file}:7 (Host gpu*)"),
        "{origins}"
    );
    assert_eq!(
        origins["jump"],
        format!("ssh_config {file}:11 (Host gpu*)"),
        "{origins}"
    );
    assert_eq!(
        origins["connect_timeout"],
        format!("ssh_config {file}:13 (Host gpu*)")
    );
    assert_eq!(origins["server_alive_interval"], "default");
    assert_eq!(
        listed[0]["jump"][0]["address"], "127.0.0.1",
        "{}",
        listed[0]
    );
    assert_eq!(listed[0]["jump"][0]["user"], "dcmon-jump");

    // The inventory wins over ssh_config, and says its line.
    std::fs::write(
        &inv,
        "[defaults]\nconnect_timeout = \"3s\"\n\n[groups.gpu]\nhosts = [\"gpu1\", \"gpu2\"]\n",
    )
    .unwrap();
    let out = testbed::dcmon_env(&["inventory", "list", "--resolved", &inv_arg, "gpu1"], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("connect_timeout"))
        .unwrap_or_default();
    assert!(
        row.contains("3s") && row.contains(&format!("{inv_arg}:2")),
        "{text}"
    );
}

/// SIGSTOP or SIGCONT to the bastion and every session process it forked.
fn signal_bastion(bastion: &Bastion, signal: &str) {
    let mut all = testbed::descendants(bastion.pid());
    all.push(bastion.pid());
    let _ = std::process::Command::new("kill")
        .arg(signal)
        .args(all.iter().map(u32::to_string))
        .status();
}

#[test]
fn a_stopped_bastion_is_given_up_and_its_hosts_come_back_when_it_continues() {
    let names = targets(3);
    let bed = bed(&names, &["127.0.0.1"]);
    let db = bed.hosts.dir.path().join("db.sqlite");
    let inv = through_bastion(&bed, &names, "interval = \"1s\"\n");
    // Short deadlines: the bed's defaults say 10s.
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("timeout = \"10s\"", "timeout = \"2s\"");
    std::fs::write(&inv, text).unwrap();
    let serve = Serve::start(&inv, &db);
    serve.wait_for(
        Duration::from_secs(20),
        "2 good rounds on every host",
        |r| names.iter().all(|h| ok_runs(r, h).len() >= 2),
    );
    signal_bastion(&bed.bastion, "-STOP");
    let stopped_at = serve.reports().len();
    serve.wait_for(
        Duration::from_secs(40),
        "every host reporting its jump host failed",
        |r| {
            let after = &r[stopped_at.min(r.len())..];
            names.iter().all(|h| {
                after.iter().any(|r| {
                    r["host"] == h.as_str()
                        && r.to_string().contains("jump host dcmon-jump@127.0.0.1")
                })
            })
        },
    );
    signal_bastion(&bed.bastion, "-CONT");
    let continued_at = serve.reports().len();
    serve.wait_for(Duration::from_secs(40), "every host back", |r| {
        let after = &r[continued_at.min(r.len())..];
        names.iter().all(|h| !ok_runs(after, h).is_empty())
    });
}

#[test]
fn a_bastion_that_refuses_forwarding_is_named_with_the_host_it_would_not_reach() {
    let names = targets(2);
    private_network();
    let hosts = Sshd::start_full(&[], Some(FORWARDED_FROM), &|_| String::new());
    let bastion = Bastion::start_with(&hosts, false);
    let mut lines = hosts.known_hosts_lines(&names);
    lines.push_str(&bastion.known_hosts_line("127.0.0.1"));
    let known_hosts = hosts.write("known_hosts", &lines);
    let bed = Bed {
        hosts,
        bastion,
        known_hosts,
    };
    let inv = through_bastion(&bed, &names, "");
    let out = poll(&inv, &bed.hosts.dir.path().join("db.sqlite"));
    let results = json_lines(&out);
    for name in &names {
        let r = by_host(&results, name);
        let error = r["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!(
                "jump host [127.0.0.1]:{} could not open a connection to [{name}]:{}",
                bed.bastion.port, bed.hosts.port
            )),
            "{r}"
        );
    }
    // It logged in once for both, then refused each channel.
    assert_eq!(
        bed.bastion.logins_from("127.0.0.1"),
        1,
        "{}",
        bed.bastion.log()
    );
}
