//! The dashboard of a real `dcmon serve` under a slow-loris attack: 2,000 connections
//! that send half a request and stop keep no one else out, and are closed by the
//! server after its header timeout.

mod testbed;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testbed::dashboard::Dashboard;

/// The test holds thousands of sockets itself.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 8192 {
        setrlimit(Resource::RLIMIT_NOFILE, 8192.min(hard), hard).unwrap();
    }
}

fn timed_get(dashboard: &Dashboard, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _) = dashboard.get(path);
    (status, started.elapsed())
}

/// Whether the server closed this connection: EOF or reset, not "nothing yet".
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => s.read(&mut buf).is_ok_and(|n| n == 0),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn half_open_connections_do_not_keep_others_out() {
    raise_open_files();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dcmon.db");
    let dashboard = Dashboard::start(&["--db", db.to_str().unwrap()]);
    let mut loris = Vec::new();
    for i in 0..2000 {
        let mut s = TcpStream::connect(&dashboard.address).unwrap();
        // Half the headers of a request, never the end: some send nothing at all.
        if i % 2 == 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: dcmon\r\nX-Slow: ")
                .unwrap();
        }
        loris.push(s);
    }
    for path in ["/health", "/"] {
        let (status, took) = timed_get(&dashboard, path);
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    // The server closes them itself (10 s header / first-byte timeout).
    std::thread::sleep(Duration::from_secs(11));
    let closed = loris.iter_mut().map(closed_by_peer).filter(|c| *c).count();
    assert!(closed > 1900, "only {closed} of 2000 closed by the server");
    let (status, _) = timed_get(&dashboard, "/health");
    assert_eq!(status, 200);
}

/// The database holds the audit trail and logs: it, its WAL and shared-memory files and
/// the control socket are the owner's alone, even under a permissive umask.
#[test]
fn files_serve_creates_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("dcmon.db");
    // serve inherits the umask of the test process: the most permissive usual one.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let dashboard = Dashboard::start(&["--db", db.to_str().unwrap()]);
    nix::sys::stat::umask(old);
    let socket = dir.path().join("dcmon.db.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = dashboard.get("/health");
    assert_eq!(status, 200);
    for name in ["dcmon.db", "dcmon.db-wal", "dcmon.db-shm", "dcmon.db.sock"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
    // Nothing is left of the private directory the socket was bound in.
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dcmon-sock"))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
}
