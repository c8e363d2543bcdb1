//! The poller's own health: how long each host's rounds take and how each remote-write
//! receiver is doing. One registry, read two ways: `/metrics` text (`exposition`) and
//! series sent with every remote-write batch (`series`), so both always agree.

use crate::remote_write::encode::OwnSeries;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One receiver's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteFigures {
    /// Samples queued that this receiver has not taken.
    pub queue_samples: i64,
    pub sent: u64,
    /// Refused for good (4xx): dropped, never retried.
    pub failed: u64,
    /// Samples in requests that were sent again after a 5xx or a network error.
    pub retried: u64,
    /// Dropped unsent: they outlived the queue's capacity, or their series was deleted
    /// before they were sent.
    pub dropped: u64,
    /// Bytes sent (compressed bodies).
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Figures {
    /// Host → its last round's duration, seconds.
    poll_seconds: BTreeMap<String, f64>,
    remotes: BTreeMap<String, RemoteFigures>,
}

#[derive(Debug, Default)]
pub struct Health {
    figures: Mutex<Figures>,
}

type Counter = (
    &'static str,
    &'static str,
    &'static str,
    fn(&RemoteFigures) -> f64,
);

/// The receiver families: name, type, help, value.
const REMOTE: [Counter; 6] = [
    (
        "dcmon_remote_write_queue_samples",
        "gauge",
        "samples queued that the receiver has not taken",
        |r| r.queue_samples as f64,
    ),
    (
        "dcmon_remote_write_samples_sent_total",
        "counter",
        "samples the receiver accepted",
        |r| r.sent as f64,
    ),
    (
        "dcmon_remote_write_samples_failed_total",
        "counter",
        "samples the receiver refused for good (4xx), dropped",
        |r| r.failed as f64,
    ),
    (
        "dcmon_remote_write_samples_retried_total",
        "counter",
        "samples sent again after a 5xx answer or a network error",
        |r| r.retried as f64,
    ),
    (
        "dcmon_remote_write_samples_dropped_total",
        "counter",
        "samples dropped unsent (older than the queue's capacity, or their series deleted)",
        |r| r.dropped as f64,
    ),
    (
        "dcmon_remote_write_sent_bytes_total",
        "counter",
        "compressed request bytes sent",
        |r| r.bytes as f64,
    ),
];

const POLL: &str = "dcmon_poll_duration_seconds";

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A host's round took `seconds`.
    pub fn polled(&self, host: &str, seconds: f64) {
        let mut f = self.lock();
        match f.poll_seconds.get_mut(host) {
            Some(s) => *s = seconds,
            None => {
                f.poll_seconds.insert(host.to_string(), seconds);
            }
        }
    }

    /// Forgets hosts no longer polled.
    pub fn keep_hosts(&self, hosts: &dyn Fn(&str) -> bool) {
        self.lock().poll_seconds.retain(|h, _| hosts(h));
    }

    /// Changes a receiver's figures.
    pub fn remote(&self, name: &str, change: impl FnOnce(&mut RemoteFigures)) {
        let mut f = self.lock();
        change(f.remotes.entry(name.to_string()).or_default());
    }

    pub fn remote_figures(&self, name: &str) -> RemoteFigures {
        self.lock().remotes.get(name).cloned().unwrap_or_default()
    }

    /// Every health series, for remote write.
    pub fn series(&self) -> Vec<OwnSeries> {
        let f = self.lock();
        let mut out = Vec::new();
        for (host, seconds) in &f.poll_seconds {
            out.push(OwnSeries {
                name: POLL.to_string(),
                labels: vec![("host".to_string(), host.clone())],
                value: *seconds,
            });
        }
        for (name, _, _, value) in REMOTE {
            for (remote, figures) in &f.remotes {
                out.push(OwnSeries {
                    name: name.to_string(),
                    labels: vec![("remote".to_string(), remote.clone())],
                    value: value(figures),
                });
            }
        }
        out
    }

    /// The same series as exposition text, a family each.
    pub fn exposition(&self, out: &mut String) {
        use std::fmt::Write as _;
        let f = self.lock();
        if !f.poll_seconds.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {POLL} dcmon how long the host's last round took\n# TYPE {POLL} gauge"
            );
            for (host, seconds) in &f.poll_seconds {
                let _ = writeln!(out, "{POLL}{{host=\"{}\"}} {seconds}", escape(host));
            }
        }
        if f.remotes.is_empty() {
            return;
        }
        for (name, kind, help, value) in REMOTE {
            let _ = writeln!(
                out,
                "# HELP {name} dcmon {help}, per receiver\n# TYPE {name} {kind}"
            );
            for (remote, figures) in &f.remotes {
                let _ = writeln!(
                    out,
                    "{name}{{remote=\"{}\"}} {}",
                    escape(remote),
                    value(figures)
                );
            }
        }
    }
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    dcmon_store::outbox::escape_label_value(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_readings_carry_the_same_figures() {
        let health = Health::default();
        health.polled("gpu\"01", 0.25);
        health.remote("vm", |r| {
            r.sent += 10;
            r.queue_samples = 4;
        });
        let mut text = String::new();
        health.exposition(&mut text);
        assert!(
            text.contains("dcmon_poll_duration_seconds{host=\"gpu\\\"01\"} 0.25\n"),
            "{text}"
        );
        assert!(text.contains("dcmon_remote_write_samples_sent_total{remote=\"vm\"} 10\n"));
        assert!(text.contains("# TYPE dcmon_remote_write_queue_samples gauge\n"));
        let series = health.series();
        assert_eq!(series.len(), 1 + REMOTE.len());
        let sent = series
            .iter()
            .find(|s| s.name == "dcmon_remote_write_samples_sent_total")
            .unwrap();
        assert_eq!(sent.value, 10.0);
        health.keep_hosts(&|h| h != "gpu\"01");
        assert_eq!(health.series().len(), REMOTE.len());
    }
}
