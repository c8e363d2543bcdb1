//! The fault matrix: 30 healthy hosts beside one host per fault, through `dcmon poll`
//! and `dcmon serve`. Every healthy host is stored in every round, each faulty host
//! fails with its own reason, hosts go offline and come back when due, and after each
//! fault nothing dcmon started is left running on the test host.

mod testbed;

use rusqlite::Connection;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testbed::serve::Serve;
use testbed::{Sshd, addresses, by_host, descendants, json_lines, poll};

const HEALTHY: usize = 30;

/// The test host's side: the sshd standing for the healthy hosts and most faulty ones,
/// one sshd to SIGSTOP and one to kill (each stands for one host), and the listeners of
/// the network faults.
struct Matrix {
    /// On the PATH of every session of this matrix's sshds: the processes it started
    /// carry it in their environment, orphans included, whatever else runs beside.
    tag: tempfile::TempDir,
    main: Sshd,
    stalled: Sshd,
    killed: Sshd,
    inventory: PathBuf,
    db: PathBuf,
    /// Sleeps of the hanging scripts, unique to this test: `ps` must not show them.
    markers: [String; 2],
    healthy: Vec<String>,
    /// Held open: a full accept queue drops the next SYN, a black hole to the client.
    _black_hole: (socket2::Socket, Vec<TcpStream>),
    /// Held open: accepts into the kernel's queue, never answers.
    _silent: TcpListener,
}

/// The faulty hosts and the start of the reason each must fail with (`{}` stands for
/// the address and port, filled in by `reason`).
const FAULTS: &[(&str, &str)] = &[
    (
        "black-hole",
        "no SSH session with {} within 1.5s: TCP connect got no answer",
    ),
    (
        "silent",
        "no SSH session with {} within 1.5s: TCP connected but no SSH banner came",
    ),
    ("refused", "TCP connect to {} failed: Connection refused"),
    ("hang", "did not finish within 1.5s"),
    ("ignores-term", "did not finish within 1.5s"),
    (
        "flood",
        "output exceeded 16777216 bytes; the run was stopped",
    ),
    (
        "wrong-user",
        "{} refused public key authentication for user `nosuchuser`",
    ),
    ("wrong-key", "{} refused public key authentication for user"),
    ("changed-key", "HOST KEY CHANGED for {}"),
];

