//! The persistent shell against a real sshd: hostile scripts, deadlines, floods, a shell
//! or a session killed under a run; after each, the next run is healthy and `ps` shows
//! nothing the run started. And every probe gives the same samples in both modes.

mod testbed;

use dcmon_inventory::ShellMode;
use dcmon_poller::error::TransportError;
use dcmon_poller::exec::{ExecOutput, Exit};
use dcmon_poller::ssh::{Connector, SshSession, Via};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use testbed::shims::{bash_as_sh, dell_gpu_server};
use testbed::{Sshd, dcmon, descendants};

const CAP: usize = 1 << 20;

/// A host whose `sh` is bash (a shim folder first on its PATH), as on RHEL and its kin;
/// every other address keeps Debian's dash.
const BASH_HOST: &str = "127.0.42.1";

/// The bed with `BASH_HOST`'s `sh` being bash; the folder lives as long as the bed.
fn bed_with_bash_host() -> (Sshd, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("dcmon-bash-sh-")
        .tempdir()
        .unwrap();
    bash_as_sh(dir.path());
    (Sshd::start_with(&[(BASH_HOST, dir.path())]), dir)
}

/// The two shells a host's `sh` may be here, with a host address for each.
const SHELLS: [(&str, &str); 2] = [("dash", "127.0.40.2"), ("bash", BASH_HOST)];

fn host(bed: &Sshd, address: &str, identity: Option<&Path>) -> dcmon_inventory::Host {
    let known_hosts = bed.write(
        &format!("known_hosts-{address}"),
        &bed.known_hosts_lines(&[address.to_string()]),
    );
    let mut text = format!(
        "{}\n[[hosts]]\nname = \"h\"\naddress = \"{address}\"\n",
        bed.defaults(&known_hosts, "10s")
    );
    if let Some(identity) = identity {
        text.push_str(&format!("identity = \"{}\"\n", identity.display()));
    }
    let inventory = dcmon_inventory::parse(&text, Path::new("inv.toml"), &["os"]).unwrap();
    inventory.hosts[0].clone()
}

async fn connect(bed: &Sshd, address: &str) -> SshSession {
    Connector::new(4)
        .connect(&host(bed, address, None), false)
        .await
        .unwrap()
}

async fn run(
    ssh: &SshSession,
    script: &str,
    limit: Duration,
) -> Result<ExecOutput, TransportError> {
    let (result, via) = ssh
        .run_probe(script, false, false, ShellMode::Persistent, limit, CAP)
        .await;
    assert_eq!(via, Via::Persistent);
    result
}

/// A run inside the shell itself, as `Probe::in_shell` scripts run.
async fn run_in_shell(ssh: &SshSession, script: &str) -> ExecOutput {
    let (result, via) = ssh
        .run_probe(
            script,
            true,
            false,
            ShellMode::Persistent,
            Duration::from_secs(10),
            CAP,
        )
        .await;
    assert_eq!(via, Via::Persistent);
    result.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shell's pid as a run sees it (`$$` in a subshell is the shell's own).
async fn shell_pid(ssh: &SshSession) -> String {
    let out = run(ssh, "echo $$", Duration::from_secs(10)).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0));
    text(&out.stdout).trim().to_string()
}

/// Every process under sshd whose command line contains `marker`, waiting up to `within`
/// for them to go: none may stay.
fn assert_gone(bed: &Sshd, marker: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<String> = descendants(bed.pid())
            .into_iter()
            .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|c| text(&c).replace('\0', " "))
            .filter(|c| c.contains(marker))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running on the host after {within:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scripts marked `in_shell` run in the shell itself: the shell's variables, functions,
/// options, directory, umask and traps are the same after them as before, as seen from
/// inside the shell (a subshell would not show its traps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_shell_run_leaves_the_shell_as_it_was() {
    let (bed, _bash) = bed_with_bash_host();
    for (shell, address) in SHELLS {
        in_shell_runs_leave_no_state(&bed, shell, address).await;
    }
}

