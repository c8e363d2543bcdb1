//! One command on many hosts (`dcmon exec` on its own connections): each host is
//! connected, runs the command under its deadline and reports as it finishes; output
//! is passed on as it arrives. A host that hangs costs only its own deadline.

use crate::command::{Collector, Stream, run_local, wrapped};
use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use crate::ssh::Connector;
use dcmon_inventory::{Host, Transport};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};

/// One host's command line (built from `command::quoted` parts only).
#[derive(Debug, Clone)]
pub struct Job {
    pub host: Host,
    pub line: String,
    pub become_root: bool,
    /// Sent to the host's BMC over the network instead (`line` is then what is shown).
    pub bmc: Option<crate::fanout_bmc::BmcScript>,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Deadline of the command on each host (connecting has the host's own).
    pub timeout: Duration,
    /// Hosts at work at once.
    pub concurrency: usize,
    pub accept_new_host_keys: bool,
    /// Most output kept per stream and host.
    pub output_cap: usize,
    /// Live sessions to run over (inside `dcmon serve`); hosts without one get a new connection.
    pub sessions: Option<crate::serve::sessions::Sessions>,
}

/// How a host's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecStatus {
    /// Exit status 0.
    Ok,
    /// Ran and failed: non-zero exit, a signal, too much output.
    Failed,
    /// Still running at the deadline (and stopped).
    Timeout,
    /// Never ran: no connection, refused login, unknown host key.
    Unreachable,
    /// Stopped by Ctrl-C.
    Cancelled,
}

impl ExecStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Ok => "ok",
            ExecStatus::Failed => "failed",
            ExecStatus::Timeout => "timeout",
            ExecStatus::Unreachable => "unreachable",
            ExecStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ExecResult {
    pub host: String,
    pub status: ExecStatus,
    pub exit_code: Option<u32>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    /// Why it did not run or end well, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the fan-out reports while it runs.
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ExecEvent {
    Started {
        host: String,
    },
    Output {
        host: String,
        stream: Stream,
        data: Vec<u8>,
    },
    Done(ExecResult),
}

/// Runs the command on every host; events arrive on `events` as they happen. Setting
/// `cancel` to true stops every run still going (their connections close, so each
/// host's watchdog stops the command there).
pub async fn exec_hosts(
    jobs: Vec<Job>,
    options: ExecOptions,
    events: mpsc::UnboundedSender<ExecEvent>,
    cancel: watch::Receiver<bool>,
) -> Vec<ExecResult> {
    let options = Arc::new(options);
    let connector = Arc::new(Connector::new(
        crate::RoundOptions::default().handshake_limit,
    ));
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (options, connector, slots, events) =
                (options.clone(), connector.clone(), slots.clone(), events.clone());
            let mut cancel = cancel.clone();
            tokio::spawn(async move {
                let name = job.host.name.clone();
                let started = Instant::now();
                let run = async {
                    let _slot = slots.acquire().await;
                    let _ = events.send(ExecEvent::Started { host: name.clone() });
                    run_on(&job, &options, &connector, &events).await
                };
                let result = tokio::select! {
                    r = run => r,
                    _ = cancel.wait_for(|c| *c) => outcome(&name, Err(Failure::Cancelled), Default::default(), started),
                };
                let _ = events.send(ExecEvent::Done(result.clone()));
                result
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(r) = task.await {
            results.push(r);
        }
    }
    results
}

enum Failure {
    Transport(TransportError),
    Unreachable(TransportError),
    Cancelled,
}

async fn run_on(
    job: &Job,
    options: &ExecOptions,
    connector: &Connector,
    events: &mpsc::UnboundedSender<ExecEvent>,
) -> ExecResult {
    let mut sink = |stream: Stream, data: &[u8]| {
        let _ = events.send(ExecEvent::Output {
            host: job.host.name.clone(),
            stream,
            data: data.to_vec(),
        });
    };
    let session = options
        .sessions
        .as_ref()
        .and_then(|s| s.get(&job.host.name));
    run_job(job, options, connector, session, &mut sink).await
}

/// Runs one job: over `session` when given (a session `dcmon serve` keeps open), else
/// over a new connection (or locally); output goes to `on_output` as it arrives.
pub async fn run_job(
    job: &Job,
    options: &ExecOptions,
    connector: &Connector,
    session: Option<Arc<crate::ssh::SshSession>>,
    on_output: &mut (dyn FnMut(Stream, &[u8]) + Send),
) -> ExecResult {
    if let Some(script) = &job.bmc {
        return crate::fanout_bmc::run(job, script, job.host.connect_timeout, on_output).await;
    }
    let started = Instant::now();
    let host = &job.host;
    let line = wrapped(&job.line, job.become_root);
    let mut seen = (Vec::new(), Vec::new());
    let mut sink = |stream: Stream, data: &[u8]| {
        match stream {
            Stream::Stdout => seen.0.extend_from_slice(data),
            Stream::Stderr => seen.1.extend_from_slice(data),
        }
        on_output(stream, data);
    };
    let collector = Collector::new(options.output_cap, &mut sink);
    let channel_failure = |e| match e {
        // The connection failed under the command, or the host refused a channel.
        TransportError::Channel { .. } => Failure::Unreachable(e),
        e => Failure::Transport(e),
    };
    let result = match (host.transport, session) {
        (Transport::Local, _) => run_local(&line, &[], options.timeout, collector)
            .await
            .map_err(Failure::Transport),
        (Transport::Ssh, Some(session)) => session
            .run_command(&line, options.timeout, collector)
            .await
            .map_err(channel_failure),
        (Transport::Ssh, None) => match connector.connect(host, options.accept_new_host_keys).await
        {
            Ok(session) => {
                let r = session
                    .run_command(&line, options.timeout, collector)
                    .await
                    .map_err(channel_failure);
                session.close().await;
                r
            }
            Err(e) => Err(Failure::Unreachable(e)),
        },
    };
    outcome(&host.name, result, seen, started)
}

fn outcome(
    host: &str,
    result: Result<ExecOutput, Failure>,
    seen: (Vec<u8>, Vec<u8>),
    started: Instant,
) -> ExecResult {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (status, exit_code, error) = match &result {
        Ok(out) => match &out.exit {
            Exit::Code(0) => (ExecStatus::Ok, Some(0), None),
            Exit::Code(n) => (ExecStatus::Failed, Some(*n), None),
            Exit::Signal(s) => (ExecStatus::Failed, None, Some(format!("killed by SIG{s}"))),
            Exit::Unknown => (
                ExecStatus::Failed,
                None,
                Some("the channel closed without an exit status".to_string()),
            ),
        },
        Err(Failure::Transport(e @ TransportError::Timeout(_))) => (
            ExecStatus::Timeout,
            None,
            Some(format!("still running: {e}; stopped")),
        ),
        Err(Failure::Transport(e)) => (ExecStatus::Failed, None, Some(e.to_string())),
        Err(Failure::Unreachable(e)) => (ExecStatus::Unreachable, None, Some(e.to_string())),
        Err(Failure::Cancelled) => (
            ExecStatus::Cancelled,
            None,
            Some("cancelled (Ctrl-C)".to_string()),
        ),
    };
    let (stdout, stderr) = match result {
        Ok(out) => (text(&out.stdout), text(&out.stderr)),
        Err(_) => (text(&seen.0), text(&seen.1)),
    };
    ExecResult {
        host: host.to_string(),
        status,
        exit_code,
        stdout,
        stderr,
        duration_ms: started.elapsed().as_millis() as u64,
        error,
    }
}
