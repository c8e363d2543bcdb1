//! View models: what a template shows, formatted, with warning levels decided here
//! rather than in the template.

use dcmon_store::overview::HostSummary;
use serde::Serialize;

/// Milliseconds since the epoch: the store's one clock.
pub use dcmon_store::now_ms;

/// A value for people: whole numbers as such, others with up to three decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Warning and critical levels of the overview's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub cpu: (f64, f64),
    pub memory: (f64, f64),
    pub gpu_temp: (f64, f64),
    pub bmc_temp: (f64, f64),
    pub nvme_wear: (f64, f64),
}

impl Default for Thresholds {
    /// Issue 5's defaults: CPU 60/80 %, memory 70/90 %.
    fn default() -> Self {
        Thresholds {
            cpu: (60.0, 80.0),
            memory: (70.0, 90.0),
            gpu_temp: (80.0, 90.0),
            bmc_temp: (75.0, 85.0),
            nvme_wear: (80.0, 95.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub text: String,
    /// `ok`, `warn`, `crit` or empty.
    pub level: &'static str,
    /// For sorting: the raw number, or -1 when there is none.
    pub sort: f64,
}

#[derive(Debug, Serialize)]
pub struct HostRow {
    pub host: String,
    /// Alerts firing for the host (set by the overview).
    pub firing: usize,
    pub labels: std::collections::BTreeMap<String, String>,
    pub status: String,
    pub last_seen: String,
    pub error: String,
    pub cpu: Cell,
    pub memory: Cell,
    pub load: Cell,
    pub gpus: Cell,
    pub gpu_temp: Cell,
    pub ipmi_temp: Cell,
    pub alarms: Cell,
    pub nvme_wear: Cell,
    pub upgrades: Cell,
    /// What is wrong with the host's GPUs, and every issue for the cell's title.
    pub gpu_issues: Cell,
    pub gpu_issues_all: String,
}

fn level(value: Option<f64>, (warn, crit): (f64, f64)) -> &'static str {
    match value {
        Some(v) if v >= crit => "crit",
        Some(v) if v >= warn => "warn",
        Some(_) => "ok",
        None => "",
    }
}

fn cell(value: Option<f64>, text: impl Fn(f64) -> String, levels: Option<(f64, f64)>) -> Cell {
    Cell {
        text: value.map_or_else(|| "–".to_string(), &text),
        level: levels.map_or("", |l| level(value, l)),
        sort: value.unwrap_or(-1.0),
    }
}

/// How long ago, for people: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(ts_ms: Option<i64>, now_ms: i64) -> String {
    let Some(ts) = ts_ms else {
        return "never".to_string();
    };
    let s = ((now_ms - ts) / 1000).max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// A time to come as `in 2h` (or `ago` once it passed).
pub fn until(ts_ms: i64, now_ms: i64) -> String {
    let s = (ts_ms.saturating_sub(now_ms)) / 1000;
    match s {
        ..=0 => ago(Some(ts_ms), now_ms),
        1..60 => format!("in {s}s"),
        60..3600 => format!("in {}m", s / 60),
        3600..86400 => format!("in {}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("in {}d {}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn host_row(h: &HostSummary, now_ms: i64, t: &Thresholds) -> HostRow {
    // A host not seen for 3 minutes is stale even if no round has failed yet.
    let stale = h.status == "online" && h.last_seen.is_some_and(|s| now_ms - s > 180_000);
    // The OS out of reach, but the BMC answers: say whether the machine is on at all.
    let status = match (h.status.as_str(), h.bmc_power) {
        ("offline" | "unknown", Some(true)) => "os-down".to_string(),
        ("offline" | "unknown", Some(false)) => "powered-off".to_string(),
        _ if stale => "stale".to_string(),
        _ => h.status.clone(),
    };
    let (gpu_issues, gpu_issues_all) = crate::gpu_health::issues_cell(&h.gpu_issues);
    HostRow {
        gpu_issues,
        gpu_issues_all,
        firing: 0,
        host: h.host.clone(),
        labels: h.labels.clone(),
        status,
        last_seen: ago(h.last_seen, now_ms),
        error: h.last_error.clone().unwrap_or_default(),
        cpu: cell(h.cpu_percent, |v| format!("{v:.0}%"), Some(t.cpu)),
        memory: cell(h.memory_percent, |v| format!("{v:.0}%"), Some(t.memory)),
        load: cell(h.load1, |v| format!("{v:.2}"), None),
        gpus: cell(h.gpus.map(f64::from), |v| format!("{v:.0}"), None),
        gpu_temp: cell(h.gpu_temp_max, |v| format!("{v:.0} °C"), Some(t.gpu_temp)),
        ipmi_temp: cell(h.ipmi_temp_max, |v| format!("{v:.0} °C"), Some(t.bmc_temp)),
        alarms: cell(
            Some(f64::from(h.ipmi_alarms)),
            |v| {
                if v > 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            },
            Some((1.0, 1.0)),
        ),
        nvme_wear: cell(h.nvme_wear_max, |v| format!("{v:.0}%"), Some(t.nvme_wear)),
        upgrades: cell(
            h.upgrades,
            |v| {
                if h.reboot_required {
                    format!("{v:.0} · reboot")
                } else {
                    format!("{v:.0}")
                }
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_host_says_whether_its_bmc_sees_power() {
        let row = |status: &str, power: Option<bool>| {
            let h = HostSummary {
                host: "gpu01".into(),
                status: status.into(),
                bmc_power: power,
                ..Default::default()
            };
            host_row(&h, 0, &Thresholds::default()).status
        };
        assert_eq!(row("offline", Some(true)), "os-down");
        assert_eq!(row("offline", Some(false)), "powered-off");
        assert_eq!(row("unknown", Some(false)), "powered-off");
        assert_eq!(row("offline", None), "offline");
        assert_eq!(row("online", Some(true)), "online");
    }
}
