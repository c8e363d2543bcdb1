//! Prometheus remote write 1.0 bodies: a `WriteRequest` protobuf (prost), snappy block
//! compressed. Each series' labels are encoded once and kept by series id (series never
//! change name or labels), so a batch costs its samples, not its label strings.

use dcmon_store::outbox::{OutboxRow, SeriesName, metric_labels};
use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint};
use std::collections::HashMap;

/// `prometheus.WriteRequest` (remote.proto): field 1, the series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (types.proto): labels sorted by name, samples by time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// ms since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Most series whose encoded labels are kept (a fleet has 100,000s; past this they are
/// encoded afresh each batch rather than grow memory without end).
const MAX_KEPT: usize = 4 << 20;

/// One series of the poller's own health, named and labelled as on `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnSeries {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A compressed request and what it holds.
#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub samples: usize,
    /// Raw protobuf size, before snappy.
    pub raw_len: usize,
}

pub struct Encoder {
    /// Added to every series that lacks them: external labels, then `replica`.
    extra: Vec<(String, String)>,
    /// Series id → its name's number (`names`) and its labels as encoded `TimeSeries`
    /// field 1 entries.
    labels: HashMap<i64, (u32, Vec<u8>)>,
    /// Each series name's number, in the order they were first learnt.
    names: HashMap<String, u32>,
}

