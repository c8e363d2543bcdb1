//! The one table of every probe dcmon knows. The CLI, inventory validation and the
//! poller all read it, so a probe is added in exactly one place.

use crate::output::ProbeOutput;
use std::time::Duration;

/// A probe: what to send to the host and how to read what comes back.
#[derive(Debug)]
pub struct Probe {
    pub name: &'static str,
    pub description: &'static str,
    /// POSIX sh script, sent to `sh -s` on stdin (never joined into a command line).
    pub script: &'static str,
    /// Pure parser of the script's stdout.
    pub parse: fn(&str) -> ProbeOutput,
    pub default_interval: Duration,
    pub default_timeout: Duration,
    /// What the remote user needs: `none` or `root (become = true)`.
    pub privileges: &'static str,
}

pub static PROBES: &[Probe] = &[crate::os::PROBE];

pub fn find(name: &str) -> Option<&'static Probe> {
    PROBES.iter().find(|p| p.name == name)
}

pub fn names() -> Vec<&'static str> {
    PROBES.iter().map(|p| p.name).collect()
}
