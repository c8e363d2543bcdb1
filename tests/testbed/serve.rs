//! `dcmon serve --json` in the background, its reports collected as they come.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `dcmon serve --json` in the background, its stdout lines collected as they come.
pub struct Serve {
    pub child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Serve {
    pub fn start(inventory: &std::path::Path, db: &std::path::Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
            .args([
                "serve",
                "--json",
                "--listen",
                "off",
                "--inventory",
                inventory.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            // DCMON_TEST_LOGS=1 shows serve's log while debugging a test.
            .stderr(if std::env::var_os("DCMON_TEST_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // A line cut by SIGKILL is not a report.
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Serve { child, lines }
    }

    pub fn signal(&mut self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn reports(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the reports so far, or panics after `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if pred(&self.reports()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let reports = self.reports();
        let last: Vec<String> = reports
            .iter()
            .rev()
            .take(3)
            .map(ToString::to_string)
            .collect();
        panic!(
            "timed out waiting for {what}; {} reports, the last: {last:#?}",
            reports.len()
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
