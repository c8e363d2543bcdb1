//! `dcmon serve` with its dashboard on a free loopback port, and plain HTTP requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dashboard {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    /// `127.0.0.1:PORT`
    pub address: String,
}

impl Dashboard {
    /// Starts `dcmon serve ARGS --listen 127.0.0.1:0` and waits for the address it prints.
    pub fn start(args: &[&str]) -> Dashboard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcmon"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Keep reading stderr for the whole run, as an operator's terminal would.
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("dcmon serve: dashboard on ") {
                    let _ = tx.send(url.trim_end_matches('/').to_string());
                } else if line.starts_with("Error") || line.contains("cannot") {
                    let _ = tx.send(format!("failed: {line}"));
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve prints the dashboard address");
        assert!(!url.starts_with("failed"), "{url}");
        let address = url.split("://").nth(1).unwrap().to_string();
        Dashboard {
            child,
            url,
            address,
        }
    }

    /// `dcmon serve --inventory INV --db DB` with its dashboard.
    pub fn serve(inventory: &std::path::Path, db: &std::path::Path) -> Dashboard {
        Dashboard::start(&[
            "--inventory",
            inventory.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
    }

    /// `GET path` over plain HTTP: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    /// Waits until `pred` holds for the JSON at `path`, or panics after `limit`.
    pub fn wait_for_json(
        &self,
        path: &str,
        limit: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = self.get(path);
            // Chunked bodies: the JSON is the line that parses.
            let value = body
                .lines()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .unwrap_or_default();
            if status == 200 && pred(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out on {path}: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl with `args` (cookie jar, CA file, data …): (status, headers and body). A failed
/// transfer panics with curl's message.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i"])
        .args(args)
        .output()
        .expect("curl runs (tests/run.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The value of `<input … name="NAME" value="…">` in a page.
pub fn form_field(html: &str, name: &str) -> String {
    html.split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .to_string()
}

/// The `location` header of a response curl printed with `-i`.
pub fn location(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no location in {answer}"))
        .trim()
        .to_string()
}
