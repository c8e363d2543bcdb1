//! Dashboard actions inside `dcmon serve`: the commands for each action, an audit row
//! written before anything is sent, and the run over the host's live session (a new
//! connection when the host has none up).

use dcmon_inventory::Host;
use dcmon_poller::command::{all_of, each_of};
use dcmon_poller::fan;
use dcmon_poller::fanout::{ExecOptions, Job, run_job};
use dcmon_poller::fanout_bmc::BmcScript;
use dcmon_poller::serve::sessions::Sessions;
use dcmon_poller::ssh::Connector;
use dcmon_store::audit::output_excerpt;
use dcmon_store::{Store, now_ms};
use dcmon_web::actions::{Action, ActionSink, Runner};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Deadline of one dashboard action.
const ACTION_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ServeRunner {
    /// Read at each action, so it sees the inventory `serve` runs now; None: this machine.
    pub inventory: Option<PathBuf>,
    pub db: PathBuf,
    pub sessions: Sessions,
    pub connector: Arc<Connector>,
    pub runtime: tokio::runtime::Handle,
}

impl ServeRunner {
    fn host(&self, name: &str) -> Result<Host, String> {
        let inventory = match &self.inventory {
            Some(file) => dcmon_inventory::load(file, &dcmon_probes::names())
                .map_err(|e| format!("the inventory cannot be read now: {e}"))?,
            None => {
                dcmon_inventory::Inventory::local(&crate::poll_cmd::local_hostname(), Vec::new())
            }
        };
        inventory
            .host(name)
            .cloned()
            .ok_or_else(|| format!("`{name}` is not in the inventory"))
    }
}

/// The commands an action runs on `host`, and whether each runs whatever the one
/// before did (else only while they succeed).
fn commands_of(host: &Host, action: &Action) -> Result<(Vec<Vec<String>>, bool), String> {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(match action {
        Action::FanStatus => (fan::status_commands(host.fan_profile), true),
        Action::FanSet { mode } => (
            fan::set_commands(host.fan_profile, mode).map_err(|e| e.to_string())?,
            false,
        ),
        Action::SysInfo => (
            vec![
                words(&["uname", "-a"]),
                words(&["uptime"]),
                words(&["ipmitool", "mc", "info"]),
            ],
            true,
        ),
        Action::IpmiRaw { bytes } => {
            let mut argv = words(&["ipmitool", "raw"]);
            argv.extend(bytes.iter().map(|b| format!("0x{b:02x}")));
            (vec![argv], false)
        }
    })
}

/// The command line an action runs on `host` (from `quoted` parts only).
fn line_of(host: &Host, action: &Action) -> Result<String, String> {
    let (commands, keep_going) = commands_of(host, action)?;
    Ok(if keep_going {
        each_of(&commands)
    } else {
        all_of(&commands)
    })
}

/// The BMC commands for an action that has them (`None`: this action needs the OS).
fn bmc_script_of(host: &Host, action: &Action) -> Result<Option<BmcScript>, String> {
    if matches!(action, Action::SysInfo) {
        return Ok(None);
    }
    let Some(bmc) = &host.bmc else {
        return Ok(None);
    };
    let (commands, keep_going) = commands_of(host, action)?;
    BmcScript::of(bmc, &commands, keep_going).map(Some)
}

impl ServeRunner {
    /// Writes an audit row for an action refused before anything was sent.
    fn audit_refused(&self, host: &str, action: &Action, who: &str, reason: &str) {
        let written = Store::open(&self.db).and_then(|store| {
            let id = store.audit_start(now_ms(), who, host, action.name(), "")?;
            store.audit_finish(id, "refused", None, 0, reason)
        });
        if let Err(e) = written {
            dcmon_poller::log!("dcmon serve: audit trail: {e}");
        }
    }
}

impl Runner for ServeRunner {
    fn start(&self, name: &str, action: Action, who: &str, sink: ActionSink) -> Result<(), String> {
        // A refusal before anything is sent is audited too, with its reason.
        let refused = |reason: String| {
            self.audit_refused(name, &action, who, &reason);
            reason
        };
        let host = self.host(name).map_err(refused)?;
        let session = self.sessions.get(name);
        // SSH down (no live session) and a BMC to ask: fan and raw IPMI actions go to it.
        let script = match (&session, &host.bmc) {
            (None, Some(_)) => bmc_script_of(&host, &action).map_err(refused)?,
            _ => None,
        };
        let (line, shown) = match (&script, &host.bmc) {
            (Some(script), Some(bmc)) => {
                let shown = script.shown(bmc);
                (shown.clone(), shown)
            }
            _ => {
                let line = line_of(&host, &action).map_err(refused)?;
                let shown = if host.become_ {
                    format!("sudo {line}")
                } else {
                    line.clone()
                };
                (line, shown)
            }
        };
        sink.command(&shown);
        let store = Store::open(&self.db).map_err(|e| e.to_string())?;
        let audit = store
            .audit_start(now_ms(), who, name, action.name(), &shown)
            .map_err(|e| format!("the audit trail cannot be written, so nothing was sent: {e}"))?;
        let connector = self.connector.clone();
        let job = Job {
            become_root: host.become_ && script.is_none(),
            host,
            line,
            bmc: script,
        };
        self.runtime.spawn(async move {
            let options = ExecOptions {
                timeout: ACTION_TIMEOUT,
                concurrency: 1,
                accept_new_host_keys: false,
                output_cap: 1 << 20,
                sessions: None,
            };
            let out = sink.clone();
            let mut on_output = move |_: dcmon_poller::command::Stream, data: &[u8]| {
                out.output(&String::from_utf8_lossy(data))
            };
            let r = run_job(&job, &options, &connector, session, &mut on_output).await;
            if let Some(e) = &r.error {
                sink.output(&format!("\ndcmon: {e}\n"));
            }
            let (status, code) = (r.status.as_str(), r.exit_code.map(i64::from));
            let output = output_excerpt(&r.stdout, &r.stderr);
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) =
                    store.audit_finish(audit, status, code, r.duration_ms as i64, &output)
                {
                    dcmon_poller::log!("dcmon serve: audit trail: {e}");
                }
            })
            .await;
            sink.finish(status, r.exit_code);
        });
        Ok(())
    }
}
