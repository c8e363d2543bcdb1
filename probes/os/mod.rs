//! The `os` probe: load, CPU, memory, disks, network, uptime and OS facts from `/proc`,
//! `/sys` and `/etc/os-release`, read by one POSIX sh script as a normal user. Filesystems
//! are the `fs` probe's, which every host running `os` runs too (`brings`).

mod parse;

pub use parse::parse;
pub(crate) use parse::read_df;

use crate::registry::Probe;
use std::time::Duration;

/// The script that runs on the host; what is tested is what ships.
pub const SCRIPT: &str = include_str!("os.sh");

pub const PROBE: Probe = Probe {
    name: "os",
    description: "load, CPU, memory, disks, network, uptime; OS, kernel and CPU facts (brings fs: filesystems)",
    script: SCRIPT,
    commands: &[
        "LC_ALL=C grep -H '' /proc/stat /proc/meminfo /proc/diskstats /proc/net/dev /etc/os-release (where sh is not bash)",
        "uname -srm (only where /proc/sys/kernel/arch is missing)",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(10),
    privileges: "none",
    new_logs: crate::registry::all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: true,
    brings: &["fs"],
};

#[cfg(test)]
mod tests;
