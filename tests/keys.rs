//! Keys as OpenSSH users hold them, against real OpenSSH: a real ssh-agent filled by
//! ssh-add, encrypted ed25519 and RSA keys opened with a passphrase file, and user
//! certificates signed by `ssh-keygen -s` and trusted by sshd's `TrustedUserCAKeys`.

mod testbed;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testbed::{Sshd, by_host, dcmon_env, json_lines};

const HOST: &str = "127.0.6.1";
/// A second host on the same sshd: a host certificate naming HOST is not for it.
const OTHER: &str = "127.0.6.2";

/// `dcmon poll --json` with `env` set (or removed when empty): the host's result.
fn poll_with(inventory: &Path, env: &[(&str, &Path)]) -> serde_json::Value {
    poll_host(inventory, env, HOST)
}

fn poll_host(inventory: &Path, env: &[(&str, &Path)], host: &str) -> serde_json::Value {
    let db = inventory.with_extension("db");
    let out = dcmon_env(
        &[
            "poll",
            "--inventory",
            inventory.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--json",
        ],
        env,
    );
    by_host(&json_lines(&out), host).clone()
}

/// An inventory of the one host, the bed's defaults with `identity` lines replaced.
fn inventory(bed: &Sshd, name: &str, identity: &str) -> PathBuf {
    let known_hosts = bed.write("known_hosts", &bed.known_hosts_lines(&[HOST.to_string()]));
    inventory_with(bed, name, identity, &known_hosts)
}

fn inventory_with(bed: &Sshd, name: &str, identity: &str, known_hosts: &Path) -> PathBuf {
    let defaults = bed.defaults(known_hosts, "10s");
    let defaults: String = defaults
        .lines()
        .filter(|l| !l.starts_with("identity"))
        .map(|l| format!("{l}\n"))
        .collect();
    bed.write(
        name,
        &format!("{defaults}{identity}\n[groups.all]\nhosts = [\"{HOST}\", \"{OTHER}\"]\n"),
    )
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut command = Command::new("ssh-keygen");
    command.args(["-q", "-t", kind, "-N", passphrase, "-C", "dcmon-test"]);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    run(command.arg("-f").arg(path));
}

/// Lets `key` log in to the bed as its user.
fn authorize(bed: &Sshd, key: &Path) {
    use std::io::Write;
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(bed.dir.path().join("authorized_keys"))
        .unwrap();
    file.write_all(public.as_bytes()).unwrap();
}

fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A real ssh-agent on a socket of its own, stopped when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) is installed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(Stdio::piped()));
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn keys_held_by_a_real_ssh_agent_log_in_and_a_stopped_agent_is_named() {
    let bed = Sshd::start();
    let mut agent = Agent::start(bed.dir.path());
    agent.add(&bed.client_key);
    let empty_home = tempfile::tempdir().unwrap();
    let socket = agent.socket.clone();
    let env = [
        ("SSH_AUTH_SOCK", socket.as_path()),
        ("HOME", empty_home.path()),
    ];
    // identity = "agent": only the agent.
    let explicit = inventory(&bed, "agent.toml", "identity = \"agent\"\n");
    let r = poll_with(&explicit, &env);
    assert_eq!(r["status"], "ok", "{r}");
    // No identity at all: the agent first, as OpenSSH (the home has no key files).
    let implicit = inventory(&bed, "implicit.toml", "");
    let r = poll_with(&implicit, &env);
    assert_eq!(r["status"], "ok", "{r}");

    agent.stop();
    let r = poll_with(&explicit, &env);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("ssh-agent at {}", socket.display()))
            && error.contains("is ssh-agent running?"),
        "{r}"
    );
    // No SSH_AUTH_SOCK at all.
    let r = poll_with(&explicit, &[("SSH_AUTH_SOCK", Path::new(""))]);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(error.contains("SSH_AUTH_SOCK is not set"), "{r}");
}

#[test]
fn encrypted_ed25519_and_rsa_keys_open_with_their_passphrase_file() {
    let bed = Sshd::start();
    let dir = bed.dir.path();
    let right = dir.join("passphrase");
    let wrong = dir.join("wrong-passphrase");
    private_file(&right, "correct horse battery staple\n");
    private_file(&wrong, "incorrect horse\n");
    // OpenSSH 9.2's sshd refuses ssh-rsa (SHA-1) signatures: an RSA login that works
    // signed with rsa-sha2.
    for kind in ["ed25519", "rsa"] {
        let key = dir.join(format!("encrypted_{kind}"));
        keygen(&key, kind, "correct horse battery staple");
        authorize(&bed, &key);
        let with = |name: &str, passphrase: Option<&Path>| {
            let mut lines = format!("identity = \"{}\"\n", key.display());
            if let Some(file) = passphrase {
                lines.push_str(&format!("passphrase_file = \"{}\"\n", file.display()));
            }
            inventory(&bed, &format!("{kind}-{name}.toml"), &lines)
        };
        let none = [("SSH_AUTH_SOCK", Path::new(""))];
        let r = poll_with(&with("right", Some(&right)), &none);
        assert_eq!(r["status"], "ok", "{kind}: {r}");

        let r = poll_with(&with("wrong", Some(&wrong)), &none);
        let error = r["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!(
                "wrong passphrase for identity file {}: the passphrase in {} does not open it",
                key.display(),
                wrong.display()
            )),
            "{kind}: {r}"
        );
        let r = poll_with(&with("none", None), &none);
        let error = r["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the key is encrypted: set passphrase_file"),
            "{kind}: {r}"
        );
    }
}

