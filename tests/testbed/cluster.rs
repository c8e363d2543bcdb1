//! Pollers of a cluster: `dcmon serve` processes with their dashboard on a chosen
//! port and their log in a file, over an inventory of many test-bed hosts that
//! remote-write to a receiver.

use super::{Killed, Sshd, free_port, http_get};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `dcmon serve` with its dashboard on a free port, its log in a file.
pub struct Poller {
    _child: Killed,
    pub address: String,
    log: PathBuf,
    db: PathBuf,
}

impl Poller {
    pub fn start(dir: &Path, name: &str, inventory: &Path, extra: &[&str]) -> Poller {
        let address = format!("127.0.0.1:{}", free_port());
        Poller::start_at(dir, name, inventory, extra, address)
    }

    /// The same with the dashboard on `address` (known before the inventory is written).
    pub fn start_at(
        dir: &Path,
        name: &str,
        inventory: &Path,
        extra: &[&str],
        address: String,
    ) -> Poller {
        let log = dir.join(format!("{name}.log"));
        let db = dir.join(format!("{name}.db"));
        let child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
            .args(["serve", "--listen", &address, "--inventory"])
            .arg(inventory)
            .arg("--db")
            .arg(&db)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Poller {
            _child: Killed(child),
            address,
            log,
            db,
        }
    }

    /// The value of the `/metrics` line that starts with `series` (name and labels).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = http_get(&self.address, "/metrics")?;
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Hosts with samples in this poller's own database.
    pub fn stored_hosts(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT DISTINCT host FROM series ORDER BY host")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// An inventory of `count` hosts `127.0.NET.1...` polled every `interval`, with
/// `rest` (remote write, cluster) appended.
pub fn inventory(
    bed: &Sshd,
    net: u8,
    count: usize,
    interval: &str,
    rest: &str,
) -> (Vec<String>, String) {
    let hosts: Vec<String> = (1..=count).map(|i| format!("127.0.{net}.{i}")).collect();
    let known_hosts = bed.write(
        &format!("known_hosts_{net}"),
        &bed.known_hosts_lines(&hosts),
    );
    let text = format!(
        "{}interval = \"{interval}\"\n\n[groups.all]\nhosts = [\"127.0.{net}.[1-{count}]\"]\n\n{rest}",
        bed.defaults(&known_hosts, "5s")
    );
    (hosts, text)
}

pub fn remote(url: &str, extra: &str) -> String {
    format!(
        "[[remote_write]]\nurl = \"{url}\"\n{extra}\n[remote_write.queue]\nbatch_send_deadline = \"500ms\"\nmin_backoff = \"100ms\"\nmax_backoff = \"1s\"\n"
    )
}
