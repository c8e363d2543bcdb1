//! The store against a model (issue 19's guard for any sample engine): random rounds,
//! written out of order, with duplicate timestamps and non-finite values, read back
//! through the store's own read paths must give exactly what a plain table keyed by
//! (series, time), last write winning, would hold. Raw ranges, the latest point in a
//! window, and buckets both from the samples (short steps) and from the rollups (long
//! steps) are compared.

use crate::range::Selector;
use crate::{HostRound, ProbeRun, Store};
use dcmon_probes::{Labels, ProbeOutput};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A multiple of the 10-minute rollup bucket: long steps read whole rollup rows, which
/// fall in the step their start is in, so the grid starts on a bucket boundary here.
const BASE: i64 = 1_699_999_800_000;
/// 47 s apart: forty slots span three 10-minute rollup buckets and a bit.
const SLOT_MS: i64 = 47_000;
const SLOTS: i64 = 40;

/// A value as probes may hand it over: plain, with decimals, large, above 2^53, or
/// not finite (never stored).
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i64..1000).prop_map(|v| v as f64),
        (-100_000i64..100_000).prop_map(|v| v as f64 / 100.0),
        Just(1.0e12),
        Just(9_007_199_254_740_993.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

/// (host, slot, samples of (series, value)).
type Round = (usize, i64, Vec<(usize, f64)>);

fn rounds() -> impl Strategy<Value = Vec<Round>> {
    prop::collection::vec(
        (
            0usize..2,
            0..SLOTS,
            prop::collection::vec((0usize..3, value()), 0..4),
        ),
        1..40,
    )
}

fn round(host: usize, ts: i64, samples: &[(usize, f64)]) -> HostRound {
    let mut out = ProbeOutput::default();
    for (series, v) in samples {
        out.gauge("m", Labels::new([("s", series.to_string())]), *v, "");
    }
    HostRound::new(format!("h{host}"), vec![ProbeRun::ok("os", ts, out)])
}

/// (host, series label) → time → value: a plain table, last write winning.
type Model = BTreeMap<(String, String), BTreeMap<i64, f64>>;

fn bits(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
    points.iter().map(|(t, v)| (*t, v.to_bits())).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn reads_give_what_a_plain_table_holds(rounds in rounds(), window in (0..SLOTS, 0..SLOTS)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("m.db")).unwrap();
        let mut model = Model::new();
        for (host, slot, samples) in &rounds {
            let ts = BASE + slot * SLOT_MS;
            store.write_round(&round(*host, ts, samples)).unwrap();
            for (series, v) in samples {
                if v.is_finite() {
                    model
                        .entry((format!("h{host}"), series.to_string()))
                        .or_default()
                        .insert(ts, *v);
                }
            }
        }
        let end = BASE + SLOTS * SLOT_MS;
        // Every point of every series, to the bit.
        let mut stored = Model::new();
        for s in store.range_by_name("m", None, i64::MIN, i64::MAX).unwrap() {
            let key = (s.host.clone(), s.labels["s"].clone());
            let points = stored.entry(key).or_default();
            for (t, v) in s.points {
                prop_assert!(points.insert(t, v).is_none(), "one point per time");
            }
        }
        stored.retain(|_, p| !p.is_empty());
        prop_assert_eq!(stored.len(), model.len());
        // Another process reads the same from the file alone (the head from its log).
        let other = Store::open(&dir.path().join("m.db")).unwrap().with_own_head();
        prop_assert_eq!(
            other.range_by_name("m", None, i64::MIN, i64::MAX).unwrap(),
            store.range_by_name("m", None, i64::MIN, i64::MAX).unwrap()
        );
        for (key, points) in &model {
            let got: Vec<(i64, f64)> = stored[key].iter().map(|(t, v)| (*t, *v)).collect();
            let want: Vec<(i64, f64)> = points.iter().map(|(t, v)| (*t, *v)).collect();
            prop_assert_eq!(bits(&got), bits(&want), "{:?}", key);
        }
        // The latest point in a window.
        let (a, b) = (window.0.min(window.1), window.0.max(window.1));
        let (from, to) = (BASE + a * SLOT_MS, BASE + b * SLOT_MS);
        for s in store.latest_by_name("m", None, from, to).unwrap() {
            let key = (s.host.clone(), s.labels["s"].clone());
            let want = model[&key].range(from..=to).next_back().map(|(t, v)| (*t, v.to_bits()));
            let got = s.points.last().map(|(t, v)| (*t, v.to_bits()));
            prop_assert_eq!(got, want, "{:?}", key);
        }
        // Buckets: one minute (from the samples) and ten (from the rollups).
        for step in [60_000, 600_000] {
            for ((host, series), points) in &model {
                let sel = Selector {
                    name: "m".into(),
                    host: Some(host.clone()),
                    labels: [("s".to_string(), series.clone())].into(),
                };
                let got = store.downsampled(&sel, BASE, end, step).unwrap();
                prop_assert_eq!(got.len(), 1);
                let mut want: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (t, v) in points {
                    want.entry(BASE + (t - BASE) / step * step).or_default().push(*v);
                }
                let got = &got[0].buckets;
                prop_assert_eq!(got.len(), want.len(), "step {} {:?} {:?}", step, got, want);
                for (b, (ts, values)) in got.iter().zip(&want) {
                    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let avg = values.iter().sum::<f64>() / values.len() as f64;
                    prop_assert_eq!((b.ts, b.count), (*ts, values.len() as i64), "step {}", step);
                    prop_assert!(b.min == min && b.max == max, "step {} {:?} {:?}", step, b, values);
                    prop_assert!(close(b.avg, avg), "step {} {:?} {:?}", step, b, values);
                }
            }
        }
    }
}
