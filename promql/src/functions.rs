//! Range-vector functions with Prometheus's semantics (promql/functions.go), as pure
//! functions of one series' points inside the window. Each returns `None` where
//! Prometheus returns no sample.

/// (ms since the epoch, value), sorted by time.
pub type Point = (i64, f64);

/// `rate`, `increase` and `delta`: the change from first to last sample, counter resets
/// compensated for counters, extrapolated toward the window's edges (Prometheus's
/// extrapolatedRate). `start`/`end` are the window's edges in ms.
pub fn extrapolated(
    points: &[Point],
    start_ms: i64,
    end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut previous = 0.0;
        for p in points {
            if p.1 < previous {
                result += previous;
            }
            previous = p.1;
        }
    }
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    if sampled <= 0.0 {
        return None;
    }
    let mut to_start = (first.0 - start_ms) as f64 / 1000.0;
    let to_end = (end_ms - last.0) as f64 / 1000.0;
    let average_gap = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut span = sampled;
    span += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    span += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    let mut value = result * (span / sampled);
    if is_rate {
        value /= (end_ms - start_ms) as f64 / 1000.0;
    }
    Some(value)
}

/// `irate` (per second) and `idelta`: from the last two samples.
pub fn instant_change(points: &[Point], is_rate: bool) -> Option<f64> {
    let [.., previous, last] = points else {
        return None;
    };
    let mut change = last.1 - previous.1;
    if is_rate && last.1 < previous.1 {
        // A counter reset: the counter restarted from zero.
        change = last.1;
    }
    if !is_rate {
        return Some(change);
    }
    let seconds = (last.0 - previous.0) as f64 / 1000.0;
    (seconds > 0.0).then(|| change / seconds)
}

/// Least squares fit of the points, x in seconds from `at_ms`: (slope, intercept).
pub fn linear_regression(points: &[Point], at_ms: i64) -> (f64, f64) {
    let first = points[0].1;
    if points.iter().all(|p| p.1 == first) {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let n = points.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for p in points {
        let x = (p.0 - at_ms) as f64 / 1000.0;
        sx += x;
        sy += p.1;
        sxy += x * p.1;
        sx2 += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// `deriv`: the slope of the fit, per second.
pub fn deriv(points: &[Point]) -> Option<f64> {
    (points.len() >= 2).then(|| linear_regression(points, points[0].0).0)
}

/// `predict_linear(v[r], s)`: the fit's value `seconds` after `at_ms`.
pub fn predict_linear(points: &[Point], at_ms: i64, seconds: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(points, at_ms);
    Some(slope * seconds + intercept)
}

/// `changes`: how many times the value changed (NaN to NaN is no change).
pub fn changes(points: &[Point]) -> Option<f64> {
    let first = points.first()?;
    let mut count = 0.0;
    let mut previous = first.1;
    for p in &points[1..] {
        if p.1 != previous && !(p.1.is_nan() && previous.is_nan()) {
            count += 1.0;
        }
        previous = p.1;
    }
    Some(count)
}

/// `resets`: how many times a counter went down.
pub fn resets(points: &[Point]) -> Option<f64> {
    points.first()?;
    Some(points.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)
}

/// The `*_over_time` aggregations.
pub fn over_time(name: &str, points: &[Point]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let values = points.iter().map(|p| p.1);
    Some(match name {
        "avg_over_time" => mean(values),
        "min_over_time" => values.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
        "max_over_time" => values.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
        "sum_over_time" => values.sum(),
        "count_over_time" => points.len() as f64,
        "last_over_time" => points[points.len() - 1].1,
        "present_over_time" => 1.0,
        _ => return None,
    })
}

/// The mean as Prometheus computes it for large values: incrementally, once a plain sum
/// would overflow.
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut count, mut incremental, mut avg) = (0.0f64, 0.0f64, false, 0.0f64);
    for v in values {
        count += 1.0;
        if !incremental {
            let next = sum + v;
            if next.is_infinite() && !v.is_infinite() && !sum.is_infinite() {
                incremental = true;
                avg = sum / (count - 1.0);
            } else {
                sum = next;
                continue;
            }
        }
        if avg.is_infinite() && v.is_infinite() && avg.signum() == v.signum() {
            continue;
        }
        avg += v / count - avg / count;
    }
    if incremental { avg } else { sum / count }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_a_steady_counter_is_its_slope() {
        let points: Vec<Point> = (0..10)
            .map(|i| (1_000 + i * 15_000, 1000.0 + i as f64 * 30.0))
            .collect();
        let rate = extrapolated(&points, 0, 150_000, true, true).unwrap();
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        // From zero, the counter is not extrapolated to before it started.
        let from_zero: Vec<Point> = points.iter().map(|p| (p.0, p.1 - 1000.0)).collect();
        let rate = extrapolated(&from_zero, 0, 150_000, true, true).unwrap();
        assert!((rate - 298.0 / 150.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_reset_counts_what_the_counter_had() {
        let points = [(0, 10.0), (10_000, 20.0), (20_000, 5.0), (30_000, 15.0)];
        // 10 up, reset (20 lost and re-counted from 0 to 5), 10 up: 25 in 30 s.
        let raw = extrapolated(&points, 0, 30_000, true, false).unwrap();
        assert!((raw - 25.0).abs() < 1e-9, "{raw}");
        assert_eq!(instant_change(&points, true), Some(1.0));
        assert_eq!(resets(&points), Some(1.0));
    }

    #[test]
    fn one_sample_has_no_rate_and_a_line_predicts_itself() {
        assert_eq!(extrapolated(&[(0, 1.0)], 0, 60_000, true, true), None);
        let line: Vec<Point> = (0..5).map(|i| (i * 1000, 2.0 * i as f64)).collect();
        let at = 4_000;
        assert!((predict_linear(&line, at, 10.0).unwrap() - 28.0).abs() < 1e-9);
        assert!((deriv(&line).unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn changes_ignore_nan_to_nan() {
        let points = [(0, 1.0), (1, 1.0), (2, 2.0), (3, f64::NAN), (4, f64::NAN)];
        assert_eq!(changes(&points), Some(2.0));
    }
}
