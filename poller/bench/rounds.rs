//! (a) Poll rounds over N loopback hosts and what each costs both sides: the poller's own
//! CPU, and the host's, metered exactly by a cgroup cpuacct group around the test sshd
//! (every session, shell and tool it forks, reaped ones included). Side by side in one
//! run: dcmon through its persistent shell, dcmon exec-per-run, parallel-ssh running the
//! same script, and node_exporter's CPU per scrape of `/metrics` in its own group.

use crate::testbed::{self, cpuacct};
use dcmon_inventory::ShellMode;
use dcmon_poller::ssh::{Connector, SshSession, Via};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const CAP: usize = 1 << 24;

/// The host side of the bed: the meter when cgroup v1 cpuacct is writable, otherwise the
/// old /proc scan of sshd's live processes (which misses what was reaped by a process
/// that already exited, so it undercounts).
struct HostSide {
    sshd: u32,
    meter: Option<cpuacct::CpuMeter>,
}

impl HostSide {
    fn cpu_s(&self) -> f64 {
        match &self.meter {
            Some(m) => m.usage_ns() as f64 / 1e9,
            None => std::iter::once(self.sshd)
                .chain(testbed::descendants(self.sshd))
                .map(|p| {
                    let (own, reaped) = crate::cpu_of(p);
                    own + reaped
                })
                .sum(),
        }
    }

    fn how(&self) -> &'static str {
        if self.meter.is_some() {
            "cgroup cpuacct around sshd"
        } else {
            "/proc scan of sshd (no writable cpuacct: undercounts)"
        }
    }
}

struct Figures {
    wall: Duration,
    client_cpu: f64,
    host_cpu: f64,
    /// Processes forked on the whole machine in the window (`processes` of /proc/stat);
    /// the poller forks none, so on a quiet machine these are the host side's.
    forks: u64,
    ok: usize,
}

fn measure(host: &HostSide, children: bool, run: impl FnOnce() -> usize) -> Figures {
    let me = std::process::id();
    let host0 = host.cpu_s();
    let forks0 = cpuacct::forks_since_boot();
    let (mine0, kids0) = crate::cpu_of(me);
    let started = Instant::now();
    let ok = run();
    let wall = started.elapsed();
    let (mine1, kids1) = crate::cpu_of(me);
    Figures {
        wall,
        client_cpu: if children {
            kids1 - kids0
        } else {
            mine1 - mine0
        },
        forks: cpuacct::forks_since_boot().saturating_sub(forks0),
        host_cpu: host.cpu_s() - host0,
        ok,
    }
}

