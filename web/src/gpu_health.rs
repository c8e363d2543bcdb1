//! The host page's "GPU health" section: per GPU its Xids in the last 24 hours, memory
//! health (uncorrectable ECC, row remapping, retired pages), NVLink links and error
//! counters, PCIe link against its maximum, the driver's recovery action and who runs on
//! it; and the overview's "GPU issues" cell. Issues are judged by
//! `dcmon_probes::nvidia::issues`, as the overview and the alert rules judge them.
//! Pure functions over the latest readings, facts and Xid counts.

use crate::view::number;
use dcmon_probes::logs::nvrm::bus_of;
use dcmon_probes::nvidia::issues::{self, GpuIssue};
use dcmon_store::overview::HostSummary;
use dcmon_store::{SeriesLatest, Store, StoreError, XidCount};
use serde::Serialize;
use std::collections::BTreeMap;

/// The series families the section reads (besides `nvidia_gpu_*`, which the GPU table
/// reads too).
pub const FAMILIES: [&str; 4] = [
    "nvidia_nvlink_*",
    "nvidia_gpus_*",
    "nvidia_fabricmanager_*",
    // Names the containers of GPU processes (by the short id the docker probe gives).
    "docker_container_running",
];

/// How far back the Xid column counts.
pub const XID_WINDOW_MS: i64 = 86_400_000;

#[derive(Debug, Default, Serialize)]
pub struct GpuHealth {
    pub rows: Vec<HealthRow>,
    pub processes: Vec<ProcessRow>,
    /// The host's GPU set as a whole: GPUs missing, Xids of GPUs the driver no longer
    /// lists.
    pub notices: Vec<Shown>,
}

/// A cell: its words and `ok`, `warn`, `crit` or empty.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Shown {
    pub text: String,
    pub level: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct HealthRow {
    pub gpu: String,
    pub pci: String,
    pub xid: Shown,
    pub memory: Shown,
    pub nvlink: Shown,
    pub pcie: Shown,
    pub recovery: Shown,
    pub processes: String,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ProcessRow {
    pub gpu: String,
    pub user: String,
    pub container: String,
    pub processes: String,
    pub memory: String,
}

/// What the section gathers per GPU before it words it.
#[derive(Default)]
struct Gathered {
    issues: Vec<GpuIssue>,
    remapped: f64,
    links_up: u32,
    links: u32,
    link_errors: BTreeMap<String, f64>,
    generation: Option<f64>,
    width: Option<f64>,
    gen_max: Option<f64>,
    width_max: Option<f64>,
    replays: f64,
}

/// A process table row's key: (GPU as a number, for order; GPU; user; container). Its
/// value: (processes, memory bytes).
type AppKey = (u32, String, String, String);

fn label<'a>(r: &'a SeriesLatest, key: &str) -> &'a str {
    r.labels.get(key).map_or("", String::as_str)
}

/// A notice's or cell's level for one issue.
fn level_of(issue: &GpuIssue) -> &'static str {
    if issue.critical { "crit" } else { "warn" }
}

fn worst(issues: &[GpuIssue]) -> &'static str {
    if issues.iter().any(|i| i.critical) {
        "crit"
    } else if issues.is_empty() {
        "ok"
    } else {
        "warn"
    }
}

