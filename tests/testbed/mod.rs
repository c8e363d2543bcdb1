//! The test bed: a private OpenSSH sshd on loopback, with its own config, host key and
//! authorized_keys in a temp dir, stopped when dropped.
//!
//! One sshd stands for many hosts: it listens on 0.0.0.0, so every 127.x.y.z address
//! reaches it, and a `Match LocalAddress` block refuses logins arriving on any other
//! address. As root, tests log in as the dedicated user `dcmon-test` whose shell is
//! /bin/sh (root's bash startup made 200 parallel commands 60x slower); otherwise as
//! the current user.

#![allow(dead_code)] // each test binary uses its own part of the bed

pub mod bastion;
pub mod chromium;
pub mod cluster;
pub mod cpuacct;
pub mod dashboard;
pub mod ipmi_sim;
pub mod redfish;
pub mod serve;
pub mod shims;
pub mod stored;
pub mod tsdb;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";
const TEST_USER: &str = "dcmon-test";
pub const SUDO_USER: &str = "dcmon-sudo";
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    /// Private key the tests authenticate with.
    pub client_key: PathBuf,
    /// `ssh-ed25519 AAAA...` of the server's host key.
    pub host_key: String,
    child: Child,
}

/// A test host: its address, the directory first on its PATH (shims), and environment
/// variables its logins get.
pub type HostShims<'a> = (&'a str, &'a Path, &'a [(&'a str, &'a str)]);

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(&[])
    }

    /// Starts sshd where each `(address, dir)` host finds `dir` first on its PATH (shims
    /// of ipmitool, nvidia-smi, nvme), chosen by the destination address of the login.
    pub fn start_with(hardware: &[(&str, &Path)]) -> Sshd {
        let with_env: Vec<HostShims> = hardware
            .iter()
            .map(|(addr, dir)| (*addr, *dir, &[][..]))
            .collect();
        Sshd::start_with_env(&with_env)
    }

    /// As `start_with`, each host also given environment variables (a fake sysfs root
    /// for the infiniband probe: `DCMON_SYSFS`).
    pub fn start_with_env(hardware: &[HostShims]) -> Sshd {
        Sshd::start_full(hardware, None, &|_| String::new())
    }

    /// The bed, with logins refused unless they come from `only_from` (the address a
    /// bastion's forwarded connections come from, `bastion::FORWARDED_FROM`), and the
    /// global sshd_config lines `extra(dir)` returns; it runs once the bed's keys are in
    /// `dir` (`host_ed25519`, `client_ed25519`), so it can sign them.
    pub fn start_full(
        hardware: &[HostShims],
        only_from: Option<&str>,
        extra: &dyn Fn(&Path) -> String,
    ) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: run tests/run.sh, which installs openssh-server"
        );
        let dir = tempfile::Builder::new()
            .prefix("dcmon-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        // sshd reads authorized_keys as the login user: the dir and file must be readable.
        set_mode(&d, 0o755);
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_ed25519"));
        let authorized = d.join("authorized_keys");
        std::fs::copy(d.join("client_ed25519.pub"), &authorized).unwrap();
        set_mode(&authorized, 0o644);
        let user = login_user();
        let host_key = public_key(&d.join("host_ed25519.pub"));
        let extra = extra(&d);
        let only_from = only_from.map_or(String::new(), |from| {
            format!("Match Address *,!{from}\n\tDenyUsers *\n")
        });
        let (port, child) = launch(&d, |port| {
            format!(
                "{base}\
                 AllowUsers {user} {SUDO_USER}\n\
                 MaxSessions 100\n{extra}\
                 Match LocalAddress *,!127.0.0.0/8\n\
                 \tDenyUsers *\n{only_from}{hardware}\
                 Match all\n\
                 \tSetEnv PATH={DEFAULT_PATH}\n",
                base = base_config(&d, port),
                // SetEnv is first-match-wins: per-host blocks before the default.
                hardware = hardware
                    .iter()
                    .map(|(addr, dir, env)| format!(
                        "Match LocalAddress {addr}\n\tSetEnv PATH={}:{DEFAULT_PATH}{}\n",
                        dir.display(),
                        env.iter()
                            .map(|(k, v)| format!(" {k}={v}"))
                            .collect::<String>()
                    ))
                    .collect::<String>(),
            )
        });
        Sshd {
            dir,
            port,
            user,
            client_key: d.join("client_ed25519"),
            host_key,
            child,
        }
    }

    /// Kills sshd and every session process it forked: the hosts go dark, open
    /// connections break. `restart` brings them back on the same port and key.
    pub fn kill(&mut self) {
        kill_tree(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.child = relaunch(self.dir.path(), self.port, "sshd.log");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A known_hosts line for each address, with this sshd's real host key.
    pub fn known_hosts_lines(&self, addresses: &[String]) -> String {
        addresses
            .iter()
            .map(|a| format!("[{a}]:{} {}\n", self.port, self.host_key))
            .collect()
    }

    /// Writes a file into the bed's directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The `[defaults]` every test inventory starts from.
    pub fn defaults(&self, known_hosts: &Path, timeout: &str) -> String {
        format!(
            "[defaults]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ntimeout = \"{timeout}\"\nconnect_timeout = \"{timeout}\"\nprobes = [\"os\"]\n",
            self.user,
            self.port,
            self.client_key.display(),
            known_hosts.display()
        )
    }

    /// `defaults` with SSH's port closed (a free port nothing listens on): hosts whose
    /// OS cannot be reached, for tests of what their BMC alone says.
    pub fn defaults_ssh_closed(&self, known_hosts: &Path, timeout: &str) -> String {
        self.defaults(known_hosts, timeout).replace(
            &format!("port = {}\n", self.port),
            &format!("port = {}\n", free_port()),
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET (no chunked bodies) with a 10 s read deadline: the body.
pub fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// A peer process (Prometheus, Alertmanager, an SMTP server) killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `127.0.1.1` ... : `count` addresses of the one sshd.
pub fn addresses(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("127.0.{}.{}", 1 + i / 200, 1 + i % 200))
        .collect()
}

/// A port nobody listens on right now.
/// Waits until the sshd `child` listens on `port`; its exit or silence is an error
/// carrying its log.
fn wait_listening(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited with {status}: {}", log()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "sshd did not listen on port {port} within 10s: {}",
        log()
    ))
}

/// The sshd_config lines every sshd of the bed shares: its port on every address, its
/// files in `dir`, keys only, and room for hundreds of logins at once.
pub(crate) fn base_config(dir: &Path, port: u16) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 0.0.0.0\n\
         HostKey {dir}/host_ed25519\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         PermitRootLogin no\n\
         MaxStartups 4000:30:8000\n\
         PerSourceMaxStartups none\n\
         LogLevel VERBOSE\n",
        dir = dir.display()
    )
}

