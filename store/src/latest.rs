//! The last two samples of every series, in memory. `dcmon serve` shares one `Latest`
//! between the writer (which updates it after each commit) and the dashboard's reader,
//! so the overview reads a map instead of a B-tree descent per series (about 1 µs each;
//! 60k series at 1,000 hosts made the overview a 55 ms query).

use crate::{Store, StoreError, sql};
use dcmon_probes::Sample;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// One series' latest two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestEntry {
    pub name: String,
    /// `counter` or `gauge`, and the unit, as the series table has them.
    pub kind: String,
    pub unit: String,
    pub labels: BTreeMap<String, String>,
    pub ts: i64,
    pub value: f64,
    /// The sample before, if any (for CPU busy shares from counters).
    pub prev: Option<(i64, f64)>,
}

/// One series' latest value, borrowed from wherever it was read.
#[derive(Debug, Clone, Copy)]
pub struct LatestRef<'a> {
    /// The series id, when read from the shared cache (stable while the series lives).
    pub id: Option<i64>,
    pub host: &'a str,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub kind: &'a str,
    pub unit: &'a str,
    pub value: f64,
    pub ts: i64,
}

/// host → series id → entry: grouped by host, so per-host readers touch no other host.
type ByHost = HashMap<String, HashMap<i64, LatestEntry>>;

/// Shared latest values; empty until loaded from the database.
#[derive(Debug, Default)]
pub struct Latest {
    entries: RwLock<Option<ByHost>>,
    /// The overview's figures per host, made from its entries and dropped (under the
    /// entries' write lock) when they change: a host that sent nothing new is not
    /// folded again (1,000 hosts hold 150,000 entries; between two refreshes of the
    /// page most hosts send nothing). Locked only while the entries are.
    summaries: std::sync::Mutex<HashMap<String, crate::overview::HostSummary>>,
}

impl Latest {
    /// Calls `each` with every host (or just `host`) and its entries, if the cache is
    /// loaded; collects what it returns.
    pub fn per_host<T>(
        &self,
        host: Option<&str>,
        mut each: impl FnMut(&str, &HashMap<i64, LatestEntry>) -> T,
    ) -> Option<Vec<T>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let map = entries.as_ref()?;
        Some(match host {
            Some(h) => map
                .get_key_value(h)
                .map(|(h, e)| each(h, e))
                .into_iter()
                .collect(),
            None => map.iter().map(|(h, e)| each(h, e)).collect(),
        })
    }

    /// Each host's (or `host`'s) overview figures: kept from the last call for a host
    /// whose entries did not change since, else made by `make` and kept.
    pub(crate) fn summaries(
        &self,
        host: Option<&str>,
        make: impl Fn(&str, &HashMap<i64, LatestEntry>) -> crate::overview::HostSummary,
    ) -> Option<Vec<crate::overview::HostSummary>> {
        // Inside per_host, so the entries' read lock is taken first, as record takes
        // its write lock before dropping a summary: one lock order.
        self.per_host(host, |h, series| {
            let mut kept = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(summary) = kept.get(h) {
                return summary.clone();
            }
            let summary = make(h, series);
            kept.insert(h.to_string(), summary.clone());
            summary
        })
    }

    /// Forgets every kept summary (entries changed for many hosts at once).
    fn forget_summaries(&self) {
        self.summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn is_loaded(&self) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// After a commit: the samples just stored, with their series ids.
    pub(crate) fn record<'a>(
        &self,
        host: &str,
        ts: i64,
        written: impl Iterator<Item = (i64, &'a Sample)>,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let Some(map) = entries.as_mut() else { return };
        self.summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host);
        if !map.contains_key(host) {
            map.insert(host.to_string(), HashMap::new());
        }
        let Some(map) = map.get_mut(host) else { return };
        for (id, sample) in written {
            match map.get_mut(&id) {
                // Rounds can land out of order (a slow run committed late): keep the newest.
                Some(e) if ts > e.ts => {
                    e.prev = Some((e.ts, e.value));
                    e.ts = ts;
                    e.value = sample.value;
                }
                Some(e) if ts == e.ts => e.value = sample.value,
                Some(e) => {
                    if e.prev.is_none_or(|(p, _)| ts > p) {
                        e.prev = Some((ts, sample.value));
                    }
                }
                None => {
                    map.insert(
                        id,
                        LatestEntry {
                            name: sample.name.clone(),
                            kind: sample.kind.as_str().to_string(),
                            unit: sample.unit.to_string(),
                            labels: sample
                                .labels
                                .pairs()
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            ts,
                            value: sample.value,
                            prev: None,
                        },
                    );
                }
            }
        }
    }

    /// After a retention sweep: series with no sample left since `cutoff` are gone.
    pub(crate) fn forget_before(&self, cutoff: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = entries.as_mut() {
            for series in map.values_mut() {
                series.retain(|_, e| e.ts >= cutoff);
                for e in series.values_mut() {
                    if e.prev.is_some_and(|(t, _)| t < cutoff) {
                        e.prev = None;
                    }
                }
            }
            map.retain(|_, series| !series.is_empty());
        }
        self.forget_summaries();
    }

    /// Any series rolled back by a failed transaction: reload on next use.
    pub(crate) fn invalidate(&self) {
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.forget_summaries();
    }
}

