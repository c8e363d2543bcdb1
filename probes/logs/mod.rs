//! The `logs` probe: the journal (from its saved cursor), the kernel ring (dmesg, from
//! the last stamp seen this boot), /var/log/syslog or /var/log/messages, and the files
//! named in the inventory (by inode and byte offset, so rotation loses and repeats
//! nothing). Incremental across rounds, capped per round.

pub mod aer;
pub mod dmesg;
pub mod file;
pub mod journal;
pub mod nvrm;

use crate::output::ProbeOutput;
use crate::registry::{Probe, ProbeInputs, all_logs_new, sh_quote};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("logs.sh");

/// Gives a kernel log line the labels of the event it reports, if any: an NVIDIA GPU
/// event (Xid, fallen off the bus) or a PCIe AER error; raises its priority when the
/// event is more serious than the level the kernel gave it. `previous` is the kernel
/// line before it: NVRM's "fallen off the bus" may come as two records, the GPU's
/// address in the first and the words in the second.
pub fn label_kernel_event(previous: Option<&str>, entry: &mut crate::output::LogEntry) {
    if nvrm::label(entry) {
        return;
    }
    if let Some(previous) = previous
        && entry
            .message
            .trim_start()
            .starts_with("NVRM: fallen off the bus")
        && previous.trim_start().starts_with("NVRM: The NVIDIA GPU ")
        && let Some(event) = nvrm::parse(&format!("{previous}\n{}", entry.message))
    {
        entry.labels = event.labels;
        entry.priority = entry.priority.min(event.priority);
        return;
    }
    if let Some((labels, priority)) = aer::parse(&entry.message) {
        entry.labels = labels;
        entry.priority = entry.priority.min(priority);
    }
}

/// Most lines one source yields per round; the rest follow next round.
pub const MAX_LINES_PER_ROUND: usize = 1000;

pub const PROBE: Probe = Probe {
    name: "logs",
    description: "journal, dmesg, syslog and inventory log files, incremental, with priority, unit and time",
    script: SCRIPT,
    commands: &[
        "journalctl -o json --no-pager --after-cursor CURSOR",
        "dmesg -r",
        "tail of /var/log/syslog and the files named in log_files",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(30),
    privileges: "the adm or systemd-journal group, or root (become = true), to read every log",
    new_logs: all_logs_new,
    inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// The saved cursors and the files to read, as shell assignments.
pub fn inputs(given: &ProbeInputs) -> String {
    // A cursor is what the host printed last round: one with a control character (a
    // NUL, which no shell reads as written, or a newline breaking the file list) is not
    // sent back; that source is read afresh, as on a first round.
    let cursor = |source: &str| match given.cursors.get(source) {
        Some(saved) if !saved.chars().any(char::is_control) => saved.as_str(),
        _ => "",
    };
    let files: String = file::SYSLOG_FILES
        .iter()
        .map(|p| p.to_string())
        .chain(given.log_files.iter().cloned())
        .map(|path| {
            let saved = cursor(&file::source_of(&path)).to_string();
            format!("{path}\t{saved}\n")
        })
        .collect();
    format!(
        "DCMON_MAX_LINES={MAX_LINES_PER_ROUND}\nDCMON_JOURNAL_CURSOR={}\nDCMON_DMESG_CURSOR={}\nDCMON_LOG_FILES={}\n",
        sh_quote(cursor("journal")),
        sh_quote(cursor("dmesg")),
        sh_quote(&files)
    )
}

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    sections.finish(&mut out);
    if let Some(body) = sections.get("journal") {
        journal::parse(body, &mut out);
        out.kernel_log = Some("journal".into());
    }
    // The ring is the kernel's own record: when it was read, its lines are the ones
    // counted (the journal holds copies of them).
    if let Some(body) = sections.get("dmesg") {
        dmesg::parse(body, &mut out);
        out.kernel_log = Some("dmesg".into());
    }
    for (header, body) in sections.with_prefix("file ") {
        file::parse(header, body, &mut out);
    }
    // Sources the login user may not read: a fact to show, not a failed run.
    let unavailable: Vec<String> = sections
        .with_prefix("unavailable ")
        .map(|(source, why)| format!("{source}: {}", why.trim()))
        .collect();
    if !unavailable.is_empty() {
        out.fact("logs_unavailable", &unavailable.join("; "));
    }
    out
}

#[cfg(test)]
mod tests;
