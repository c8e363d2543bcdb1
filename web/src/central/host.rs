//! A host page's data from the Prometheus API: the hardware readings as instant
//! queries, every chart as a range query (`avg_over_time` for gauges, `rate` for
//! counters), all sent at once. Facts, Xids and logs stay with the host's poller.

use super::{Central, LATEST_WINDOW_MS, Labels, matrix, merge_replicas, quoted};
use crate::WebError;
use crate::chart::Line;
use crate::host_page::{CHARTS, MAX_LINES, PageData, READING_FAMILIES, Shown, line_label};
use dcmon_store::SeriesLatest;
use dcmon_store::range::SeriesPoints;
use futures_util::future::try_join_all;
use std::collections::{BTreeMap, BTreeSet};

/// `["ipmi_*", …]` as one PromQL name regex (`ipmi_.*|…`).
fn name_regex(families: &[&str]) -> String {
    families
        .iter()
        .map(|f| f.replace('*', ".*"))
        .collect::<Vec<_>>()
        .join("|")
}

/// Durations as PromQL wants them: whole seconds, at least one.
fn duration(ms: i64) -> String {
    format!("{}s", (ms.saturating_add(999) / 1000).max(1))
}

pub(crate) async fn read(
    central: &Central,
    host: &str,
    (from, to, step): (i64, i64, i64),
    now: i64,
) -> Result<PageData, WebError> {
    let selector = |name: &str| format!("{name}{{host={}}}", quoted(host));
    let readings_query = format!(
        "{{__name__=~{},host={}}}",
        quoted(&name_regex(&READING_FAMILIES)),
        quoted(host)
    );
    let gpu_set_query = format!(
        "{{__name__=~{},host={}}}",
        quoted(&name_regex(&crate::gpu_health::FAMILIES)),
        quoted(host)
    );
    let window = duration(crate::host_page::rate_window(step));
    // A gauge's average over each step, and never over less than a minute: a step
    // shorter than the poll interval would leave holes.
    let average = duration(step.max(60_000));
    let mut charts = vec![format!(
        "rate({}[{window}])",
        selector(dcmon_store::overview::CPU)
    )];
    for (name, _, _, shown) in CHARTS {
        charts.push(match shown {
            Shown::Average => format!("avg_over_time({}[{average}])", selector(name)),
            Shown::Rate => format!("rate({}[{window}])", selector(name)),
        });
    }
    let ranges = try_join_all(charts.iter().map(|q| central.range(q, from, to, step)));
    let (readings, gpu_set, ranges) = tokio::try_join!(
        latest_of(central, host, &readings_query, now),
        latest_of(central, host, &gpu_set_query, now),
        ranges
    )?;
    let keeper = central.label_keeper();
    let mut lines = Vec::new();
    for (answer, query) in ranges.into_iter().zip(&charts) {
        let series: Vec<SeriesPoints> = merge_replicas(matrix(answer, query)?)
            .into_iter()
            .map(|(labels, points)| SeriesPoints {
                host: host.to_string(),
                name: String::new(),
                labels: keeper.own(labels),
                points: points.into_iter().filter(|(_, v)| v.is_finite()).collect(),
            })
            .collect();
        lines.push(series);
    }
    if readings.is_empty()
        && gpu_set.is_empty()
        && lines.iter().all(Vec::is_empty)
        && !central.is_listed(host)
    {
        return Err(WebError::NotFound(format!(
            "no host `{host}` in the inventory or in {}",
            central.backend()
        )));
    }
    let mut lines = lines.into_iter();
    let cpu = lines.next().unwrap_or_default();
    let charts = CHARTS
        .iter()
        .zip(lines)
        .filter(|(_, series)| !series.is_empty())
        .map(|((_, title, unit, _), series)| {
            let drawn = series
                .into_iter()
                .take(MAX_LINES)
                .map(|s| Line {
                    label: line_label(&s.labels),
                    points: s.points,
                })
                .collect();
            (*title, *unit, drawn)
        })
        .collect();
    Ok(PageData {
        facts: Vec::new(),
        readings,
        gpu_set,
        xids: Vec::new(),
        kernel_log: false,
        cpu,
        charts,
    })
}

/// The latest readings of `host`'s series that `selector` matches, as the store's
/// (one per series, replicas merged; kind and unit are not sent by remote write, so
/// left empty): their names from `/api/v1/series`, then their values.
async fn latest_of(
    central: &Central,
    host: &str,
    selector: &str,
    now: i64,
) -> Result<Vec<SeriesLatest>, WebError> {
    let names: BTreeSet<String> = central
        .series(selector, now.saturating_sub(LATEST_WINDOW_MS), now)
        .await?
        .into_iter()
        .filter_map(|mut labels| labels.remove("__name__"))
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    let answer = central
        .latest(&names, &format!("host={}", quoted(host)), now)
        .await?;
    let keeper = central.label_keeper();
    let mut one: BTreeMap<(String, Labels), (i64, f64)> = BTreeMap::new();
    for (name, labels, value) in answer {
        one.entry((name, keeper.own(labels)))
            .or_insert((now, value));
    }
    Ok(one
        .into_iter()
        .map(|((name, labels), (ts, value))| SeriesLatest {
            host: host.to_string(),
            name,
            labels,
            kind: String::new(),
            unit: String::new(),
            value,
            ts,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn families_and_durations_read_as_promql() {
        assert_eq!(
            super::name_regex(&["ipmi_*", "docker_container_running"]),
            "ipmi_.*|docker_container_running"
        );
        assert_eq!(super::duration(60_000), "60s");
        assert_eq!(super::duration(1), "1s");
        assert_eq!(super::duration(0), "1s");
        assert_eq!(super::duration(i64::MAX), format!("{}s", i64::MAX / 1000));
    }
}