impl Matrix {
    fn build(number: u32, interval: &str) -> Matrix {
        let tag = tempfile::Builder::new()
            .prefix("dcmon-faults-")
            .tempdir()
            .unwrap();
        let every_host = [("127.0.0.0/8", tag.path())];
        let main = Sshd::start_with(&every_host);
        let stalled = Sshd::start_with(&every_host);
        let killed = Sshd::start_with(&every_host);
        let dir = main.dir.path();
        let healthy = addresses(HEALTHY);
        let markers = [format!("sleep 7{number}1"), format!("sleep 7{number}2")];
        let script = |name: &str, body: &str| {
            let path = main.write(name, &format!("#!/bin/sh\n{body}\n"));
            set_mode(&path, 0o755);
            path
        };
        let hang = script("hang.sh", &markers[0]);
        let term = script("term.sh", &format!("trap '' TERM\n{}", markers[1]));
        // A valid line among bytes that are no metric at all (fixed, so no chance).
        let garbage: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .filter(|b| *b != 0)
            .collect();
        std::fs::write(dir.join("garbage.bin"), garbage).unwrap();
        set_mode(&dir.join("garbage.bin"), 0o644);
        let garbage = script(
            "garbage.sh",
            &format!("echo 'fault_ok 1'\ncat {}/garbage.bin\necho", dir.display()),
        );
        let flood = script("flood.sh", "head -c 100000000 /dev/zero | tr '\\0' x");
        keygen(&dir.join("other_ed25519"));

        let fault_addr = |i: usize| format!("127.0.2.{i}");
        let mut known: Vec<String> = healthy.clone();
        known.extend((1..=6).map(fault_addr));
        let mut known_lines = main.known_hosts_lines(&known);
        known_lines.push_str(&stalled.known_hosts_lines(&["127.0.6.1".to_string()]));
        known_lines.push_str(&killed.known_hosts_lines(&["127.0.7.1".to_string()]));
        let known_hosts = main.write("known_hosts", &known_lines);
        // Another sshd's key where this one's is expected.
        let changed = main.write(
            "changed_known_hosts",
            &format!("[127.0.2.7]:{} {}\n", main.port, stalled.host_key),
        );

        let (black_hole, black_port) = black_hole("127.0.3.1");
        let silent = TcpListener::bind("127.0.3.2:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let refused_port = testbed::free_port();
        let host = |name: &str, address: &str, extra: &str| {
            format!("\n[[hosts]]\nname = \"{name}\"\naddress = \"{address}\"\n{extra}")
        };
        let custom = |path: &Path| {
            format!(
                "probes = [\"custom\"]\ncustom_scripts = [\"{}\"]\n",
                path.display()
            )
        };
        let mut inventory = format!(
            "{}interval = \"{interval}\"\noffline_after = 2\n\n[groups.healthy]\nhosts = [\"127.0.1.[1-{HEALTHY}]\"]\n\n[groups.stuck]\ntimeout = \"1500ms\"\n",
            main.defaults(&known_hosts, "10s")
        );
        let quick = "connect_timeout = \"1500ms\"\n";
        for (name, address, extra) in [
            (
                "black-hole",
                "127.0.3.1",
                format!("port = {black_port}\n{quick}"),
            ),
            (
                "silent",
                "127.0.3.2",
                format!("port = {silent_port}\n{quick}"),
            ),
            ("refused", "127.0.3.3", format!("port = {refused_port}\n")),
            (
                "hang",
                "127.0.2.1",
                format!("groups = [\"stuck\"]\n{}", custom(&hang)),
            ),
            (
                "ignores-term",
                "127.0.2.2",
                format!("groups = [\"stuck\"]\n{}", custom(&term)),
            ),
            ("garbage", "127.0.2.3", custom(&garbage)),
            // Slow, so serve's rounds of it do not load the machine the others share.
            (
                "flood",
                "127.0.2.4",
                format!("timeout = \"30s\"\ninterval = \"15s\"\n{}", custom(&flood)),
            ),
            (
                "wrong-user",
                "127.0.2.5",
                "user = \"nosuchuser\"\n".to_string(),
            ),
            (
                "wrong-key",
                "127.0.2.6",
                format!("identity = \"{}\"\n", dir.join("other_ed25519").display()),
            ),
            (
                "changed-key",
                "127.0.2.7",
                format!("known_hosts = \"{}\"\n", changed.display()),
            ),
            (
                "stalled",
                "127.0.6.1",
                format!(
                    "port = {}\nidentity = \"{}\"\ngroups = [\"stuck\"]\n{quick}",
                    stalled.port,
                    stalled.client_key.display()
                ),
            ),
            (
                "killed",
                "127.0.7.1",
                format!(
                    "port = {}\nidentity = \"{}\"\n{quick}",
                    killed.port,
                    killed.client_key.display()
                ),
            ),
        ] {
            inventory.push_str(&host(name, address, &extra));
        }
        let inventory_path = main.write("inventory.toml", &inventory);
        let db = dir.join("dcmon.db");
        Matrix {
            tag,
            main,
            stalled,
            killed,
            inventory: inventory_path,
            db,
            markers,
            healthy,
            _black_hole: black_hole,
            _silent: silent,
        }
    }

    /// The reason a fault must start with, addresses filled in.
    fn reason(&self, fault: &str) -> String {
        let at = |addr: &str, port: u16| format!("[{addr}]:{port}");
        let (_, template) = FAULTS.iter().find(|(f, _)| *f == fault).unwrap();
        let port_of = |a: &str| -> u16 {
            let text = std::fs::read_to_string(&self.inventory).unwrap();
            let block = text
                .split("[[hosts]]")
                .find(|b| b.contains(&format!("\"{a}\"")))
                .unwrap();
            block
                .lines()
                .find_map(|l| l.strip_prefix("port = "))
                .map_or(self.main.port, |p| p.parse().unwrap())
        };
        let address = match fault {
            "black-hole" => "127.0.3.1",
            "silent" => "127.0.3.2",
            "refused" => "127.0.3.3",
            "wrong-user" => "127.0.2.5",
            "wrong-key" => "127.0.2.6",
            "changed-key" => "127.0.2.7",
            _ => return template.to_string(),
        };
        template.replace("{}", &at(address, port_of(fault)))
    }

    /// Processes this matrix's sessions started that still run on the test host
    /// (`hung`: only the hanging scripts' sleeps).
    fn leftovers(&self, hung_only: bool) -> Vec<String> {
        let tag = format!("PATH={}:", self.tag.path().display());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let ours = environ
                .split(|b| *b == 0)
                .any(|var| var.starts_with(tag.as_bytes()));
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // sshd's own session processes hold the environment too; they are not ours.
            if !ours || cmdline.starts_with("sshd") {
                continue;
            }
            if hung_only && !self.markers.iter().any(|m| cmdline.contains(m.as_str())) {
                continue;
            }
            let shown: String = cmdline.chars().take(120).collect();
            found.push(format!("{}: {shown}", entry.file_name().to_string_lossy()));
        }
        found
    }