impl Store {
    /// Shares `latest` with this connection: loads it from the database if nobody has,
    /// then keeps it current with every commit of this connection.
    pub fn share_latest(&mut self, latest: std::sync::Arc<Latest>) -> Result<(), StoreError> {
        if !latest.is_loaded() {
            let loaded = self.load_latest()?;
            let mut entries = latest.entries.write().unwrap_or_else(|e| e.into_inner());
            if entries.is_none() {
                *entries = Some(loaded);
                latest.forget_summaries();
            }
        }
        self.latest = Some(latest);
        Ok(())
    }

    /// Calls `f` with every series' latest value (what `/metrics` shows), borrowed:
    /// from the shared cache when this process has one (no copy of 100,000s of label
    /// sets), else read from the database. In no particular order.
    pub fn with_latest<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = LatestRef<'_>>) -> T,
    ) -> Result<T, StoreError> {
        if let Some(latest) = &self.latest {
            let entries = latest.entries.read().unwrap_or_else(|e| e.into_inner());
            if let Some(map) = entries.as_ref() {
                let mut all = map.iter().flat_map(|(host, series)| {
                    series.iter().map(move |(id, e)| LatestRef {
                        id: Some(*id),
                        host,
                        name: &e.name,
                        labels: &e.labels,
                        kind: &e.kind,
                        unit: &e.unit,
                        value: e.value,
                        ts: e.ts,
                    })
                });
                return Ok(f(&mut all));
            }
        }
        let read = self.series_latest(&crate::SeriesFilter::default())?;
        let mut all = read.iter().map(|s| LatestRef {
            id: None,
            host: &s.host,
            name: &s.name,
            labels: &s.labels,
            kind: &s.kind,
            unit: &s.unit,
            value: s.value,
            ts: s.ts,
        });
        Ok(f(&mut all))
    }

    fn load_latest(&self) -> Result<ByHost, StoreError> {
        let mut series = self
            .conn
            .prepare("SELECT id, host, name, labels, kind, unit FROM series")
            .map_err(sql("prepare latest series"))?;
        let src = self.source()?;
        let rows = series
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(sql("read latest series"))?;
        let mut map = ByHost::new();
        for row in rows {
            let (id, host, name, labels, kind, unit) =
                row.map_err(sql("read latest series row"))?;
            let [last, prev] = src.last_two(id)?;
            let Some((ts, value)) = last else {
                continue; // every sample swept away
            };
            map.entry(host).or_default().insert(
                id,
                LatestEntry {
                    name,
                    kind,
                    unit,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    ts,
                    value,
                    prev,
                },
            );
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostRound, ProbeRun, RunStatus};
    use dcmon_probes::{Labels, ProbeOutput};
    use std::sync::Arc;

    /// One ok run of `host` at `ts` yielding `output`.
    fn round_of(host: &str, ts: i64, output: ProbeOutput) -> HostRound {
        let run = ProbeRun {
            probe: "os".into(),
            started_ms: ts,
            duration_ms: 1,
            status: RunStatus::Ok,
            error: None,
            output,
            new_logs: dcmon_probes::registry::all_logs_new,
        };
        HostRound::new(host, vec![run])
    }

    fn round(ts: i64, value: f64) -> HostRound {
        let mut out = ProbeOutput::default();
        out.counter("c_total", Labels::new([("mode", "idle")]), value, "");
        round_of("h", ts, out)
    }

    /// (ts, value, previous sample)
    type Seen = (i64, f64, Option<(i64, f64)>);

    /// The probe's own series, not the run's (`run_series`).
    fn of_probe(e: &&LatestEntry) -> bool {
        use crate::run_series::{DURATION, SAMPLES, SUCCESS};
        ![DURATION, SAMPLES, SUCCESS].contains(&e.name.as_str())
    }

    fn values(latest: &Latest) -> Vec<Seen> {
        latest
            .per_host(None, |_, series| {
                series
                    .values()
                    .filter(of_probe)
                    .map(|e| (e.ts, e.value, e.prev))
                    .collect::<Vec<_>>()
            })
            .unwrap()
            .concat()
    }

    #[test]
    fn the_cache_loads_from_disk_and_follows_commits_and_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut writer = Store::open(&path).unwrap();
        writer.write_round(&round(1_000, 5.0)).unwrap();
        writer.write_round(&round(2_000, 7.0)).unwrap();
        let latest = Arc::new(Latest::default());
        assert!(latest.per_host(None, |_, _| ()).is_none(), "not loaded yet");
        let mut reader = Store::open(&path).unwrap();
        reader.share_latest(latest.clone()).unwrap();
        assert_eq!(values(&latest), [(2_000, 7.0, Some((1_000, 5.0)))]);
        writer.share_latest(latest.clone()).unwrap();
        writer.write_round(&round(3_000, 9.0)).unwrap();
        assert_eq!(values(&latest), [(3_000, 9.0, Some((2_000, 7.0)))]);
        // A late round does not win over a newer one.
        writer.write_round(&round(2_500, 8.0)).unwrap();
        assert_eq!(values(&latest), [(3_000, 9.0, Some((2_500, 8.0)))]);
        // The cache says what the database would.
        let labels = latest.per_host(Some("h"), |_, s| {
            s.values().find(of_probe).unwrap().labels.clone()
        });
        assert_eq!(labels.unwrap()[0]["mode"], "idle");
        latest.forget_before(2_600);
        assert_eq!(values(&latest), [(3_000, 9.0, None)]);
        latest.forget_before(10_000);
        assert!(values(&latest).is_empty());
    }

    #[test]
    fn samples_of_several_runs_keep_their_own_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("l.db")).unwrap();
        let latest = Arc::new(Latest::default());
        store.share_latest(latest.clone()).unwrap();
        let run = |probe: &str, names: &[&str], value: f64| {
            let mut out = ProbeOutput::default();
            for n in names {
                out.gauge(n, Labels::default(), value, "");
            }
            ProbeRun {
                probe: probe.into(),
                started_ms: 1_000,
                duration_ms: 1,
                status: RunStatus::Ok,
                error: None,
                output: out,
                new_logs: dcmon_probes::registry::all_logs_new,
            }
        };
        let rounds = [
            HostRound::new(
                "a",
                vec![run("os", &["x", "y"], 1.0), run("apt", &["z"], 2.0)],
            ),
            HostRound::new("b", vec![run("os", &[], 0.0), run("apt", &["z"], 3.0)]),
        ];
        store.write_rounds(&rounds).unwrap();
        let mut got = latest
            .per_host(None, |host, series| {
                let named = series
                    .values()
                    .filter(of_probe)
                    .map(|e| (host.to_string(), e.name.clone(), e.value));
                named.collect::<Vec<_>>()
            })
            .unwrap()
            .concat();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let want = [
            ("a", "x", 1.0),
            ("a", "y", 1.0),
            ("a", "z", 2.0),
            ("b", "z", 3.0),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(h, n, v)| (h.to_string(), n.to_string(), *v))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_overview_reads_the_same_from_the_cache_as_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut writer = Store::open(&path).unwrap();
        let latest = Arc::new(Latest::default());
        writer.share_latest(latest.clone()).unwrap();
        for (i, host) in ["a", "b"].iter().enumerate() {
            for r in 0..3 {
                let mut out = ProbeOutput::default();
                let t = r as f64;
                out.counter(
                    "node_cpu_all_seconds_total",
                    Labels::new([("mode", "user")]),
                    t * (3.0 + i as f64),
                    "",
                );
                out.counter(
                    "node_cpu_all_seconds_total",
                    Labels::new([("mode", "iowait")]),
                    t,
                    "",
                );
                out.counter(
                    "node_cpu_all_seconds_total",
                    Labels::new([("mode", "idle")]),
                    t * 6.0,
                    "",
                );
                out.gauge(
                    "node_memory_used_bytes",
                    Labels::default(),
                    30.0 + t,
                    "bytes",
                );
                out.gauge("node_memory_total_bytes", Labels::default(), 100.0, "bytes");
                out.gauge("node_load1", Labels::default(), t, "");
                for g in 0..2 {
                    out.gauge(
                        "nvidia_gpu_temperature_celsius",
                        Labels::new([("gpu", g.to_string())]),
                        60.0 + t + g as f64,
                        "celsius",
                    );
                }
                out.gauge(
                    "ipmi_sensor_status",
                    Labels::new([("sensor", "Fan1")]),
                    t,
                    "",
                );
                // The same BMC read through the OS and over the network: its alarms
                // count once (the path that sees more of them).
                out.gauge(
                    "ipmi_sensor_status",
                    Labels::new([("sensor", "Fan2"), ("path", "ssh")]),
                    2.0,
                    "",
                );
                for fan in ["Fan2", "Fan3", "Fan4"] {
                    out.gauge(
                        "ipmi_sensor_status",
                        Labels::new([("sensor", fan), ("path", "bmc")]),
                        2.0,
                        "",
                    );
                }
                out.gauge(
                    "nvme_percentage_used",
                    Labels::new([("device", "n0")]),
                    4.0,
                    "percent",
                );
                out.gauge("apt_reboot_required", Labels::default(), 1.0, "");
                let run = ProbeRun {
                    probe: "os".into(),
                    started_ms: 1_000 * (r + 1),
                    duration_ms: 1,
                    status: RunStatus::Ok,
                    error: None,
                    output: out,
                    new_logs: dcmon_probes::registry::all_logs_new,
                };
                writer
                    .write_round(&HostRound::new(*host, vec![run]))
                    .unwrap();
            }
        }
        let from_disk = Store::open(&path).unwrap().overview().unwrap();
        let mut reader = Store::open(&path).unwrap();
        reader.share_latest(latest).unwrap();
        let from_cache = reader.overview().unwrap();
        assert_eq!(from_cache, from_disk);
        assert_eq!(
            from_disk[1].cpu_percent,
            Some(400.0 / 11.0),
            "4 busy of 11 seconds"
        );
        assert_eq!(from_disk[0].gpu_temp_max, Some(63.0));
        assert_eq!(
            from_disk[0].ipmi_alarms, 3,
            "2 through the OS (Fan1, Fan2), 3 from the BMC (Fan2–4)"
        );
        assert_eq!(
            reader.host_summary("b").unwrap(),
            Some(from_disk[1].clone())
        );
    }

    #[test]
    fn overview_figures_are_made_again_only_for_hosts_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let latest = Arc::new(Latest::default());
        let mut writer = Store::open(&path).unwrap();
        writer.share_latest(latest.clone()).unwrap();
        let load = |host: &str, ts: i64, value: f64| {
            let mut out = ProbeOutput::default();
            out.gauge("node_load1", Labels::default(), value, "");
            round_of(host, ts, out)
        };
        writer.write_round(&load("a", 1_000, 1.0)).unwrap();
        writer.write_round(&load("b", 1_000, 2.0)).unwrap();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let figures = |latest: &Latest| {
            let mut all = latest
                .summaries(None, |host, series| {
                    made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    crate::overview::HostSummary {
                        host: host.to_string(),
                        load1: series.values().find(of_probe).map(|e| e.value),
                        ..Default::default()
                    }
                })
                .unwrap();
            all.sort_by(|x, y| x.host.cmp(&y.host));
            all.iter().map(|s| s.load1).collect::<Vec<_>>()
        };
        assert_eq!(figures(&latest), [Some(1.0), Some(2.0)]);
        assert_eq!(figures(&latest), [Some(1.0), Some(2.0)]);
        assert_eq!(
            made.load(std::sync::atomic::Ordering::Relaxed),
            2,
            "kept the second time"
        );
        writer.write_round(&load("b", 2_000, 3.0)).unwrap();
        assert_eq!(figures(&latest), [Some(1.0), Some(3.0)]);
        assert_eq!(
            made.load(std::sync::atomic::Ordering::Relaxed),
            3,
            "only b again"
        );
        latest.forget_before(1_500);
        assert_eq!(figures(&latest), [Some(3.0)]);
    }
}