fn show(label: &str, f: &Figures, hosts: usize) {
    let per = |x: f64| x * 1000.0 / hosts as f64;
    println!(
        "  {label:<38} wall {:>6.2}s  poller CPU {:>5.2}s ({:>5.2} ms/host)  host CPU {:>6.2}s ({:>6.3} ms/host)  forks/host {:>5.1}  ok {}/{hosts}",
        f.wall.as_secs_f64(),
        f.client_cpu,
        per(f.client_cpu),
        f.host_cpu,
        per(f.host_cpu),
        f.forks as f64 / hosts as f64,
        f.ok
    );
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// One run of `script` on every open session at once, in `mode`; counts the runs that
/// succeeded the way that was asked (a persistent run that fell back counts as failed).
fn round(
    runtime: &tokio::runtime::Runtime,
    sessions: &Arc<Vec<SshSession>>,
    script: &'static str,
    in_shell: bool,
    mode: ShellMode,
) -> usize {
    runtime.block_on(async {
        let tasks: Vec<_> = (0..sessions.len())
            .map(|i| {
                let s = sessions.clone();
                tokio::spawn(async move {
                    let (result, via) = s[i]
                        .run_probe(script, in_shell, false, mode, LIMIT, CAP)
                        .await;
                    let as_asked = matches!(
                        (mode, via),
                        (ShellMode::Persistent, Via::Persistent) | (ShellMode::Exec, Via::Exec)
                    );
                    as_asked && result.is_ok_and(|o| o.success())
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap_or(false));
        }
        ok
    })
}

/// Connects every host of `inventory` (the bench's one `connect_all`) and runs `script`
/// once through each persistent shell, in the shell itself: the cold round. Keeps the
/// sessions that did both.
fn connect_all(
    runtime: &tokio::runtime::Runtime,
    inventory: &dcmon_inventory::Inventory,
    script: &'static str,
) -> Vec<SshSession> {
    let connector = Arc::new(Connector::new(dcmon_poller::ssh::DEFAULT_HANDSHAKE_LIMIT));
    let (open, _) = crate::connect_all(runtime, &connector, &inventory.hosts);
    runtime.block_on(async {
        // Each session goes into its run's task and comes back if the run succeeded.
        let tasks: Vec<_> = open
            .into_iter()
            .map(|s| {
                tokio::spawn(async move {
                    let (result, _) = s
                        .run_probe(script, true, false, ShellMode::Persistent, LIMIT, CAP)
                        .await;
                    result.is_ok_and(|o| o.success()).then_some(s)
                })
            })
            .collect();
        let mut kept = Vec::new();
        for t in tasks {
            if let Ok(Some(s)) = t.await {
                kept.push(s);
            }
        }
        kept
    })
}

pub fn poll_rounds(n: usize) {
    let bed = testbed::Sshd::start();
    // Before any session: every sshd child from here on is in the group.
    let host = HostSide {
        sshd: bed.pid(),
        meter: cpuacct::CpuMeter::around(bed.pid(), "bench-sshd"),
    };
    let (addrs, known_hosts, inventory) = crate::bed_inventory(&bed, n, "60s");
    let script = dcmon_probes::os::SCRIPT;
    let fs_script = dcmon_probes::fs::SCRIPT;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "\n(a) poll round over {n} hosts, os probe script (KEX curve25519-sha256 on both sides); host CPU by {}; the hosts' sh is dash",
        host.how()
    );

    let mut sessions: Vec<SshSession> = Vec::new();
    let cold = measure(&host, false, || {
        sessions = connect_all(&runtime, &inventory, script);
        sessions.len()
    });
    let sessions = Arc::new(sessions);
    let persistent = measure(&host, false, || {
        round(&runtime, &sessions, script, true, ShellMode::Persistent)
    });
    let persistent_fs = measure(&host, false, || {
        round(&runtime, &sessions, fs_script, true, ShellMode::Persistent)
    });
    let persistent_true = measure(&host, false, || {
        round(&runtime, &sessions, "true", false, ShellMode::Persistent)
    });
    let exec = measure(&host, false, || {
        round(&runtime, &sessions, script, true, ShellMode::Exec)
    });
    let exec_true = measure(&host, false, || {
        round(&runtime, &sessions, "true", false, ShellMode::Exec)
    });
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("")
        .to_string();

    let hosts_file = bed.write("pssh-hosts", &addrs.join("\n"));
    let pssh = |remote: &str, stdin_script: bool| {
        let mut cmd = crate::pssh_command(&bed, &hosts_file, &known_hosts, stdin_script, remote);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("parallel-ssh unavailable ({e}): apt-get install pssh");
                return 0;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(if stdin_script { script.as_bytes() } else { b"" });
        }
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("[SUCCESS]")
            .count()
    };
    let peer = measure(&host, true, || pssh("sh -s", true));
    let peer_true = measure(&host, true, || pssh("true", false));

    show("dcmon cold (connect, shell, run)", &cold, n);
    show("dcmon warm, persistent shell", &persistent, n);
    show("dcmon warm, persistent shell, fs (df)", &persistent_fs, n);
    show("dcmon warm, persistent shell, `true`", &persistent_true, n);
    show("dcmon warm, exec per run", &exec, n);
    show("dcmon warm, exec per run, `true`", &exec_true, n);
    show("parallel-ssh -p 200", &peer, n);
    show("parallel-ssh -p 200, `true`", &peer_true, n);
    let node = node_exporter(500);
    let host_ms = |f: &Figures| f.host_cpu * 1000.0 / n as f64;
    // fs runs every 2 minutes against os's 30 s: a quarter of its cost a round.
    let with_fs = host_ms(&persistent) + host_ms(&persistent_fs) / 4.0;
    println!(
        "  host CPU per 30-s round with fs at its 2-minute default: {with_fs:.3} ms (os {:.3} + fs {:.3} / 4); with fs every round {:.3} ms",
        host_ms(&persistent),
        host_ms(&persistent_fs),
        host_ms(&persistent) + host_ms(&persistent_fs)
    );
    println!(
        "  host CPU per os round: persistent {:.3} ms (target 1 ms); {:.1}x less than exec per run ({:.3} ms), {:.1}x less than parallel-ssh ({:.3} ms){}",
        host_ms(&persistent),
        ratio(host_ms(&exec), host_ms(&persistent)),
        host_ms(&exec),
        ratio(host_ms(&peer), host_ms(&persistent)),
        host_ms(&peer),
        match node {
            Some((ms, _)) => format!(
                ", {:.1}x less than a node_exporter scrape ({ms:.3} ms)",
                ratio(ms, host_ms(&persistent))
            ),
            None => String::new(),
        }
    );
    println!(
        "  ratios vs parallel-ssh: wall {:.1}x shorter warm ({:.1}x cold, {:.1}x for `true`); poller CPU {:.1}x less warm ({:.1}x cold); poller {}",
        ratio(peer.wall.as_secs_f64(), persistent.wall.as_secs_f64()),
        ratio(peer.wall.as_secs_f64(), cold.wall.as_secs_f64()),
        ratio(
            peer_true.wall.as_secs_f64(),
            persistent_true.wall.as_secs_f64()
        ),
        ratio(peer.client_cpu, persistent.client_cpu),
        ratio(peer.client_cpu, cold.client_cpu),
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
}

/// node_exporter with its default collectors in a cpuacct group of its own: CPU per
/// scrape of `/metrics` over `scrapes` scrapes, and its resident memory. `None` (with a
/// line saying why) where it is not installed or cannot be metered.
fn node_exporter(scrapes: usize) -> Option<(f64, f64)> {
    const BIN: &str = "/usr/bin/prometheus-node-exporter";
    let port = testbed::free_port();
    let address = format!("127.0.0.1:{port}");
    let child = match Command::new(BIN)
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => testbed::Killed(c),
        Err(e) => {
            println!(
                "  node_exporter: not run ({BIN}: {e}; apt-get install prometheus-node-exporter)"
            );
            return None;
        }
    };
    let Some(meter) = cpuacct::CpuMeter::around(child.0.id(), "bench-node-exporter") else {
        println!("  node_exporter: not metered (no writable cgroup v1 cpuacct)");
        return None;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while testbed::http_get(&address, "/metrics").is_none() {
        if Instant::now() > deadline {
            println!("  node_exporter: no answer on {address} within 10 s");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = meter.usage_ns();
    let mut bytes = 0;
    for _ in 0..scrapes {
        bytes += testbed::http_get(&address, "/metrics").map_or(0, |b| b.len());
    }
    let per_scrape_ms = (meter.usage_ns() - before) as f64 / 1e6 / scrapes as f64;
    let rss_mb = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    println!(
        "  node_exporter, {scrapes} scrapes of /metrics ({} KB each): host CPU {per_scrape_ms:.3} ms per scrape, RSS {rss_mb:.0} MB",
        bytes / scrapes.max(1) / 1024
    );
    Some((per_scrape_ms, rss_mb))
}

/// The same warm rounds over `n` hosts whose `sh` is bash (a folder with `sh` -> bash
/// first on their PATH), as on RHEL and its kin: the os probe reads /proc with bash's
/// builtins and forks nothing; runs are sent as frames.
pub fn bash_rounds(n: usize) {
    let shims = tempfile::Builder::new()
        .prefix("dcmon-bench-bash-sh-")
        .tempdir()
        .unwrap();
    testbed::shims::bash_as_sh(shims.path());
    let addrs = testbed::addresses(n);
    let hardware: Vec<(&str, &std::path::Path)> =
        addrs.iter().map(|a| (a.as_str(), shims.path())).collect();
    let bed = testbed::Sshd::start_with(&hardware);
    let host = HostSide {
        sshd: bed.pid(),
        meter: cpuacct::CpuMeter::around(bed.pid(), "bench-sshd-bash"),
    };
    let (_, _, inventory) = crate::bed_inventory(&bed, n, "60s");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "\n(a) the same over {n} hosts whose sh is bash; host CPU by {}",
        host.how()
    );
    let sessions = Arc::new(connect_all(&runtime, &inventory, dcmon_probes::os::SCRIPT));
    let os = measure(&host, false, || {
        round(
            &runtime,
            &sessions,
            dcmon_probes::os::SCRIPT,
            true,
            ShellMode::Persistent,
        )
    });
    let fs = measure(&host, false, || {
        round(
            &runtime,
            &sessions,
            dcmon_probes::fs::SCRIPT,
            true,
            ShellMode::Persistent,
        )
    });
    let empty = measure(&host, false, || {
        round(&runtime, &sessions, "true", false, ShellMode::Persistent)
    });
    show("dcmon warm, persistent shell (bash)", &os, n);
    show("dcmon warm, bash, fs (df)", &fs, n);
    show("dcmon warm, bash, `true`", &empty, n);
}