    /// Waits (the watchdog's TERM, 2 s, KILL) until nothing is left, or fails.
    fn assert_nothing_left(&self, after: &str) {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let left = self.leftovers(false);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "after {after}, still running on the host:\n{}",
                left.join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn poll_rounds_through_every_fault() {
    let mut m = Matrix::build(1, "30s");
    let round = |m: &Matrix| -> (Vec<serde_json::Value>, std::process::ExitStatus) {
        let out = poll(&m.inventory, &m.db);
        (json_lines(&out), out.status)
    };

    // Round 1: every fault at once; the stalled and killed hosts are still fine.
    let (results, status) = round(&m);
    assert_eq!(status.code(), Some(1));
    assert_eq!(results.len(), HEALTHY + FAULTS.len() + 3, "{results:#?}");
    for host in &m.healthy {
        assert_eq!(by_host(&results, host)["status"], "ok", "{results:#?}");
    }
    for (fault, _) in FAULTS {
        let error = by_host(&results, fault)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.starts_with(&m.reason(fault)),
            "{fault}: {error}\nwanted: {}",
            m.reason(fault)
        );
    }
    let garbage = by_host(&results, "garbage");
    assert_eq!(garbage["status"], "partial", "{garbage}");
    let count = garbage["warnings"]["count"].as_u64().unwrap();
    assert!(count > 0, "{garbage}");
    // Each run's own count, summing to the host's.
    let by_probe = garbage["warnings"]["by_probe"].as_object().unwrap();
    assert_eq!(
        by_probe.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        count,
        "{garbage}"
    );
    assert!(
        garbage["samples"].as_u64().unwrap() >= 1,
        "the good line is kept"
    );
    assert_eq!(by_host(&results, "stalled")["status"], "ok");
    assert_eq!(by_host(&results, "killed")["status"], "ok");
    m.assert_nothing_left("a poll round with every fault");

    // Round 2: one sshd stopped (its port still accepts), one killed.
    signal_tree(m.stalled.pid(), "-STOP");
    m.killed.kill();
    let (results, _) = round(&m);
    for host in &m.healthy {
        assert_eq!(by_host(&results, host)["status"], "ok", "{results:#?}");
    }
    let stalled = by_host(&results, "stalled")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stalled,
        format!(
            "no SSH session with [127.0.6.1]:{} within 1.5s: TCP connected but no SSH banner came (sshd stopped or overloaded, or not an SSH port)",
            m.stalled.port
        )
    );
    let killed = by_host(&results, "killed")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        killed.starts_with(&format!(
            "TCP connect to [127.0.7.1]:{} failed: Connection refused",
            m.killed.port
        )),
        "{killed}"
    );

    // Round 3: both back.
    signal_tree(m.stalled.pid(), "-CONT");
    m.killed.restart();
    let (results, _) = round(&m);
    for host in m
        .healthy
        .iter()
        .map(String::as_str)
        .chain(["stalled", "killed"])
    {
        assert_eq!(
            by_host(&results, host)["status"],
            "ok",
            "{host}: {results:#?}"
        );
    }
    m.assert_nothing_left("three poll rounds");

    // Every round stored every healthy host: three rounds of os and the fs it brings,
    // all good.
    let conn = Connection::open(&m.db).unwrap();
    let runs = runs_by_host(&conn);
    for host in &m.healthy {
        assert_eq!(runs[host.as_str()], (6, 6), "{host}");
    }
}

