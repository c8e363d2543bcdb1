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

/// Counts this run's new events (of the labels of its new kernel log lines, those with
/// an `xid` and a `pci`) and returns the samples to store with `ts`: a 0 just before the first event
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
    /// by host; hosts with none are left out. These counters belong to the store and only
    /// grow, so a counter's growth is its last value minus the value it had at `since`
    /// (or its first value after, for a counter born in the window: its 0): three
    /// lookups a counter, however many samples the window holds. The overview calls this
    /// on every render, across the fleet.
    pub fn xid_issues(
        &self,
        host: Option<&str>,
        since_ms: i64,
        to_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, Vec<XidCount>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.id, s.host, s.labels FROM series s
                 WHERE s.name = ?1 AND (?2 IS NULL OR s.host = ?2)",
            )
            .map_err(sql("prepare Xid counts"))?;
        let rows = stmt
            .query_map(params![XID_SERIES, host], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read Xid counts"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read Xid count"))?;
        let src = self.source()?;
        let mut out: std::collections::BTreeMap<String, Vec<XidCount>> = Default::default();
        for (id, host, labels) in rows {
            // Head, rows, then chunks: each lookup stops at the first part that answers.
            let value = |p: Option<crate::rate::Point>| p.map(|(_, v)| v);
            let last = value(crate::points::last_point(&src, id, i64::MIN, to_ms)?);
            let before = value(crate::points::last_point(&src, id, i64::MIN, since_ms)?);
            let first_in = value(crate::points::first_point(
                &src,
                id,
                since_ms.saturating_add(1),
                to_ms,
            )?);
            let (Some(last), Some(baseline)) = (last, before.or(first_in)) else {
                continue;
            };
            let times = last - baseline;
            if times <= 0.0 {
                continue;
            }
            let labels: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&labels).unwrap_or_default();
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            out.entry(host).or_default().push(XidCount {
                pci: label("pci"),
                xid: label("xid"),
                times,
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

#[cfg(test)]
mod tests {
    use crate::{HostRound, ProbeRun, Store};
    use dcmon_probes::{Labels, LogEntry, ProbeOutput};

    /// A logs run at `ts` whose kernel log gained `lines` Xid `xid` lines on `pci`.
    fn run(ts: i64, lines: &[(&str, &str)]) -> HostRound {
        let mut out = ProbeOutput {
            kernel_log: Some("dmesg".into()),
            ..ProbeOutput::default()
        };
        for (n, (pci, xid)) in lines.iter().enumerate() {
            out.logs.push(LogEntry {
                source: "dmesg".into(),
                ts_ms: Some(ts - 100 + n as i64),
                priority: 2,
                unit: None,
                message: format!("NVRM: Xid (PCI:{pci}): {xid}, #{ts}-{n}"),
                cursor: None,
                labels: Labels::new([("pci", *pci), ("xid", *xid)]),
            });
        }
        HostRound::new("gpu01", vec![ProbeRun::ok("logs", ts, out)])
    }

    /// Counted exactly in the window: an old counter that did not move in it is none, one
    /// that moved counts only its moves inside, one born inside counts from its 0.
    #[test]
    fn xids_in_a_window_are_counted_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("x.db")).unwrap();
        let h = 3_600_000;
        // Hour 0: two Xid 79 on 3b, one Xid 13 on 18. Hour 10: one more 79 on 3b.
        // Hour 20: an Xid 48 on 5d (a new counter). Rounds read the log every hour.
        for hour in 0..=24 {
            let lines: &[(&str, &str)] = match hour {
                0 => &[
                    ("0000:3b:00", "79"),
                    ("0000:3b:00", "79"),
                    ("0000:18:00", "13"),
                ],
                10 => &[("0000:3b:00", "79")],
                20 => &[("0000:5d:00", "48")],
                _ => &[],
            };
            store
                .write_round(&run(1_000_000 + hour * h, lines))
                .unwrap();
        }
        let counts = |since: i64, to: i64| -> Vec<(String, String, f64)> {
            let mut v: Vec<(String, String, f64)> = store
                .xid_issues(Some("gpu01"), since, to)
                .unwrap()
                .remove("gpu01")
                .unwrap_or_default()
                .into_iter()
                .map(|x| (x.pci, x.xid, x.times))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let end = 1_000_000 + 24 * h;
        assert_eq!(
            counts(end - 20 * h, end),
            [
                ("0000:3b:00".into(), "79".into(), 1.0),
                ("0000:5d:00".into(), "48".into(), 1.0)
            ]
        );
        assert_eq!(counts(end - 2 * h, end), []);
        // From before the first round: every event, the born-in-window 0s as baselines.
        assert_eq!(
            counts(0, end),
            [
                ("0000:18:00".into(), "13".into(), 1.0),
                ("0000:3b:00".into(), "79".into(), 3.0),
                ("0000:5d:00".into(), "48".into(), 1.0)
            ]
        );
        assert!(
            store
                .xid_issues(Some("elsewhere"), 0, end)
                .unwrap()
                .is_empty()
        );
    }
}
