//! Counters of events read from log lines: each NVIDIA Xid a host's kernel log gains is
//! counted once, per GPU (its PCI address) and Xid code, in `gpu_xid_events_total`. The
//! count lives in `event_counters`, so it only ever grows (log retention does not shrink
//! it) and a restart does not lose it; it is sampled with every run that read the
//! kernel log, so the series stays fresh between events.

use crate::write::{ProbeRun, labels_json};
use crate::{StoreError, sql};
use dcmon_probes::{Kind, Labels, Sample};
use rusqlite::params;

/// The series Xid events are counted in.
pub const XID_SERIES: &str = "gpu_xid_events_total";

/// Migration 14: log lines keep their labels (an Xid's `xid`, `pci`, `pid`, `process`),
/// and the counters of labelled events.
pub(crate) const MIGRATION: &str = "
    ALTER TABLE logs ADD COLUMN labels TEXT; -- JSON object, NULL for a line without labels
    CREATE TABLE event_counters (
        host   TEXT NOT NULL,
        name   TEXT NOT NULL,    -- the series: gpu_xid_events_total
        labels TEXT NOT NULL,    -- JSON, as series labels
        value  INTEGER NOT NULL, -- events counted since the host was first polled
        PRIMARY KEY (host, name, labels)
    ) WITHOUT ROWID;
";

/// The counter labels of one event: the GPU and the Xid code only (never the pid or
/// process, which would make a series per crash).
fn counter_labels(event: &Labels) -> Option<Labels> {
    Some(Labels::new([
        ("pci", event.get("pci")?),
        ("xid", event.get("xid")?),
    ]))
}

/// Counts this run's new events (the labels of the new kernel log lines that have an
/// `xid`) and returns the samples to store with `ts`: a 0 just before the first event
/// of a new counter (so `increase()` sees it), and, when the run read the kernel log,
/// every counter of the host at the run's time.
pub(crate) fn samples(
    tx: &rusqlite::Transaction<'_>,
    host: &str,
    run: &ProbeRun,
    events: &[Labels],
) -> Result<Vec<(Sample, i64)>, StoreError> {
    // Most runs read no kernel log: nothing to count or sample.
    if events.is_empty() && run.output.kernel_log.is_none() {
        return Ok(Vec::new());
    }
    let sample = |labels: Labels, value: f64| Sample {
        name: XID_SERIES.to_string(),
        labels,
        value,
        kind: Kind::Counter,
        unit: "",
    };
    let mut out = Vec::new();
    let mut add = tx
        .prepare_cached(
            "INSERT INTO event_counters (host, name, labels, value) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (host, name, labels) DO UPDATE SET value = value + 1
             RETURNING value",
        )
        .map_err(sql("prepare event counter add"))?;
    for labels in events.iter().filter_map(counter_labels) {
        let value: i64 = add
            .query_row(params![host, XID_SERIES, labels_json(&labels)], |r| {
                r.get(0)
            })
            .map_err(sql("add event counter"))?;
        // A counter's first event: its 0 goes just before.
        if value == 1 {
            out.push((sample(labels, 0.0), run.started_ms.saturating_sub(1)));
        }
    }
    if run.output.kernel_log.is_some() {
        let mut all = tx
            .prepare_cached(
                "SELECT labels, value FROM event_counters WHERE host = ?1 AND name = ?2",
            )
            .map_err(sql("prepare event counters"))?;
        let rows = all
            .query_map(params![host, XID_SERIES], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql("read event counters"))?;
        for row in rows {
            let (json, value) = row.map_err(sql("read event counter row"))?;
            let pairs: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&json).unwrap_or_default();
            out.push((sample(Labels::new(pairs), value as f64), run.started_ms));
        }
    }
    Ok(out)
}

impl crate::Store {
    /// The Xids each host (or one host) logged in `(since, to]`, exactly counted, keyed
    /// by host; hosts with none are left out.
    pub fn xid_issues(
        &self,
        host: Option<&str>,
        since_ms: i64,
        to_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, Vec<XidCount>>, StoreError> {
        let mut out: std::collections::BTreeMap<String, Vec<XidCount>> = Default::default();
        for g in self.growth_since(XID_SERIES, host, since_ms, to_ms)? {
            if g.grown <= 0.0 {
                continue;
            }
            let label = |k: &str| g.labels.get(k).cloned().unwrap_or_default();
            out.entry(g.host.clone()).or_default().push(XidCount {
                pci: label("pci"),
                xid: label("xid"),
                times: g.grown,
            });
        }
        Ok(out)
    }
}

/// One Xid code on one GPU (PCI address, as the kernel log prints it) and how many times
/// it was logged in a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct XidCount {
    pub pci: String,
    pub xid: String,
    pub times: f64,
}