impl Encoder {
    pub fn new(extra: Vec<(String, String)>) -> Encoder {
        Encoder {
            extra,
            labels: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Series of `rows` whose labels are not known yet.
    pub fn unknown(&self, rows: &[OutboxRow]) -> Vec<i64> {
        let mut ids: Vec<i64> = rows
            .iter()
            .flat_map(|r| r.entries.iter().map(|e| e.0))
            .filter(|id| !self.labels.contains_key(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Keeps the encoded labels of a series read from the store.
    pub fn learn(&mut self, id: i64, series: &SeriesName) {
        if self.labels.len() >= MAX_KEPT {
            self.labels.clear();
            self.names.clear();
        }
        let labels = metric_labels(&series.host, &series.labels);
        let encoded = self.encode_labels(&series.name, labels);
        let next = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let name = *self.names.entry(series.name.clone()).or_insert(next);
        self.labels.insert(id, (name, encoded));
    }

    /// The request for `rows` plus the poller's own series at `now_ms`. Samples of a
    /// series the store no longer names (none should be) are counted in `skipped`.
    pub fn request(&self, rows: &[OutboxRow], own: &[OwnSeries], now_ms: i64) -> (Body, usize) {
        // Each series once, with its name's number and encoded labels, and its points.
        let mut order: Vec<(u32, i64, &[u8])> = Vec::new();
        let mut points: HashMap<i64, Vec<(i64, f64)>> = HashMap::new();
        let mut skipped = 0;
        for &(id, ts, value) in rows.iter().flat_map(|r| r.entries.iter()) {
            let Some((name, labels)) = self.labels.get(&id) else {
                skipped += 1;
                continue;
            };
            points
                .entry(id)
                .or_insert_with(|| {
                    order.push((*name, id, labels));
                    Vec::new()
                })
                .push((ts, value));
        }
        // Series grouped by name, as a scrape of `/metrics` gives them (family by
        // family), then by id (a host's series were made together): neighbours share
        // their long name and differ in short labels, which snappy compresses far
        // better than a host's series side by side (bench parts (n) and (o): 17% fewer
        // bytes, near Prometheus's own remote write of the same series). Numbers, not
        // the labels, are sorted: cheap.
        order.sort_unstable_by_key(|s| (s.0, s.1));
        let mut raw = Vec::with_capacity(rows.iter().map(|r| r.entries.len()).sum::<usize>() * 24);
        let mut series = Vec::new();
        let mut samples = 0;
        for (_, id, labels) in order {
            let mut pts = points.remove(&id).unwrap_or_default();
            // Receivers want each series' samples in time order.
            pts.sort_by_key(|p| p.0);
            samples += pts.len();
            series.clear();
            series.extend_from_slice(labels);
            for (timestamp, value) in pts {
                put_sample(&mut series, value, timestamp);
            }
            put_series(&mut raw, &series);
        }
        for s in own {
            let labels = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            series.clear();
            series.extend_from_slice(&self.encode_labels(&s.name, labels));
            put_sample(&mut series, s.value, now_ms);
            put_series(&mut raw, &series);
            samples += 1;
        }
        let bytes = snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default(); // only fails past 4 GB, far beyond any batch
        (
            Body {
                raw_len: raw.len(),
                bytes,
                samples,
            },
            skipped,
        )
    }

    /// `__name__`, the given labels, then the extra ones the series lacks, sorted by
    /// name, empty values left out (Prometheus reads an empty label as absent).
    fn encode_labels<'a>(
        &self,
        name: &'a str,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<u8> {
        let mut all: Vec<(&str, &str)> =
            std::iter::once(("__name__", name)).chain(labels).collect();
        for (k, v) in &self.extra {
            if !all.iter().any(|(have, _)| have == k) {
                all.push((k, v));
            }
        }
        all.retain(|(_, v)| !v.is_empty());
        all.sort_by(|a, b| a.0.cmp(b.0));
        TimeSeries {
            labels: all
                .into_iter()
                .map(|(name, value)| Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            samples: Vec::new(),
        }
        .encode_to_vec()
    }
}

/// `TimeSeries` field 2: one sample.
fn put_sample(out: &mut Vec<u8>, value: f64, timestamp: i64) {
    let sample = Sample { value, timestamp };
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(sample.encoded_len() as u64, out);
    sample.encode_raw(out);
}

/// `WriteRequest` field 1: one encoded series.
fn put_series(out: &mut Vec<u8>, series: &[u8]) {
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(series.len() as u64, out);
    out.extend_from_slice(series);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn series(name: &str, host: &str, labels: &[(&str, &str)]) -> SeriesName {
        SeriesName {
            name: name.to_string(),
            host: host.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn decoded(body: &Body) -> WriteRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body.bytes)
            .unwrap();
        assert_eq!(raw.len(), body.raw_len);
        WriteRequest::decode(raw.as_slice()).unwrap()
    }

    fn labels(ts: &TimeSeries) -> Vec<(&str, &str)> {
        ts.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    /// The bytes written by hand decode as the protobuf messages: labels as `/metrics`
    /// has them plus external labels (never over the series' own), sorted; samples of
    /// one series together and in time order, across rows.
    #[test]
    fn a_request_decodes_to_the_series_and_samples_queued() {
        let mut enc = Encoder::new(vec![
            ("site".into(), "fra1".into()),
            ("cpu".into(), "never".into()),
            ("replica".into(), "2".into()),
        ]);
        let rows = vec![
            OutboxRow {
                id: 1,
                queued_ms: 0,
                entries: vec![(7, 2_000, 1.5), (9, 2_000, 10.0)],
            },
            OutboxRow {
                id: 2,
                queued_ms: 0,
                entries: vec![(7, 1_000, 0.5), (404, 1, 1.0), (7, 3_000, f64::NAN)],
            },
        ];
        assert_eq!(enc.unknown(&rows), vec![7, 9, 404]);
        enc.learn(
            7,
            &series(
                "node_cpu_busy_percent",
                "gpu01",
                &[("cpu", "0"), ("host", "inner")],
            ),
        );
        enc.learn(9, &series("dcmon_host_up", "gpu01", &[("empty", "")]));
        assert_eq!(enc.unknown(&rows), vec![404]);
        let own = [OwnSeries {
            name: "dcmon_remote_write_queue_samples".into(),
            labels: vec![("remote".into(), "vm".into())],
            value: 3.0,
        }];
        let (body, skipped) = enc.request(&rows, &own, 5_000);
        assert_eq!((body.samples, skipped), (5, 1));
        let req = decoded(&body);
        assert_eq!(req.timeseries.len(), 3);
        let cpu = &req.timeseries[0];
        assert_eq!(
            labels(cpu),
            [
                ("__name__", "node_cpu_busy_percent"),
                ("cpu", "0"),
                ("exported_host", "inner"),
                ("host", "gpu01"),
                ("replica", "2"),
                ("site", "fra1"),
            ]
        );
        let times: Vec<i64> = cpu.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [1_000, 2_000, 3_000]);
        assert!(cpu.samples[2].value.is_nan());
        assert_eq!(
            labels(&req.timeseries[1]),
            [
                ("__name__", "dcmon_host_up"),
                ("cpu", "never"),
                ("host", "gpu01"),
                ("replica", "2"),
                ("site", "fra1")
            ]
        );
        let own = &req.timeseries[2];
        assert_eq!(
            own.samples,
            [Sample {
                value: 3.0,
                timestamp: 5_000
            }]
        );
        assert_eq!(
            labels(own)[0],
            ("__name__", "dcmon_remote_write_queue_samples")
        );
    }

    #[test]
    fn an_empty_batch_is_an_empty_request() {
        let enc = Encoder::new(Vec::new());
        let (body, skipped) = enc.request(&[], &[], 0);
        assert_eq!((body.samples, skipped, body.raw_len), (0, 0, 0));
        assert_eq!(decoded(&body), WriteRequest::default());
    }
}