async fn in_shell_runs_leave_no_state(bed: &Sshd, shell: &str, address: &str) {
    let ssh = connect(bed, address).await;
    let pid = shell_pid(&ssh).await;
    let look = "set; command -V dcmon_run dcmon_here dcmon_end 2>&1; set -o; pwd; umask; trap; echo \"BASH=${BASH_VERSION-none}\"";
    // What changes by itself from one run to the next: the frame just read, the last
    // command's status and arguments, bash's own counters.
    let state = |out: &ExecOutput| -> Vec<String> {
        text(&out.stdout)
            .lines()
            .filter(|l| {
                ![
                    "dcmon_c=",
                    "dcmon_n=",
                    "_=",
                    "BASH_ARGC=",
                    "BASH_ARGV=",
                    "BASH_LINENO=",
                    "BASH_SOURCE=",
                    "FUNCNAME=",
                    "PIPESTATUS=",
                    "LINENO=",
                    "SECONDS=",
                    "EPOCHREALTIME=",
                    "EPOCHSECONDS=",
                    "RANDOM=",
                    "SRANDOM=",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect()
    };
    let before = state(&run_in_shell(&ssh, look).await);
    let version = if shell == "bash" {
        "BASH=5"
    } else {
        "BASH=none"
    };
    assert!(
        before.iter().any(|l| l.starts_with(version)),
        "{address}'s sh is {shell}: {before:?}"
    );
    for probe in dcmon_probes::PROBES.iter().filter(|p| p.in_shell) {
        let out = run_in_shell(&ssh, probe.script).await;
        assert_eq!(
            out.exit,
            Exit::Code(0),
            "{}: {}",
            probe.name,
            text(&out.stderr)
        );
        let after = state(&run_in_shell(&ssh, look).await);
        let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        let lost: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
        assert!(
            changed.is_empty() && lost.is_empty(),
            "{} changed {shell}: new {changed:?}, gone {lost:?}",
            probe.name
        );
    }
    assert_eq!(
        shell_pid(&ssh).await,
        pid,
        "the same shell served every run"
    );
}

/// Runs reach either shell whole: dash reads them as lines, bash as frames of bytes
/// (`read -N` under `LC_ALL=C`). Multi-byte characters, quotes and a 2 MB script all
/// arrive whole, and the shell stays in step for the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_carry_any_bytes_to_either_shell() {
    let (bed, _bash) = bed_with_bash_host();
    for (_, address) in SHELLS {
        runs_carry_any_bytes(&bed, address).await;
    }
}

async fn runs_carry_any_bytes(bed: &Sshd, address: &str) {
    let ssh = connect(bed, address).await;
    let pid = shell_pid(&ssh).await;
    let unicode = "printf '%s\\n' 'é€ 日本 \"q\" '\\''s'";
    let out = run(&ssh, unicode, Duration::from_secs(10)).await.unwrap();
    assert_eq!(text(&out.stdout), "é€ 日本 \"q\" 's\n");
    let big = format!("# {}\necho big-ok", "é".repeat(1 << 20));
    let out = run(&ssh, &big, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        (out.exit, text(&out.stdout)),
        (Exit::Code(0), "big-ok\n".into())
    );
    let out = run_in_shell(&ssh, "echo in-shell-é").await;
    assert_eq!(text(&out.stdout), "in-shell-é\n");
    // A NUL byte (a hostile host's log cursor could carry one into a script's inputs)
    // is refused before sending: shells drop it as they read, and bash would count the
    // frame short and wait on the next one.
    let nul = run(&ssh, "echo a\0b", Duration::from_secs(5)).await;
    assert!(
        matches!(nul, Err(TransportError::ScriptHasNul(6))),
        "{nul:?}"
    );
    assert_eq!(
        shell_pid(&ssh).await,
        pid,
        "the same shell served every run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaves_no_state_for_the_next() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.1").await;
    let look = "pwd; echo \"x=$x Y=$Y\"; command -v f || echo no-f; umask; trap; echo \"args=$#\"; set -o | grep -E '^(errexit|nounset) '";
    let before = run(&ssh, look, Duration::from_secs(10)).await.unwrap();
    let pid = shell_pid(&ssh).await;
    let meddle = "cd /usr/share; x=leak; export Y=1; f() { :; }; umask 077; trap 'echo trapped' INT; set -eu; echo meddled";
    let out = run(&ssh, meddle, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (out.exit, text(&out.stdout)),
        (Exit::Code(0), "meddled\n".into())
    );
    let after = run(&ssh, look, Duration::from_secs(10)).await.unwrap();
    // The run's own EXIT trap names its nonce, which differs from run to run. bash
    // names signals `SIGHUP` where dash says `HUP`, and lists the SIGINT a background
    // job ignores.
    let seen = |out: &ExecOutput| -> String {
        text(&out.stdout)
            .lines()
            .filter(|l| *l != "trap -- '' SIGINT")
            .map(|l| l.replace("' SIG", "' "))
            .map(|l| match l.find("dcmon-") {
                Some(at) if l[at..].len() >= 38 => format!("{}NONCE{}", &l[..at], &l[at + 38..]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(seen(&after), seen(&before));
    assert!(
        seen(&before).contains("x= Y=\nno-f\n0022\ntrap -- 'dcmon_end NONCE $?' EXIT\ntrap -- 'exit 129' HUP\ntrap -- 'exit 143' TERM\nargs=0\n"),
        "{}",
        seen(&before)
    );
    assert!(!seen(&before).starts_with("/usr/share"));
    assert_eq!(
        shell_pid(&ssh).await,
        pid,
        "the same shell served every run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_stderr_and_a_script_that_calls_exit() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.2").await;
    let pid = shell_pid(&ssh).await;
    let out = run(
        &ssh,
        "echo before; echo oops >&2; exit 3; echo after",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(out.exit, Exit::Code(3));
    assert_eq!(text(&out.stdout), "before\n");
    assert_eq!(text(&out.stderr), "oops\n");
    // A syntax error stays in its run.
    let out = run(&ssh, "echo 'unclosed", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.exit, Exit::Code(2), "{}", text(&out.stderr));
    // Output without a final newline comes back as it was.
    let out = run(&ssh, "printf 'a\\nb'", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(text(&out.stdout), "a\nb");
    // A script that silences its own streams (`exec 2>/dev/null` at the top of a script
    // is common) still ends its run at once, with its status.
    let started = Instant::now();
    let out = run(
        &ssh,
        "exec 2>/dev/null; echo kept; ls /nonexistent; exec >/dev/null; echo gone; exit 4",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.exit, Exit::Code(4));
    assert_eq!(text(&out.stdout), "kept\n");
    assert_eq!(text(&out.stderr), "");
    // A script that signals its own process group ends as killed by TERM, at once.
    let started = Instant::now();
    let out = run(&ssh, "echo a; kill 0; sleep 5", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.exit, Exit::Code(143));
    assert_eq!(text(&out.stdout), "a\n");
    assert_eq!(shell_pid(&ssh).await, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_with_fake_markers_neither_ends_nor_forges_a_run() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.3").await;
    // What a marker looks like, with other nonces, on both streams, and a section end.
    let fake = "dcmon-00000000000000000000000000000000 0\n\ndcmon-ffffffffffffffffffffffffffffffff\n==dcmon== end\n";
    let script = format!(
        "printf '%s' '{fake}'; printf '%s' '{fake}' >&2; printf '\\ndcmon-%s 0\\n' $(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n'); echo last"
    );
    let out = run(&ssh, &script, Duration::from_secs(10)).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(fake), "{stdout}");
    assert!(stdout.ends_with(" 0\nlast\n"), "{stdout}");
    assert_eq!(text(&out.stderr), fake);
}

/// A shell that stops answering (SIGSTOP) cannot read the end of its channel, so closing
/// it stops nothing: at the deadline dcmon stops its process group from a channel of its
/// own, and the next run gets a new shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_shell_is_cleared_at_the_deadline() {
    let bed = Sshd::start();
    let ssh = std::sync::Arc::new(connect(&bed, "127.0.40.10").await);
    let pid = shell_pid(&ssh).await;
    let hung = {
        let ssh = ssh.clone();
        tokio::spawn(async move { run(&ssh, "sleep 4109", Duration::from_secs(2)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(stopped.success());
    let result = hung.await.unwrap();
    assert!(
        matches!(result, Err(TransportError::Timeout(_))),
        "{result:?}"
    );
    assert_gone(&bed, "sleep 4109", Duration::from_secs(5));
    // The stopped shell holds TERM pending; the KILL a second later ends it.
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() {
        assert!(
            Instant::now() < deadline,
            "the stopped shell {pid} is still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let next = shell_pid(&ssh).await;
    assert_ne!(next, pid, "a new shell serves the next run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_run_is_stopped_on_the_host_and_the_next_run_works() {
    let (bed, _bash) = bed_with_bash_host();
    for (shell, address) in SHELLS {
        hung_runs_are_stopped(&bed, shell, address).await;
    }
}

async fn hung_runs_are_stopped(bed: &Sshd, shell: &str, address: &str) {
    let ssh = connect(bed, address).await;
    let mut pid = shell_pid(&ssh).await;
    for (marker, script, in_shell) in [
        ("sleep 4101", "echo started; sleep 4101", false),
        // Ignores TERM: KILL follows a second later.
        ("sleep 4102", "trap '' TERM; sleep 4102 & wait", false),
        // A child in the background, the run itself waiting on it.
        ("sleep 4103", "(sleep 4103) & wait", false),
        // A run in the shell itself (as the os and fs probes run: a `df` stuck on a
        // dead network mount) holds the shell: it is stopped from an exec channel.
        ("sleep 4104", "echo started; sleep 4104", true),
    ] {
        let started = Instant::now();
        let (result, _) = ssh
            .run_probe(
                script,
                in_shell,
                false,
                ShellMode::Persistent,
                Duration::from_secs(1),
                CAP,
            )
            .await;
        assert!(
            matches!(result, Err(TransportError::Timeout(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_gone(bed, marker, Duration::from_secs(5));
        let next = shell_pid(&ssh).await;
        assert_ne!(next, pid, "{shell}: a new shell after a timeout");
        pid = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_finished_run_are_stopped() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.5").await;
    let out = run(&ssh, "sleep 4201 & echo left", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(text(&out.stdout), "left\n");
    assert_gone(&bed, "sleep 4201", Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_cut_at_the_cap_and_stopped() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.6").await;
    // 100 MB against a 1 MB cap.
    let result = run(
        &ssh,
        "yes dcmon-flood-4301 | head -c 100000000",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        matches!(result, Err(TransportError::OutputTooLarge(CAP))),
        "{result:?}"
    );
    assert_gone(&bed, "dcmon-flood-4301", Duration::from_secs(5));
    // Just under the cap goes through whole.
    let out = run(
        &ssh,
        "head -c 1000000 /dev/zero | tr '\\0' x",
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(out.stdout.len(), 1_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'x'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_shell_is_reported_and_replaced() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.7").await;
    let pid = shell_pid(&ssh).await;
    // What an OOM kill of the shell looks like from here.
    let result = run(
        &ssh,
        "sleep 4401 & kill -KILL $$; sleep 5",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(result, Err(TransportError::ShellEnded(_))),
        "{result:?}"
    );
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("persistent shell ended")
    );
    assert_ne!(shell_pid(&ssh).await, pid);
    // What the run left in the dead shell's group was stopped.
    assert_gone(&bed, "sleep 4401", Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_killing_the_session_stops_the_run_on_the_host() {
    let bed = Sshd::start();
    let ssh = connect(&bed, "127.0.40.8").await;
    let pending = tokio::spawn(async move {
        let result = run(&ssh, "sleep 4501", Duration::from_secs(20)).await;
        (result, ssh)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The session's sshd processes (privileged monitor and its child), not the listener.
    let sessions: Vec<u32> = descendants(bed.pid())
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| text(&c).starts_with("sshd"))
                .unwrap_or(false)
        })
        .collect();
    assert!(!sessions.is_empty());
    for pid in sessions {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    let (result, ssh) = pending.await.unwrap();
    assert!(result.is_err(), "{result:?}");
    assert_gone(&bed, "sleep 4501", Duration::from_secs(5));
    assert!(ssh.is_closed() || run(&ssh, "true", Duration::from_secs(3)).await.is_err());
    // A new connection, as serve and poll make, is healthy.
    let ssh = connect(&bed, "127.0.40.8").await;
    assert_eq!(
        run(&ssh, "echo ok", Duration::from_secs(10))
            .await
            .unwrap()
            .stdout,
        b"ok\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_command_falls_back_to_exec_channels() {
    let bed = Sshd::start();
    // A second key whose logins may only run the probe watchdog (`sh -c ...`), as a
    // restrictive wrapper in authorized_keys would allow.
    let key = bed.dir.path().join("restricted_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let wrapper = r#"command="case \"$SSH_ORIGINAL_COMMAND\" in 'sh -c '*) eval \"$SSH_ORIGINAL_COMMAND\" ;; *) echo only the probe watchdog may run here >&2; exit 1 ;; esac" "#;
    let authorized = bed.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&format!("{wrapper}{public}"));
    std::fs::write(&authorized, keys).unwrap();

    let ssh = Connector::new(1)
        .connect(&host(&bed, "127.0.40.9", Some(&key)), false)
        .await
        .unwrap();
    for _ in 0..2 {
        let (result, via) = ssh
            .run_probe(
                "echo via-exec",
                false,
                false,
                ShellMode::Persistent,
                Duration::from_secs(10),
                CAP,
            )
            .await;
        let Via::Fallback(why) = via else {
            panic!("{via:?}");
        };
        assert!(
            why.contains("only the probe watchdog may run here"),
            "{why}"
        );
        assert_eq!(result.unwrap().stdout, b"via-exec\n");
    }
}

/// `dcmon probe run --json` of every script probe on one host, in one mode: each
/// probe's status and the set of series it read (name and labels).
fn samples_by_probe(
    bed: &Sshd,
    inventory: &Path,
) -> Vec<(String, String, String, BTreeSet<String>)> {
    // Every probe that runs through the host's OS (not the BMC's, read over the LAN).
    let probes = dcmon_probes::PROBES
        .iter()
        .filter(|p| p.kind == dcmon_probes::ProbeKind::Script)
        .map(|p| p.name);
    let _ = bed;
    probes
        .map(|probe| {
            let out = dcmon(&[
                "probe",
                "run",
                "-i",
                inventory.to_str().unwrap(),
                "gpu",
                probe,
                "--json",
            ]);
            let run: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("{probe}: {e}: {}", String::from_utf8_lossy(&out.stderr))
            });
            let series: BTreeSet<String> = run["parsed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| {
                    // Values of the shims' captures are fixed; the machine's own move.
                    let moving = [
                        "os",
                        "fs",
                        "sensors",
                        "logs",
                        "docker",
                        "infiniband",
                        "pcie",
                    ]
                    .contains(&probe);
                    let value = if moving {
                        Value::Null
                    } else {
                        o["value"].clone()
                    };
                    if o.get("name").is_some() {
                        Some(format!("{} {} {value}", o["name"], o["labels"]))
                    } else {
                        o.get("fact").map(|fact| format!("fact {fact} {value}"))
                    }
                })
                .collect();
            (
                probe.to_string(),
                run["status"].as_str().unwrap_or_default().to_string(),
                run["via"].as_str().unwrap_or_default().to_string(),
                series,
            )
        })
        .collect()
}

#[test]
fn every_probe_reads_the_same_in_both_modes() {
    let root = tempfile::Builder::new()
        .prefix("dcmon-shell-modes-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The same GPU server twice: its `sh` dash, and bash (a second folder of the same
    // shims, with `sh` -> bash).
    let dell = dell_gpu_server(&root.path().join("dash"));
    let dell_bash = dell_gpu_server(&root.path().join("bash"));
    bash_as_sh(&dell_bash);
    let hosts = [("dash", "127.0.41.1"), ("bash", "127.0.41.2")];
    let bed = Sshd::start_with(&[(hosts[0].1, &dell), (hosts[1].1, &dell_bash)]);
    let addresses: Vec<String> = hosts.iter().map(|(_, a)| a.to_string()).collect();
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&addresses));
    let metric = bed.write(
        "metric.sh",
        "#!/bin/sh\necho 'dcmon_shell_test_value{kind=\"fixed\"} 42'\n",
    );
    std::fs::set_permissions(&metric, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (shell, address) in hosts {
        let inventory = |mode: &str| {
            bed.write(
                &format!("inventory-{shell}-{mode}.toml"),
                &format!(
                    "{}\n[[hosts]]\nname = \"gpu\"\naddress = \"{address}\"\nshell = \"{mode}\"\ncustom_scripts = [\"{}\"]\n",
                    bed.defaults(&known_hosts, "20s"),
                    metric.display()
                ),
            )
        };
        let persistent = samples_by_probe(&bed, &inventory("persistent"));
        let exec = samples_by_probe(&bed, &inventory("exec"));
        assert_eq!(persistent.len(), exec.len(), "{shell}");
        for ((probe, status, via, series), (_, exec_status, exec_via, exec_series)) in
            persistent.iter().zip(&exec)
        {
            assert_eq!(via, "persistent shell", "{probe} under {shell}");
            assert_eq!(exec_via, "exec channel", "{probe} under {shell}");
            assert_eq!(status, exec_status, "{probe} under {shell}");
            assert_eq!(series, exec_series, "{probe} under {shell}");
        }
        // The shims' probes and the custom script did read something.
        for probe in ["os", "fs", "ipmi", "nvidia", "nvme", "custom"] {
            let (_, status, _, series) = persistent.iter().find(|p| p.0 == probe).unwrap();
            assert_eq!(status, "ok", "{probe} under {shell}");
            assert!(!series.is_empty(), "{probe} under {shell}");
        }
    }
}

/// strace attached to the host's shell, following everything it forks; returns once it
/// is attached (the shell's TracerPid is set).
fn trace_forks(pid: &str, log: &Path) -> testbed::Killed {
    let child = testbed::Killed(
        std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o"])
            .arg(log)
            .args(["-p", pid])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("strace (tests/run.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let tracer = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map_or("0", str::trim);
        if tracer != "0" {
            return child;
        }
        assert!(Instant::now() < deadline, "strace did not attach to {pid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Detaches strace and counts the processes it saw forked.
fn forks_traced(mut strace: testbed::Killed, log: &Path) -> Vec<String> {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &strace.0.id().to_string()])
        .status();
    let _ = strace.0.wait();
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            ["clone(", "clone3(", "fork(", "vfork("]
                .iter()
                .any(|call| l.contains(call))
        })
        .map(str::to_string)
        .collect()
}

/// What a round costs the host in processes, counted exactly on the shell, under dash
/// and bash: one fork for a run's subshell; the os and fs probes run in the shell
/// itself, os forking `grep` under dash and nothing under bash, fs forking `df`
/// (probes/os/README.md says why). A probe script that grows a `cat` or `uname` fails
/// here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_forks_what_the_probe_readme_says() {
    let (bed, _bash) = bed_with_bash_host();
    for (shell, address) in SHELLS {
        forks_of_a_round(&bed, shell, address).await;
    }
}

async fn forks_of_a_round(bed: &Sshd, shell: &str, address: &str) {
    let ssh = connect(bed, address).await;
    let pid = shell_pid(&ssh).await;

    let log = bed.dir.path().join(format!("strace-true-{shell}.log"));
    let strace = trace_forks(&pid, &log);
    let out = run(&ssh, "true", Duration::from_secs(10)).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0));
    let forks = forks_traced(strace, &log);
    assert_eq!(
        forks.len(),
        1,
        "an empty run under {shell} forks its subshell only: {forks:?}"
    );

    // The os probe reads /proc with builtins and bash's `mapfile`, or dash's `read`
    // and one `grep`; the fs probe runs `df`. Both in the shell itself: no subshell.
    let expected = [("os", if shell == "bash" { 0 } else { 1 }), ("fs", 1)];
    for (probe, forks_expected) in expected {
        let log = bed.dir.path().join(format!("strace-{probe}-{shell}.log"));
        let strace = trace_forks(&pid, &log);
        let script = dcmon_probes::find(probe).unwrap().script;
        let out = run_in_shell(&ssh, script).await;
        assert_eq!(out.exit, Exit::Code(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("==dcmon== end"));
        let forks = forks_traced(strace, &log);
        assert_eq!(
            forks.len(),
            forks_expected,
            "{probe} under {shell}: {forks:?}"
        );
    }
}

/// `become`: one `sudo -n sh` per connection beside the plain shell. Runs are root, leave
/// no state, and a hung one is stopped on the host (the root shell stops its own group).
/// Needs root on the test machine to give the bed's second user its sudo rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn become_runs_through_one_root_shell_and_leaves_nothing() {
    let Some(sudo_user) = testbed::sudo_user() else {
        eprintln!("skipped: not root, so no passwordless sudo user for the bed");
        return;
    };
    let bed = Sshd::start();
    let mut host = host(&bed, "127.0.40.11", None);
    host.user = sudo_user.to_string();
    let ssh = Connector::new(4).connect(&host, false).await.unwrap();
    let root_run = |script: &'static str, limit: u64| {
        let ssh = &ssh;
        async move {
            let (result, via) = ssh
                .run_probe(
                    script,
                    false,
                    true,
                    ShellMode::Persistent,
                    Duration::from_secs(limit),
                    CAP,
                )
                .await;
            assert_eq!(via, Via::Persistent);
            result
        }
    };
    let out = root_run("id -u; echo $$", 10).await.unwrap();
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("0"), "{stdout} {}", text(&out.stderr));
    let root_shell = lines.next().unwrap().to_string();
    // The plain shell is another process, not root.
    let plain = run(&ssh, "id -u; echo $$", Duration::from_secs(10))
        .await
        .unwrap();
    let plain = text(&plain.stdout);
    assert!(!plain.starts_with("0\n"), "{plain}");
    assert!(!plain.contains(&root_shell), "{plain}");

    root_run("cd /root; x=leak; umask 077", 10).await.unwrap();
    let out = root_run("pwd; echo \"x=$x\"; umask", 10).await.unwrap();
    assert!(
        !text(&out.stdout).starts_with("/root"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("x=\n0022\n"),
        "{}",
        text(&out.stdout)
    );

    let started = Instant::now();
    let late = root_run("sleep 4111", 1).await;
    assert!(matches!(late, Err(TransportError::Timeout(_))), "{late:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_gone(&bed, "sleep 4111", Duration::from_secs(5));
    let out = root_run("id -u", 10).await.unwrap();
    assert_eq!(text(&out.stdout), "0\n");
}

/// Runs on one shell take turns, and a run waiting for its turn still ends at its own
/// deadline; the run ahead of it is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_ends_at_its_own_deadline() {
    let bed = Sshd::start();
    let ssh = std::sync::Arc::new(connect(&bed, "127.0.40.12").await);
    let pid = shell_pid(&ssh).await;
    let slow = {
        let ssh = ssh.clone();
        tokio::spawn(async move { run(&ssh, "sleep 3; echo slow", Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let queued = run(&ssh, "echo queued", Duration::from_secs(1)).await;
    assert!(
        matches!(queued, Err(TransportError::Timeout(_))),
        "{queued:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(text(&slow.stdout), "slow\n");
    assert_eq!(shell_pid(&ssh).await, pid, "the slow run's shell is kept");
}
