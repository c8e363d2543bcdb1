//! `[cluster]` and `[[remote_write]]`: checked with the rest of the file, so a bad URL
//! or shard is reported at its line before any poller starts.

use super::{Checker, expand_path, is_label_name, parse_duration};
use crate::cluster::{Cluster, RemoteAuth, RemoteQueue, RemoteWrite, Shard};
use crate::path;
use crate::raw::{RawCluster, RawRemoteWrite};

pub(super) const CLUSTER_KEYS: &[&str] = &["shard", "replicas", "pollers"];
pub(super) const REMOTE_WRITE_KEYS: &[&str] = &[
    "name",
    "url",
    "bearer_token_file",
    "basic_auth",
    "tls",
    "external_labels",
    "queue",
];
pub(super) const BASIC_AUTH_KEYS: &[&str] = &["username", "password_file"];
pub(super) const TLS_KEYS: &[&str] = &["ca_file", "cert_file", "key_file"];
pub(super) const QUEUE_KEYS: &[&str] = &[
    "capacity",
    "max_samples_per_send",
    "batch_send_deadline",
    "min_backoff",
    "max_backoff",
    "timeout",
];

/// Labels dcmon itself puts on series: an external label of that name would be lost.
const OWN_LABELS: &[&str] = &["__name__", "host", "replica"];

/// Most samples in one request (VictoriaMetrics and Prometheus take far fewer).
const MAX_SAMPLES_PER_SEND: u32 = 1_000_000;

