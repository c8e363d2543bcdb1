//! The evaluator against a source in memory; conformance with a real Prometheus is
//! `tests/promql.rs`.

use super::*;

struct Memory(Vec<RawSeries>);

impl Source for Memory {
    fn series(
        &self,
        name: &str,
        host: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RawSeries>, String> {
        Ok(self
            .0
            .iter()
            .filter(|s| s.labels["__name__"] == name)
            .filter(|s| host.is_none_or(|h| s.labels["host"] == h))
            .map(|s| RawSeries {
                labels: s.labels.clone(),
                points: s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= from_ms && p.0 <= to_ms)
                    .collect(),
            })
            .collect())
    }
}

fn series(name: &str, labels: &[(&str, &str)], points: &[(i64, f64)]) -> RawSeries {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("__name__".into(), name.into());
    RawSeries {
        labels: l,
        points: points.to_vec(),
    }
}

fn fleet() -> Memory {
    let temps = |host: &str, gpu: &str, t: f64| {
        series(
            "nvidia_gpu_temperature_celsius",
            &[("host", host), ("gpu", gpu)],
            &[(100_000, t - 1.0), (160_000, t)],
        )
    };
    Memory(vec![
        temps("a", "0", 70.0),
        temps("a", "1", 95.0),
        temps("b", "0", 60.0),
        series("node_load1", &[("host", "a")], &[(150_000, 2.0)]),
        series("node_load1", &[("host", "b")], &[(-200_000, 9.0)]), // 370 s old at t: stale
        series(
            "node_cpu_seconds_total",
            &[("host", "a"), ("mode", "idle")],
            &(0..13)
                .map(|i| (i * 15_000, i as f64 * 15.0))
                .collect::<Vec<_>>(),
        ),
    ])
}

fn vector(text: &str) -> Vec<(Labels, f64)> {
    let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    match eval(&q, 170_000, &fleet()).unwrap() {
        Value::Vector(v) => {
            let mut v: Vec<(Labels, f64)> = v.into_iter().map(|s| (s.labels, s.value)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        Value::Scalar(s) => panic!("{text}: scalar {s}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_issue_example_fires_for_the_hot_gpu_only() {
    let hot = vector("max by (host, gpu) (nvidia_gpu_temperature_celsius) > 85");
    assert_eq!(hot, [(labels(&[("gpu", "1"), ("host", "a")]), 95.0)]);
}

#[test]
fn stale_series_drop_out_and_absent_says_so() {
    assert_eq!(
        vector("node_load1").len(),
        1,
        "b's sample is older than 5 minutes"
    );
    assert!(vector("absent(node_load1{host=\"a\"})").is_empty());
    assert_eq!(
        vector("absent(node_load1{host=\"zz\", job=~\"x\"})"),
        [(labels(&[("host", "zz")]), 1.0)]
    );
}

#[test]
fn rate_drops_the_name_and_comparisons_keep_it() {
    let rate = vector("rate(node_cpu_seconds_total[1m])");
    assert_eq!(rate.len(), 1);
    assert!(!rate[0].0.contains_key("__name__"));
    assert!((rate[0].1 - 1.0).abs() < 1e-9, "{rate:?}");
    let kept = vector("node_load1 > 1");
    assert_eq!(kept[0].0["__name__"], "node_load1");
    let bool_ = vector("node_load1 > bool 5");
    assert_eq!(bool_, [(labels(&[("host", "a")]), 0.0)]);
}

#[test]
fn one_to_one_matching_and_set_operators() {
    let per_host = vector(
        "max by (host) (nvidia_gpu_temperature_celsius) - on (host) max by (host) (nvidia_gpu_temperature_celsius)",
    );
    assert_eq!(per_host.len(), 2);
    assert!(per_host.iter().all(|(_, v)| *v == 0.0));
    let only_a = vector("nvidia_gpu_temperature_celsius and on (host) node_load1");
    assert_eq!(only_a.len(), 2);
    let unless = vector("nvidia_gpu_temperature_celsius unless on (host) node_load1");
    assert_eq!(unless.len(), 1);
    let or = vector("node_load1 or on (host) nvidia_gpu_temperature_celsius");
    assert_eq!(or.len(), 2, "a's load, then b's GPU: {or:?}");
}

#[test]
fn constructs_outside_the_subset_are_refused_with_the_reason() {
    for (text, why) in [
        ("topk(3, node_load1)", "aggregation `topk`"),
        ("rate(node_load1[5m:1m])", "subqueries"),
        (
            "histogram_quantile(0.9, x)",
            "function `histogram_quantile`",
        ),
        ("a * on (host) group_left (gpu) b", "group_left"),
        ("node_load1 @ 100", "the @ modifier"),
        ("{host=\"a\"}", "without a metric name"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(why), "{text}: {e}");
    }
    assert!(matches!(parse("rate(x[5m]"), Err(QueryError::Syntax(_))));
}

/// A query nested thousands deep would overflow the stack of whoever parses it (the
/// dashboard's worker thread): it is refused before parsing.
#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let n = 5000;
    for text in [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("1{}", "+1".repeat(n)),
        format!("{}1", "-".repeat(n)),
        format!("x{}", " or x".repeat(n)),
    ] {
        let t = text.clone();
        let refused = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(&t).unwrap_err().to_string())
            .unwrap()
            .join()
            .unwrap();
        assert!(refused.contains("operators and parentheses"), "{refused}");
    }
    // At the limit, parsing and evaluating fit in a worker thread's stack.
    let at_limit = format!("{}1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    let ok = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let q = parse(&at_limit).unwrap();
            eval(&q, 0, &Memory(vec![])).unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(ok, Value::Scalar(1.0));
    let chain = format!("node_load1{}", " + node_load1".repeat(MAX_NESTING - 1));
    assert!(parse(&chain).is_ok());
}
