//! Dashboard actions: what an admin may run on a host, checked here; who runs them is
//! plugged in by `dcmon serve` (`Runner`), so this crate stays free of SSH. Each started
//! action is kept in memory (the last 200) with its output as it arrives, for its page
//! and its event stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Actions kept for their pages.
const KEPT: usize = 200;

/// What an admin may run from the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    FanStatus,
    /// The mode is checked against the host's profile by the runner.
    FanSet {
        mode: String,
    },
    /// `uname -a`, `uptime`, `ipmitool mc info`.
    SysInfo,
    /// `ipmitool raw` with these bytes (netfn, command, data).
    IpmiRaw {
        bytes: Vec<u8>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::FanStatus => "fan-status",
            Action::FanSet { .. } => "fan-set",
            Action::SysInfo => "sysinfo",
            Action::IpmiRaw { .. } => "ipmi-raw",
        }
    }
}

/// `0x30 0x45 0x00` or `30 45 00`: 2 to 32 bytes (netfn, command, data).
pub fn parse_raw_bytes(text: &str) -> Result<Vec<u8>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 2 || words.len() > 32 {
        return Err(format!(
            "raw IPMI needs 2 to 32 bytes (netfn, command, data), got {}",
            words.len()
        ));
    }
    words
        .iter()
        .map(|w| {
            let digits = w
                .strip_prefix("0x")
                .or_else(|| w.strip_prefix("0X"))
                .unwrap_or(w);
            if digits.is_empty() || digits.len() > 2 {
                return Err(format!("`{w}` is not a byte like 0x30"));
            }
            u8::from_str_radix(digits, 16).map_err(|_| format!("`{w}` is not a byte like 0x30"))
        })
        .collect()
}

/// One action's progress.
pub struct ActionState {
    pub id: u64,
    pub host: String,
    pub action: &'static str,
    pub who: String,
    inner: Mutex<Progress>,
    /// Bumped on every change, for event streams to wake up.
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Default, Clone)]
pub struct Progress {
    pub command: String,
    pub output: String,
    /// (status, exit code) once it ended.
    pub done: Option<(String, Option<u32>)>,
}

impl ActionState {
    pub fn progress(&self) -> Progress {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Where a runner sends an action's output and its end.
#[derive(Clone)]
pub struct ActionSink(Arc<ActionState>);

impl ActionSink {
    pub fn command(&self, command: &str) {
        self.0.update(|p| p.command = command.to_string());
    }

    pub fn output(&self, text: &str) {
        self.0.update(|p| p.output.push_str(text));
    }

    pub fn finish(&self, status: &str, exit_code: Option<u32>) {
        self.0
            .update(|p| p.done = Some((status.to_string(), exit_code)));
    }
}

/// Runs actions on hosts; `dcmon serve` provides it.
pub trait Runner: Send + Sync {
    /// Checks and starts `action` on `host` for `who`; output and the end go to `sink`
    /// from the runner's own task. An error means nothing was sent.
    fn start(&self, host: &str, action: Action, who: &str, sink: ActionSink) -> Result<(), String>;
}

/// The actions started since the server started (the last `KEPT`).
#[derive(Default)]
pub struct Actions {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<ActionState>>>,
}

impl Actions {
    pub fn create(&self, host: &str, action: &Action, who: &str) -> Arc<ActionState> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let state = Arc::new(ActionState {
            id,
            host: host.to_string(),
            action: action.name(),
            who: who.to_string(),
            inner: Mutex::new(Progress::default()),
            changed: tokio::sync::watch::channel(0).0,
        });
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(id, state.clone());
        while all.len() > KEPT {
            all.pop_first();
        }
        state
    }

    pub fn get(&self, id: u64) -> Option<Arc<ActionState>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn sink(state: &Arc<ActionState>) -> ActionSink {
        ActionSink(state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_checked() {
        assert_eq!(
            parse_raw_bytes("0x30 0x45 0x00").unwrap(),
            [0x30, 0x45, 0x00]
        );
        assert_eq!(parse_raw_bytes("06 01").unwrap(), [0x06, 0x01]);
        for bad in [
            "0x30",
            "0x30 0x456",
            "0x30 zz",
            "0x30 0x",
            "",
            "0x30 ; reboot",
        ] {
            assert!(parse_raw_bytes(bad).is_err(), "{bad}");
        }
        assert!(parse_raw_bytes(&"0x00 ".repeat(33)).is_err());
    }
}
