//! Beyond one poller: `[cluster]` (which hosts this poller takes) and `[[remote_write]]`
//! (where its samples go), as checked settings. Sharding is pure: every poller computes
//! the same split from the host names alone, with no coordination.

use siphasher::sip::SipHasher13;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::time::Duration;

/// Most pollers in one cluster (a bound on the hash loop, and far beyond any fleet).
pub const MAX_SHARDS: u32 = 1024;

/// `shard = "I/N"`: this poller is number `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `"2/4"` → index 2 of 4; a sentence saying what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}` is not written as I/N, like \"2/4\""))?;
        let number = |s: &str, what: &str| {
            s.trim().parse::<u32>().map_err(|_| {
                format!("shard `{text}`: {what} `{s}` is not a whole number from 1 to {MAX_SHARDS}")
            })
        };
        let (index, count) = (number(i, "I")?, number(n, "N")?);
        if !(1..=MAX_SHARDS).contains(&count) || !(1..=count).contains(&index) {
            return Err(format!(
                "shard `{text}`: I must be from 1 to N, and N from 1 to {MAX_SHARDS}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The pollers (1-based) that poll `host` when each host is polled by `replicas`
    /// of `count`: rendezvous hashing, so adding a poller moves only the hosts it wins
    /// and removing one moves only its own.
    pub fn owners(host: &str, count: u32, replicas: u32) -> Vec<u32> {
        let mut scores: Vec<(u64, u32)> = (1..=count.clamp(1, MAX_SHARDS))
            .map(|poller| (score(host, poller), poller))
            .collect();
        // Highest score first; the poller number breaks the (unlikely) tie.
        scores.sort_unstable_by(|a, b| b.cmp(a));
        scores
            .into_iter()
            .take(replicas.clamp(1, count.max(1)) as usize)
            .map(|(_, poller)| poller)
            .collect()
    }

    /// Whether this poller polls `host`.
    pub fn owns(&self, host: &str, replicas: u32) -> bool {
        Shard::owners(host, self.count, replicas).contains(&self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// SipHash-1-3 with a fixed zero key: the same number on every poller and every build
/// (std's `DefaultHasher` makes no such promise).
fn score(host: &str, poller: u32) -> u64 {
    let mut h = SipHasher13::new_with_keys(0, 0);
    h.write(host.as_bytes());
    h.write_u8(0xff);
    h.write(&poller.to_le_bytes());
    h.finish()
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `None`: this poller takes every host.
    pub shard: Option<Shard>,
    /// Pollers per host (1 to N): with 2, each host has a second poller, and the
    /// series carry `replica` so the receiver can deduplicate them.
    pub replicas: u32,
    /// Each poller's dashboard URL in shard order (may be empty): where the central
    /// view sends what only a poller keeps (logs, audit, actions).
    pub pollers: Vec<String>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            shard: None,
            replicas: 1,
            pollers: Vec::new(),
        }
    }
}

impl Cluster {
    /// Takes `--shard`, which wins over the file's: refused when the file's `replicas`
    /// asks for more pollers than the shard counts (each host would get fewer).
    pub fn set_shard(&mut self, shard: Shard) -> Result<(), String> {
        self.fits(shard.count)
            .map_err(|why| format!("--shard {}/{}: {why}", shard.index, shard.count))?;
        self.shard = Some(shard);
        Ok(())
    }

    /// Whether `count` pollers are enough for `replicas` owners a host.
    pub fn fits(&self, count: u32) -> Result<(), String> {
        if self.replicas > count {
            return Err(format!(
                "[cluster] replicas = {} needs at least {} pollers",
                self.replicas, self.replicas
            ));
        }
        Ok(())
    }

    /// How many pollers share the hosts: the `pollers` listed, else the shard's N.
    pub fn poller_count(&self) -> u32 {
        match (self.pollers.len(), self.shard) {
            (0, Some(s)) => s.count,
            (0, None) => 1,
            (n, _) => u32::try_from(n).unwrap_or(MAX_SHARDS).min(MAX_SHARDS),
        }
    }

    /// The pollers (1-based) that poll `host`, with their dashboard URL when listed.
    pub fn owners(&self, host: &str) -> Vec<(u32, Option<String>)> {
        Shard::owners(host, self.poller_count(), self.replicas)
            .into_iter()
            .map(|i| (i, self.pollers.get(i as usize - 1).cloned()))
            .collect()
    }

    /// Whether this poller polls `host`.
    pub fn owns(&self, host: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(host, self.replicas))
    }

    /// The label remote write adds to tell the replicas apart: `replica="I"`.
    pub fn replica_label(&self) -> Option<(String, String)> {
        match self.shard {
            Some(s) if self.replicas > 1 => Some(("replica".to_string(), s.index.to_string())),
            _ => None,
        }
    }
}

/// How a remote-write receiver is told who is writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    None,
    /// `Authorization: Bearer` with the file's first line.
    Bearer(PathBuf),
    /// `Authorization: Basic`, the password the file's first line.
    Basic {
        username: String,
        password_file: PathBuf,
    },
}

/// `[remote_write.queue]`: Prometheus's names where they mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteQueue {
    /// Samples older than this (by when they were queued) are dropped, counted, while
    /// the receiver is down: what the database holds for it.
    pub capacity: Duration,
    pub max_samples_per_send: usize,
    /// A batch smaller than `max_samples_per_send` waits at most this long.
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// One request's whole exchange.
    pub timeout: Duration,
}

