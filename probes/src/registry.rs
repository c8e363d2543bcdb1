//! The one table of every probe dcmon knows. The CLI, inventory validation and the
//! poller all read it, so a probe is added in exactly one place.

use crate::output::{LogEntry, ProbeOutput};
use std::time::Duration;

/// A probe: what to send to the host and how to read what comes back.
#[derive(Debug)]
pub struct Probe {
    pub name: &'static str,
    pub description: &'static str,
    /// POSIX sh script, sent to `sh -s` on stdin (never joined into a command line).
    pub script: &'static str,
    /// The tools the script runs on the host, for people (`dcmon probes list`).
    pub commands: &'static [&'static str],
    /// Pure parser of the script's stdout.
    pub parse: fn(&str) -> ProbeOutput,
    pub default_interval: Duration,
    pub default_timeout: Duration,
    /// What the remote user needs: `none` or `root (become = true)`.
    pub privileges: &'static str,
    /// Which of a run's log entries are new since the saved cursor of their source, and
    /// the cursor to save next.
    pub new_logs: NewLogs,
    /// Shell variable assignments put before the script: saved log cursors, files and
    /// scripts named in the inventory. Values are single-quoted, never interpolated.
    pub inputs: fn(&ProbeInputs) -> String,
    /// How the probe reaches the host: a script through its OS, or its BMC directly.
    pub kind: ProbeKind,
    /// The script may run inside the persistent shell itself, without the subshell
    /// that isolates other runs (one fork fewer a round): it takes no inputs, defines no
    /// function, changes no option, directory, trap or umask, never exits, and unsets
    /// every variable it sets. `tests/shell.rs` checks the shell's state around it.
    pub in_shell: bool,
    /// Probes that run wherever this one is listed (`os` brings `fs`): when a probe was
    /// split in two, inventories that name it keep everything it read.
    pub brings: &'static [&'static str],
}

/// How a probe reaches a host. The round dispatches on this, never on a probe's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `script` runs through the host's OS: over its SSH session, or locally.
    Script,
    /// The poller reads the host's BMC over the network (IPMI over LAN); `script` is empty
    /// and `parse` unused. Every host with a `bmc` setting has it; it is never listed in
    /// a host's `probes`.
    Bmc,
}

/// What a run of a probe on one host is given besides its script.
#[derive(Debug, Clone, Copy)]
pub struct ProbeInputs<'a> {
    /// Saved cursor of each log source of this host (`journal`, `dmesg`, a path).
    pub cursors: &'a std::collections::BTreeMap<String, String>,
    /// Log files named in the inventory (`log_files`).
    pub log_files: &'a [String],
    /// Scripts on the host named in the inventory (`custom_scripts`).
    pub custom_scripts: &'a [String],
    /// GPUs the host should have (`expected_gpus`).
    pub expected_gpus: Option<u32>,
}

/// For probes that take no inputs.
pub fn no_inputs(_: &ProbeInputs) -> String {
    String::new()
}

/// `'it'\''s'`: a value as one single-quoted shell word.
pub fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `(entries of one source, saved cursor) -> (new entries, next cursor)`.
pub type NewLogs = fn(Vec<LogEntry>, Option<&str>) -> (Vec<LogEntry>, Option<String>);

/// For probes whose scripts read only what is new (or that have no logs): all of it is new.
pub fn all_logs_new(
    entries: Vec<LogEntry>,
    saved: Option<&str>,
) -> (Vec<LogEntry>, Option<String>) {
    let next = entries
        .iter()
        .rev()
        .find_map(|e| e.cursor.clone())
        .or(saved.map(str::to_string));
    (entries, next)
}

pub static PROBES: &[Probe] = &[
    crate::os::PROBE,
    crate::fs::PROBE,
    crate::ipmi::PROBE,
    crate::nvidia::PROBE,
    crate::nvidia::DETAILS_PROBE,
    crate::nvme::PROBE,
    crate::smart::PROBE,
    crate::sensors::PROBE,
    crate::apt::PROBE,
    crate::docker::PROBE,
    crate::logs::PROBE,
    crate::infiniband::PROBE,
    crate::pcie::PROBE,
    crate::custom::PROBE,
    crate::ipmi::BMC_PROBE,
];

pub fn find(name: &str) -> Option<&'static Probe> {
    PROBES.iter().find(|p| p.name == name)
}

/// What runs on the local machine when no inventory is given: every script probe but
/// `custom` (which needs scripts named); tools the machine lacks are simply absent.
pub fn local_defaults() -> Vec<String> {
    PROBES
        .iter()
        .filter(|p| p.kind == ProbeKind::Script && p.name != crate::custom::PROBE.name)
        .map(|p| p.name.to_string())
        .collect()
}

pub fn names() -> Vec<&'static str> {
    PROBES.iter().map(|p| p.name).collect()
}
