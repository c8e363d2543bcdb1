//! (n) remote write, the poller's side: building and compressing requests (prost +
//! snappy) from outbox rows of the realistic mix, as a sender does, without the network
//! or the receiver. An upper bound on what one poller can send; the end-to-end figure
//! against a running VictoriaMetrics is still to be measured (issue 22).

use crate::mix::Host;
use dcmon_poller::remote_write::encode::Encoder;
use dcmon_store::outbox::{OutboxRow, SeriesName};
use std::time::Instant;

/// `hosts` realistic hosts, `rounds` rounds 30 s apart, sent in requests of at most
/// `per_request` samples (dcmon's default `max_samples_per_send` is 10,000).
pub fn encode_throughput(hosts: usize, rounds: usize, per_request: usize) {
    let mut sims: Vec<Host> = (0..hosts as u64).map(Host::new).collect();
    let mut encoder = Encoder::new(vec![("site".into(), "bench".into())]);
    let mut id = 0i64;
    let mut ids: Vec<Vec<i64>> = Vec::new();
    for (h, sim) in sims.iter().enumerate() {
        let mut mine = Vec::new();
        for i in 0..sim.series() {
            id += 1;
            let labels = [
                ("probe".to_string(), "os".to_string()),
                ("index".to_string(), i.to_string()),
            ]
            .into_iter()
            .collect();
            encoder.learn(
                id,
                &SeriesName {
                    name: format!("bench_series_{}", i % 40),
                    host: format!("gpu-node-{h:04}"),
                    labels,
                },
            );
            mine.push(id);
        }
        ids.push(mine);
    }
    // One outbox row a host round, as the writer queues them.
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let start_ms = 1_700_000_000_000i64;
    for r in 0..rounds {
        let ts = start_ms + r as i64 * 30_000;
        for (h, sim) in sims.iter_mut().enumerate() {
            sim.round(&mut values);
            rows.push(OutboxRow {
                id: rows.len() as i64 + 1,
                queued_ms: ts,
                entries: ids[h]
                    .iter()
                    .zip(&values)
                    .map(|(&s, &v)| (s, ts, v))
                    .collect(),
            });
        }
    }
    let total: usize = rows.iter().map(|r| r.entries.len()).sum();
    // Requests as the sender cuts them: whole rows up to `per_request` samples.
    let mut batches: Vec<&[OutboxRow]> = Vec::new();
    let (mut from, mut count) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        if count > 0 && count + row.entries.len() > per_request {
            batches.push(&rows[from..i]);
            (from, count) = (i, 0);
        }
        count += row.entries.len();
    }
    batches.push(&rows[from..]);
    let started = Instant::now();
    let (mut wire, mut raw, mut sent) = (0usize, 0usize, 0usize);
    for batch in &batches {
        let (body, skipped) = encoder.request(batch, &[], start_ms);
        assert_eq!(skipped, 0);
        wire += body.bytes.len();
        raw += body.raw_len;
        sent += body.samples;
    }
    let took = started.elapsed().as_secs_f64();
    assert_eq!(sent, total);
    println!(
        "\n(n) remote write encoding, {hosts} hosts x {rounds} rounds, {} requests of <= {per_request}: {:.0} samples/s on one core ({:.1} ms CPU per 100k samples; target 500,000/s end to end: {:.2}x), {:.2} bytes/sample on the wire ({:.2} before snappy)",
        batches.len(),
        sent as f64 / took,
        took * 1e3 * 100_000.0 / sent as f64,
        sent as f64 / took / 500_000.0,
        wire as f64 / sent as f64,
        raw as f64 / sent as f64,
    );
}