impl Checker<'_> {
    pub(super) fn check_cluster(&mut self, raw: &RawCluster) {
        let shard = raw.shard.as_deref().map(Shard::parse);
        if let Some(Err(why)) = &shard {
            self.problem(&path!["cluster", "shard"], false, why.clone());
        }
        if let Some(replicas) = raw.replicas {
            let count = match &shard {
                Some(Ok(s)) => s.count,
                _ => crate::cluster::MAX_SHARDS,
            };
            if !(1..=count).contains(&replicas) {
                self.problem(
                    &path!["cluster", "replicas"],
                    false,
                    format!("replicas = {replicas}: write a number from 1 to the pollers in the cluster ({count})"),
                );
            }
        }
        if let Some(pollers) = &raw.pollers {
            for (i, url) in pollers.iter().enumerate() {
                if let Err(why) = check_url(url) {
                    self.problem(&path!["cluster", "pollers", i], false, why);
                }
            }
            let count = u32::try_from(pollers.len()).unwrap_or(u32::MAX);
            if let Some(Ok(s)) = &shard
                && s.count != count
            {
                self.problem(
                    &path!["cluster", "pollers"],
                    false,
                    format!(
                        "pollers lists {count} dashboards but shard = \"{s}\" counts {} pollers: list one URL per poller, in shard order",
                        s.count
                    ),
                );
            }
            if count == 0 || count > crate::cluster::MAX_SHARDS {
                self.problem(
                    &path!["cluster", "pollers"],
                    false,
                    format!(
                        "pollers lists {count} dashboards: list from 1 to {} URLs, one per poller in shard order",
                        crate::cluster::MAX_SHARDS
                    ),
                );
            }
        }
    }

    pub(super) fn check_remote_writes(&mut self, raw: &[RawRemoteWrite]) {
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in raw.iter().enumerate() {
            match r.url.as_deref() {
                None => self.problem(
                    &path!["remote_write", i],
                    true,
                    "[[remote_write]] needs url = \"http://HOST:PORT/api/v1/write\"".to_string(),
                ),
                Some(url) => {
                    if let Err(why) = check_url(url) {
                        self.problem(&path!["remote_write", i, "url"], false, why);
                    }
                    let name = r.name.clone().unwrap_or_else(|| url.to_string());
                    if !names.insert(name.clone()) {
                        self.problem(
                            &path!["remote_write", i],
                            true,
                            format!("a second [[remote_write]] named `{name}`: give each its own name (each keeps its own place in the queue)"),
                        );
                    }
                }
            }
            if r.bearer_token_file.is_some() && r.basic_auth.is_some() {
                self.problem(
                    &path!["remote_write", i, "basic_auth"],
                    true,
                    "bearer_token_file and basic_auth are both set: a receiver takes one"
                        .to_string(),
                );
            }
            if let Some(b) = &r.basic_auth
                && (b.username.is_none() || b.password_file.is_none())
            {
                self.problem(
                    &path!["remote_write", i, "basic_auth"],
                    true,
                    "basic_auth needs username and password_file".to_string(),
                );
            }
            if let Some(t) = &r.tls
                && t.cert_file.is_some() != t.key_file.is_some()
            {
                self.problem(
                    &path!["remote_write", i, "tls"],
                    true,
                    "tls: a client certificate needs both cert_file and key_file".to_string(),
                );
            }
            for (key, value) in r.external_labels.iter().flatten() {
                if !is_label_name(key)
                    || OWN_LABELS.contains(&key.as_str())
                    || key.starts_with("__")
                {
                    self.problem(
                        &path!["remote_write", i, "external_labels", key.as_str()],
                        true,
                        format!("external label `{key}` is not a label name of letters, digits and `_`, or is one dcmon sets itself (host, replica)"),
                    );
                }
                if value.is_empty() {
                    self.problem(
                        &path!["remote_write", i, "external_labels", key.as_str()],
                        false,
                        format!("external label `{key}` is empty: Prometheus drops empty labels"),
                    );
                }
            }
            let Some(q) = &r.queue else { continue };
            for (key, value) in [
                ("capacity", &q.capacity),
                ("batch_send_deadline", &q.batch_send_deadline),
                ("min_backoff", &q.min_backoff),
                ("max_backoff", &q.max_backoff),
                ("timeout", &q.timeout),
            ] {
                if let Some(v) = value {
                    match parse_duration(v) {
                        Err(why) => self.problem(
                            &path!["remote_write", i, "queue", key],
                            false,
                            format!("{key} `{v}` {why}"),
                        ),
                        Ok(d) if d.is_zero() => self.problem(
                            &path!["remote_write", i, "queue", key],
                            false,
                            format!("{key} `{v}` must be longer than zero"),
                        ),
                        Ok(_) => {}
                    }
                }
            }
            if let Some(n) = q.max_samples_per_send
                && !(1..=MAX_SAMPLES_PER_SEND).contains(&n)
            {
                self.problem(
                    &path!["remote_write", i, "queue", "max_samples_per_send"],
                    false,
                    format!("max_samples_per_send = {n} is not from 1 to {MAX_SAMPLES_PER_SEND}"),
                );
            }
            let backoff = |v: &Option<String>| v.as_deref().and_then(|v| parse_duration(v).ok());
            if let (Some(min), Some(max)) = (backoff(&q.min_backoff), backoff(&q.max_backoff))
                && min > max
            {
                self.problem(
                    &path!["remote_write", i, "queue", "min_backoff"],
                    false,
                    "min_backoff is longer than max_backoff".to_string(),
                );
            }
        }
    }

    pub(super) fn resolve_cluster(&self, raw: &RawCluster) -> Cluster {
        Cluster {
            shard: raw.shard.as_deref().and_then(|s| Shard::parse(s).ok()),
            replicas: raw.replicas.unwrap_or(1).max(1),
            pollers: raw.pollers.clone().unwrap_or_default(),
        }
    }

    pub(super) fn resolve_remote_writes(&self, raw: &[RawRemoteWrite]) -> Vec<RemoteWrite> {
        let path = |p: &str| expand_path(p, &self.base_dir);
        let duration = |v: &Option<String>, default| {
            v.as_deref()
                .and_then(|v| parse_duration(v).ok())
                .unwrap_or(default)
        };
        raw.iter()
            .filter_map(|r| {
                let url = r.url.clone()?;
                let auth = match (&r.bearer_token_file, &r.basic_auth) {
                    (Some(token), _) => RemoteAuth::Bearer(path(token)),
                    (None, Some(b)) => RemoteAuth::Basic {
                        username: b.username.clone().unwrap_or_default(),
                        password_file: path(b.password_file.as_deref().unwrap_or_default()),
                    },
                    (None, None) => RemoteAuth::None,
                };
                let tls = r.tls.clone().unwrap_or_default();
                let q = r.queue.clone().unwrap_or_default();
                let d = RemoteQueue::default();
                Some(RemoteWrite {
                    name: r.name.clone().unwrap_or_else(|| url.clone()),
                    url,
                    auth,
                    ca_file: tls.ca_file.as_deref().map(path),
                    client_cert: tls
                        .cert_file
                        .as_deref()
                        .map(path)
                        .zip(tls.key_file.as_deref().map(path)),
                    external_labels: r.external_labels.clone().unwrap_or_default(),
                    queue: RemoteQueue {
                        capacity: duration(&q.capacity, d.capacity),
                        max_samples_per_send: q
                            .max_samples_per_send
                            .map_or(d.max_samples_per_send, |n| n as usize),
                        batch_send_deadline: duration(
                            &q.batch_send_deadline,
                            d.batch_send_deadline,
                        ),
                        min_backoff: duration(&q.min_backoff, d.min_backoff),
                        max_backoff: duration(&q.max_backoff, d.max_backoff),
                        timeout: duration(&q.timeout, d.timeout),
                    },
                })
            })
            .collect()
    }
}

/// An `http://` or `https://` URL with a host: what the client can send to.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("url `{url}` does not start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty()
        || authority.contains(char::is_whitespace)
        || url.contains(char::is_control)
    {
        return Err(format!(
            "url `{url}` has no host, or has spaces or control characters in it"
        ));
    }
    Ok(())
}
