//! Each probe run as series of its host (issue 19): how long it took, how many samples it
//! gave and whether it succeeded, under `{probe}`. They go through the one sample path,
//! so a day of runs costs what its samples cost in chunks (about 2 bytes each) instead
//! of an 87-byte `probe_runs` row per run; the writer keeps full rows only for what
//! series cannot say (failures, warnings, status changes: `write.rs`).

use crate::{ProbeRun, RunStatus};
use dcmon_probes::{Kind, Labels, Sample};

/// The run's wall time, seconds.
pub const DURATION: &str = "dcmon_probe_duration_seconds";
/// How many samples the run gave.
pub const SAMPLES: &str = "dcmon_probe_samples";
/// 1 when the run succeeded, 0 when it failed; a probe whose tool is absent has none.
pub const SUCCESS: &str = "dcmon_probe_success";

/// The run's own samples, stamped with its start like its other samples.
pub(crate) fn samples(run: &ProbeRun) -> Vec<Sample> {
    let labels = Labels::new([("probe", run.probe.as_str())]);
    let gauge = |name: &str, value: f64, unit: &'static str| Sample {
        name: name.to_string(),
        labels: labels.clone(),
        value,
        kind: Kind::Gauge,
        unit,
    };
    let mut out = vec![
        gauge(DURATION, run.duration_ms as f64 / 1000.0, "seconds"),
        gauge(SAMPLES, run.output.samples.len() as f64, ""),
    ];
    match run.status {
        RunStatus::Ok => out.push(gauge(SUCCESS, 1.0, "")),
        RunStatus::Error => out.push(gauge(SUCCESS, 0.0, "")),
        RunStatus::Absent => {}
    }
    out
}
