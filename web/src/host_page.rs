//! `/hosts/{host}`: facts, current hardware readings and charts over a chosen range.

use crate::chart::{self, Line};
use crate::{AppState, WebError, params};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use dcmon_store::range::{Counting, Selector, SeriesPoints};
use dcmon_store::{SeriesFilter, SeriesLatest, Store, StoreError};
use std::collections::{BTreeMap, HashMap};

/// The ranges offered as links: (name, length in ms).
const RANGES: [(&str, i64); 5] = [
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
    ("30d", 2_592_000_000),
];

/// Everything the page shows, read in one visit to the store (or, for the central
/// view, in one round of queries to the Prometheus API).
pub(crate) struct PageData {
    pub facts: Vec<(String, String)>,
    pub readings: Vec<SeriesLatest>,
    /// NVLink and GPU-count readings, for the GPU health section only.
    pub gpu_set: Vec<SeriesLatest>,
    pub xids: Vec<dcmon_store::XidCount>,
    /// Whether the host's kernel log is stored at all (else "no Xid" means nothing).
    pub kernel_log: bool,
    /// Per-mode CPU seconds as rates.
    pub cpu: Vec<SeriesPoints>,
    pub charts: Vec<(&'static str, &'static str, Vec<Line>)>,
}

/// Hardware readings shown in the tables, by family.
pub(crate) const READING_FAMILIES: [&str; 4] = ["ipmi_*", "nvidia_gpu_*", "nvme_*", "smart_*"];

/// How a chart's series are turned into points.
#[derive(Clone, Copy)]
pub(crate) enum Shown {
    /// Average per step (gauges).
    Average,
    /// Per-second rate (counters).
    Rate,
}

/// (series, title, unit, how), charted in this order when the host has the series.
pub(crate) const CHARTS: [(&str, &str, &str, Shown); 11] = [
    (
        "node_memory_used_bytes",
        "Memory used",
        "bytes",
        Shown::Average,
    ),
    ("node_load1", "Load (1 min)", "", Shown::Average),
    (
        "node_network_receive_bytes_total",
        "Network received",
        "bytes/s",
        Shown::Rate,
    ),
    (
        "node_network_transmit_bytes_total",
        "Network sent",
        "bytes/s",
        Shown::Rate,
    ),
    (
        "node_disk_read_bytes_total",
        "Disk read",
        "bytes/s",
        Shown::Rate,
    ),
    (
        "node_disk_written_bytes_total",
        "Disk written",
        "bytes/s",
        Shown::Rate,
    ),
    (
        "nvidia_gpu_temperature_celsius",
        "GPU temperature",
        "°C",
        Shown::Average,
    ),
    (
        "nvidia_gpu_power_draw_watts",
        "GPU power",
        "W",
        Shown::Average,
    ),
    (
        "nvidia_gpu_utilization_percent",
        "GPU utilisation",
        "%",
        Shown::Average,
    ),
    (
        "ipmi_temperature_celsius",
        "BMC temperatures",
        "°C",
        Shown::Average,
    ),
    ("ipmi_fan_speed_rpm", "Fans", "rpm", Shown::Average),
];

/// At most this many lines a chart: more would be unreadable.
pub(crate) const MAX_LINES: usize = 8;