fn words(issues: &[GpuIssue]) -> String {
    issues
        .iter()
        .map(|i| i.what.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The section, from the host's latest `nvidia_gpu_*`, `nvidia_nvlink_*` and
/// `nvidia_gpus_*` readings, its facts and its Xids of the last 24 hours; `kernel_log`:
/// whether its kernel log is read at all (else no Xid proves nothing, and says so).
pub fn section<'a>(
    readings: impl Iterator<Item = &'a SeriesLatest>,
    facts: &[(String, String)],
    xids: &[XidCount],
    kernel_log: bool,
) -> GpuHealth {
    let mut health = GpuHealth::default();
    let mut gpus: BTreeMap<String, Gathered> = BTreeMap::new();
    let mut on_bus = None;
    let mut visible = None;
    let mut expected = None;
    // Host-wide issues (GPUs missing, the fabric manager down), worded once the counts
    // are read: (series, issue).
    let mut host_wide: Vec<(String, GpuIssue)> = Vec::new();
    let mut container_names: BTreeMap<String, String> = BTreeMap::new();
    let mut apps: BTreeMap<AppKey, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let app_key = |r: &SeriesLatest| {
        let gpu = label(r, "gpu");
        (
            gpu.parse::<u32>().unwrap_or(u32::MAX),
            gpu.to_string(),
            label(r, "user").to_string(),
            label(r, "container").to_string(),
        )
    };
    for r in readings {
        let gpu = label(r, "gpu");
        match r.name.as_str() {
            "docker_container_running" => {
                let (id, name) = (label(r, "id"), label(r, "name"));
                if !id.is_empty() && !name.is_empty() {
                    container_names.insert(id.to_string(), name.to_string());
                }
                continue;
            }
            "nvidia_gpus_on_bus" => on_bus = Some(r.value),
            "nvidia_gpus_visible" => visible = Some(r.value),
            "nvidia_gpus_expected" => expected = Some(r.value),
            _ => {}
        }
        let issue = issues::issue(&r.name, |k| r.labels.get(k).map(String::as_str), r.value);
        if gpu.is_empty() {
            host_wide.extend(issue.map(|i| (r.name.clone(), i)));
            continue;
        }
        let g = gpus.entry(gpu.to_string()).or_default();
        g.issues.extend(issue);
        match r.name.as_str() {
            "nvidia_gpu_remapped_rows" => g.remapped += r.value,
            "nvidia_nvlink_up" => {
                g.links += 1;
                if r.value > 0.0 {
                    g.links_up += 1;
                }
            }
            "nvidia_nvlink_errors_total" => {
                *g.link_errors
                    .entry(label(r, "counter").to_string())
                    .or_default() += r.value;
            }
            "nvidia_gpu_pcie_link_gen" => g.generation = Some(r.value),
            "nvidia_gpu_pcie_link_width" => g.width = Some(r.value),
            "nvidia_gpu_pcie_link_gen_max" => g.gen_max = Some(r.value),
            "nvidia_gpu_pcie_link_width_max" => g.width_max = Some(r.value),
            "nvidia_gpu_pcie_replays_total" => g.replays = r.value,
            "nvidia_gpu_processes" => apps.entry(app_key(r)).or_default().0 = Some(r.value),
            "nvidia_gpu_process_memory_bytes" => {
                apps.entry(app_key(r)).or_default().1 = Some(r.value);
            }
            _ => {}
        }
    }
    // Per GPU: its processes and their users, for the health row.
    let mut per_gpu: BTreeMap<String, (f64, Vec<String>)> = BTreeMap::new();
    for ((_, gpu, user, _), (count, _)) in &apps {
        let entry = per_gpu.entry(gpu.clone()).or_default();
        entry.0 += count.unwrap_or(0.0);
        if count.is_some() && !user.is_empty() && !entry.1.contains(user) {
            entry.1.push(user.clone());
        }
    }
    for ((_, gpu, user, container), (count, bytes)) in apps {
        // `name (id)` where the docker probe knows the container.
        let container = match container_names.get(&container) {
            Some(name) => format!("{name} ({container})"),
            None => container,
        };
        health.processes.push(ProcessRow {
            gpu,
            user,
            container,
            processes: count.map(number).unwrap_or_default(),
            memory: bytes
                .map(|b| crate::chart::number(b, "bytes"))
                .unwrap_or_default(),
        });
    }
    let fact = |key: &str| {
        facts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    // The GPUs' PCI addresses, in the form Xid lines print.
    let bus: BTreeMap<String, String> = gpus
        .keys()
        .filter_map(|gpu| {
            let address = fact(&format!("gpu{gpu}_pci_bus_id"))?;
            Some((bus_of(address)?, gpu.clone()))
        })
        .collect();
    let mut xid_issues: BTreeMap<String, Vec<GpuIssue>> = BTreeMap::new();
    for x in xids {
        let gpu = bus_of(&x.pci).and_then(|b| bus.get(&b));
        let Some(issue) = issues::xid(gpu.map(String::as_str), &x.xid, x.times) else {
            continue;
        };
        match gpu {
            Some(gpu) => xid_issues.entry(gpu.clone()).or_default().push(issue),
            // A GPU fallen off the bus is not listed: its Xids still show.
            None => health.notices.push(Shown {
                text: format!(
                    "{} on {}, a GPU the driver does not list",
                    issue.what, x.pci
                ),
                level: level_of(&issue),
            }),
        }
    }
    for (series, issue) in host_wide.into_iter().rev() {
        if series != "nvidia_gpu_missing" {
            health.notices.insert(
                0,
                Shown {
                    text: issue.what.clone(),
                    level: level_of(&issue),
                },
            );
            continue;
        }
        let mut counts = Vec::new();
        if let Some(n) = on_bus {
            counts.push(format!("{} on the PCIe bus", number(n)));
        }
        if let Some(n) = expected {
            counts.push(format!("{} expected", number(n)));
        }
        if let Some(n) = visible {
            counts.push(format!("{} listed by the driver", number(n)));
        }
        health.notices.insert(
            0,
            Shown {
                text: format!("GPUs {}: {}", issue.what, counts.join(", ")),
                level: level_of(&issue),
            },
        );
    }
    for (gpu, g) in gpus {
        let (memory_issues, other): (Vec<GpuIssue>, Vec<GpuIssue>) =
            g.issues.into_iter().partition(|i| i.area == "memory");
        let memory = if memory_issues.is_empty() {
            Shown {
                text: if g.remapped > 0.0 {
                    format!("ok, {} rows remapped", number(g.remapped))
                } else {
                    "ok".into()
                },
                level: "ok",
            }
        } else {
            Shown {
                text: words(&memory_issues),
                level: worst(&memory_issues),
            }
        };
        let nvlink_issues: Vec<GpuIssue> = other
            .iter()
            .filter(|i| i.area == "nvlink")
            .cloned()
            .collect();
        let nvlink = if g.links == 0 && g.link_errors.is_empty() {
            Shown::default()
        } else {
            let mut text = format!("{}/{} up", g.links_up, g.links);
            let errors: Vec<String> = g
                .link_errors
                .iter()
                .filter(|(_, n)| **n > 0.0)
                .map(|(counter, n)| format!("{} {counter}", number(*n)))
                .collect();
            if !errors.is_empty() {
                text.push_str(&format!(", errors: {}", errors.join(", ")));
            }
            let level = if !nvlink_issues.is_empty() || !errors.is_empty() {
                "warn"
            } else {
                "ok"
            };
            Shown { text, level }
        };
        let downgraded = other.iter().any(|i| i.area == "pcie");
        let pcie = match (g.generation, g.width) {
            (None, None) => Shown::default(),
            (generation, width) => {
                let link = |generation: Option<f64>, width: Option<f64>| {
                    let mut parts = Vec::new();
                    if let Some(v) = generation {
                        parts.push(format!("Gen{}", number(v)));
                    }
                    if let Some(v) = width {
                        parts.push(format!("x{}", number(v)));
                    }
                    parts.join(" ")
                };
                let now = link(generation, width);
                let max = link(g.gen_max, g.width_max);
                let mut text = if max.is_empty() || max == now {
                    now
                } else {
                    format!("{now} of {max}")
                };
                if g.replays > 0.0 {
                    text.push_str(&format!(", {} replays", number(g.replays)));
                }
                Shown {
                    text,
                    level: if downgraded { "warn" } else { "ok" },
                }
            }
        };
        let xids = xid_issues.remove(&gpu).unwrap_or_default();
        let xid = match (xids.is_empty(), kernel_log) {
            (true, false) => Shown {
                text: "kernel log not read".into(),
                level: "",
            },
            (true, true) => Shown {
                text: "none".into(),
                level: "ok",
            },
            (false, _) => Shown {
                text: words(&xids),
                level: worst(&xids),
            },
        };
        let recovery = match fact(&format!("gpu{gpu}_recovery_action")) {
            None => Shown::default(),
            Some(action) => Shown {
                text: action.to_string(),
                level: if action == "None" { "ok" } else { "crit" },
            },
        };
        let (count, users) = per_gpu.remove(&gpu).unwrap_or_default();
        let processes = match (count, users.is_empty()) {
            (n, _) if n <= 0.0 => String::new(),
            (n, true) => number(n),
            (n, false) => format!("{} ({})", number(n), users.join(", ")),
        };
        health.rows.push(HealthRow {
            pci: fact(&format!("gpu{gpu}_pci_bus_id"))
                .unwrap_or_default()
                .to_string(),
            gpu,
            xid,
            memory,
            nvlink,
            pcie,
            recovery,
            processes,
        });
    }
    // GPU indexes sort as numbers: 2 before 10.
    health
        .rows
        .sort_by_key(|r| (r.gpu.parse::<u32>().unwrap_or(u32::MAX), r.gpu.clone()));
    health
}

/// The overview's rows with each host's Xids of the last 24 hours among its GPU issues
/// (the rest come from the latest readings, judged in the store's overview read).
pub fn overview(store: &Store, now: i64) -> Result<Vec<HostSummary>, StoreError> {
    with_xids(store, None, store.overview()?, now)
}

/// One host's overview row, with its Xids as `overview` gives them.
pub fn host_summary(
    store: &Store,
    host: &str,
    now: i64,
) -> Result<Option<HostSummary>, StoreError> {
    let row = store.host_summary(host)?.into_iter().collect();
    Ok(with_xids(store, Some(host), row, now)?.pop())
}

fn with_xids(
    store: &Store,
    host: Option<&str>,
    mut hosts: Vec<HostSummary>,
    now: i64,
) -> Result<Vec<HostSummary>, StoreError> {
    let mut xids = store.xid_issues(host, now.saturating_sub(XID_WINDOW_MS), now)?;
    for h in &mut hosts {
        for x in xids.remove(&h.host).unwrap_or_default() {
            // The overview reads no facts: the GPU is named by its PCI address.
            h.gpu_issues
                .extend(issues::xid(Some(&x.pci), &x.xid, x.times));
        }
    }
    Ok(hosts)
}

/// The overview's "GPU issues" cell: the critical ones first, `GPU 3: rows pending
/// remap`, at most three named (the rest counted), every one in `all` (the cell's title).
pub fn issues_cell(found: &[GpuIssue]) -> (crate::view::Cell, String) {
    let mut sorted: Vec<&GpuIssue> = found.iter().collect();
    sorted.sort_by_key(|i| !i.critical);
    let named: Vec<String> = sorted
        .iter()
        .map(|i| match &i.gpu {
            Some(gpu) => format!("GPU {gpu}: {}", i.what),
            None => i.what.clone(),
        })
        .collect();
    let mut text = named.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    if named.len() > 3 {
        text.push_str(&format!("; +{} more", named.len() - 3));
    }
    let level = if found.is_empty() {
        ""
    } else if found.iter().any(|i| i.critical) {
        "crit"
    } else {
        "warn"
    };
    (
        crate::view::Cell {
            text,
            level,
            sort: found.len() as f64,
        },
        named.join("; "),
    )
}
