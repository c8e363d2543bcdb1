//! Remote-write receivers from Debian's packages, started privately: VictoriaMetrics
//! and Prometheus (`--web.enable-remote-write-receiver`), each stopped and started
//! again on the same port and data folder, and queried through their Prometheus API.

use super::{Killed, free_port, http_get};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tsdb {
    pub address: String,
    program: &'static str,
    args: Vec<String>,
    ready: &'static str,
    log: PathBuf,
    child: Option<Killed>,
}

impl Tsdb {
    /// VictoriaMetrics with `extra` flags (dedup, relabelling, auth).
    pub fn victoria(dir: &Path, extra: &[String]) -> Tsdb {
        let address = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            format!("-httpListenAddr={address}"),
            format!("-storageDataPath={}", dir.join("vm").display()),
            "-retentionPeriod=1d".to_string(),
            // Queries see the newest samples, not only those 30 s old.
            "-search.latencyOffset=0s".to_string(),
            "-search.disableCache".to_string(),
        ];
        args.extend(extra.iter().cloned());
        Tsdb::start_new("/usr/bin/victoria-metrics", args, "/health", address, dir)
    }

    /// Prometheus taking remote write, scraping nothing.
    pub fn prometheus(dir: &Path) -> Tsdb {
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("prom").display()),
            format!("--web.listen-address={address}"),
            "--web.enable-remote-write-receiver".to_string(),
        ];
        Tsdb::start_new("/usr/bin/prometheus", args, "/-/ready", address, dir)
    }

    fn start_new(
        program: &'static str,
        args: Vec<String>,
        ready: &'static str,
        address: String,
        dir: &Path,
    ) -> Tsdb {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: run tests/run.sh, which installs it"
        );
        let mut tsdb = Tsdb {
            address,
            program,
            args,
            ready,
            log: dir.join(format!("{}.log", program.rsplit('/').next().unwrap())),
            child: None,
        };
        tsdb.start();
        tsdb
    }

    /// Starts it (again) and waits until it says it is ready.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.child = Some(Killed(
            Command::new(self.program)
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&self.address, self.ready).is_none() {
            assert!(
                Instant::now() < deadline,
                "{} not ready: {}",
                self.program,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it as its service manager would (SIGTERM, waiting for the exit): what it
    /// accepted is on disk. (A SIGKILL loses what both still buffer in memory, a few
    /// seconds of VictoriaMetrics' samples and Prometheus' unflushed WAL page, which
    /// no sender can know about.)
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.0.id().to_string()])
                .status();
            let _ = child.0.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections are still accepted by the kernel, nothing is
    /// answered, as a receiver stuck in a long pause or on a dead disk.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen receiver run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([which, &pid.to_string()])
                .status();
        }
    }

    /// The running process (for its CPU time in the benchmark).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.0.id())
    }

    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.address)
    }

    /// `/api/v1/query?query=QUERY`: the `data.result` array (empty when unreachable).
    pub fn query(&self, query: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", encode(query));
        let body = http_get(&self.address, &path).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        parsed["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `query` answers something `pred` accepts; panics with the last
    /// answer after `limit`.
    pub fn wait_for(
        &self,
        query: &str,
        limit: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let result = self.query(query);
            if pred(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{query} on {}: {result:?}",
                self.program
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Percent-encoding of a query parameter.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sample times (ms) of a range-vector answer's first series.
pub fn times_ms(result: &[serde_json::Value]) -> Vec<i64> {
    result
        .first()
        .and_then(|s| s["values"].as_array())
        .map(|values| {
            values
                .iter()
                .map(|v| (v[0].as_f64().unwrap() * 1000.0).round() as i64)
                .collect()
        })
        .unwrap_or_default()
}
