//! dcmon's poller: reaching hosts (SSH over russh, or locally), running probe scripts
//! on them, and storing what the probes parse. One round visits every selected host
//! at once; one slow or broken host never delays the others beyond its own timeouts.

pub mod error;
pub mod exec;
pub mod ingest;
pub mod known_hosts;
pub mod local;
pub mod round;
pub mod serve;
pub mod ssh;

pub use error::TransportError;
pub use round::{HostResult, HostStatus, RoundOptions, poll_round};
