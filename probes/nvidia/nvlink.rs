//! `nvidia-smi nvlink -s`: each GPU's NVLink links and their speed. A link that drops
//! reads `<inactive>` (up 0), it does not vanish; GPUs without NVLink say so in words
//! nvidia-smi prints (no sample, no warning).
//!
//! ```text
//! GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5a8f0d2e-...)
//! (tab) Link 0: 26.562 GB/s
//! (tab) Link 1: <inactive>
//! ```

use crate::output::{Labels, ProbeOutput};

/// Lines nvidia-smi prints for a GPU that has no NVLink to report.
const NO_LINKS: &[&str] = &[
    "NVML: Unable to retrieve Nvlink information as all links are inActive",
    "Device does not have or support Nvlink",
    "Nvlink queries are not supported for Devices in MIG mode",
];

/// Walks `nvidia-smi nvlink` output: each `Link N: REST` line under its `GPU ...` header
/// is handed to `each(gpu labels with link, REST, line number, line)`; blank lines and the
/// words of GPUs without NVLink are skipped; any other line is a warning of `section`.
fn links(
    text: &str,
    section: &str,
    out: &mut ProbeOutput,
    mut each: impl FnMut(Labels, &str, usize, &str, &mut ProbeOutput),
) {
    let mut gpu: Option<Labels> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || NO_LINKS.iter().any(|m| trimmed.starts_with(m)) {
            continue;
        }
        if let Some(labels) = gpu_header(trimmed) {
            gpu = Some(labels);
            continue;
        }
        let link = trimmed
            .strip_prefix("Link ")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()));
        match (gpu.as_ref(), link) {
            (Some(labels), Some((link, rest))) => {
                each(labels.clone().with("link", link), rest, n + 1, line, out)
            }
            _ => out.not_understood(section, n + 1, line),
        }
    }
}

pub fn status(text: &str, out: &mut ProbeOutput) {
    links(text, "nvlink", out, |labels, state, n, line, out| {
        let state = state.trim();
        if state == "<inactive>" {
            out.gauge("nvidia_nvlink_up", labels, 0.0, "");
            return;
        }
        match state
            .strip_suffix(" GB/s")
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            Some(gbps) => {
                out.gauge("nvidia_nvlink_up", labels.clone(), 1.0, "");
                out.gauge(
                    "nvidia_nvlink_speed_bytes_per_second",
                    labels,
                    gbps * 1e9,
                    "bytes",
                );
            }
            None => out.not_understood("nvlink", n, line),
        }
    });
}

/// `nvidia-smi nvlink -e`: each link's error counters since the driver loaded (or the
/// last `nvlink -re`), as `nvidia_nvlink_errors_total{counter}`:
///
/// ```text
/// GPU 2: Tesla V100-SXM2-32GB-LS (UUID: GPU-926a4a2e-...)
///          Link 0: Replay Errors: 2
///          Link 0: Recovery Errors: 0
///          Link 0: CRC Errors: 65535
/// ```
///
/// The counter is named from the words before `Errors` (`replay`, `recovery`, `crc`), so
/// the names later drivers print are kept too. `N/A` (a counter the GPU does not keep)
/// gives no sample. Volta's CRC counter stops at 65535: the README says so, since its rate
/// then reads 0 while the link still fails.
pub fn errors(text: &str, out: &mut ProbeOutput) {
    links(text, "nvlink_errors", out, |labels, rest, n, line, out| {
        // `Link 0: Replay Errors: 0`: the walker took `Link 0:`, here ` Replay Errors: 0`.
        let reading = rest
            .rsplit_once(':')
            .and_then(|(what, value)| Some((counter_name(what)?, value.trim())));
        let Some((counter, value)) = reading else {
            out.not_understood("nvlink_errors", n, line);
            return;
        };
        if value == "N/A" {
            return;
        }
        match value.parse::<u64>() {
            Ok(count) => out.counter(
                "nvidia_nvlink_errors_total",
                labels.with("counter", &counter),
                count as f64,
                "",
            ),
            Err(_) => out.not_understood("nvlink_errors", n, line),
        }
    });
}

/// `Replay Errors` → `replay`, `CRC Errors` → `crc`, `Data Rx Errors` → `data_rx`; `None`
/// for words that do not name an error counter.
fn counter_name(what: &str) -> Option<String> {
    let words = what.trim().strip_suffix(" Errors")?.trim();
    if words.is_empty() || words.len() > 40 {
        return None;
    }
    let name: String = words
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    Some(name)
}

/// `GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)` → gpu, name, uuid labels.
fn gpu_header(line: &str) -> Option<Labels> {
    let rest = line.strip_prefix("GPU ")?;
    let (index, rest) = rest.split_once(": ")?;
    if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (name, uuid) = match rest.rsplit_once(" (UUID: ") {
        Some((name, uuid)) => (name, uuid.trim_end_matches(')')),
        None => (rest, ""),
    };
    Some(Labels::new([
        ("gpu", index),
        ("name", name),
        ("uuid", uuid),
    ]))
}
