//! The overview's rows from the Prometheus API: the latest value of each series the
//! overview reads, the CPU counters' last two samples, each host's `dcmon_host_up`,
//! turned into rows by the store's own `summarize` (the rows are computed one way).

use super::{Central, Labels, matrix, merge_replicas, vector};
use crate::WebError;
use dcmon_probes::nvidia::issues;
use dcmon_store::overview::{CPU, HostSummary, NAMES, Reading, summarize};
use std::collections::BTreeMap;

/// The poller's verdict on each host (1 online, 0 offline), written every round.
const HOST_UP: &str = "dcmon_host_up";

/// How far back the CPU counters are read: two samples at the slowest usual interval.
const CPU_WINDOW: &str = "5m";

/// A series' latest value and the one before (CPU counters only).
type Latest = BTreeMap<(String, Labels), (f64, Option<f64>)>;

/// Every host's row: the inventory's hosts and every host the backend has series of.
pub async fn hosts(central: &Central, now: i64) -> Result<Vec<HostSummary>, WebError> {
    let names: Vec<&str> = NAMES
        .iter()
        .chain(issues::SERIES)
        .chain([&HOST_UP])
        .copied()
        .collect();
    let latest_query = format!("{{__name__=~\"{}\"}}", names.join("|"));
    let cpu_query = format!("{CPU}[{CPU_WINDOW}]");
    let seen_query = format!("timestamp({HOST_UP})");
    let (latest, cpu, seen) = tokio::join!(
        central.instant(&latest_query, now),
        central.instant(&cpu_query, now),
        central.instant(&seen_query, now),
    );
    let latest = vector(latest?, &latest_query)?;
    let cpu = matrix(cpu?, &cpu_query)?;
    let seen = vector(seen?, &seen_query)?;

    let mut by_host: BTreeMap<String, Latest> = BTreeMap::new();
    for (labels, _, value) in latest {
        let (Some(host), Some(name)) = (labels.get("host"), labels.get("__name__")) else {
            continue;
        };
        let (host, name) = (host.clone(), name.clone());
        // Replicas of one series: the first answer stands for both.
        by_host
            .entry(host)
            .or_default()
            .entry((name, central.own_labels(labels)))
            .or_insert((value, None));
    }
    for (labels, points) in merge_replicas(cpu) {
        let Some(host) = labels.get("host").cloned() else {
            continue;
        };
        let mut last = points.into_values().rev();
        let Some(value) = last.next() else { continue };
        by_host.entry(host).or_default().insert(
            (CPU.to_string(), central.own_labels(labels)),
            (value, last.next()),
        );
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
        (row.status, row.last_error) = match up {
            Some(true) => ("online".into(), None),
            Some(false) => (
                "offline".into(),
                Some("unreachable at its last round (its poller's log says why)".into()),
            ),
            None => ("unknown".into(), Some(no_rounds(central))),
        };
        if up == Some(true) {
            row.last_seen = last_seen.get(host).copied();
        }
        rows.insert(host.clone(), row);
    }
    for listed in central.listed.iter() {
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
