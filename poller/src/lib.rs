//! dcmon's poller: reaching hosts (SSH over russh, or locally), running probe scripts
//! on them, and storing what the probes parse. One round visits every selected host
//! at once; one slow or broken host never delays the others beyond its own timeouts.

/// A line on stderr for the operator. Unlike `eprintln!` it never panics: a service
/// whose stderr nobody reads any more (a closed pipe) keeps running.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bmc;
pub mod command;
pub mod connect_stage;
pub mod error;
pub mod exec;
pub mod fan;
pub mod fanout;
pub mod fanout_bmc;
pub mod health;
pub mod heap;
pub mod host_round;
pub mod identity;
pub mod ingest;
pub mod jump;
pub mod known_hosts;
pub mod local;
pub mod plan;
pub mod redfish;
pub mod remote_write;
pub mod round;
pub mod serve;
pub mod shell;
pub mod ssh;
pub mod trial;

pub use error::TransportError;
pub use round::{HostResult, HostStatus, RoundOptions, Warnings, poll_round};
