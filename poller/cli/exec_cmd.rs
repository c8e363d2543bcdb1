//! `dcmon exec`: one command on the selected hosts, on dcmon's own connections; each
//! run recorded in the audit trail. Output as `host: line` while it comes (or one block
//! per host, or JSON), a summary, exit 1 if any host failed, 130 after Ctrl-C.

use crate::args::ExecArgs;
use crate::poll_cmd::local_hostname;
use anyhow::{Context, Result};
use dcmon_inventory::Inventory;
use dcmon_poller::command::{Stream, quoted};
use dcmon_poller::fanout::{ExecEvent, ExecOptions, ExecResult, ExecStatus, Job};
use dcmon_store::Store;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Who runs it, for the audit trail: `cli:USER`.
pub fn who() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("cli:{user}")
}

/// Prints `host: line` for each complete line; keeps the rest until more comes.
#[derive(Default)]
struct Prefixer {
    partial: HashMap<(String, bool), Vec<u8>>,
}

impl Prefixer {
    fn push(&mut self, host: &str, stream: Stream, data: &[u8]) {
        let is_err = stream == Stream::Stderr;
        let buffer = self.partial.entry((host.to_string(), is_err)).or_default();
        buffer.extend_from_slice(data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            print_line(host, is_err, &line[..line.len() - 1]);
        }
    }

    fn flush(&mut self, host: &str) {
        for is_err in [false, true] {
            if let Some(rest) = self.partial.remove(&(host.to_string(), is_err))
                && !rest.is_empty()
            {
                print_line(host, is_err, &rest);
            }
        }
    }
}

fn print_line(host: &str, is_err: bool, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    // A closed pipe (`dcmon exec ... | head`) must not panic: ignore write errors.
    if is_err {
        let _ = writeln!(std::io::stderr(), "{host}: {text}");
    } else {
        let _ = writeln!(std::io::stdout(), "{host}: {text}");
    }
}

fn print_block(r: &ExecResult) {
    let mut out = std::io::stdout().lock();
    let code = r
        .exit_code
        .map_or_else(|| r.status.as_str().to_string(), |c| format!("exit {c}"));
    let _ = writeln!(out, "== {} ({code}, {} ms) ==", r.host, r.duration_ms);
    let _ = out.write_all(r.stdout.as_bytes());
    if !r.stdout.is_empty() && !r.stdout.ends_with('\n') {
        let _ = writeln!(out);
    }
    for line in r.stderr.lines() {
        let _ = writeln!(out, "stderr: {line}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "dcmon: {e}");
    }
}

/// How results are shown while jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// `host: line` as output comes.
    Prefixed,
    /// One block per host when it finishes.
    Grouped,
    /// One JSON object per host.
    Json,
    /// Nothing: the caller shows the results.
    Quiet,
}

/// Runs jobs with an audit row per host (written before anything is sent, completed as
/// each host ends), shows them as asked, and stops them all on Ctrl-C. Returns the
/// results and whether Ctrl-C was pressed.
pub fn run_jobs(
    store: Store,
    action: &'static str,
    jobs: Vec<(Job, String)>,
    options: ExecOptions,
    display: Display,
) -> Result<(Vec<ExecResult>, bool)> {
    let total = jobs.len();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let work =
            crate::audited::run_audited(store, who(), action, jobs, options, events_tx, cancel);
        let (ran, shown) = tokio::join!(work, show(events, display, total, cancel_tx));
        // Jobs sent to BMCs over Redfish leave no session open.
        dcmon_poller::redfish::logout_all(std::time::Duration::from_secs(3)).await;
        ran?;
        shown
    })
}

/// Shows events as they come until the run ends; Ctrl-C sets `cancel`. Returns the
/// results (from the `Done` events) and whether Ctrl-C was pressed.
pub async fn show(
    mut events: tokio::sync::mpsc::UnboundedReceiver<ExecEvent>,
    display: Display,
    total: usize,
    cancel: tokio::sync::watch::Sender<bool>,
) -> Result<(Vec<ExecResult>, bool)> {
    let progress = std::io::stderr().is_terminal() && display != Display::Json && total > 10;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the Ctrl-C handler")?;
    let mut prefixer = Prefixer::default();
    let mut results = Vec::with_capacity(total);
    let (mut failed, mut interrupted) = (0usize, false);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(ExecEvent::Started { .. }) => {}
                Some(ExecEvent::Output { host, stream, data }) => {
                    if display == Display::Prefixed {
                        prefixer.push(&host, stream, &data);
                    }
                }
                Some(ExecEvent::Done(r)) => {
                    if r.status != ExecStatus::Ok {
                        failed += 1;
                    }
                    match display {
                        Display::Json => {
                            if let Ok(text) = serde_json::to_string(&r) {
                                let _ = writeln!(std::io::stdout(), "{text}");
                            }
                        }
                        Display::Grouped => print_block(&r),
                        Display::Prefixed => prefixer.flush(&r.host),
                        Display::Quiet => {}
                    }
                    results.push(r);
                    if progress {
                        let _ = write!(std::io::stderr(), "\r\x1b[K[{}/{total}] {failed} not ok", results.len());
                    }
                }
                None => break,
            },
            _ = sigint.recv(), if !interrupted => {
                interrupted = true;
                let _ = cancel.send(true);
            }
        }
    }
    if progress {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
    Ok((results, interrupted))
}

