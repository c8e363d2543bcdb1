//! The overview's read: per host its state and the few figures an operator scans for
//! (CPU, memory, load, GPUs, the hottest sensor), in one pass over the latest samples.

use crate::{Store, StoreError, sql};
use dcmon_probes::nvidia::issues::{self, GpuIssue};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `path` labels of readings taken from the BMC over the network (IPMI over LAN,
/// Redfish), not through the host's OS: they hold while the OS is down.
pub const OUT_OF_BAND: [&str; 2] = ["bmc", "redfish"];

/// `OUT_OF_BAND` as the labels' JSON holds them, for rows read without parsing it.
const OUT_OF_BAND_JSON: [&str; 2] = ["\"path\":\"bmc\"", "\"path\":\"redfish\""];

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
    /// Power as the host's BMC reports it over the network (`bmc` probe), if it has one.
    pub bmc_power: Option<bool>,
    /// What the latest GPU readings say is wrong (missing GPUs, rows pending remap, …);
    /// Xids, which need a window, are added by the caller (`Store::xid_issues`).
    pub gpu_issues: Vec<GpuIssue>,
}

/// The poller's verdict on a host each round (1 online, 0 offline): written by
/// `dcmon serve`, read by alert rules and the central view.
pub const HOST_UP: &str = "dcmon_host_up";

/// Per-mode CPU seconds: busy share from the last two samples.
pub const CPU: &str = "node_cpu_all_seconds_total";

/// A reading read from the database: (name, idle, value, prev, from the BMC, labels
/// for the GPU issue series, empty otherwise).
type OwnedReading = (
    String,
    bool,
    f64,
    Option<f64>,
    bool,
    BTreeMap<String, String>,
);

/// One series' latest value, and the one before for counters: what `summarize` reads,
/// from this store or from a Prometheus API (the central view).
pub struct Reading<'a> {
    pub name: &'a str,
    /// A CPU mode that counts as not busy (idle, iowait).
    pub idle: bool,
    pub value: f64,
    pub prev: Option<f64>,
    /// Read over the network from the BMC (`path="bmc"`), not through the OS.
    pub bmc: bool,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> Reading<'a> {
    /// A reading of series `name{labels}`, deciding `idle` and `bmc` from the labels.
    pub fn of(
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        value: f64,
        prev: Option<f64>,
    ) -> Reading<'a> {
        Reading {
            name,
            idle: name == CPU
                && matches!(
                    labels.get("mode").map(String::as_str),
                    Some("idle" | "iowait")
                ),
            value,
            prev,
            // Only IPMI series have a path; most of 150,000 entries skip the lookup.
            bmc: name.starts_with("ipmi_")
                && labels
                    .get("path")
                    .is_some_and(|p| OUT_OF_BAND.contains(&p.as_str())),
            labels,
        }
    }
}