#[test]
fn user_certificates_signed_by_a_trusted_ca_log_in_and_expired_ones_say_their_dates() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("user_ca");
    keygen(&ca, "ed25519", "");
    let ca_public = ca.with_extension("pub");
    let bed = Sshd::start_full(&[], None, &|_| {
        format!("TrustedUserCAKeys {}\n", ca_public.display())
    });
    let dir = bed.dir.path();
    let sign = |key: &Path, validity: &str| {
        run(Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(&ca)
            .args(["-I", "dcmon-test-cert", "-n", &bed.user, "-V", validity])
            .arg(key.with_extension("pub"))
            .stderr(Stdio::piped()));
    };
    let none = [("SSH_AUTH_SOCK", Path::new(""))];
    // Keys that are not in authorized_keys: only their certificates let them in.
    let key = dir.join("certified");
    keygen(&key, "ed25519", "");
    sign(&key, "-5m:+1h");
    let inv = inventory(
        &bed,
        "cert.toml",
        &format!("identity = \"{}\"\n", key.display()),
    );
    let r = poll_with(&inv, &none);
    assert_eq!(r["status"], "ok", "{r}\n{}", bed.log());
    assert!(bed.log().contains("ED25519-CERT"), "{}", bed.log());

    let old = dir.join("expired");
    keygen(&old, "ed25519", "");
    sign(&old, "20200101000000:20200102000000");
    // Named with `certificate`, somewhere else than beside the key.
    let moved = dir.join("elsewhere-cert.pub");
    std::fs::rename(dir.join("expired-cert.pub"), &moved).unwrap();
    let inv = inventory(
        &bed,
        "expired.toml",
        &format!(
            "identity = \"{}\"\ncertificate = \"{}\"\n",
            old.display(),
            moved.display()
        ),
    );
    let r = poll_with(&inv, &none);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "certificate {} expired: valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z",
            moved.display()
        )),
        "{r}"
    );
}

/// A bed whose host key is certified by `ca` for HOST, valid `validity`.
fn certified_host(ca: &Path, validity: &str) -> Sshd {
    Sshd::start_full(&[], None, &|dir| {
        run(Command::new("ssh-keygen")
            .args(["-q", "-h", "-s"])
            .arg(ca)
            .args(["-I", "dcmon-test-host", "-n", HOST, "-V", validity])
            .arg(dir.join("host_ed25519.pub"))
            .stderr(Stdio::piped()));
        format!(
            "HostCertificate {}\n",
            dir.join("host_ed25519-cert.pub").display()
        )
    })
}

#[test]
fn host_certificates_are_trusted_through_cert_authority_lines_and_refused_with_reasons() {
    let cas = tempfile::tempdir().unwrap();
    let ca = cas.path().join("host_ca");
    let stranger = cas.path().join("other_ca");
    keygen(&ca, "ed25519", "");
    keygen(&stranger, "ed25519", "");
    let public = |key: &Path| {
        let text = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let bed = certified_host(&ca, "-5m:+1h");
    let none = [("SSH_AUTH_SOCK", Path::new(""))];
    let identity = format!("identity = \"{}\"\n", bed.client_key.display());
    let authority = |name: &str, lines: &str| {
        let known_hosts = bed.write(&format!("{name}.known_hosts"), lines);
        inventory_with(&bed, &format!("{name}.toml"), &identity, &known_hosts)
    };
    // Only the CA is known: no line holds the host's own key.
    let trusted = authority(
        "trusted",
        &format!("@cert-authority [127.0.6.*]:* {}\n", public(&ca)),
    );
    let r = poll_host(&trusted, &none, HOST);
    assert_eq!(r["status"], "ok", "{r}\n{}", bed.log());
    // The certificate names HOST, not OTHER.
    let r = poll_host(&trusted, &none, OTHER);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "host certificate of [{OTHER}]:{} refused: it is for {HOST}, not {OTHER}",
            bed.port
        )),
        "{r}"
    );
    // A CA the file does not trust.
    let other = authority(
        "stranger",
        &format!("@cert-authority [127.0.6.*]:* {}\n", public(&stranger)),
    );
    let r = poll_host(&other, &none, HOST);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused: it is signed by ssh-ed25519 SHA256:")
            && error.contains("which no @cert-authority line for"),
        "{r}"
    );
    // The CA revoked.
    let revoked = authority(
        "revoked",
        &format!(
            "@cert-authority [127.0.6.*]:* {ca}\n@revoked * {ca}\n",
            ca = public(&ca)
        ),
    );
    let r = poll_host(&revoked, &none, HOST);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("is marked @revoked in") && error.contains(":2"),
        "{r}"
    );

    // An expired host certificate, on a bed of its own.
    let old = certified_host(&ca, "20200101000000:20200102000000");
    let known_hosts = old.write(
        "known_hosts",
        &format!("@cert-authority * {}\n", public(&ca)),
    );
    let inv = inventory_with(
        &old,
        "expired.toml",
        &format!("identity = \"{}\"\n", old.client_key.display()),
        &known_hosts,
    );
    let r = poll_host(&inv, &none, HOST);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "refused: the certificate is expired: valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z"
        ),
        "{r}"
    );
}
