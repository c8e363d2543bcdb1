//! One probe on one host, now, for `dcmon probe run`: the command, what the host printed,
//! how it ended and what the probe's parser made of it, through the same host round as
//! `poll` and `serve`. Nothing is stored.

use crate::host_round::{self, Os, RawRun, Settings};
use crate::plan::Due;
use crate::ssh::Connector;
use dcmon_inventory::{Host, Transport};
use dcmon_store::ProbeRun;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Trial {
    /// The run as a poll would store it: parsed output and verdict.
    pub run: ProbeRun,
    /// What went over the wire, for script probes the host answered.
    pub raw: Option<RawRun>,
    pub took: Duration,
}

/// Connects (or runs locally) and runs `due` once, with no saved log cursors (a log
/// probe reads as on its first round).
pub async fn run(host: &Host, due: Due, accept_new_host_keys: bool) -> Trial {
    let no_cursors = BTreeMap::new();
    let settings = Settings {
        cursors: &no_cursors,
        // Nothing is kept of the output but what is printed: no cap below the SSH path's own.
        output_cap: 64 << 20,
        keep_raw: true,
    };
    let clock = Instant::now();
    let due = [due];
    let mut runs = match (host.transport, due[0].probe.kind) {
        (_, dcmon_probes::ProbeKind::Bmc) => {
            host_round::run(host, &due, Os::not_needed(), &settings).await
        }
        (Transport::Local, _) => host_round::run(host, &due, Os::Local, &settings).await,
        (Transport::Ssh, dcmon_probes::ProbeKind::Script) => {
            match Connector::new(1).connect(host, accept_new_host_keys).await {
                Ok(ssh) => {
                    let runs = host_round::run(host, &due, Os::Ssh(&ssh), &settings).await;
                    ssh.close().await;
                    runs
                }
                Err(e) => {
                    host_round::run(host, &due, Os::Unreachable(e.to_string()), &settings).await
                }
            }
        }
    };
    Trial {
        took: clock.elapsed(),
        raw: runs.raw.pop().flatten(),
        run: runs.runs.pop().unwrap_or_else(|| {
            let why = "the round returned no run".to_string();
            host_round::failed_run(due[0].probe, host_round::now_ms(), Duration::ZERO, why)
        }),
    }
}
