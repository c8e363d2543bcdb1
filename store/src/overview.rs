//! The overview's read: per host its state and the few figures an operator scans for
//! (CPU, memory, load, GPUs, the hottest sensor), in one pass over the latest samples.

use crate::{Store, StoreError, sql};
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of the overview.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostSummary {
    pub host: String,
    /// `online`, `offline`, or `unknown` (never polled by `dcmon serve`).
    pub status: String,
    /// ms since the epoch of the last good probe run.
    pub last_seen: Option<i64>,
    pub last_error: Option<String>,
    /// Busy share of all CPUs between the last two samples, percent.
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub load1: Option<f64>,
    pub gpus: Option<u32>,
    pub gpu_temp_max: Option<f64>,
    pub ipmi_temp_max: Option<f64>,
    /// IPMI sensors not `ok` (status 1..4 except `no reading`).
    pub ipmi_alarms: u32,
    pub nvme_wear_max: Option<f64>,
    pub upgrades: Option<f64>,
    pub reboot_required: bool,
    /// From the inventory (empty for a host no longer in it).
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Series the overview reads, latest value each.
const NAMES: &[&str] = &[
    "node_memory_used_bytes",
    "node_memory_total_bytes",
    "node_load1",
    "nvidia_gpu_temperature_celsius",
    "ipmi_temperature_celsius",
    "ipmi_sensor_status",
    "nvme_percentage_used",
    "apt_upgrades_pending",
    "apt_reboot_required",
];

impl Store {
    /// Every host's row.
    pub fn overview(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.overview_of(None)
    }

    /// One host's row, reading only that host's data.
    pub fn host_summary(&self, host: &str) -> Result<Option<HostSummary>, StoreError> {
        Ok(self.overview_of(Some(host))?.pop())
    }

    fn overview_of(&self, host: Option<&str>) -> Result<Vec<HostSummary>, StoreError> {
        let mut rows: BTreeMap<String, HostSummary> = BTreeMap::new();
        let placeholders = NAMES
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",");
        let mut latest = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.host, s.name, x.value FROM series s
                 JOIN samples x ON x.series_id = s.id AND x.ts = (SELECT max(ts) FROM samples WHERE series_id = s.id)
                 WHERE s.name IN ({placeholders}) AND (?1 IS NULL OR s.host = ?1)"
            ))
            .map_err(sql("prepare overview"))?;
        let values = latest
            .query_map([host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            })
            .map_err(sql("read overview"))?;
        let mut memory: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for row in values {
            let (host, name, value) = row.map_err(sql("read overview row"))?;
            let h = rows.entry(host.clone()).or_insert_with(|| HostSummary {
                host: host.clone(),
                ..Default::default()
            });
            let max =
                |slot: &mut Option<f64>| *slot = Some(slot.map_or(value, |m: f64| m.max(value)));
            match name.as_str() {
                "node_memory_used_bytes" => memory.entry(host).or_default().0 = Some(value),
                "node_memory_total_bytes" => memory.entry(host).or_default().1 = Some(value),
                "node_load1" => h.load1 = Some(value),
                "nvidia_gpu_temperature_celsius" => {
                    max(&mut h.gpu_temp_max);
                    h.gpus = Some(h.gpus.unwrap_or(0) + 1);
                }
                "ipmi_temperature_celsius" => max(&mut h.ipmi_temp_max),
                "ipmi_sensor_status" if (1.0..=3.0).contains(&value) => h.ipmi_alarms += 1,
                "nvme_percentage_used" => max(&mut h.nvme_wear_max),
                "apt_upgrades_pending" => h.upgrades = Some(value),
                "apt_reboot_required" => h.reboot_required = value > 0.0,
                _ => {}
            }
        }
        for (host, (used, total)) in memory {
            if let (Some(used), Some(total), Some(h)) = (used, total, rows.get_mut(&host))
                && total > 0.0
            {
                h.memory_percent = Some(100.0 * used / total);
            }
        }
        self.cpu_percents(host, &mut rows)?;
        self.host_states(host, &mut rows)?;
        // Hosts in the inventory show up before their first round does.
        for listed in self.directory(host)? {
            let h = rows
                .entry(listed.host.clone())
                .or_insert_with(|| HostSummary {
                    host: listed.host,
                    ..Default::default()
                });
            h.groups = listed.groups;
            h.labels = listed.labels;
            if h.status.is_empty() {
                h.status = "unknown".to_string();
            }
        }
        Ok(rows.into_values().collect())
    }

    /// CPU busy % from the last two samples of each mode of `node_cpu_all_seconds_total`.
    fn cpu_percents(
        &self,
        host: Option<&str>,
        rows: &mut BTreeMap<String, HostSummary>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.host, s.labels,
                   (SELECT value FROM samples WHERE series_id = s.id ORDER BY ts DESC LIMIT 1),
                   (SELECT value FROM samples WHERE series_id = s.id ORDER BY ts DESC LIMIT 1 OFFSET 1)
                 FROM series s WHERE s.name = 'node_cpu_all_seconds_total' AND (?1 IS NULL OR s.host = ?1)",
            )
            .map_err(sql("prepare cpu"))?;
        let deltas = stmt
            .query_map([host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })
            .map_err(sql("read cpu"))?;
        let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for row in deltas {
            let (host, labels, last, previous) = row.map_err(sql("read cpu row"))?;
            let (Some(last), Some(previous)) = (last, previous) else {
                continue;
            };
            let delta = (last - previous).max(0.0);
            let t = totals.entry(host).or_default();
            t.0 += delta;
            if labels.contains("\"idle\"") || labels.contains("\"iowait\"") {
                t.1 += delta;
            }
        }
        for (host, (all, idle)) in totals {
            if let Some(h) = rows.get_mut(&host)
                && all > 0.0
            {
                h.cpu_percent = Some(100.0 * (all - idle) / all);
            }
        }
        Ok(())
    }

    fn host_states(
        &self,
        host: Option<&str>,
        rows: &mut BTreeMap<String, HostSummary>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT host, online, last_seen, last_error FROM hosts WHERE ?1 IS NULL OR host = ?1")
            .map_err(sql("prepare host states"))?;
        let states = stmt
            .query_map([host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(sql("read host states"))?;
        for row in states {
            let (host, online, last_seen, last_error) = row.map_err(sql("read host state"))?;
            let h = rows.entry(host.clone()).or_insert_with(|| HostSummary {
                host,
                ..Default::default()
            });
            h.status = if online { "online" } else { "offline" }.to_string();
            h.last_seen = last_seen;
            h.last_error = last_error;
        }
        let mut seen = self
            .conn
            .prepare_cached(
                "SELECT host, max(started) FROM probe_runs WHERE status = 'ok' AND (?1 IS NULL OR host = ?1) GROUP BY host",
            )
            .map_err(sql("prepare last seen"))?;
        let last = seen
            .query_map([host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(sql("read last seen"))?;
        for row in last {
            let (host, ts) = row.map_err(sql("read last seen row"))?;
            if let Some(h) = rows.get_mut(&host) {
                h.last_seen = Some(h.last_seen.map_or(ts, |s| s.max(ts)));
            }
        }
        for h in rows.values_mut().filter(|h| h.status.is_empty()) {
            h.status = "unknown".to_string();
        }
        Ok(())
    }
}
