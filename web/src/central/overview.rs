//! The overview's rows from the Prometheus API: the latest value of each series the
//! overview reads (within `LATEST_WINDOW`), the CPU counters' last two samples, each
//! host's `dcmon_host_up` and when it was last written, turned into rows by the
//! store's own `summarize` (the rows are computed one way).

use super::{Central, LATEST_WINDOW_MS, Labels, vector};
use crate::WebError;
use dcmon_probes::nvidia::issues;
use dcmon_store::overview::{CPU, HOST_UP, HostSummary, NAMES, Reading, summarize};
use std::collections::BTreeMap;

/// How far back the CPU counters are read: two samples at the slowest usual interval.
const CPU_WINDOW: &str = "5m";

/// A series' latest value and the one before (CPU counters only).
type Latest = BTreeMap<(String, Labels), (f64, Option<f64>)>;

/// Every host's row: the inventory's hosts and every host the backend has series of.
pub async fn hosts(central: &Central, now: i64) -> Result<Vec<HostSummary>, WebError> {
    let names: Vec<String> = NAMES
        .iter()
        .chain(issues::SERIES)
        .chain([&HOST_UP])
        .map(|n| n.to_string())
        .collect();
    // Each mode's rate between its last two samples: `summarize` wants the counters'
    // step (value - prev), and a host's modes share their times, so the rates'
    // shares are the steps' shares. The backend computes it (not every raw point
    // of five minutes sent and parsed).
    let cpu_query = format!("irate({CPU}[{CPU_WINDOW}])");
    // Written within the API's lookback (5 minutes): the host's poller is reporting.
    let seen_query = format!("timestamp({HOST_UP})");
    let (latest, cpu, seen) = tokio::join!(
        central.latest(&names, "", now),
        central.instant(&cpu_query, now),
        central.instant(&seen_query, now),
    );
    let latest = latest?;
    let cpu = vector(cpu?, &cpu_query)?;
    let seen = vector(seen?, &seen_query)?;

    let keeper = central.label_keeper();
    let mut by_host: BTreeMap<String, Latest> = BTreeMap::new();
    for (name, labels, value) in latest {
        let Some(host) = labels.get("host").cloned() else {
            continue;
        };
        // Replicas of one series: the first answer stands for both.
        by_host
            .entry(host)
            .or_default()
            .entry((name, keeper.own(labels)))
            .or_insert((value, None));
    }
    for (labels, _, rate) in cpu {
        let Some(host) = labels.get("host").cloned() else {
            continue;
        };
        if !rate.is_finite() {
            continue;
        }
        // Replicas of one mode: the first answer stands for both.
        by_host
            .entry(host)
            .or_default()
            .entry((CPU.to_string(), keeper.own(labels)))
            .or_insert((rate, Some(0.0)));
    }
    let mut last_seen: BTreeMap<String, i64> = BTreeMap::new();
    for (labels, _, seconds) in seen {
        if let Some(host) = labels.get("host")
            && seconds.is_finite()
        {
            let ms = (seconds * 1000.0).round() as i64;
            let slot = last_seen.entry(host.clone()).or_insert(ms);
            *slot = (*slot).max(ms);
        }
    }

    let mut rows: BTreeMap<String, HostSummary> = BTreeMap::new();
    for (host, series) in &by_host {
        let readings = series
            .iter()
            .map(|((name, labels), (value, prev))| Reading::of(name, labels, *value, *prev));
        let mut row = summarize(host, readings);
        let up = series
            .iter()
            .find(|((name, _), _)| name == HOST_UP)
            .map(|(_, (v, _))| *v > 0.0);
        let seen = last_seen.get(host).copied();
        (row.status, row.last_error) = match (up, seen) {
            (Some(true), Some(_)) => ("online".into(), None),
            (Some(false), Some(_)) => (
                "offline".into(),
                Some("unreachable at its last round (its poller's log says why)".into()),
            ),
            (Some(up), None) => (
                "unknown".into(),
                Some(format!(
                    "{} (the last one, within {} h, found it {})",
                    no_rounds(central),
                    LATEST_WINDOW_MS / 3_600_000,
                    if up { "online" } else { "offline" }
                )),
            ),
            (None, _) => ("unknown".into(), Some(no_rounds(central))),
        };
        if up == Some(true) {
            row.last_seen = seen;
        }
        rows.insert(host.clone(), row);
    }
    for listed in &central.fleet().listed {
        let row = rows
            .entry(listed.host.clone())
            .or_insert_with(|| HostSummary {
                host: listed.host.clone(),
                status: "unknown".into(),
                last_error: Some(no_rounds(central)),
                ..Default::default()
            });
        row.groups = listed.groups.clone();
        row.labels = listed.labels.clone();
    }
    Ok(rows.into_values().collect())
}

fn no_rounds(central: &Central) -> String {
    format!(
        "no round of this host reached {} in the last 5 minutes",
        central.backend()
    )
}
