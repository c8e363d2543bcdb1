//! Ad-hoc commands on hosts (`dcmon exec`, fan modes, dashboard actions): the exact line
//! sent to the host, and running it over SSH or locally with output as it arrives.
//!
//! The arguments are quoted for the host's shell one by one, so nothing in them is
//! interpreted. The line runs under a small watchdog: the command gets its own process
//! group (setsid) and /dev/null as stdin, and the watchdog waits on the channel's stdin,
//! which dcmon keeps open. When dcmon closes the channel (deadline, Ctrl-C, a dropped
//! connection), stdin ends and the watchdog kills the command's process group, TERM then
//! KILL after 2 s. Without it sshd would only close the pipes and leave `sleep 1000`
//! (or a hung `ipmitool`) running on the host.

use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use dcmon_probes::registry::sh_quote;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `$1` (the quoted command) in its own process group and kills that group when
/// stdin ends before the command does. POSIX sh; async lists get /dev/null as stdin,
/// hence the copy of stdin on fd 3.
const WATCHDOG: &str = r#"exec 3<&0
setsid sh -c "$1" </dev/null & c=$!
{ while read -r _; do :; done; kill -TERM -"$c" && sleep 2 && kill -KILL -"$c"; } <&3 >/dev/null 2>&1 & w=$!
exec 3<&-
wait "$c"; s=$?; kill "$w" 2>/dev/null; exit "$s""#;

/// A probe script under the same watchdog. The script arrives on stdin ahead of the
/// watchdog's wait: `head -c $1` takes exactly its bytes (it must end with `$2`, so a
/// cut-off script never runs), the script runs in its own process group, and stdin,
/// which dcmon keeps open, then tells the watchdog when the channel closes. Once the
/// script ends, whatever it left in its group is killed too.
const PROBE_WATCHDOG: &str = r#"exec 3<&0
s=$(head -c "$1")
case $s in *"$2") ;; *) echo "dcmon: the probe script arrived incomplete" >&2; exit 125;; esac
setsid sh -c "$s" dcmon-probe </dev/null & c=$!
{ while read -r _; do :; done; kill -TERM -"$c" && sleep 2 && kill -KILL -"$c"; } <&3 >/dev/null 2>&1 & w=$!
exec 3<&-
wait "$c"; s=$?; kill -KILL -"$c" 2>/dev/null; kill "$w" 2>/dev/null; exit "$s""#;

/// The last line of every probe script sent: the watchdog runs nothing that lacks it.
const SCRIPT_END: &str = "# dcmon: end of script";

/// The bytes a probe run writes to the channel's stdin: the script and its end line.
pub fn probe_input(script: &str) -> Vec<u8> {
    format!("{script}\n{SCRIPT_END}\n").into_bytes()
}

/// The command line of a probe run whose `probe_input` is `input_len` bytes long: short,
/// so `ps` and sudo's log show no script.
pub fn probe_line(input_len: usize, become_root: bool) -> String {
    let line = format!(
        "sh -c {} dcmon-probe {input_len} {}",
        sh_quote(PROBE_WATCHDOG),
        sh_quote(SCRIPT_END)
    );
    as_root(line, become_root)
}