impl Default for RemoteQueue {
    fn default() -> Self {
        RemoteQueue {
            capacity: Duration::from_secs(2 * 3600),
            max_samples_per_send: 10_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// One `[[remote_write]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWrite {
    /// In logs and `/metrics` (`remote` label); default the URL.
    pub name: String,
    pub url: String,
    pub auth: RemoteAuth,
    /// PEM CA certificates that sign the receiver's (default: the web PKI's roots).
    pub ca_file: Option<PathBuf>,
    /// (client certificate chain, private key), PEM.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Added to every series that does not have the label already (as Prometheus).
    pub external_labels: BTreeMap<String, String>,
    pub queue: RemoteQueue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_what_is_not_i_of_n() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in [
            "2", "0/4", "5/4", "1/0", "-1/4", "a/b", "1/1025", "1/4/2", "",
        ] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    /// `--shard 1/2` with the file's `replicas = 3` would give each host 2 owners, not 3.
    #[test]
    fn a_command_line_shard_needs_as_many_pollers_as_replicas() {
        let mut cluster = Cluster {
            shard: None,
            replicas: 3,
            pollers: Vec::new(),
        };
        let err = cluster.set_shard(Shard::parse("1/2").unwrap()).unwrap_err();
        assert_eq!(
            err,
            "--shard 1/2: [cluster] replicas = 3 needs at least 3 pollers"
        );
        assert_eq!(cluster.shard, None);
        cluster.set_shard(Shard::parse("3/3").unwrap()).unwrap();
        assert!(cluster.shard.is_some_and(|s| s.index == 3));
    }

    /// Each host has exactly `replicas` distinct owners, and the split is even enough
    /// that no poller idles.
    #[test]
    fn every_host_has_its_replicas_and_pollers_share_evenly() {
        let hosts: Vec<String> = (0..4000).map(|i| format!("gpu{i:04}.dc1")).collect();
        for replicas in [1, 2, 3] {
            let mut per_poller = [0usize; 5];
            for h in &hosts {
                let owners = Shard::owners(h, 4, replicas);
                assert_eq!(owners.len(), replicas as usize);
                let mut distinct = owners.clone();
                distinct.sort();
                distinct.dedup();
                assert_eq!(distinct.len(), owners.len());
                for o in owners {
                    per_poller[o as usize] += 1;
                }
            }
            let fair = 4000 * replicas as usize / 4;
            for count in &per_poller[1..] {
                assert!(count.abs_diff(fair) < fair / 10, "{per_poller:?}");
            }
        }
    }

    /// Adding a fifth poller moves only the hosts the new poller wins.
    #[test]
    fn adding_a_poller_moves_only_its_share() {
        let mut moved = 0;
        for i in 0..4000 {
            let h = format!("node{i}");
            let before = Shard::owners(&h, 4, 1)[0];
            let after = Shard::owners(&h, 5, 1)[0];
            if before != after {
                assert_eq!(after, 5, "{h} moved between old pollers");
                moved += 1;
            }
        }
        assert!((600..1000).contains(&moved), "{moved} of 4000 moved");
    }

    /// The split is a fixed function of the names: pollers built apart agree.
    #[test]
    fn the_split_is_the_same_on_every_build() {
        let owners: Vec<u32> = ["a", "b", "gpu01", "gpu02", "db1.dc2"]
            .iter()
            .map(|h| Shard::owners(h, 4, 1)[0])
            .collect();
        assert_eq!(owners, FIXED_SPLIT);
    }

    const FIXED_SPLIT: [u32; 5] = [4, 1, 1, 2, 2];
}
