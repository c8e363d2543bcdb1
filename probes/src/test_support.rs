//! What the probe tests ask of a parsed output, in one place.

use crate::output::ProbeOutput;

/// The value of the first sample named `name` whose labels include every pair given.
pub fn value(out: &ProbeOutput, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| s.value)
}

pub fn fact<'a>(out: &'a ProbeOutput, key: &str) -> Option<&'a str> {
    out.facts
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.as_str())
}

/// No two samples share a name and labels (a store would keep only one of them).
pub fn assert_series_unique(out: &ProbeOutput) {
    let mut keys: Vec<String> = out
        .samples
        .iter()
        .map(|s| format!("{}{}", s.name, s.labels))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "two samples share a series");
}

/// A probe script run here with `sh`, with the environment given: its standard output.
pub fn run_script(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// `text` with its byte at `pos` (wrapped to the length) replaced by `byte` and then cut
/// to at most `keep` bytes (at least one): how the probe fuzzers damage a capture.
pub fn mutated(text: &str, pos: usize, byte: u8, keep: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    if !bytes.is_empty() {
        let at = pos % bytes.len();
        bytes[at] = byte;
        bytes.truncate(keep.max(1));
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
