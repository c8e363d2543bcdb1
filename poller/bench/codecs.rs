//! (k) Sample codecs on the realistic mix (issue 19): bytes per sample, and encode and
//! decode time per sample on one thread, for sealed chunks of one series, of
//! - `pco` (pcodec) as the store seals a chunk (`dcmon_store::chunk`): timestamps (i64)
//!   and values (f64) each in their own pco block;
//! - `pco`, values only: a host's series all carry their run's time, so one timestamp
//!   column per host and chunk serves its ~150 series (its cost shared among them);
//! - Gorilla (`tsz`, Facebook's paper: delta-of-delta times, XOR floats) with times in
//!   milliseconds, as dcmon keeps them.
//!
//! Today's engine (one SQLite row per sample) is part (c), for comparison.
//!
//! Times: one round every 30 s, each starting 0–20 ms late (a run's start), as the
//! scheduler gives them. Values: `mix::Host`.

use crate::mix::{Host, Rng};
use std::time::{Duration, Instant};

struct Tally {
    name: &'static str,
    bytes: usize,
    samples: usize,
    encode: Duration,
    decode: Duration,
}

impl Tally {
    fn new(name: &'static str) -> Tally {
        Tally {
            name,
            bytes: 0,
            samples: 0,
            encode: Duration::ZERO,
            decode: Duration::ZERO,
        }
    }

    fn show(&self) {
        let per = |d: Duration| d.as_nanos() as f64 / self.samples.max(1) as f64;
        println!(
            "  {:<32} {:>6.3} bytes/sample  encode {:>6.1} ns/sample  decode {:>6.1} ns/sample",
            self.name,
            self.bytes as f64 / self.samples.max(1) as f64,
            per(self.encode),
            per(self.decode),
        );
    }
}

fn pco_i64(values: &[i64]) -> Vec<u8> {
    pco::standalone::simple_compress(values, &pco::ChunkConfig::default())
        .expect("pco compresses i64")
}

fn pco_f64(values: &[f64]) -> Vec<u8> {
    pco::standalone::simple_compress(values, &pco::ChunkConfig::default())
        .expect("pco compresses f64")
}

fn gorilla(times: &[i64], values: &[f64]) -> Box<[u8]> {
    use tsz::{DataPoint, Encode, StdEncoder, stream::BufferedWriter};
    let mut encoder = StdEncoder::new(times[0] as u64, BufferedWriter::new());
    for (t, v) in times.iter().zip(values) {
        encoder.encode(DataPoint::new(*t as u64, *v));
    }
    encoder.close()
}

fn gorilla_decode(bytes: Box<[u8]>, expect: usize) -> usize {
    use tsz::{Decode, StdDecoder, decode::Error, stream::BufferedReader};
    let mut decoder = StdDecoder::new(BufferedReader::new(bytes));
    let mut n = 0;
    loop {
        match decoder.next() {
            Ok(_) => n += 1,
            Err(Error::EndOfStream) => break,
            Err(e) => panic!("gorilla decode: {e:?}"),
        }
    }
    assert_eq!(n, expect);
    n
}

pub fn codecs(hosts: usize, days: usize, chunk: usize) {
    let rounds = days * 2880;
    let mut pco_both = Tally::new("store chunk (pco times+values)");
    let mut pco_values = Tally::new("pco (values; shared times)");
    let mut tsz = Tally::new("gorilla/tsz (ms times)");
    let mut row = Vec::new();
    for h in 0..hosts {
        let mut host = Host::new(h as u64 + 1);
        let n = host.series();
        let mut rng = Rng::new(1000 + h as u64);
        let mut times = Vec::with_capacity(rounds);
        let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
        for r in 0..rounds {
            let late = (rng.next_u64() % 21) as i64;
            times.push(1_700_000_000_000 + r as i64 * 30_000 + late);
            host.round(&mut row);
            for (s, v) in row.iter().enumerate() {
                values[s].push(*v);
            }
        }
        for start in (0..rounds).step_by(chunk) {
            let end = (start + chunk).min(rounds);
            let t = &times[start..end];
            // The host's one time column for this chunk.
            let began = Instant::now();
            let shared = pco_i64(t);
            let shared_encode = began.elapsed();
            let began = Instant::now();
            let back: Vec<i64> = pco::standalone::simple_decompress(&shared).unwrap();
            let shared_decode = began.elapsed();
            assert_eq!(back, t);
            pco_values.bytes += shared.len();
            pco_values.encode += shared_encode;
            pco_values.decode += shared_decode;
            for series in &values {
                let v = &series[start..end];
                let samples = v.len();

                // The store's own chunk (dcmon_store::chunk: pco times and values).
                let began = Instant::now();
                let sealed = dcmon_store::chunk::encode(t, v).unwrap();
                pco_both.encode += began.elapsed();
                let began = Instant::now();
                let back = dcmon_store::chunk::decode(&sealed).unwrap();
                pco_both.decode += began.elapsed();
                assert!(
                    back.times == t
                        && back
                            .values
                            .iter()
                            .zip(v)
                            .all(|(a, b)| a.to_bits() == b.to_bits())
                );
                pco_both.bytes += sealed.len();
                pco_both.samples += samples;

                // Values only: the value bytes, times counted once per host above.
                let cv = pco_f64(v);
                pco_values.bytes += cv.len();
                pco_values.samples += samples;
                let began = Instant::now();
                let _ = pco_f64(v);
                pco_values.encode += began.elapsed();
                let began = Instant::now();
                let _: Vec<f64> = pco::standalone::simple_decompress(&cv).unwrap();
                pco_values.decode += began.elapsed();

                let began = Instant::now();
                let g = gorilla(t, v);
                tsz.encode += began.elapsed();
                tsz.bytes += g.len();
                tsz.samples += samples;
                let began = Instant::now();
                gorilla_decode(g, samples);
                tsz.decode += began.elapsed();
            }
        }
    }
    println!(
        "\n(k) codecs on the realistic mix: {hosts} hosts x 150 series x {days} days at 30 s, chunks of {chunk} samples ({} h)",
        chunk as f64 * 30.0 / 3600.0
    );
    for t in [&pco_both, &pco_values, &tsz] {
        t.show();
    }
}
