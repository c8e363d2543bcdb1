//! The `fs` probe: size, used and available bytes of each real filesystem, from `df`.
//! Split from the os probe so that probe's round forks nothing on a bash host and one
//! process (`grep`) elsewhere, and reads filesystems at their own pace (every 2 minutes).

use crate::output::ProbeOutput;
use crate::registry::Probe;
use crate::sections::Sections;
use std::time::Duration;

/// The script that runs on the host; what is tested is what ships.
pub const SCRIPT: &str = include_str!("fs.sh");

pub const PROBE: Probe = Probe {
    name: "fs",
    description: "filesystem size, used and available bytes (df)",
    script: SCRIPT,
    commands: &["LC_ALL=C df -P -k"],
    parse,
    default_interval: Duration::from_secs(120),
    default_timeout: Duration::from_secs(10),
    privileges: "none",
    new_logs: crate::registry::all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: true,
    brings: &[],
};

/// Parses `fs.sh` output: the `df` section (the same reader as the os probe's older
/// captures, which carried it).
pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    let df = sections.get("df");
    crate::sections::read_section("df", df, true, &mut out, crate::os::read_df);
    sections.finish(&mut out);
    out
}

#[cfg(test)]
mod tests;
