//! The host-side meter: a cgroup v1 `cpuacct` group around a process of the bed (the
//! test sshd, node_exporter). Every process the member forks afterwards joins the group,
//! and `cpuacct.usage` counts their CPU in nanoseconds, reaped ones included, which
//! /proc/PID/stat of the live processes misses.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup/cpuacct";

pub struct CpuMeter {
    dir: PathBuf,
}

impl CpuMeter {
    /// Puts `pid` (all its threads) in a new group named after it. Call it before the
    /// process forks what should be counted: children forked earlier stay outside.
    /// `None` where cgroup v1 cpuacct is missing or not writable (not root).
    pub fn around(pid: u32, name: &str) -> Option<CpuMeter> {
        let dir = Path::new(ROOT).join(format!("dcmon-{name}-{pid}"));
        std::fs::create_dir(&dir).ok()?;
        let meter = CpuMeter { dir };
        std::fs::write(meter.dir.join("cgroup.procs"), pid.to_string()).ok()?;
        Some(meter)
    }

    /// CPU time of the group's processes since it was made, live and reaped.
    pub fn usage_ns(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("cpuacct.usage"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Processes in the group now (live only; a fork that exited is gone).
    pub fn processes(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for CpuMeter {
    /// A group with members cannot be removed: hand what is left back to the root first.
    fn drop(&mut self) {
        for pid in self.processes() {
            let _ = std::fs::write(Path::new(ROOT).join("cgroup.procs"), pid.to_string());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Processes forked system-wide since boot (`processes` in /proc/stat): the difference
/// over a quiet stretch counts the forks a round made, exited ones included.
pub fn forks_since_boot() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
