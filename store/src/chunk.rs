//! A sealed chunk: one series' samples over a stretch of time, compressed with pco
//! (pcodec), the codec bench part (k) chose on the realistic mix: 1.9 bytes a sample at
//! 240-sample chunks (times and values), against 3.7 for Gorilla with millisecond times.
//! Lossless to the bit: NaN payloads, ±Inf, -0.0 and counters above 2^53 come back as
//! they went in.
//!
//! Layout (little endian): `b'C'`, format version `1`, the sample count (u32), the
//! length of the times block (u32), the times block (pco, i64 ms), the values block
//! (pco, f64). Values are compressed as their bit patterns' f64s, so nothing is
//! normalised on the way.
//!
//! Small chunks (the head's 10-minute windows, merged into pco chunks within the hour)
//! are version `2`, packed as the head's log is (`head.rs`): pco spends about 25 µs on
//! any chunk however small, 1.2 µs a sample at 20 samples; the packing 0.3 µs a chunk,
//! at about 12 bytes a sample.

use crate::StoreError;

/// The first two bytes of every pco chunk.
const MAGIC: [u8; 2] = [b'C', 1];
/// The first two bytes of every small (packed) chunk.
const SMALL: [u8; 2] = [b'C', 2];

/// Most samples one chunk may hold (a year at 1 s is 31.5 M): more is a corrupt count.
pub const MAX_SAMPLES: usize = 1 << 26;

/// A chunk's samples, decoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Samples {
    pub times: Vec<i64>,
    pub values: Vec<f64>,
}

fn corrupt(why: String) -> StoreError {
    StoreError::Refused(format!("corrupt chunk: {why}"))
}

/// Compresses `times` (ascending ms) and their `values` into one chunk.
pub fn encode(times: &[i64], values: &[f64]) -> Result<Vec<u8>, StoreError> {
    if times.len() != values.len() {
        return Err(StoreError::Refused(format!(
            "a chunk needs one value per time: {} times, {} values",
            times.len(),
            values.len()
        )));
    }
    if times.len() > MAX_SAMPLES {
        return Err(StoreError::Refused(format!(
            "{} samples is more than a chunk holds ({MAX_SAMPLES})",
            times.len()
        )));
    }
    let config = pco::ChunkConfig::default();
    let times_block = pco::standalone::simple_compress(times, &config)
        .map_err(|e| StoreError::Refused(format!("compress chunk times: {e}")))?;
    let values_block = pco::standalone::simple_compress(values, &config)
        .map_err(|e| StoreError::Refused(format!("compress chunk values: {e}")))?;
    let mut out = Vec::with_capacity(10 + times_block.len() + values_block.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(times.len() as u32).to_le_bytes());
    out.extend_from_slice(&(times_block.len() as u32).to_le_bytes());
    out.extend_from_slice(&times_block);
    out.extend_from_slice(&values_block);
    Ok(out)
}

/// Packs `times` and their `values` into one small chunk: cheap to write, merged later.
pub fn encode_small(times: &[i64], values: &[f64]) -> Result<Vec<u8>, StoreError> {
    if times.len() != values.len() {
        return Err(StoreError::Refused(format!(
            "a chunk needs one value per time: {} times, {} values",
            times.len(),
            values.len()
        )));
    }
    let entries: Vec<crate::head::Entry> =
        times.iter().zip(values).map(|(t, v)| (0, *t, *v)).collect();
    let packed = crate::head::encode(&entries);
    let mut out = Vec::with_capacity(packed.len());
    out.extend_from_slice(&SMALL);
    // The log's own two first bytes are left out.
    out.extend_from_slice(&packed[2..]);
    Ok(out)
}