#[test]
fn serve_through_every_fault_with_offline_and_back() {
    let mut m = Matrix::build(2, "2s");
    let serve = Serve::start(&m.inventory, &m.db);
    let started = Instant::now();

    // The hung run is stopped at its 1.5 s timeout, and each fault has its reason.
    serve.wait_for(
        Duration::from_secs(40),
        "a round of every host",
        |reports| {
            ["hang", "flood", "black-hole", "stalled"]
                .iter()
                .chain(FAULTS.iter().map(|(f, _)| f))
                .all(|h| reports.iter().any(|r| r["host"] == *h))
        },
    );
    let reports = serve.reports();
    let hung = reports
        .iter()
        .find(|r| r["host"] == "hang")
        .map(|r| r["probes"][0].clone())
        .unwrap();
    assert_eq!(hung["error"], "did not finish within 1.5s", "{hung}");
    // Stopped at its deadline, not at some later timeout. While the flood host pushes
    // 100 MB through the same poller on CI's two cores, the stop can land over a second
    // late (2.86 s seen once): the bound proves the deadline, not a speed.
    let took = hung["duration_ms"].as_i64().unwrap();
    assert!(
        (1500..4000).contains(&took),
        "the hung run took {took} ms: {hung}"
    );
    for (fault, _) in FAULTS {
        let error = reports
            .iter()
            .filter(|r| r["host"] == *fault)
            .find_map(|r| r["probes"][0]["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        let wanted = m.reason(fault);
        assert!(
            error.starts_with(&wanted),
            "{fault}: {error}\nwanted: {wanted}"
        );
    }

    // While it runs, hung scripts never pile up: at most the one running and the one
    // being stopped, for each.
    let mut most = 0;
    let watch_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < watch_until {
        for marker in &m.markers {
            let n = m
                .leftovers(true)
                .iter()
                .filter(|l| l.contains(marker.as_str()))
                .count();
            most = most.max(n);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(most <= 2, "{most} copies of one hung script at once");

    // The stalled sshd (live session included) and the killed one: offline within
    // offline_after rounds, back online as soon as they answer again.
    signal_tree(m.stalled.pid(), "-STOP");
    m.killed.kill();
    let offline = |host: &str| {
        let conn = Connection::open(&m.db).unwrap();
        conn.query_row(
            "SELECT online, last_error FROM hosts WHERE host = ?1",
            [host],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .ok()
    };
    let wait_state = |host: &str, online: i64, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let state = offline(host);
            if state.as_ref().is_some_and(|(o, _)| *o == online) {
                return state.unwrap().1;
            }
            assert!(
                Instant::now() < deadline,
                "{host} never became online={online}: {state:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let stalled_error = wait_state("stalled", 0, Duration::from_secs(30)).unwrap_or_default();
    let killed_error = wait_state("killed", 0, Duration::from_secs(30)).unwrap_or_default();
    assert!(
        stalled_error.contains("within 1.5s") || stalled_error.contains("stalled"),
        "{stalled_error}"
    );
    assert!(
        killed_error.contains("TCP connect to [127.0.7.1]")
            || killed_error.contains("connection was lost"),
        "{killed_error}"
    );
    // Nothing of the stalled host's runs survives on it once it can run again.
    signal_tree(m.stalled.pid(), "-CONT");
    m.killed.restart();
    let cont = Instant::now();
    assert_eq!(wait_state("stalled", 1, Duration::from_secs(20)), None);
    assert_eq!(wait_state("killed", 1, Duration::from_secs(20)), None);
    assert!(
        cont.elapsed() < Duration::from_secs(12),
        "back online after {:?}",
        cont.elapsed()
    );

    // Offline and online events, in order, for both.
    let conn = Connection::open(&m.db).unwrap();
    for host in ["stalled", "killed"] {
        let events: Vec<String> = conn
            .prepare("SELECT message FROM logs WHERE host = ?1 AND source = 'dcmon' ORDER BY ts")
            .unwrap()
            .query_map([host], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events.len(), 2, "{host}: {events:?}");
        assert!(
            events[0].starts_with("host offline: 2 rounds missed: "),
            "{events:?}"
        );
        assert!(
            events[1].starts_with("host back online after "),
            "{events:?}"
        );
    }
    // The hung-probe hosts are offline too: no run of theirs ever answers, so they
    // were never seen.
    assert_eq!(offline("hang").map(|s| s.0), Some(0));
    assert!(
        offline("hang")
            .unwrap()
            .1
            .unwrap_or_default()
            .contains("did not finish within 1.5s")
    );
    let never_seen: Option<i64> = conn
        .query_row("SELECT last_seen FROM hosts WHERE host = 'hang'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(never_seen, None, "last seen moves only when a run answers");

    // Every healthy host stored a good run in every round of the test, none failed.
    let seconds = started.elapsed().as_secs() as i64;
    let runs = runs_by_host(&conn);
    for host in &m.healthy {
        let (all, ok) = runs[host.as_str()];
        assert_eq!(all, ok, "{host}: a healthy host's run failed");
        assert!(ok >= seconds / 2 - 2, "{host}: {ok} rounds in {seconds} s");
    }
    drop(serve);
    m.assert_nothing_left("serve stopped");
}

/// Host → (runs stored, good runs), from the run series every stored run gives.
fn runs_by_host(conn: &Connection) -> BTreeMap<String, (i64, i64)> {
    let db = std::path::Path::new(conn.path().expect("a database file"));
    let mut runs: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for series in testbed::stored::points(db, "dcmon_probe_success", None) {
        let (stored, good) = runs.entry(series.host).or_default();
        *stored += series.points.len() as i64;
        *good += series.points.iter().filter(|p| p.1 == 1.0).count() as i64;
    }
    runs
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Sends `signal` to sshd and every session process it forked.
fn signal_tree(pid: u32, signal: &str) {
    let mut all = descendants(pid);
    all.push(pid);
    let _ = Command::new("kill")
        .arg(signal)
        .args(all.iter().map(u32::to_string))
        .status();
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// to it gets no answer at all, as behind a firewall that drops.
fn black_hole(address: &str) -> ((socket2::Socket, Vec<TcpStream>), u16) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let addr: std::net::SocketAddr = format!("{address}:0").parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(0).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let target: std::net::SocketAddr = format!("{address}:{port}").parse().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
            fillers.push(s);
        }
    }
    ((socket, fillers), port)
}