fn read(
    store: &Store,
    host: &str,
    (from, to, step): (i64, i64, i64),
    now: i64,
) -> Result<PageData, StoreError> {
    let selector = |name: &str| Selector {
        name: name.to_string(),
        host: Some(host.to_string()),
        labels: Default::default(),
    };
    let mut readings = Vec::new();
    for family in READING_FAMILIES {
        readings.extend(store.series_latest(&SeriesFilter {
            host: Some(host.to_string()),
            name: Some(family.to_string()),
        })?);
    }
    let mut gpu_set = Vec::new();
    for family in crate::gpu_health::FAMILIES {
        gpu_set.extend(store.series_latest(&SeriesFilter {
            host: Some(host.to_string()),
            name: Some(family.to_string()),
        })?);
    }
    let xids = store
        .xid_issues(
            Some(host),
            now.saturating_sub(crate::gpu_health::XID_WINDOW_MS),
            now,
        )?
        .remove(host)
        .unwrap_or_default();
    let kernel_log = store
        .log_sources(host)?
        .iter()
        .any(|s| s == "dmesg" || s == "journal");
    let window = rate_window(step);
    let cpu = store.counting(
        &selector("node_cpu_all_seconds_total"),
        Counting::Rate,
        from,
        to,
        step,
        window,
    )?;
    let mut charts = Vec::new();
    for (name, title, unit, shown) in CHARTS {
        let lines: Vec<Line> = match shown {
            Shown::Average => store
                .downsampled(&selector(name), from, to, step)?
                .into_iter()
                .take(MAX_LINES)
                .map(|s| Line {
                    label: line_label(&s.labels),
                    points: s.buckets.iter().map(|b| (b.ts, b.avg)).collect(),
                })
                .collect(),
            Shown::Rate => store
                .counting(&selector(name), Counting::Rate, from, to, step, window)?
                .into_iter()
                .take(MAX_LINES)
                .map(|s| Line {
                    label: line_label(&s.labels),
                    points: s.points,
                })
                .collect(),
        };
        if !lines.is_empty() {
            charts.push((title, unit, lines));
        }
    }
    Ok(PageData {
        facts: store.facts(host)?,
        readings,
        gpu_set,
        xids,
        kernel_log,
        cpu,
        charts,
    })
}

/// How far back a rate looks: two steps, and at least a minute (two 30 s rounds),
/// since a rate needs two samples.
pub(crate) fn rate_window(step: i64) -> i64 {
    step.saturating_mul(2).max(60_000)
}

/// CPU busy % per step from the per-mode rates: 1 - (idle + iowait) / all.
fn cpu_busy(rates: &[SeriesPoints]) -> Vec<(i64, f64)> {
    let mut steps: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for series in rates {
        let idle = matches!(
            series.labels.get("mode").map(String::as_str),
            Some("idle" | "iowait")
        );
        for &(t, v) in &series.points {
            let s = steps.entry(t).or_default();
            s.0 += v;
            if idle {
                s.1 += v;
            }
        }
    }
    steps
        .into_iter()
        .filter(|(_, (all, _))| *all > 0.0)
        .map(|(t, (all, idle))| (t, 100.0 * (all - idle) / all))
        .collect()
}

/// A chart line's name: the labels that tell series apart (`sensor=CPU1 Temp`).
pub(crate) fn line_label(labels: &BTreeMap<String, String>) -> String {
    ["sensor", "gpu", "device", "name"]
        .iter()
        .find_map(|k| labels.get(*k).cloned())
        .unwrap_or_else(|| labels.values().cloned().collect::<Vec<_>>().join(" "))
}

/// The time span shown: a preset (`?range=6h`) or custom (`?from=…&to=…`).
struct Span {
    from: i64,
    to: i64,
    /// The preset's name, or `custom`.
    name: String,
}