/// Series the overview reads, latest value each (with `CPU` and the GPU issue series).
pub const NAMES: &[&str] = &[
    "node_memory_used_bytes",
    "node_memory_total_bytes",
    "node_load1",
    "nvidia_gpu_temperature_celsius",
    "ipmi_temperature_celsius",
    "ipmi_sensor_status",
    "nvme_percentage_used",
    "apt_upgrades_pending",
    "apt_reboot_required",
    "ipmi_chassis_power_on",
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
        for h in self.summaries(host)? {
            rows.insert(h.host.clone(), h);
        }
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

    /// Every host's (or one host's) figures from the latest value of the series the
    /// overview reads (and the one before, for CPU counters): from the shared in-memory
    /// cache when this process has one, otherwise from the database.
    fn summaries(&self, host: Option<&str>) -> Result<Vec<HostSummary>, StoreError> {
        let cached = self.latest.as_ref().and_then(|latest| {
            latest.summaries(host, |host, series| {
                let readings = series
                    .values()
                    .map(|e| Reading::of(&e.name, &e.labels, e.value, e.prev.map(|(_, v)| v)));
                summarize(host, readings)
            })
        });
        if let Some(summaries) = cached {
            return Ok(summaries);
        }
        let placeholders = NAMES
            .iter()
            .chain([&CPU])
            .chain(issues::SERIES)
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",");
        let host_clause = crate::host_clause(host, "s.host");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.id, s.host, s.name, s.labels
                 FROM series s WHERE s.name IN ({placeholders}) AND {host_clause}"
            ))
            .map_err(sql("prepare overview"))?;
        let rows = stmt
            .query_map([host], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(sql("read overview"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read overview row"))?;
        let src = self.source()?;
        // host → (name, idle, value, prev)
        let mut by_host: BTreeMap<String, Vec<OwnedReading>> = BTreeMap::new();
        for (id, host, name, labels) in rows {
            let [value, prev] = src.last_two(id)?;
            let (value, prev) = (value.map(|p| p.1), prev.map(|p| p.1));
            // A series whose samples were all swept has no value.
            let Some(value) = value else { continue };
            let idle = labels.contains("\"idle\"") || labels.contains("\"iowait\"");
            let bmc = OUT_OF_BAND_JSON.iter().any(|p| labels.contains(p));
            let labels = if issues::SERIES.contains(&name.as_str()) {
                serde_json::from_str(&labels).unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            by_host
                .entry(host)
                .or_default()
                .push((name, idle, value, prev, bmc, labels));
        }
        Ok(by_host
            .iter()
            .map(|(host, readings)| {
                let readings = readings
                    .iter()
                    .map(|(name, idle, value, prev, bmc, labels)| Reading {
                        name,
                        idle: *idle,
                        value: *value,
                        prev: *prev,
                        bmc: *bmc,
                        labels,
                    });
                summarize(host, readings)
            })
            .collect())
    }

    fn host_states(
        &self,
        host: Option<&str>,
        rows: &mut BTreeMap<String, HostSummary>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT host, online, last_seen, last_error FROM hosts WHERE {}",
                crate::host_clause(host, "host")
            ))
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
        for (host, ts) in self.last_ok_runs(host)? {
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

/// One host's overview figures from its readings (status, last seen and inventory
/// fields are the caller's).
pub fn summarize<'a>(host: &str, readings: impl Iterator<Item = Reading<'a>>) -> HostSummary {
    let mut h = HostSummary {
        host: host.to_string(),
        ..Default::default()
    };
    let (mut used, mut total) = (None, None);
    // CPU seconds between the last two samples: all modes, and idle + iowait.
    let (mut cpu_all, mut cpu_idle) = (0.0, 0.0);
    let mut bmc_alarms = 0;
    for r in readings {
        let value = r.value;
        let max = |slot: &mut Option<f64>| {
            *slot = Some(slot.map_or(value, |m: f64| m.max(value)));
        };
        match r.name {
            CPU => {
                if let Some(prev) = r.prev {
                    let delta = (value - prev).max(0.0);
                    cpu_all += delta;
                    if r.idle {
                        cpu_idle += delta;
                    }
                }
            }
            "node_memory_used_bytes" => used = Some(value),
            "node_memory_total_bytes" => total = Some(value),
            "node_load1" => h.load1 = Some(value),
            "nvidia_gpu_temperature_celsius" => {
                max(&mut h.gpu_temp_max);
                h.gpus = Some(h.gpus.unwrap_or(0) + 1);
            }
            "ipmi_temperature_celsius" => max(&mut h.ipmi_temp_max),
            "ipmi_sensor_status" if (1.0..=3.0).contains(&value) => {
                // Both paths read the same BMC: count its alarms once.
                if r.bmc {
                    bmc_alarms += 1;
                } else {
                    h.ipmi_alarms += 1;
                }
            }
            "nvme_percentage_used" => max(&mut h.nvme_wear_max),
            "apt_upgrades_pending" => h.upgrades = Some(value),
            "apt_reboot_required" => h.reboot_required = value > 0.0,
            "ipmi_chassis_power_on" if r.bmc => h.bmc_power = Some(value > 0.0),
            name if issues::SERIES.contains(&name) => {
                let labels = r.labels;
                h.gpu_issues.extend(issues::issue(
                    name,
                    |k| labels.get(k).map(String::as_str),
                    value,
                ));
            }
            _ => {}
        }
    }
    h.ipmi_alarms = h.ipmi_alarms.max(bmc_alarms);
    if let (Some(used), Some(total)) = (used, total)
        && total > 0.0
    {
        h.memory_percent = Some(100.0 * used / total);
    }
    if cpu_all > 0.0 {
        h.cpu_percent = Some(100.0 * (cpu_all - cpu_idle) / cpu_all);
    }
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_out_of_band_paths_and_their_json_agree() {
        let json: Vec<String> = super::OUT_OF_BAND
            .iter()
            .map(|p| serde_json::json!({ "path": p }).to_string())
            .map(|j| j.trim_matches(['{', '}']).to_string())
            .collect();
        assert_eq!(json, super::OUT_OF_BAND_JSON);
    }
}
