//! DMTF's Redfish Mockup Server, a real Redfish service, over HTTPS on a private
//! loopback port, serving a copy of the `public-rackmount1` mockup (so a test may edit
//! readings), with certificates made here by `openssl`: a test CA, a certificate it
//! signs for 127.0.0.1, an expired one, and a second CA that signed nothing.
//!
//! The server is a test peer, not part of dcmon: it is used where it lies, as
//! ../shared/testbed/redfish/SOURCES.md says (`DCMON_REDFISH_MOCKUP` names another
//! place). It accepts any credentials.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where DMTF's server and its mockups are: `run.py`, `public-rackmount1/`.
pub fn peer_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("DCMON_REDFISH_MOCKUP").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testbed/redfish")),
        Some(PathBuf::from("/work/shared/testbed/redfish")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("run.py").is_file())
        .unwrap_or_else(|| {
            panic!(
                "DMTF's Redfish Mockup Server is not at ../shared/testbed/redfish: set DCMON_REDFISH_MOCKUP to the folder holding run.py and public-rackmount1"
            )
        })
}

/// Test certificates in one folder.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Signed by `ca`, for 127.0.0.1, but its validity ended yesterday.
    pub expired: PathBuf,
    /// A CA that signed none of these.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=dcmon test {ca}"),
            );
            args.extend(["-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem]);
            openssl(dir, &args);
        }
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-subj", "/CN=bmc", "-keyout", "bmc.key", "-out", "bmc.csr"]);
        openssl(dir, &args);
        std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        for (name, days) in [("bmc.pem", "2"), ("expired.pem", "-1")] {
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "bmc.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    days,
                    "-extfile",
                    "ext",
                    "-out",
                    name,
                ],
            );
        }
        Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("bmc.pem"),
            key: dir.join("bmc.key"),
            expired: dir.join("expired.pem"),
            other_ca: dir.join("other-ca.pem"),
        }
    }
}

/// One mockup server; killed when dropped.
pub struct Mockup {
    child: Child,
    pub port: u16,
    /// The copy of the mockup it serves (edit a resource's `index.json` to change it).
    pub root: PathBuf,
}

impl Mockup {
    /// Serves a copy of `public-rackmount1` (made in `dir`) over HTTPS with `cert`.
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> Mockup {
        Mockup::start_with(dir, cert, key, false)
    }

    /// The same server speaking HTTP/1.1 with keep-alive, as BMCs do
    /// (`redfish_keepalive.py`); as shipped it closes every connection.
    #[allow(dead_code)] // the benchmark's
    pub fn start_keepalive(dir: &Path, cert: &Path, key: &Path) -> Mockup {
        Mockup::start_with(dir, cert, key, true)
    }

    fn start_with(dir: &Path, cert: &Path, key: &Path, keepalive: bool) -> Mockup {
        let peer = peer_dir();
        let root = dir.join("public-rackmount1");
        if !root.exists() {
            let out = Command::new("cp")
                .arg("-r")
                .arg(peer.join("public-rackmount1"))
                .arg(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Mockup::serve(&peer, root, cert, key, keepalive)
    }

    fn serve(peer: &Path, root: PathBuf, cert: &Path, key: &Path, keepalive: bool) -> Mockup {
        let port = super::free_port();
        let log = std::fs::File::create(root.with_extension(format!("{port}.log"))).unwrap();
        let mut command = Command::new("python3");
        if keepalive {
            command.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/testbed/redfish_keepalive.py"
            ));
        }
        let child = command
            .arg(peer.join("run.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-S", "-D"])
            .arg(&root)
            .arg("-s")
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs the Redfish mockup server");
        let mockup = Mockup { child, port, root };
        mockup.wait_ready();
        mockup
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the Redfish mockup server did not listen on {} within 20 s",
            self.port
        );
    }

    /// The server's access log: one line per request (`"GET /redfish/v1/ HTTP/1.1" 200`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.with_extension(format!("{}.log", self.port)))
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A resource of the served mockup, as the server holds it (`Chassis/1U/Thermal`).
    pub fn resource(&self, path: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.root.join(path).join("index.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Rewrites a resource of the mockup (the server reads its files on every GET).
    pub fn edit(&self, path: &str, change: impl FnOnce(&mut serde_json::Value)) {
        let mut v = self.resource(path);
        change(&mut v);
        std::fs::write(
            self.root.join(path).join("index.json"),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }
}

impl Drop for Mockup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay in front of a server that closes each connection after its answer (as the
/// mockup server does): the first `whole` connections pass untouched; on every later
/// one the server's last bytes (the end of its answer) are held back and the
/// connection is kept open, so the client sees an answer stop mid-way and never end.
/// Bytes are forwarded as they come, except the newest `tail`, which go out once the
/// server has been quiet for 50 ms (a TLS handshake waits on them) but not when the
/// server closes.
pub struct StallingRelay {
    pub port: u16,
}

impl StallingRelay {
    pub fn start(server_port: u16, whole: usize) -> StallingRelay {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let (mut upstream, mut downstream) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut upstream, &mut downstream);
                });
                let tail = if n < whole { 0 } else { 100 };
                std::thread::spawn(move || {
                    server
                        .set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    let mut held: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 16384];
                    loop {
                        match server.read(&mut buf) {
                            Ok(0) => break, // closed: what is held stays held
                            Ok(k) => {
                                held.extend_from_slice(&buf[..k]);
                                let send = held.len().saturating_sub(tail);
                                if client.write_all(&held[..send]).is_err() {
                                    return;
                                }
                                held.drain(..send);
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                // Quiet: the server waits on the client; let it all through.
                                if client.write_all(&held).is_err() {
                                    return;
                                }
                                held.clear();
                            }
                            Err(_) => break,
                        }
                    }
                    if tail == 0 {
                        let _ = client.write_all(&held);
                        return;
                    }
                    // Mid-answer, and silent from now on (the socket stays open).
                    std::thread::sleep(Duration::from_secs(60));
                    drop(client);
                });
            }
        });
        StallingRelay { port }
    }
}
