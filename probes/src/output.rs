//! What parsers produce: samples, facts and the problems met on the way.

use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// Gauges go up and down; counters only grow (until a reset) and are stored raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Label pairs kept sorted by name, so equal label sets compare and store equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Labels(pairs)
    }

    /// These labels and `key="value"` (replacing the key's value if it had one).
    pub fn with(self, key: &str, value: &str) -> Self {
        Labels::new(
            self.0
                .into_iter()
                .filter(|(k, _)| k != key)
                .chain([(key.to_string(), value.to_string())]),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Labels {
    /// Prometheus style: `{cpu="0",mode="user"}`, empty for no labels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One value of one series at the time of the probe run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Prometheus-style name with the unit in it: `node_memory_used_bytes`.
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    pub kind: Kind,
    /// `bytes`, `seconds`, `celsius`, ... or empty for plain counts and ratios.
    pub unit: &'static str,
}

/// A slow-changing property of the host: OS, kernel, CPU model, serial numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub key: String,
    pub value: String,
}

/// One line of a log (journal, dmesg, syslog, a file, the BMC's SEL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// `journal`, `dmesg`, `syslog`, `sel`, or a file path.
    pub source: String,
    /// When it happened, ms since the epoch, if the line says.
    pub ts_ms: Option<i64>,
    /// syslog priority: 0 emerg ... 3 err, 4 warning, 5 notice, 6 info, 7 debug.
    pub priority: u8,
    /// The systemd unit, program or sensor it concerns.
    pub unit: Option<String>,
    pub message: String,
    /// Where reading resumes next time (a journal cursor, a SEL record id, an offset).
    pub cursor: Option<String>,
    /// What the line is about, read from it: an NVIDIA Xid's `xid`, `pci`, `pid`,
    /// `process` (see `logs/nvrm.rs`). Empty for most lines.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// A problem in probe output. The other sections or lines still count.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
pub enum ParseError {
    #[error("section `{section}` is missing from the output")]
    MissingSection { section: String },
    #[error("section `{section}` line {line}: {reason}")]
    Malformed {
        section: String,
        line: usize,
        reason: String,
    },
    #[error("output ends early (no end marker): the run was cut off or the script failed")]
    Truncated,
    #[error("{tool}: {message}")]
    ToolFailed { tool: String, message: String },
    /// A JSON document (a Redfish resource) where `pointer` (a property path, empty
    /// for the whole document) holds something the parser cannot read.
    #[error("{resource}{}{pointer}: {reason}", if pointer.is_empty() { "" } else { " " })]
    Json {
        resource: String,
        pointer: String,
        reason: String,
    },
}

impl ParseError {
    /// Whether the output itself was misread (a line, a section, a cut-off run), as
    /// opposed to the tool reporting its own failure in words the parser understood.
    pub fn is_misread(&self) -> bool {
        !matches!(self, ParseError::ToolFailed { .. })
    }
}

/// Everything one probe run yielded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProbeOutput {
    pub samples: Vec<Sample>,
    pub facts: Vec<Fact>,
    pub logs: Vec<LogEntry>,
    /// Where each log source's reading resumes next time, when the probe knows it
    /// without a line to carry it (a file first seen, or read to its end).
    pub cursors: std::collections::BTreeMap<String, String>,
    pub warnings: Vec<ParseError>,
    /// The probe's tool is not installed on the host (why, in the script's words).
    pub absent: Option<String>,
    /// The log source whose new lines count as the host's kernel events this run
    /// (`dmesg`, else `journal`, which holds the same kernel lines): the store counts
    /// their GPU events once (`gpu_xid_events_total`) and samples the counters with
    /// every such run. None: this run read no kernel log.
    pub kernel_log: Option<String>,
}

impl ProbeOutput {
    /// Read, but only in part: some of the output was not understood (a tool that is
    /// absent or that reports its own failure is not that).
    pub fn partly_misread(&self) -> bool {
        self.absent.is_none() && self.warnings.iter().any(ParseError::is_misread)
    }

    /// A line (1-based `line` of `section`) no parser rule covers: a warning naming it,
    /// never a silent skip.
    pub fn not_understood(&mut self, section: &str, line: usize, text: &str) {
        let mut shown: String = text.trim().chars().take(120).collect();
        if text.trim().chars().count() > 120 {
            shown.push('…');
        }
        self.misread(section, line, format!("line not understood: `{shown}`"));
    }

    /// A line (1-based `line` of `section`) misread for the reason given.
    pub fn misread(&mut self, section: &str, line: usize, reason: String) {
        self.warnings.push(ParseError::Malformed {
            section: section.to_string(),
            line,
            reason,
        });
    }
}

impl ProbeOutput {
    pub fn gauge(&mut self, name: &str, labels: Labels, value: f64, unit: &'static str) {
        self.push(name, labels, value, Kind::Gauge, unit);
    }

    pub fn counter(&mut self, name: &str, labels: Labels, value: f64, unit: &'static str) {
        self.push(name, labels, value, Kind::Counter, unit);
    }

    /// Non-finite values (a NaN from a garbled number) are never stored.
    fn push(&mut self, name: &str, labels: Labels, value: f64, kind: Kind, unit: &'static str) {
        if value.is_finite() {
            self.samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
                kind,
                unit,
            });
        }
    }

    pub fn fact(&mut self, key: &str, value: &str) {
        let value = value.trim();
        if !value.is_empty() {
            self.facts.push(Fact {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }
}
