//! Who uses each GPU: `nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,
//! used_gpu_memory --format=csv,nounits`, each row extended by the probe script with the
//! process's user (its Uid in /proc/PID/status, named from /etc/passwd) and container
//! (the first 12 hex digits of the 64-digit id in /proc/PID/cgroup: Docker, containerd,
//! Podman). Series are per GPU, user and container (never per pid: bounded cardinality).
//!
//! ```text
//! gpu_uuid, pid, process_name, used_gpu_memory [MiB], user, container
//! GPU-5a8f0d2e-..., 11345, ./gpu_burn, 15690, alice, 3f2a9c1b7d4e
//! ```

use crate::output::{Labels, ProbeOutput};
use std::collections::BTreeMap;

/// Sums the rows per (GPU, user, container). Columns are found by the header's names
/// (`used_gpu_memory [MiB]` or `used_memory`), so a capture with more fields reads
/// too. `gpu_of` maps a GPU's UUID to its index (from the same run's query); a UUID it
/// lacks keeps the UUID as its `gpu`.
pub fn parse(text: &str, gpu_of: &BTreeMap<String, String>, out: &mut ProbeOutput) {
    let mut totals: BTreeMap<(String, String, String), (f64, f64)> = BTreeMap::new();
    let mut header: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        // Split on commas and trim each cell: an empty last cell (no container) stays.
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with("No running") {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.contains(&"gpu_uuid") {
            header = cells
                .iter()
                .map(|c| c.split(" [").next().unwrap_or("").to_string())
                .collect();
            continue;
        }
        let at = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| cells.get(i))
        };
        let (Some(uuid), Some(pid)) = (at("gpu_uuid"), at("pid")) else {
            out.not_understood("apps", n + 1, line);
            continue;
        };
        if cells.len() != header.len()
            || !(uuid.starts_with("GPU-") || uuid.starts_with("MIG-"))
            || pid.parse::<u32>().is_err()
        {
            out.not_understood("apps", n + 1, line);
            continue;
        }
        // `[N/A]` memory (MIG, some vGPU guests): the process still counts.
        let mib = at("used_gpu_memory")
            .or(at("used_memory"))
            .and_then(|m| super::csv::number(m))
            .unwrap_or(0.0);
        let gpu = gpu_of
            .get(*uuid)
            .cloned()
            .unwrap_or_else(|| uuid.to_string());
        let user = at("user")
            .copied()
            .filter(|u| !u.is_empty())
            .unwrap_or("unknown");
        let container = at("container").copied().unwrap_or("");
        let entry = totals
            .entry((gpu, user.to_string(), container.to_string()))
            .or_default();
        entry.0 += mib * 1048576.0;
        entry.1 += 1.0;
    }
    for ((gpu, user, container), (bytes, processes)) in totals {
        let labels = || {
            Labels::new([
                ("gpu", gpu.as_str()),
                ("user", user.as_str()),
                ("container", container.as_str()),
            ])
        };
        out.gauge("nvidia_gpu_process_memory_bytes", labels(), bytes, "bytes");
        out.gauge("nvidia_gpu_processes", labels(), processes, "");
    }
}
