//! `rate` and `increase` for charts, with Prometheus semantics: the window's points
//! handed to PromQL's extrapolatedRate (`dcmon_promql::functions::extrapolated`), so
//! a chart and an alert rule compute them the same way.
//!
//! Pure functions over (ms, value) points, so they are tested without a database.

/// A sample: milliseconds since the epoch and the value.
pub type Point = (i64, f64);

/// The increase of a counter over the window `(end - window, end]`, extrapolated like
/// Prometheus's `increase()` (one implementation: PromQL's). `points` must be sorted.
pub fn increase(points: &[Point], end_ms: i64, window_ms: i64) -> Option<f64> {
    let start_ms = end_ms - window_ms;
    let inside = window(points, start_ms, end_ms);
    dcmon_promql::functions::extrapolated(inside, start_ms, end_ms, true, false)
}

/// Per-second rate over the window, like Prometheus's `rate()`.
pub fn rate(points: &[Point], end_ms: i64, window_ms: i64) -> Option<f64> {
    increase(points, end_ms, window_ms).map(|inc| inc / (window_ms as f64 / 1000.0))
}

/// The points with `start < t <= end` (Prometheus's left-open range).
fn window(points: &[Point], start_ms: i64, end_ms: i64) -> &[Point] {
    let from = points.partition_point(|p| p.0 <= start_ms);
    let to = points.partition_point(|p| p.0 <= end_ms);
    &points[from..to.max(from)]
}

/// `rate` at every step from `from` to `to` (inclusive): a chart's points.
pub fn rate_steps(
    points: &[Point],
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    window_ms: i64,
) -> Vec<Point> {
    steps(from_ms, to_ms, step_ms)
        .filter_map(|t| rate(points, t, window_ms).map(|v| (t, v)))
        .collect()
}

/// `increase` at every step.
pub fn increase_steps(
    points: &[Point],
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    window_ms: i64,
) -> Vec<Point> {
    steps(from_ms, to_ms, step_ms)
        .filter_map(|t| increase(points, t, window_ms).map(|v| (t, v)))
        .collect()
}

/// The grid `from, from + step, …` up to `to`, never past `MAX_POINTS` + 1 steps and
/// never wrapping: callers check the grid first, this is the last line of defence.
fn steps(from_ms: i64, to_ms: i64, step_ms: i64) -> impl Iterator<Item = i64> {
    let step = step_ms.max(1);
    (0..=crate::range::MAX_POINTS)
        .map_while(move |i| i.checked_mul(step).and_then(|d| from_ms.checked_add(d)))
        .take_while(move |t| *t <= to_ms)
}

/// Sums several series on a common step grid (what `sum(rate(...))` does after rating
/// each series): a step present in any series is in the sum.
pub fn sum(series: &[Vec<Point>]) -> Vec<Point> {
    let mut totals: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for points in series {
        for (t, v) in points {
            *totals.entry(*t).or_default() += v;
        }
    }
    totals.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Samples every 15 s, +10 each: 0.6667/s. The window (60 s) holds 4 samples
    /// spanning 45 s; Prometheus extrapolates to the full window.
    #[test]
    fn steady_counter() {
        let points: Vec<Point> = (0..=8).map(|i| (i * 15_000, (i * 10) as f64)).collect();
        let r = rate(&points, 120_000, 60_000).unwrap();
        assert!(close(r, 10.0 / 15.0), "{r}");
        assert!(close(increase(&points, 120_000, 60_000).unwrap(), 40.0));
    }

    #[test]
    fn resets_are_compensated() {
        // 100, 110, 120, reset to 5, 15: real increase 20 + 15 = 35 over 60 s of samples.
        let points = vec![
            (0, 100.0),
            (15_000, 110.0),
            (30_000, 120.0),
            (45_000, 5.0),
            (60_000, 15.0),
        ];
        let inc = increase(&points, 60_000, 60_001).unwrap();
        // Raw 35 over the sampled 60 s, extrapolated to the start by to_zero-limited
        // distance: the first sample sits 1 ms after the window start.
        assert!(inc > 35.0 && inc < 35.001, "{inc}");
        let no_reset: Vec<Point> = vec![
            (0, 100.0),
            (15_000, 110.0),
            (30_000, 120.0),
            (45_000, 125.0),
            (60_000, 135.0),
        ];
        assert!(close(
            increase(&no_reset, 60_000, 60_001).unwrap(),
            increase(&points, 60_000, 60_001).unwrap()
        ));
    }

    /// Counters far above 2^53 (a 100 Gbit NIC's byte counter after years, or a
    /// counter that starts high): float64 like Prometheus, increments well above one
    /// ulp stay exact enough, and a reset at that magnitude is still seen.
    #[test]
    fn counters_above_2_pow_53() {
        let base = 2f64.powi(60);
        let points: Vec<Point> = (0..=4)
            .map(|i| (i * 10_000, base + (i as f64) * 1e9))
            .collect();
        let r = rate(&points, 40_000, 40_001).unwrap();
        assert!((r - 1e8).abs() / 1e8 < 1e-6, "{r}");
        // The counter wraps to a small value: the pre-reset value is added back.
        let mut wrapped = points.clone();
        wrapped.push((50_000, 1e9));
        let inc = increase(&wrapped, 50_000, 50_001).unwrap();
        // 4e9 before the wrap, 1e9 after; extrapolated by the 1 ms to the window start.
        assert!(close(inc, 5e9 * 50.001 / 50.0), "{inc}");
    }

    #[test]
    fn too_few_samples_give_nothing() {
        assert_eq!(rate(&[], 1000, 1000), None);
        assert_eq!(rate(&[(500, 1.0)], 1000, 1000), None);
        assert_eq!(
            rate(&[(500, 1.0), (500, 2.0)], 1000, 1000),
            None,
            "no time between samples"
        );
        // The window is left-open: a sample exactly at its start is outside.
        assert_eq!(rate(&[(0, 1.0), (1000, 2.0)], 1000, 1000), None);
    }

    #[test]
    fn never_extrapolates_below_zero() {
        // Starts at 1 just after the window opens: extrapolating a whole gap back would
        // claim the counter was below zero; it stops at zero.
        let points = vec![(59_000, 1.0), (60_000, 2.0), (61_000, 3.0)];
        let inc = increase(&points, 61_000, 60_000).unwrap();
        assert!(close(inc, 3.0), "{inc}");
    }

    #[test]
    fn steps_and_sum() {
        let a: Vec<Point> = (0..=20).map(|i| (i * 1000, (i * 2) as f64)).collect();
        let b: Vec<Point> = (0..=20).map(|i| (i * 1000, (i * 3) as f64)).collect();
        let ra = rate_steps(&a, 5000, 20_000, 5000, 5000);
        let rb = rate_steps(&b, 5000, 20_000, 5000, 5000);
        assert_eq!(ra.len(), 4);
        let total = sum(&[ra, rb]);
        assert_eq!(
            total.iter().map(|p| p.0).collect::<Vec<_>>(),
            [5000, 10_000, 15_000, 20_000]
        );
        assert!(total.iter().all(|p| close(p.1, 5.0)), "{total:?}");
    }
}
