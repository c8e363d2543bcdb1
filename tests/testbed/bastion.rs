//! A bastion: a second private sshd whose user may forward connections but has no
//! shell, and a network of the test's own in which the test-bed hosts refuse every
//! login that does not come through it.
//!
//! sshd's `Match` rules only see addresses, and on loopback every connection comes from
//! 127.0.0.1. So the test moves into a network namespace of its own
//! (`private_network`), where a routing rule gives the bastion user's connections the
//! source address `FORWARDED_FROM`; `Sshd::start_full(.., Some(FORWARDED_FROM), ..)`
//! then refuses logins from anywhere else. What sshd forwards runs as the logged-in
//! user, so the rule sees exactly the bastion's forwarded connections.

use super::{Sshd, base_config, kill_tree, launch, public_key, relaunch, set_mode, system_user};
use std::path::PathBuf;
use std::process::{Child, Command};

/// The bastion's login user: no shell (`ForceCommand /bin/false`), forwarding allowed.
pub const JUMP_USER: &str = "dcmon-jump";

/// The source address of connections the bastion forwards, in the private network.
pub const FORWARDED_FROM: &str = "127.0.0.2";

pub struct Bastion {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `ssh-ed25519 AAAA...` of the bastion's host key.
    pub host_key: String,
    child: Child,
}

/// Moves the calling test's thread, and every process it starts from now on, into a
/// network namespace of its own with loopback up, where the bastion user's
/// connections come from `FORWARDED_FROM`. Needs root; the namespace goes away with
/// the thread and its processes.
pub fn private_network() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("unshare(CLONE_NEWNET): the jump host tests run as root");
    system_user(JUMP_USER);
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", JUMP_USER])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let uid = uid.trim();
    // The uid rule must come before the `local` table, which answers every 127/8
    // destination with source 127.0.0.1: move `local` behind it (this namespace only).
    let script = format!(
        "set -e; ip link set lo up; \
         ip route add local 127.0.0.0/8 dev lo src {FORWARDED_FROM} table 100; \
         ip rule add pref 50 uidrange {uid}-{uid} lookup 100; \
         ip rule del pref 0; ip rule add pref 100 lookup local"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "setting up the private network: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Bastion {
    /// A bastion that lets `bed`'s client key log in as `JUMP_USER`.
    pub fn start(bed: &Sshd) -> Bastion {
        Bastion::start_with(bed, true)
    }

    /// A bastion that forwards (`AllowTcpForwarding yes`) or logs in and refuses to.
    pub fn start_with(bed: &Sshd, forwarding: bool) -> Bastion {
        let dir = tempfile::Builder::new()
            .prefix("dcmon-bastion-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        set_mode(&d, 0o755);
        super::keygen(&d.join("host_ed25519"));
        let authorized = d.join("authorized_keys");
        std::fs::copy(bed.client_key.with_extension("pub"), &authorized).unwrap();
        set_mode(&authorized, 0o644);
        let host_key = public_key(&d.join("host_ed25519.pub"));
        let (port, child) = launch(&d, |port| {
            format!(
                "{}\
                 AllowUsers {JUMP_USER}\n\
                 AllowTcpForwarding {forwarding}\n\
                 PermitTTY no\n\
                 X11Forwarding no\n\
                 ForceCommand /bin/false\n",
                base_config(&d, port),
                forwarding = if forwarding { "yes" } else { "no" },
            )
        });
        Bastion {
            dir,
            port,
            host_key,
            child,
        }
    }

    /// Kills the bastion and the session processes it forked: every connection through
    /// it breaks. `restart` brings it back on the same port and key.
    pub fn kill(&mut self) {
        kill_tree(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.child = relaunch(self.dir.path(), self.port, "sshd.restarted.log");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Logins the bastion accepted, by source address.
    pub fn logins_from(&self, source: &str) -> usize {
        let needle = format!("Accepted publickey for {JUMP_USER} from {source} ");
        self.log().matches(&needle).count()
    }

    /// The bastion as a hop written out: `dcmon-jump@ADDRESS:PORT`.
    pub fn hop(&self, address: &str) -> String {
        format!("{JUMP_USER}@{address}:{}", self.port)
    }

    /// A known_hosts line for the bastion at `address`.
    pub fn known_hosts_line(&self, address: &str) -> String {
        format!("[{address}]:{} {}\n", self.port, self.host_key)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Bastion {
    /// The whole tree: a test that failed with the bastion stopped would otherwise leave
    /// its stopped sessions, and the hosts' sessions behind them, for good.
    fn drop(&mut self) {
        self.kill();
    }
}