/// The samples of a chunk; a clear error for bytes that are not one.
pub fn decode(data: &[u8]) -> Result<Samples, StoreError> {
    if let Some(packed) = data.strip_prefix(&SMALL) {
        let mut log = Vec::with_capacity(packed.len() + 2);
        log.extend_from_slice(&crate::head::MAGIC);
        log.extend_from_slice(packed);
        let entries =
            crate::head::decode(&log).map_err(|e| corrupt(format!("small chunk: {e}")))?;
        if entries.len() > MAX_SAMPLES {
            return Err(corrupt(format!("it holds {} samples", entries.len())));
        }
        return Ok(Samples {
            times: entries.iter().map(|e| e.1).collect(),
            values: entries.iter().map(|e| e.2).collect(),
        });
    }
    let header = data
        .get(..10)
        .ok_or_else(|| corrupt(format!("{} bytes is shorter than its header", data.len())))?;
    if header[..2] != MAGIC {
        return Err(corrupt(format!(
            "starts {:02x} {:02x}, not a version 1 chunk",
            header[0], header[1]
        )));
    }
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]) as usize
    };
    let count = word(2);
    let times_len = word(6);
    if count > MAX_SAMPLES {
        return Err(corrupt(format!("it claims {count} samples")));
    }
    let rest = &data[10..];
    if times_len > rest.len() {
        return Err(corrupt(format!(
            "its times block of {times_len} bytes runs past its end ({} bytes)",
            rest.len()
        )));
    }
    let (times_block, values_block) = rest.split_at(times_len);
    let times: Vec<i64> = pco::standalone::simple_decompress(times_block)
        .map_err(|e| corrupt(format!("times: {e}")))?;
    let values: Vec<f64> = pco::standalone::simple_decompress(values_block)
        .map_err(|e| corrupt(format!("values: {e}")))?;
    if times.len() != count || values.len() != count {
        return Err(corrupt(format!(
            "{} times and {} values where the header says {count}",
            times.len(),
            values.len()
        )));
    }
    Ok(Samples { times, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn values_come_back_to_the_bit() {
        let times: Vec<i64> = (0..300)
            .map(|i| 1_700_000_000_000 + i * 30_000 + i % 7)
            .collect();
        let mut values: Vec<f64> = (0..300).map(|i| 23.75 + (i % 5) as f64 * 0.25).collect();
        values[3] = f64::NAN;
        values[4] = f64::from_bits(0x7ff8_0000_0000_beef); // a NaN with a payload
        values[5] = f64::INFINITY;
        values[6] = f64::NEG_INFINITY;
        values[7] = -0.0;
        values[8] = 9_007_199_254_740_993.0_f64.next_up(); // above 2^53
        values[9] = f64::MAX;
        values[10] = f64::MIN_POSITIVE / 2.0; // subnormal
        let chunk = encode(&times, &values).unwrap();
        let back = decode(&chunk).unwrap();
        assert_eq!(back.times, times);
        assert_eq!(bits(&back.values), bits(&values));
        // Times at the i64 bounds and out of order are kept as given.
        let odd = [i64::MAX, i64::MIN, 0, -1];
        let back = decode(&encode(&odd, &[1.0; 4]).unwrap()).unwrap();
        assert_eq!(back.times, odd);
        assert_eq!(
            decode(&encode(&[], &[]).unwrap()).unwrap(),
            Samples::default()
        );
    }

    #[test]
    fn what_is_not_a_chunk_is_an_error_not_a_panic() {
        let chunk = encode(&[1, 2, 3], &[1.0, 2.0, 3.0]).unwrap();
        for (bytes, says) in [
            (&chunk[..5], "shorter than its header"),
            (&b"XY\0\0\0\0\0\0\0\0"[..], "not a version 1 chunk"),
        ] {
            let e = decode(bytes).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let mut lying = chunk.clone();
        lying[2] = 9; // nine samples claimed
        assert!(
            decode(&lying)
                .unwrap_err()
                .to_string()
                .contains("header says 9")
        );
        let mut long = chunk.clone();
        long[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            decode(&long)
                .unwrap_err()
                .to_string()
                .contains("runs past its end")
        );
        assert!(
            encode(&[1], &[])
                .unwrap_err()
                .to_string()
                .contains("one value per time")
        );
    }

    #[test]
    fn small_chunks_come_back_to_the_bit_and_damaged_ones_are_errors() {
        let times = [i64::MIN, -1, 0, 30_000, i64::MAX];
        let values = [
            f64::NAN,
            -0.0,
            f64::INFINITY,
            23.75,
            f64::from_bits(0x7ff8_0000_0000_beef),
        ];
        let chunk = encode_small(&times, &values).unwrap();
        let back = decode(&chunk).unwrap();
        assert_eq!(back.times, times);
        assert_eq!(bits(&back.values), bits(&values));
        let e = decode(&chunk[..chunk.len() - 1]).unwrap_err().to_string();
        assert!(
            e.contains("small chunk: sample 4: cut short in its value"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn any_small_chunk_round_trips(samples in prop::collection::vec((any::<i64>(), any::<u64>()), 0..100)) {
            let times: Vec<i64> = samples.iter().map(|s| s.0).collect();
            let values: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.1)).collect();
            let back = decode(&encode_small(&times, &values).unwrap()).unwrap();
            prop_assert_eq!(back.times, times);
            prop_assert_eq!(bits(&back.values), bits(&values));
        }

        #[test]
        fn any_samples_round_trip(samples in prop::collection::vec((any::<i64>(), any::<u64>()), 0..400)) {
            let times: Vec<i64> = samples.iter().map(|s| s.0).collect();
            let values: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.1)).collect();
            let back = decode(&encode(&times, &values).unwrap()).unwrap();
            prop_assert_eq!(back.times, times);
            prop_assert_eq!(bits(&back.values), bits(&values));
        }

        #[test]
        fn damaged_chunks_never_panic(cut in 0usize..2000, at in 0usize..2000, byte in any::<u8>()) {
            let times: Vec<i64> = (0..200).map(|i| 1_700_000_000_000 + i * 30_000).collect();
            let values: Vec<f64> = (0..200).map(|i| (i as f64).sin()).collect();
            let mut chunk = encode(&times, &values).unwrap();
            let at = at % chunk.len();
            chunk[at] = byte;
            chunk.truncate(cut.max(1));
            let _ = decode(&chunk);
        }
    }
}