/// `line` under `sudo -n` for `become` (never asking for a password), else as it is.
pub fn as_root(line: String, become_root: bool) -> String {
    if become_root {
        format!("sudo -n {line}")
    } else {
        line
    }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `argv` quoted for a POSIX shell: the command line an operator would have typed.
pub fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line sent to the host: the quoted command under the watchdog (and `sudo -n`).
pub fn remote_line(argv: &[String], become_root: bool) -> String {
    wrapped(&quoted(argv), become_root)
}

/// Several commands, each quoted, run one after another while they succeed.
pub fn all_of(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Several commands, each quoted, run one after another whatever each did.
pub fn each_of(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `line` (a command line built from `quoted` parts only) under the watchdog.
pub fn wrapped(line: &str, become_root: bool) -> String {
    let line = format!("sh -c {} dcmon-exec {}", sh_quote(WATCHDOG), sh_quote(line));
    as_root(line, become_root)
}

/// Output as it arrives, and the total kept for the result.
pub struct Collector<'a> {
    cap: usize,
    out: ExecOutput,
    on_output: &'a mut (dyn FnMut(Stream, &[u8]) + Send),
}

impl<'a> Collector<'a> {
    pub fn new(cap: usize, on_output: &'a mut (dyn FnMut(Stream, &[u8]) + Send)) -> Self {
        Collector {
            cap,
            out: ExecOutput {
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit: Exit::Unknown,
            },
            on_output,
        }
    }

    /// Passes a chunk on; fails once a stream outgrows the cap.
    pub fn push(&mut self, stream: Stream, data: &[u8]) -> Result<(), TransportError> {
        (self.on_output)(stream, data);
        let kept = match stream {
            Stream::Stdout => &mut self.out.stdout,
            Stream::Stderr => &mut self.out.stderr,
        };
        kept.extend_from_slice(data);
        if kept.len() > self.cap {
            return Err(TransportError::OutputTooLarge(self.cap));
        }
        Ok(())
    }

    pub fn finish(mut self, exit: Exit) -> ExecOutput {
        self.out.exit = exit;
        self.out
    }
}

/// Runs `line` with the local `sh`, `input` on its stdin, which is then held open like
/// an SSH channel's until the run ends.
pub async fn run_local(
    line: &str,
    input: &[u8],
    limit: Duration,
    mut collector: Collector<'_>,
) -> Result<ExecOutput, TransportError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(TransportError::Local)?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(TransportError::Local(std::io::Error::other(
            "child pipes missing",
        )));
    };
    let work = async {
        // Written before the output is read: a script is a few kB, well under a pipe's
        // buffer, and the watchdog reads it before anything runs. The pipe stays open
        // (dropped on return): the watchdog then stops whatever still runs.
        if !input.is_empty() {
            stdin
                .write_all(input)
                .await
                .map_err(TransportError::Local)?;
        }
        let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                n = stdout.read(&mut out_buf), if out_open => match n.map_err(TransportError::Local)? {
                    0 => out_open = false,
                    n => collector.push(Stream::Stdout, &out_buf[..n])?,
                },
                n = stderr.read(&mut err_buf), if err_open => match n.map_err(TransportError::Local)? {
                    0 => err_open = false,
                    n => collector.push(Stream::Stderr, &err_buf[..n])?,
                },
            }
        }
        child.wait().await.map_err(TransportError::Local)
    };
    let status = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| TransportError::Timeout(limit))??;
    let exit = crate::exec::exit_of(status);
    Ok(collector.finish(exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    async fn local(
        words: &[&str],
        limit: Duration,
    ) -> (Result<ExecOutput, TransportError>, Vec<u8>) {
        let mut seen = Vec::new();
        let mut sink = |_: Stream, d: &[u8]| seen.extend_from_slice(d);
        let result = run_local(
            &remote_line(&argv(words), false),
            &[],
            limit,
            Collector::new(1 << 20, &mut sink),
        )
        .await;
        (result, seen)
    }

    #[tokio::test]
    async fn arguments_arrive_unchanged() {
        let hostile = ["a'b", "$(id)", "x;y", "l1\nl2", "`uname`", "\"q\"", "*", ""];
        let mut words = vec!["printf", "[%s]\\n"];
        words.extend(hostile);
        let (result, seen) = local(&words, Duration::from_secs(10)).await;
        let out = result.unwrap();
        assert_eq!(out.exit, Exit::Code(0));
        let expected: String = hostile.iter().map(|h| format!("[{h}]\n")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
        assert_eq!(seen, out.stdout, "streamed as it came");
    }

    #[tokio::test]
    async fn exit_codes_and_stderr_come_back() {
        let (result, _) = local(
            &["sh", "-c", "echo oops >&2; exit 3"],
            Duration::from_secs(10),
        )
        .await;
        let out = result.unwrap();
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(out.stderr, b"oops\n");
    }

    #[tokio::test]
    async fn a_deadline_stops_the_command_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("still-running");
        let script = format!("sleep 30; touch {}", marker.display());
        let started = std::time::Instant::now();
        let (result, _) = local(&["sh", "-c", &script], Duration::from_millis(500)).await;
        assert!(
            matches!(result, Err(TransportError::Timeout(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        // The watchdog kills the group: sleep never gets to touch the marker.
        let gone = (0..30).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let pgrep = std::process::Command::new("pgrep")
                .args(["-f", &script])
                .output()
                .unwrap();
            pgrep.stdout.is_empty()
        });
        assert!(gone, "the command still runs after its deadline");
        assert!(!marker.exists());
    }
}
