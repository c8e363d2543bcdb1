//! (m) Hosts behind one jump host: dcmon's rounds through one shared connection to the
//! bastion against its direct rounds, and its cold connects against OpenSSH's `ssh -J`
//! through parallel-ssh (one bastion connection per target). Runs in a private network
//! namespace (root), like tests/jump.rs, with a real bastion sshd.

use crate::testbed::{
    self,
    bastion::{Bastion, JUMP_USER, private_network},
};
use dcmon_inventory::{Host, Identity, ShellMode, SshEndpoint};
use dcmon_poller::ssh::{Connector, SshSession};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const CAP: usize = 1 << 24;
const WARM_ROUNDS: usize = 5;

/// Connects every host at once (`crate::connect_all`): the sessions that came up, and
/// the wall time; the first error, if any, is printed.
fn connect_all(
    runtime: &tokio::runtime::Runtime,
    connector: &Arc<Connector>,
    hosts: &[Host],
) -> (Duration, Vec<SshSession>) {
    let started = Instant::now();
    let (sessions, errors) = crate::connect_all(runtime, connector, hosts);
    if let Some(e) = errors.first() {
        println!("  (first connect error: {e})");
    }
    (started.elapsed(), sessions)
}

/// One os probe run on every session at once through its persistent shell: wall time,
/// poller CPU, runs that succeeded.
fn warm_round(
    runtime: &tokio::runtime::Runtime,
    sessions: &Arc<Vec<SshSession>>,
) -> (Duration, f64, usize) {
    let me = std::process::id();
    let (cpu0, _) = crate::cpu_of(me);
    let started = Instant::now();
    let ok = runtime.block_on(async {
        let tasks: Vec<_> = (0..sessions.len())
            .map(|i| {
                let s = sessions.clone();
                tokio::spawn(async move {
                    let script = dcmon_probes::os::SCRIPT;
                    let (result, _) = s[i]
                        .run_probe(script, true, false, ShellMode::Persistent, LIMIT, CAP)
                        .await;
                    result.is_ok_and(|o| o.success())
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap_or(false));
        }
        ok
    });
    let wall = started.elapsed();
    let (cpu1, _) = crate::cpu_of(me);
    (wall, cpu1 - cpu0, ok)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn jump_rounds(n: usize) {
    private_network();
    let bed = testbed::Sshd::start();
    let bastion = Bastion::start(&bed);
    let (addrs, known_hosts, inventory) = crate::bed_inventory(&bed, n, "60s");
    let mut lines = std::fs::read_to_string(&known_hosts).unwrap_or_default();
    lines.push_str(&bastion.known_hosts_line("127.0.0.1"));
    std::fs::write(&known_hosts, lines).unwrap();
    let hop = SshEndpoint {
        name: bastion.hop("127.0.0.1"),
        address: "127.0.0.1".to_string(),
        port: bastion.port,
        user: JUMP_USER.to_string(),
        identity: Identity::File(bed.client_key.clone()),
        passphrase_file: None,
        certificate: None,
        known_hosts: known_hosts.clone(),
        accept_new_host_keys: false,
        connect_timeout: LIMIT,
        server_alive_interval: None,
    };
    let behind: Vec<Host> = inventory
        .hosts
        .iter()
        .cloned()
        .map(|mut h| {
            h.jump = vec![hop.clone()];
            h
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "\n(m) {n} hosts behind one jump host (a real bastion sshd; KEX curve25519-sha256 on both sides)"
    );

    let direct_connector = Arc::new(Connector::new(dcmon_poller::ssh::DEFAULT_HANDSHAKE_LIMIT));
    let (direct_cold, direct) = connect_all(&runtime, &direct_connector, &inventory.hosts);
    let jump_connector = Arc::new(Connector::new(dcmon_poller::ssh::DEFAULT_HANDSHAKE_LIMIT));
    let logins0 = bastion.logins_from("127.0.0.1");
    let (jump_cold, via) = connect_all(&runtime, &jump_connector, &behind);
    let jump_logins = bastion.logins_from("127.0.0.1") - logins0;
    let (direct, via) = (Arc::new(direct), Arc::new(via));
    // Alternating, so a slow moment of the machine hits both.
    let (mut direct_wall, mut direct_cpu, mut via_wall, mut via_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut direct_ok, mut via_ok) = (0, 0);
    for _ in 0..WARM_ROUNDS {
        let (w, c, ok) = warm_round(&runtime, &direct);
        direct_wall.push(w.as_secs_f64());
        direct_cpu.push(c);
        direct_ok = ok;
        let (w, c, ok) = warm_round(&runtime, &via);
        via_wall.push(w.as_secs_f64());
        via_cpu.push(c);
        via_ok = ok;
    }
    let (dw, vw) = (median(direct_wall), median(via_wall));
    println!(
        "  dcmon cold connect: direct {:.2}s ({}/{n}); through the jump host {:.2}s ({}/{n}), {} jump host connection(s) opened ({} bastion logins)",
        direct_cold.as_secs_f64(),
        direct.len(),
        jump_cold.as_secs_f64(),
        via.len(),
        jump_connector.jump_connections_opened(),
        jump_logins
    );
    println!(
        "  dcmon warm os round, median of {WARM_ROUNDS}: direct {dw:.3}s (poller CPU {:.2}s, ok {direct_ok}), through the jump host {vw:.3}s (poller CPU {:.2}s, ok {via_ok}): {:.2}x the direct round (target within 1.5x)",
        median(direct_cpu),
        median(via_cpu),
        vw / dw
    );
    drop(via);
    drop(direct);

    // OpenSSH: `ssh -J` through parallel-ssh, one bastion connection per target. Options
    // on ssh's command line do not reach the jump host's ssh: a config file does (-F).
    let config = bed.write(
        "pssh-jump.config",
        &format!(
            "Host 127.0.0.1\n  Port {bport}\n  User {JUMP_USER}\n\
             Host *\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  UserKnownHostsFile {kh}\n\
             \x20 StrictHostKeyChecking yes\n  BatchMode yes\n  KexAlgorithms curve25519-sha256\n",
            bport = bastion.port,
            port = bed.port,
            user = bed.user,
            key = bed.client_key.display(),
            kh = known_hosts.display(),
        ),
    );
    let hosts_file = bed.write("pssh-hosts", &addrs.join("\n"));
    let logins0 = bastion.logins_from("127.0.0.1");
    let me = std::process::id();
    let (_, kids0) = crate::cpu_of(me);
    let started = Instant::now();
    let out = std::process::Command::new("parallel-ssh")
        .args(["-h", hosts_file.to_str().unwrap_or_default()])
        .args(["-p", "200", "-t", "120", "-x"])
        .arg(format!(
            "-F {} -J {JUMP_USER}@127.0.0.1:{}",
            config.display(),
            bastion.port
        ))
        .arg("true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .output();
    let wall = started.elapsed();
    let (_, kids1) = crate::cpu_of(me);
    match out {
        Ok(out) => {
            let ok = String::from_utf8_lossy(&out.stdout)
                .matches("[SUCCESS]")
                .count();
            let logins = bastion.logins_from("127.0.0.1") - logins0;
            println!(
                "  parallel-ssh -p 200 with ssh -J, `true`: wall {:.2}s, client CPU {:.2}s, ok {ok}/{n}, {logins} bastion logins",
                wall.as_secs_f64(),
                kids1 - kids0
            );
            println!(
                "  cold connect through the jump host: dcmon {:.1}x faster than ssh -J via parallel-ssh, with {} jump connection(s) instead of {logins}",
                wall.as_secs_f64() / jump_cold.as_secs_f64(),
                jump_connector.jump_connections_opened()
            );
        }
        Err(e) => println!("  parallel-ssh unavailable ({e}): apt-get install pssh"),
    }
}
