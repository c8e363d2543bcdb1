//! One host, all day: its probes on their schedules over one persistent SSH session,
//! one run at a time (runs never overlap), reconnecting with exponential backoff and
//! jitter, and telling online from offline.

use super::{Report, ServeOptions};
use crate::host_round::{self, Os, Settings, now_ms};
use crate::ingest::Writer;
use crate::plan::{Due, Planned, Trigger};
use crate::ssh::{Connector, SshSession};
use dcmon_inventory::{Host, Transport};
use dcmon_probes::LogEntry;
use dcmon_store::{HostRound, HostState};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

/// First wait after a failed connection; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct HostTask {
    pub host: Host,
    pub plan: Vec<Planned>,
    pub connector: Arc<Connector>,
    pub writer: Writer,
    pub options: Arc<ServeOptions>,
    /// This host's saved log cursors, kept current after every commit.
    pub cursors: BTreeMap<String, String>,
    pub session: Option<Arc<SshSession>>,
    pub tracker: Tracker,
    pub backoff: Backoff,
    /// Failed runs in a row per probe (0 after a good one), for alert rules.
    pub failures_in_a_row: HashMap<String, u32>,
}

/// Online/offline bookkeeping: offline after `offline_after` missed rounds in a row,
/// online again on the first good round.
#[derive(Debug, Default)]
pub struct Tracker {
    pub online: Option<bool>,
    pub since_ms: i64,
    pub missed: u32,
    pub last_seen_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Backoff {
    pub failures: u32,
    pub retry_at: Option<Instant>,
    pub last_error: String,
}

impl Backoff {
    /// Waits longer after each failure, never longer than `most` (the host's interval:
    /// a host that answers again is reconnected within one round).
    fn fail(&mut self, error: String, most: Duration) {
        self.failures += 1;
        let base = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(6).saturating_sub(1))
            .min(MAX_BACKOFF)
            .min(most.max(FIRST_BACKOFF));
        // ±20% jitter, so hosts that dropped together do not all come back together.
        let jitter = 0.8 + fastrand::f64() * 0.4;
        self.retry_at = Some(Instant::now() + base.mul_f64(jitter));
        self.last_error = error;
    }

    fn reset(&mut self) {
        *self = Backoff::default();
    }
}