fn span(q: &HashMap<String, String>, now: i64) -> Result<Span, WebError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["range", "from", "to"].contains(&k.as_str()))
    {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{k}` (known: range, from, to)"
        )));
    }
    let from = q.get("from").filter(|v| !v.is_empty());
    let to = q.get("to").filter(|v| !v.is_empty());
    if from.is_some() || to.is_some() {
        let from = params::page_time("from", from.map(String::as_str), now - 3_600_000, now)?;
        let to = params::page_time("to", to.map(String::as_str), now, now)?;
        if from >= to {
            return Err(WebError::BadRequest("from must be before to".into()));
        }
        if to - from > MAX_SPAN_MS {
            return Err(WebError::BadRequest(
                "a custom range spans at most 400 days".into(),
            ));
        }
        return Ok(Span {
            from,
            to,
            name: "custom".into(),
        });
    }
    let range = q.get("range").map_or("1h", String::as_str);
    let length = RANGES
        .iter()
        .find(|(name, _)| *name == range)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "range `{range}` is not one of {} (or give from and to)",
                RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ))
        })?;
    Ok(Span {
        from: now - length,
        to: now,
        name: range.to_string(),
    })
}

/// About 300 points a chart; past 2 minutes a step is whole 10-minute buckets, so
/// ranges of a day and more are drawn from rollups, not from every sample.
fn chart_step(from: i64, to: i64) -> i64 {
    const BUCKET: i64 = 600_000;
    let step = (to.saturating_sub(from) / 300).max(1000);
    if step > 120_000 {
        (step.saturating_add(BUCKET - 1) / BUCKET).saturating_mul(BUCKET)
    } else {
        step
    }
}

/// Longest custom range: beyond retention there is nothing to show anyway.
const MAX_SPAN_MS: i64 = 400 * 86_400_000;

pub async fn page(
    State(state): State<AppState>,
    Path(host): Path<String>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>, WebError> {
    let caller = state.access.caller(&headers);
    let now = crate::view::now_ms();
    let Span {
        from,
        to,
        name: range,
    } = span(&q, now)?;
    let step = chart_step(from, to);
    let data = match &state.central {
        Some(central) => crate::central::host::read(central, &host, (from, to, step), now).await?,
        None => {
            let name = host.clone();
            if !state.query(move |s| s.knows_host(&name)).await? {
                return Err(WebError::NotFound(format!("no host `{host}` in the store")));
            }
            let name = host.clone();
            state
                .query(move |s| read(s, &name, (from, to, step), now))
                .await?
        }
    };
    let cpu = chart::render(
        "CPU busy",
        "%",
        &[Line {
            label: String::new(),
            points: cpu_busy(&data.cpu),
        }],
        from,
        to,
    );
    let mut charts = vec![("CPU busy", cpu)];
    for (title, unit, lines) in &data.charts {
        charts.push((title, chart::render(title, unit, lines, from, to)));
    }
    let t = &state.thresholds;
    let tables = crate::hardware::tables(&data.readings, t.gpu_temp, t.nvme_wear);
    let gpu_health = crate::gpu_health::section(
        data.readings.iter().chain(&data.gpu_set),
        &data.facts,
        &data.xids,
        data.kernel_log,
    );
    // The host's pending and firing alerts (the table holds a handful per host).
    let name = host.clone();
    let alerts: Vec<_> = state
        .query(|s| s.alerts())
        .await?
        .into_iter()
        .filter(|a| a.state != "resolved" && a.labels.get("host") == Some(&name))
        .map(|a| {
            minijinja::context! {
                name => a.rule,
                state => a.state,
                value => a.value.map(crate::view::number),
                since => crate::view::ago(Some(a.fired_at.unwrap_or(a.active_since)), now),
                summary => a.annotations.get("summary"),
            }
        })
        .collect();
    let context = minijinja::context! {
        title => host,
        host => host,
        range => range,
        ranges => RANGES.iter().map(|r| r.0).collect::<Vec<_>>(),
        from => params::datetime_local(from),
        to => params::datetime_local(to),
        facts => data.facts,
        tables => tables,
        gpu_health => gpu_health,
        alerts => alerts,
        // The central view keeps no facts, logs or actions: the host's pollers do.
        owners => state.central.as_ref().map(|c| c.owners(&host)),
        // Actions for admins with a session (they post the session's CSRF token).
        admin => state.central.is_none() && caller.is_admin() && caller.session.is_some(),
        csrf => caller.csrf,
        // Each chart is SVG built by chart::render, which escapes its own text.
        charts => charts.into_iter().map(|(title, svg)| minijinja::context! { title => title, svg => minijinja::Value::from_safe_string(svg) }).collect::<Vec<_>>(),
    };
    state.page("host.html", context).await
}