/// The hosts a selector picks from the inventory (this machine without one); a broken
/// inventory is an error listing its problems.
pub fn hosts_of(
    inventory: Option<&std::path::Path>,
    selector: &str,
) -> Result<Vec<dcmon_inventory::Host>> {
    let inventory = inventory_of(inventory)?;
    selected(&inventory, selector)
}

/// The inventory file, or the local machine alone when none is given.
pub fn inventory_of(inventory: Option<&std::path::Path>) -> Result<Inventory> {
    Ok(match inventory {
        Some(file) => dcmon_inventory::load(file, &dcmon_probes::names())?,
        None => Inventory::local(&local_hostname(), Vec::new()),
    })
}

/// The hosts `selector` picks, at least one.
pub fn selected(inventory: &Inventory, selector: &str) -> Result<Vec<dcmon_inventory::Host>> {
    let hosts: Vec<_> = dcmon_inventory::select(inventory, selector)?
        .into_iter()
        .cloned()
        .collect();
    if hosts.is_empty() {
        anyhow::bail!("`{selector}` selects no host");
    }
    Ok(hosts)
}

/// The exit code after a run: 130 after Ctrl-C, 1 when a host did not end well.
pub fn exit_code(results: &[ExecResult], interrupted: bool) -> ExitCode {
    if interrupted {
        ExitCode::from(130)
    } else if results.iter().all(|r| r.status == ExecStatus::Ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    let display = if args.json {
        Display::Json
    } else if args.group_output {
        Display::Grouped
    } else {
        Display::Prefixed
    };
    // With `dcmon serve` running on this database, go through it: its sessions, its inventory.
    if !args.standalone
        && let Ok(stream) =
            std::os::unix::net::UnixStream::connect(crate::control::socket_path(&args.db))
    {
        return exec_via_serve(&args, stream, display);
    }
    let hosts = hosts_of(args.inventory.as_deref(), &args.selector)?;
    let store = Store::open(&args.db)?;
    let shown = if args.become_root {
        format!("sudo {}", quoted(&args.command))
    } else {
        quoted(&args.command)
    };
    let jobs = hosts
        .into_iter()
        .map(|host| {
            let job = Job {
                host,
                line: quoted(&args.command),
                become_root: args.become_root,
                bmc: None,
            };
            (job, shown.clone())
        })
        .collect();
    let options = ExecOptions {
        timeout: args.timeout,
        concurrency: args.concurrency,
        accept_new_host_keys: args.accept_new_host_keys,
        output_cap: 16 << 20,
        sessions: None,
    };
    let (results, interrupted) = run_jobs(store, "exec", jobs, options, display)?;
    summary("exec", &results);
    Ok(exit_code(&results, interrupted))
}

fn exec_via_serve(
    args: &ExecArgs,
    stream: std::os::unix::net::UnixStream,
    display: Display,
) -> Result<ExitCode> {
    let _ = writeln!(
        std::io::stderr(),
        "dcmon exec: through dcmon serve ({}): its inventory and sessions",
        crate::control::socket_path(&args.db).display()
    );
    let request = crate::control::ExecRequest {
        selector: args.selector.clone(),
        argv: args.command.clone(),
        become_root: args.become_root,
        timeout_ms: args.timeout.as_millis() as u64,
        concurrency: args.concurrency,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (results, interrupted) = runtime.block_on(async {
        stream.set_nonblocking(true)?;
        let stream = tokio::net::UnixStream::from_std(stream)?;
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let work = crate::control::exec_via(stream, request, events_tx, cancel);
        let (ran, shown) = tokio::join!(work, show(events, display, 0, cancel_tx));
        ran?;
        shown
    })?;
    summary("exec", &results);
    Ok(exit_code(&results, interrupted))
}

/// `50 hosts: 48 ok, 1 failed (db2: exit 3), 1 timeout (gpu07)` on stderr.
pub fn summary(what: &str, results: &[ExecResult]) {
    let mut parts = Vec::new();
    for status in [
        ExecStatus::Ok,
        ExecStatus::Failed,
        ExecStatus::Timeout,
        ExecStatus::Unreachable,
        ExecStatus::Cancelled,
    ] {
        let hosts: Vec<String> = results
            .iter()
            .filter(|r| r.status == status)
            .map(|r| match r.exit_code {
                Some(c) if status == ExecStatus::Failed => format!("{}: exit {c}", r.host),
                _ => r.host.clone(),
            })
            .collect();
        if hosts.is_empty() {
            continue;
        }
        if status == ExecStatus::Ok {
            parts.push(format!("{} ok", hosts.len()));
        } else {
            let mut named = hosts
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if hosts.len() > 10 {
                named.push_str(&format!(", … {} more", hosts.len() - 10));
            }
            parts.push(format!("{} {} ({named})", hosts.len(), status.as_str()));
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "dcmon {what}: {} hosts: {}",
        results.len(),
        parts.join(", ")
    );
    for r in results.iter().filter(|r| r.status != ExecStatus::Ok) {
        if let Some(e) = &r.error {
            let _ = writeln!(std::io::stderr(), "  {}: {e}", r.host);
        }
    }
}