/// SIGKILL to an sshd and every session process it forked (stopped ones included).
pub(crate) fn kill_tree(child: &mut Child) {
    let pid = child.id();
    let mut doomed = descendants(pid);
    doomed.push(pid);
    let _ = Command::new("kill")
        .arg("-9")
        .args(doomed.iter().map(u32::to_string))
        .status();
    let _ = child.wait();
}

/// The sshd of `dir` started again on `port` with its config, logging to `log`.
pub(crate) fn relaunch(dir: &Path, port: u16, log: &str) -> Child {
    let mut child = Command::new(SSHD)
        .args(["-D", "-f"])
        .arg(dir.join("sshd_config"))
        .arg("-E")
        .arg(dir.join(log))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    if let Err(why) = wait_listening(&mut child, port, &dir.join(log)) {
        panic!("{why}");
    }
    child
}

/// `ssh-ed25519 AAAA...` of a public key file.
pub(crate) fn public_key(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts `sshd -D` with the config `text(port)` written to `dir/sshd_config`, on a
/// free port: one taken by another test between asking and binding makes sshd say so
/// and exit, and a new port is tried.
pub fn launch(dir: &Path, text: impl Fn(u16) -> String) -> (u16, Child) {
    let config = dir.join("sshd_config");
    // sshd refuses to start (even `-t`) without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").ok();
    for attempt in 1.. {
        let port = free_port();
        std::fs::write(&config, text(port)).unwrap();
        let check = Command::new(SSHD)
            .args(["-t", "-f"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "sshd -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = dir.join("sshd.log");
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(SSHD)
            .args(["-D", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        match wait_listening(&mut child, port, &log) {
            Ok(()) => return (port, child),
            Err(why) if why.contains("Address already in use") && attempt < 5 => {}
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{why}");
            }
        }
    }
    unreachable!("the loop returns or panics")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dcmon-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// As root: the dedicated test user, created on first use (tests/run.sh creates it too).
fn login_user() -> String {
    static CREATE: Mutex<()> = Mutex::new(());
    if !is_root() {
        return std::env::var("USER").unwrap_or_else(|_| {
            String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
                .trim()
                .to_string()
        });
    }
    let _guard = CREATE.lock().unwrap();
    system_user(TEST_USER);
    TEST_USER.to_string()
}

/// Makes a system login user with /bin/sh, no home and a locked password, unless it exists.
fn system_user(name: &str) {
    let exists = Command::new("id")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/tmp",
                "--shell",
                "/bin/sh",
                name,
            ])
            .status();
        // With UsePAM no, a user without a password hash is "locked" to sshd.
        let _ = Command::new("usermod").args(["-p", "*", name]).status();
    }
}

/// A second login user of the bed, with passwordless sudo for everything, so `become`
/// can be tried for real (the usual test user has no sudo rights, and tests check that
/// too). Made only as root, like the test user: `None` otherwise. Its password is locked;
/// only the bed's own sshd and key log it in.
pub fn sudo_user() -> Option<&'static str> {
    static CREATE: Mutex<bool> = Mutex::new(false);
    if !is_root() {
        return None;
    }
    let mut made = CREATE.lock().unwrap();
    if !*made {
        system_user(SUDO_USER);
        let rule = Path::new("/etc/sudoers.d/dcmon-test-sudo");
        std::fs::write(rule, format!("{SUDO_USER} ALL=(root) NOPASSWD: ALL\n")).ok()?;
        set_mode(rule, 0o440);
        let checked = Command::new("visudo")
            .args(["-cf"])
            .arg(rule)
            .output()
            .is_ok_and(|o| o.status.success());
        if !checked {
            let _ = std::fs::remove_file(rule);
            return None;
        }
        *made = true;
    }
    Some(SUDO_USER)
}

/// `dcmon poll --inventory INV --db DB --json`, the tests' usual round.
pub fn poll(inventory: &Path, db: &Path) -> std::process::Output {
    dcmon(&[
        "poll",
        "--inventory",
        &inventory.display().to_string(),
        "--db",
        &db.display().to_string(),
        "--json",
    ])
}

/// Runs the dcmon binary built for these tests.
pub fn dcmon(args: &[&str]) -> std::process::Output {
    dcmon_env(args, &[])
}

/// Runs the dcmon binary with `env` added to (or, for an empty value, removed from) its
/// environment.
pub fn dcmon_env(args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dcmon"));
    command.args(args);
    for (key, value) in env {
        if value.as_os_str().is_empty() {
            command.env_remove(key);
        } else {
            command.env(key, value);
        }
    }
    command.output().unwrap()
}

/// `dcmon COMMAND --inventory INV --db DB ARGS...`.
#[allow(dead_code)] // not every test binary uses it
pub fn dcmon_on(command: &str, inventory: &Path, db: &Path, args: &[&str]) -> std::process::Output {
    let (inventory, db) = (inventory.display().to_string(), db.display().to_string());
    let mut all = vec![command, "--inventory", &inventory, "--db", &db];
    all.extend_from_slice(args);
    dcmon(&all)
}

/// Lines of stdout parsed as JSON objects.
/// One test host behind its own sshd, with its shims first on PATH, environment
/// variables, and `host_toml` added to its `[[hosts]]` entry: (sshd, inventory, db).
#[allow(dead_code)] // not every test binary uses it
pub fn single_host(
    host: &str,
    shims: &Path,
    env: &[(&str, &str)],
    host_toml: &str,
) -> (Sshd, PathBuf, PathBuf) {
    let bed = Sshd::start_with_env(&[(host, shims, env)]);
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&[host.to_string()]));
    let inventory = format!(
        "{}\n[[hosts]]\nname = \"{host}\"\n{host_toml}\n",
        bed.defaults(&known_hosts, "20s")
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    (bed, inv, db)
}

/// One `dcmon poll` of an inventory of one host, which must come out `ok`.
#[allow(dead_code)] // not every test binary uses it
pub fn poll_one_ok(inventory: &Path, db: &Path) -> serde_json::Value {
    let out = poll(inventory, db);
    let result = json_lines(&out).remove(0);
    assert_eq!(result["status"], "ok", "{result}");
    result
}

pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The `dcmon poll --json` line of `host` (lines come in the order hosts finish).
pub fn by_host<'a>(results: &'a [serde_json::Value], host: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["host"] == host)
        .unwrap_or_else(|| panic!("no result for {host} in {results:?}"))
}

/// Every process below `pid`, from /proc (sshd's session processes call setsid, so a
/// process group would not catch them).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = vec![pid];
    let mut found = Vec::new();
    while let Some(parent) = parents.pop() {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // Field 4 of /proc/PID/stat, after the parenthesised command name.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                found.push(child);
                parents.push(child);
            }
        }
    }
    found
}