impl HostTask {
    /// Runs until `stop` turns true. `cron` delivers the probes whose cron schedule fired.
    pub async fn run(mut self, mut cron: mpsc::Receiver<usize>, mut stop: watch::Receiver<bool>) {
        let start = Instant::now();
        let mut due: Vec<(Instant, usize)> = self
            .plan
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.trigger {
                Trigger::Every { offset, .. } => Some((start + offset, i)),
                Trigger::Cron(_) => None,
            })
            .collect();
        // Connect now, not at the first probe's turn: dashboard actions and `dcmon exec`
        // find the session up, and a host that cannot be reached is known at once.
        tokio::select! {
            _ = self.ensure_session() => {}
            _ = stop.changed() => {}
        }
        loop {
            let next = due
                .iter()
                .map(|(t, _)| *t)
                .min()
                .unwrap_or_else(|| start + Duration::from_secs(86400 * 365));
            let ready: Vec<usize> = tokio::select! {
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    let mut ready = Vec::new();
                    for (at, i) in due.iter_mut() {
                        if *at <= now {
                            ready.push(*i);
                            let Trigger::Every { interval, .. } = self.plan[*i].trigger else { continue };
                            // A run longer than the interval skips ticks, never bunches them.
                            while *at <= now {
                                *at += interval;
                            }
                        }
                    }
                    ready
                }
                Some(i) = cron.recv() => vec![i],
                _ = stop.changed() => break,
            };
            if *stop.borrow() {
                break;
            }
            self.run_probes(&ready).await;
        }
        self.drop_session().await;
    }

    /// Closes the session unless an action still uses it (it closes when that ends).
    async fn drop_session(&mut self) {
        self.options.sessions.remove(&self.host.name);
        if let Some(session) = self.session.take()
            && let Ok(session) = Arc::try_unwrap(session)
        {
            session.close().await;
        }
    }

    async fn run_probes(&mut self, which: &[usize]) {
        let started = now_ms();
        let due: Vec<Due> = which.iter().map(|&i| self.plan[i].due).collect();
        // Online and offline are about reaching the OS: a BMC-only round changes neither.
        let connected = if host_round::needs_os(&due) {
            Some(self.ensure_session().await)
        } else {
            None
        };
        let session = self.session.clone();
        let os = match (connected, &session) {
            (None, _) => Os::not_needed(),
            (Some(Err(why)), _) => Os::Unreachable(why),
            (Some(Ok(())), Some(ssh)) => Os::Ssh(ssh),
            (Some(Ok(())), None) => Os::Local,
        };
        let settings = Settings {
            cursors: &self.cursors,
            output_cap: self.options.output_cap,
            keep_raw: false,
        };
        let mut runs = host_round::run(&self.host, &due, os, &settings).await;
        drop(session);
        // A session that broke or stalled under this round is reopened next time.
        if self.session.as_deref().is_some_and(SshSession::is_closed) {
            self.drop_session().await;
        }
        let error = runs.first_error();
        let events = match runs.os_answered {
            Some(reached) => self.track(reached, started, error.as_deref()),
            None => Vec::new(),
        };
        // The host's state as a series (`dcmon_host_up`: 1 online, 0 offline, as
        // `offline_after` decides), for alert rules; carried by the round's first OS run.
        if let Some(reached) = runs.os_answered
            && let Some(run) = runs.runs.iter_mut().find(|r| {
                dcmon_probes::find(&r.probe)
                    .is_some_and(|p| p.kind == dcmon_probes::ProbeKind::Script)
            })
        {
            let online = self.tracker.online.unwrap_or(reached);
            run.output.gauge(
                dcmon_store::overview::HOST_UP,
                dcmon_probes::Labels::default(),
                f64::from(u8::from(online)),
                "",
            );
        }
        // Each probe's failures in a row (`dcmon_probe_failures_in_a_row`) and each BMC's
        // reachability (`dcmon_bmc_up`), as series for alert rules.
        for run in &mut runs.runs {
            let failed = run.status == dcmon_store::RunStatus::Error;
            let count = self.failures_in_a_row.entry(run.probe.clone()).or_default();
            *count = if failed { count.saturating_add(1) } else { 0 };
            let labels = dcmon_probes::Labels::new([("probe", run.probe.as_str())]);
            run.output.gauge(
                "dcmon_probe_failures_in_a_row",
                labels,
                f64::from(*count),
                "",
            );
            if dcmon_probes::find(&run.probe)
                .is_some_and(|p| p.kind == dcmon_probes::ProbeKind::Bmc)
            {
                run.output.gauge(
                    "dcmon_bmc_up",
                    dcmon_probes::Labels::default(),
                    f64::from(u8::from(!failed)),
                    "",
                );
            }
        }
        let took = now_ms().saturating_sub(started).max(0) as f64 / 1000.0;
        self.options.health.polled(&self.host.name, took);
        let mut round = HostRound::new(self.host.name.clone(), runs.runs);
        round.state = runs.os_answered.map(|reached| HostState {
            online: self.tracker.online.unwrap_or(reached),
            since_ms: self.tracker.since_ms,
            last_seen_ms: self.tracker.last_seen_ms,
            last_error: if reached { None } else { error },
        });
        round.events = events;
        // The --json report is built only when someone asked for it.
        let report = self.options.report_json.then(|| Report::of(&round));
        match self.writer.write(round).await {
            Ok(stored) => {
                self.cursors.extend(stored.cursors.clone());
                if let Some(r) = report {
                    self.options.report(r.stored(&stored));
                }
            }
            Err(e) => match report {
                Some(r) => self.options.report(r.failed(e)),
                None => crate::log!(
                    "dcmon serve: storing a round of {} failed: {e}",
                    self.host.name
                ),
            },
        }
    }

    /// A live session, or why there is none. While backing off, no attempt is made: the
    /// round is marked with the last error.
    async fn ensure_session(&mut self) -> Result<(), String> {
        if self.host.transport == Transport::Local {
            return Ok(());
        }
        if let Some(session) = &self.session {
            if !session.is_closed() {
                return Ok(());
            }
            self.drop_session().await;
        }
        if let Some(at) = self.backoff.retry_at
            && Instant::now() < at
        {
            let wait = at - Instant::now();
            return Err(format!(
                "{} (next attempt in {:.1}s)",
                self.backoff.last_error,
                wait.as_secs_f64()
            ));
        }
        match self
            .connector
            .connect(&self.host, self.options.accept_new_host_keys)
            .await
        {
            Ok(session) => {
                self.backoff.reset();
                let session = Arc::new(session);
                self.options.sessions.set(&self.host.name, session.clone());
                self.session = Some(session);
                Ok(())
            }
            Err(e) => {
                let error = e.to_string();
                self.backoff.fail(error.clone(), self.host.interval);
                Err(error)
            }
        }
    }

    /// Updates online/offline; returns the events to log.
    fn track(&mut self, reached: bool, now: i64, why: Option<&str>) -> Vec<LogEntry> {
        let t = &mut self.tracker;
        let event = |message: String, priority: u8| LogEntry {
            source: "dcmon".into(),
            ts_ms: Some(now),
            priority,
            unit: None,
            message,
            cursor: None,
            labels: Default::default(),
        };
        let mut events = Vec::new();
        if reached {
            t.missed = 0;
            t.last_seen_ms = Some(now);
            if t.online != Some(true) {
                if t.online == Some(false) {
                    events.push(event(
                        format!("host back online after {}s", (now - t.since_ms) / 1000),
                        5,
                    ));
                }
                t.online = Some(true);
                t.since_ms = now;
            }
        } else {
            t.missed += 1;
            if t.missed >= self.host.offline_after && t.online != Some(false) {
                events.push(event(
                    format!(
                        "host offline: {} rounds missed: {}",
                        t.missed,
                        why.unwrap_or_default()
                    ),
                    3,
                ));
                t.online = Some(false);
                t.since_ms = now;
            }
        }
        events
    }
}
