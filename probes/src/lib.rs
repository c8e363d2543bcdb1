//! dcmon's probes: what runs on a monitored host and how its output becomes samples.
//!
//! A probe is a folder (`probes/<name>/`) holding the script sent to the host, a pure
//! parser from the script's text to [`ProbeOutput`], real captures in `testdata/`, and
//! tests. Parsers never do IO, never read the clock and never panic: bad input becomes
//! [`ParseError`] warnings next to whatever samples could still be read.

pub mod formats;
mod output;
pub mod registry;
pub mod sections;
pub mod series_doc;
#[cfg(test)]
pub(crate) mod test_support;

#[path = "../os/mod.rs"]
pub mod os;

#[path = "../fs/mod.rs"]
pub mod fs;

pub use output::{Fact, Kind, Labels, LogEntry, ParseError, ProbeOutput, Sample};
pub use registry::{PROBES, Probe, ProbeInputs, ProbeKind, find, names};

#[path = "../ipmi/mod.rs"]
pub mod ipmi;

#[path = "../nvidia/mod.rs"]
pub mod nvidia;

#[path = "../nvme/mod.rs"]
pub mod nvme;

#[path = "../smart/mod.rs"]
pub mod smart;

#[path = "../sensors/mod.rs"]
pub mod sensors;

#[path = "../apt/mod.rs"]
pub mod apt;

#[path = "../docker/mod.rs"]
pub mod docker;

#[path = "../logs/mod.rs"]
pub mod logs;

#[path = "../custom/mod.rs"]
pub mod custom;

#[path = "../infiniband/mod.rs"]
pub mod infiniband;

#[path = "../pcie/mod.rs"]
pub mod pcie;

#[path = "../redfish/mod.rs"]
pub mod redfish;

#[cfg(test)]
mod fuzz_tests;
