//! `/hosts/{host}`: facts, current hardware readings and charts over a chosen range.

use crate::chart::{self, Line};
use crate::{AppState, WebError};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use dcmon_store::range::{Counting, Selector};
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

/// Everything the page shows, read in one visit to the store.
struct PageData {
    facts: Vec<(String, String)>,
    readings: Vec<SeriesLatest>,
    cpu: Vec<dcmon_store::range::SeriesPoints>,
    charts: Vec<(String, &'static str, Vec<dcmon_store::range::SeriesBuckets>)>,
}

/// (series, title, unit) charted as averages per step.
const CHARTS: [(&str, &str, &str); 5] = [
    ("node_memory_used_bytes", "Memory used", "bytes"),
    ("node_load1", "Load (1 min)", ""),
    ("nvidia_gpu_temperature_celsius", "GPU temperature", "°C"),
    ("ipmi_temperature_celsius", "BMC temperatures", "°C"),
    ("ipmi_fan_speed_rpm", "Fans", "rpm"),
];

fn read(store: &Store, host: &str, from: i64, to: i64, step: i64) -> Result<PageData, StoreError> {
    let selector = |name: &str| Selector {
        name: name.to_string(),
        host: Some(host.to_string()),
        labels: Default::default(),
    };
    let mut readings = Vec::new();
    for family in ["ipmi_*", "nvidia_gpu_*", "nvme_*", "smart_*"] {
        readings.extend(store.series_latest(&SeriesFilter {
            host: Some(host.to_string()),
            name: Some(family.to_string()),
        })?);
    }
    let cpu = store.counting(
        &selector("node_cpu_all_seconds_total"),
        Counting::Rate,
        from,
        to,
        step,
        (step * 2).max(60_000),
    )?;
    let mut charts = Vec::new();
    for (name, title, unit) in CHARTS {
        let buckets = store.downsampled(&selector(name), from, to, step)?;
        if !buckets.is_empty() {
            charts.push((title.to_string(), unit, buckets));
        }
    }
    Ok(PageData {
        facts: store.facts(host)?,
        readings,
        cpu,
        charts,
    })
}

/// CPU busy % per step from the per-mode rates: 1 - (idle + iowait) / all.
fn cpu_busy(rates: &[dcmon_store::range::SeriesPoints]) -> Vec<(i64, f64)> {
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
fn line_label(labels: &BTreeMap<String, String>) -> String {
    ["sensor", "gpu", "device", "name"]
        .iter()
        .find_map(|k| labels.get(*k).cloned())
        .unwrap_or_else(|| labels.values().cloned().collect::<Vec<_>>().join(" "))
}

pub async fn page(
    State(state): State<AppState>,
    Path(host): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>, WebError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "range") {
        return Err(WebError::BadRequest(format!(
            "unknown parameter `{k}` (known: range)"
        )));
    }
    let range = q.get("range").map_or("1h", String::as_str);
    let span = RANGES
        .iter()
        .find(|(name, _)| *name == range)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "range `{range}` is not one of {}",
                RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ))
        })?;
    let name = host.clone();
    if !state.query(move |s| s.knows_host(&name)).await? {
        return Err(WebError::NotFound(format!("no host `{host}` in the store")));
    }
    let to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let from = to - span;
    let step = (span / 300).max(1000);
    let name = host.clone();
    let data = state.query(move |s| read(s, &name, from, to, step)).await?;
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
    let mut charts = vec![("CPU busy".to_string(), cpu)];
    for (title, unit, series) in &data.charts {
        let lines: Vec<Line> = series
            .iter()
            .take(8)
            .map(|s| Line {
                label: line_label(&s.labels),
                points: s.buckets.iter().map(|b| (b.ts, b.avg)).collect(),
            })
            .collect();
        charts.push((title.clone(), chart::render(title, unit, &lines, from, to)));
    }
    let readings: Vec<_> = data
        .readings
        .iter()
        .map(|r| minijinja::context! { name => r.name, labels => line_label(&r.labels), value => chart::number(r.value, &r.unit) })
        .collect();
    let context = minijinja::context! {
        title => host,
        host => host,
        range => range,
        ranges => RANGES.iter().map(|r| r.0).collect::<Vec<_>>(),
        facts => data.facts,
        readings => readings,
        // Each chart is SVG built by chart::render, which escapes its own text.
        charts => charts.into_iter().map(|(title, svg)| minijinja::context! { title => title, svg => minijinja::Value::from_safe_string(svg) }).collect::<Vec<_>>(),
    };
    Ok(Html(state.render("host.html", context)?))
}
