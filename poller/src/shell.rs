//! The persistent shell: one `sh` kept open per host (and one `sudo -n sh` for
//! `become`) on an exec channel of the host's one SSH connection. Each probe run is one
//! command on its stdin, `dcmon_run NONCE 'SCRIPT'` (a line for dash, a length-prefixed
//! frame for bash), so a run costs the host one fork instead of a new sshd session, a
//! login shell and the exec-mode watchdog's processes; `dcmon_here` runs a built-in
//! `in_shell` script with no fork at all.
//!
//! How a run is framed (see `BOOT`): the shell prints `NONCE` on stdout and on stderr,
//! forks the run as a subshell with /dev/null as stdin, and goes back to reading its
//! stdin. The subshell evaluates the script; its EXIT trap (which also runs on `exit N`)
//! stops whatever the script left running in the process group, then prints
//! `\nNONCE STATUS` on stdout and `\nNONCE` on stderr. The nonce is 122 random bits made
//! for that run only and never put in the environment or on a command line, so nothing
//! a probe prints (a log line, a replayed capture) can end a run early or forge one.
//! Bytes before a run's opening marker (a leftover writing late) are dropped.
//!
//! Why nothing outlives a run or the shell:
//! - State: the script runs in a forked subshell, so variables, functions, cwd, umask,
//!   traps, `set` options and `exit` stay there; the shell itself only runs the
//!   functions `BOOT` defines and the built-in scripts marked `in_shell`, which are
//!   written to leave nothing (checked by tests/shell.rs around each of them).
//! - Processes: the shell is its session's process group (sshd calls setsid; `exec`
//!   keeps any login shell from sitting in between), and a run's subshell and children
//!   share it. At a run's end the subshell sends TERM to the group, which the shell
//!   itself catches and ignores. When dcmon closes the channel (deadline, output cap,
//!   shutdown) or the connection dies, the shell reads end-of-file while the run goes
//!   on in the background, and its EXIT trap sends TERM to the group, then KILL 1 s
//!   later, itself included. A run that holds the shell (`in_shell`, or a stopped
//!   shell) is stopped at its deadline from an exec channel (`SshSession::stop_group`).

use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use dcmon_probes::registry::sh_quote;
use russh::ChannelMsg;
use russh::client::{Handle, Msg};
use std::time::Duration;
use tokio::time::{Instant, timeout, timeout_at};

/// What the shell runs before its first probe: POSIX sh, dash and bash alike.
/// The end markers go to copies of the channel's streams on fds 7 and 8, so a script that
/// sends its own output elsewhere (`exec 2>/dev/null`, common at the top of a script) still
/// ends its run; only a script that takes fd 7 or 8 for itself loses them (and is then
/// cut at its deadline, as a hung run is). The run's TERM and HUP traps turn a script's
/// `kill 0` into an ordinary end (status 143 or 129) rather than a death without markers.
/// The run is an asynchronous `{ ...; } &`, a subshell of one fork in dash and bash alike
/// (bash forks twice for `( ... ) &`).
const BOOT: &str = r#"trap : TERM
trap 'trap "" TERM; kill -TERM 0 2>/dev/null; sleep 1; kill -KILL 0' EXIT
exec 7>&1 8>&2
dcmon_end() { trap '' TERM; kill -TERM 0 2>/dev/null; printf '\n%s %s\n' "$1" "$2" >&7; printf '\n%s\n' "$1" >&8; }
dcmon_run() { printf '%s\n' "$1"; printf '%s\n' "$1" >&2; { trap "dcmon_end $1 \$?" EXIT; trap 'exit 143' TERM; trap 'exit 129' HUP; dcmon_script=$2; set --; eval "$dcmon_script"; } </dev/null & }
dcmon_here() { printf '%s\n' "$1"; printf '%s\n' "$1" >&2; eval "$2" </dev/null; set -- "$1" "$?"; printf '\n%s %s\n' "$1" "$2" >&7; printf '\n%s\n' "$1" >&8; }
"#;

/// Which shell the host's `sh` is, and so how runs are sent to it (told by the ready
/// line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// bash 4.1 or later (`sh` on RHEL, Rocky, Fedora, SUSE): each run is a frame
    /// (`LEN\n` in 8 digits, then LEN bytes) read with `read -N`, one block read. bash
    /// reads the commands it parses from a pipe one byte per system call (it must not
    /// read past a line a child might want), which for a 2 KB script costs the host
    /// more than the whole run (measured with strace: 2,010 reads for a 2 KB line, 5
    /// with `read -N`).
    Framed,
    /// Any other sh (dash, busybox): each run is a line of commands, which these shells
    /// read in blocks.
    Lines,
}

/// Started after the ready line. bash with `read -N` (4.1+) stays in this loop: it reads
/// a frame, evaluates it and reads the next; end-of-file ends the loop and the shell.
/// `LC_ALL=C` makes `-N` count bytes, not characters. A run's end sends TERM to the
/// process group, the shell included (it ignores it by trap), and bash in POSIX mode
/// (bash as `sh`) then ends a waiting `read` with a status over 128 having read nothing:
/// such a read is simply made again. Other shells skip the loop.
const FRAME_LOOP: &str = concat!(
    "[ \"$dcmon_flavor\" = framed ] && while :; do ",
    "dcmon_n=; LC_ALL=C IFS= read -r -N 9 dcmon_n; dcmon_s=$?; ",
    "if [ \"$dcmon_s\" -gt 128 ] && [ -z \"$dcmon_n\" ]; then continue; fi; ",
    "[ \"$dcmon_s\" = 0 ] || break; ",
    "dcmon_c=; while :; do LC_ALL=C IFS= read -r -N \"$((10#${dcmon_n%?}))\" dcmon_c; dcmon_s=$?; ",
    "[ \"$dcmon_s\" -gt 128 ] && [ -z \"$dcmon_c\" ] || break; done; ",
    "[ \"$dcmon_s\" = 0 ] || break; ",
    "eval \"$dcmon_c\"; done\n"
);

/// Largest frame a run can be (8 decimal digits of length).
const FRAME_MAX: usize = 99_999_999;

/// Most bytes kept of what a shell printed before it failed to start, for the message.
const START_OUTPUT_KEPT: usize = 4096;

/// A shell that is open and between runs.
pub(crate) struct Shell {
    channel: russh::Channel<Msg>,
    /// The shell's process group on the host, which its runs share: what is left to stop
    /// if the shell itself dies (an OOM kill) under a run.
    pub(crate) group: Option<u32>,
    pub(crate) flavor: Flavor,
}

/// Why a shell could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The host took the channel but did not keep a shell on it (a forced command, a
    /// restricted shell, sudo refusing): exec mode may still work. The text says why.
    Refused(String),
    /// The connection failed or the deadline passed: the same as any run's failure.
    Transport(TransportError),
}

/// The shell kept open: `sh -s`, under `sudo -n` for `become`. The host's own `sh`, not
/// bash where it exists: bash reads files in blocks (`mapfile`), but every fork and exec
/// from it costs the host more (measured on the build machine: a run of `cat` from a
/// bash subshell 2.6 ms of host CPU against 1.5 ms from dash; the os probe's reads with
/// bash builtins 0.8 ms, about what dash pays for one `grep`), and most probes run a
/// tool. Where `sh` is bash (RHEL and its kin) runs are framed for it (`Flavor`).
pub(crate) fn shell_command(become_root: bool) -> String {
    crate::command::as_root("sh -s".to_string(), become_root)
}

/// A fresh marker for one run or start: `dcmon-` and 32 hex digits.
fn nonce() -> String {
    format!("dcmon-{}", uuid::Uuid::new_v4().simple())
}

impl Shell {
    /// Opens a channel, starts `sh -s` (under `sudo -n` for `become`) and waits for it to
    /// say it is ready, all before `deadline`.
    pub(crate) async fn start(
        handle: &Handle<crate::ssh::Client>,
        addr: &str,
        become_root: bool,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Shell, StartError> {
        let channel_error = |source| {
            StartError::Transport(TransportError::Channel {
                addr: addr.to_string(),
                source,
            })
        };
        let late = || StartError::Transport(TransportError::Timeout(limit));
        let mut channel = timeout_at(deadline, handle.channel_open_session())
            .await
            .map_err(|_| late())?
            .map_err(channel_error)?;
        let command = format!("exec {}", shell_command(become_root));
        let ready = nonce();
        // Ready, with the process group (field 5 of /proc/PID/stat; the command name is
        // `sh` or `bash`, without spaces), read by a builtin: no fork; then the flavor.
        let boot = format!(
            "{BOOT}dcmon_group=\nread -r _ _ _ _ dcmon_group _ </proc/$$/stat 2>/dev/null\ndcmon_flavor=lines\ncase ${{BASH_VERSION-}} in [5-9]* | 4.[1-9]*) dcmon_flavor=framed ;; esac\nprintf '%s %s %s\\n' {ready} \"$dcmon_group\" \"$dcmon_flavor\"\n{FRAME_LOOP}"
        );
        let started = timeout_at(deadline, async {
            channel
                .exec(true, command.as_str())
                .await
                .map_err(channel_error)?;
            channel.data(boot.as_bytes()).await.map_err(channel_error)?;
            wait_ready(&mut channel, &ready).await
        })
        .await;
        match started {
            Ok(Ok((group, flavor))) => Ok(Shell {
                channel,
                group,
                flavor,
            }),
            Ok(Err(e)) => {
                let _ = timeout(Duration::from_secs(1), channel.close()).await;
                Err(e)
            }
            Err(_) => {
                let _ = timeout(Duration::from_secs(1), channel.close()).await;
                Err(late())
            }
        }
    }

    /// Runs `script` and returns what it printed and how it ended, all before
    /// `deadline`. After an error the shell must be closed, not reused: its run may
    /// still be going, and closing is what stops it on the host.
    ///
    /// `in_shell` runs it in the shell itself, without the subshell's fork: only for
    /// built-in scripts that leave nothing behind (`Probe::in_shell`), never a user's.
    pub(crate) async fn run(
        &mut self,
        addr: &str,
        script: &str,
        in_shell: bool,
        deadline: Instant,
        limit: Duration,
        output_cap: usize,
    ) -> Result<ExecOutput, TransportError> {
        let nonce = nonce();
        let runner = if in_shell { "dcmon_here" } else { "dcmon_run" };
        let mut line = format!("{runner} {nonce} {}\n", sh_quote(script));
        if self.flavor == Flavor::Framed {
            if line.len() > FRAME_MAX {
                return Err(TransportError::ScriptTooLarge(FRAME_MAX));
            }
            line = format!("{:08}\n{line}", line.len());
        }
        let mut frames = Frames::new(&nonce, output_cap);
        let channel = &mut self.channel;
        let work = async {
            channel
                .data(line.as_bytes())
                .await
                .map_err(|source| TransportError::Channel {
                    addr: addr.to_string(),
                    source,
                })?;
            while !frames.done() {
                match channel.wait().await {
                    Some(ChannelMsg::Data { data }) => frames.stdout.push(&data)?,
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => frames.stderr.push(&data)?,
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Err(TransportError::ShellEnded(format!(
                            "exit status {exit_status}"
                        )));
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        return Err(TransportError::ShellEnded(format!(
                            "killed by SIG{signal_name:?}"
                        )));
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        return Err(TransportError::ShellEnded(
                            "the host closed its channel".to_string(),
                        ));
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        };
        match timeout_at(deadline, work).await {
            Ok(Ok(())) => Ok(frames.finish()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Timeout(limit)),
        }
    }

    /// Closes the channel: the shell reads end-of-file and stops what still runs.
    pub(crate) async fn close(self) {
        let _ = timeout(Duration::from_secs(1), self.channel.close()).await;
    }
}

/// Reads until the shell prints `ready` and its process group on a line of their own;
/// anything else that ends the channel first is a refusal, quoted.
async fn wait_ready(
    channel: &mut russh::Channel<Msg>,
    ready: &str,
) -> Result<(Option<u32>, Flavor), StartError> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let prefix = format!("{ready} ");
    let mut exit = None;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => {
                keep(&mut out, &data);
                if let Some(at) = memchr::memmem::find(&out, prefix.as_bytes()) {
                    let rest = &out[at + prefix.len()..];
                    if let Some(end) = rest.iter().position(|&b| b == b'\n') {
                        // `GROUP FLAVOR`; the group is empty where /proc could not be read.
                        let said = String::from_utf8_lossy(&rest[..end]);
                        let (group, flavor) = said.rsplit_once(' ').unwrap_or(("", ""));
                        let group = group.parse().ok().filter(|&g: &u32| g > 1);
                        let flavor = match flavor {
                            "framed" => Flavor::Framed,
                            _ => Flavor::Lines,
                        };
                        return Ok((group, flavor));
                    }
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => keep(&mut err, &data),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                exit = Some(format!("exited with status {exit_status}"))
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                exit = Some(format!("killed by SIG{signal_name:?}"))
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    let said = |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    };
    let mut why = exit.unwrap_or_else(|| "closed the channel".to_string());
    for (name, bytes) in [("stderr", &err), ("stdout", &out)] {
        if !bytes.trim_ascii().is_empty() {
            why.push_str(&format!("; {name}: {}", said(bytes)));
        }
    }
    Err(StartError::Refused(why))
}

fn keep(kept: &mut Vec<u8>, data: &[u8]) {
    let room = START_OUTPUT_KEPT.saturating_sub(kept.len());
    kept.extend_from_slice(&data[..data.len().min(room)]);
}

/// One run's two streams, cut at their markers.
struct Frames {
    stdout: Framed,
    stderr: Framed,
}

impl Frames {
    fn new(nonce: &str, cap: usize) -> Frames {
        Frames {
            stdout: Framed::new(nonce, format!("\n{nonce} "), true, cap),
            stderr: Framed::new(nonce, format!("\n{nonce}\n"), false, cap),
        }
    }

    fn done(&self) -> bool {
        self.stdout.end.is_some() && self.stderr.end.is_some()
    }

    fn finish(self) -> ExecOutput {
        let exit = match self.stdout.status {
            Some(code) => Exit::Code(code),
            None => Exit::Unknown,
        };
        ExecOutput {
            stdout: self.stdout.body(),
            stderr: self.stderr.body(),
            exit,
        }
    }
}

/// One stream of a run: bytes until the opening marker are dropped, the body runs to the
/// closing one. Pure, so it is tested byte by byte below.
struct Framed {
    /// `NONCE\n`: the run has started.
    begin: Vec<u8>,
    /// `\nNONCE ` (stdout, then the exit status and a newline) or `\nNONCE\n` (stderr).
    end_marker: Vec<u8>,
    with_status: bool,
    cap: usize,
    buf: Vec<u8>,
    begun: bool,
    /// How far `buf` was searched without finding the marker.
    searched: usize,
    /// Where the body ends in `buf`, once the closing marker is complete.
    end: Option<usize>,
    status: Option<u32>,
}

impl Framed {
    fn new(nonce: &str, end_marker: String, with_status: bool, cap: usize) -> Framed {
        Framed {
            begin: format!("{nonce}\n").into_bytes(),
            end_marker: end_marker.into_bytes(),
            with_status,
            cap,
            buf: Vec::new(),
            begun: false,
            searched: 0,
            end: None,
            status: None,
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<(), TransportError> {
        if self.end.is_some() {
            // After the closing marker: a leftover's late bytes, not this run's.
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        if !self.begun {
            let from = self.searched.saturating_sub(self.begin.len());
            match memchr::memmem::find(&self.buf[from..], &self.begin) {
                Some(at) => {
                    self.buf.drain(..from + at + self.begin.len());
                    self.begun = true;
                    self.searched = 0;
                }
                None => {
                    // Keep only what could be the start of the marker.
                    let keep_from = self.buf.len().saturating_sub(self.begin.len());
                    self.buf.drain(..keep_from);
                    self.searched = self.buf.len();
                    return Ok(());
                }
            }
        }
        let from = self.searched.saturating_sub(self.end_marker.len());
        let Some(at) = memchr::memmem::find(&self.buf[from..], &self.end_marker) else {
            self.searched = self.buf.len();
            if self.buf.len() > self.cap.saturating_add(self.end_marker.len()) {
                return Err(TransportError::OutputTooLarge(self.cap));
            }
            return Ok(());
        };
        let at = from + at;
        if at > self.cap {
            return Err(TransportError::OutputTooLarge(self.cap));
        }
        if !self.with_status {
            self.end = Some(at);
            return Ok(());
        }
        // `\nNONCE 3\n`: the status is complete once its newline has come.
        let rest = &self.buf[at + self.end_marker.len()..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                self.status = std::str::from_utf8(&rest[..newline])
                    .ok()
                    .and_then(|s| s.parse().ok());
                self.end = Some(at);
            }
            // The marker is in; its status is still on the way. Search from here again.
            None => self.searched = at,
        }
        Ok(())
    }

    fn body(mut self) -> Vec<u8> {
        self.buf.truncate(self.end.unwrap_or(self.buf.len()));
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "dcmon-0123456789abcdef0123456789abcdef";

    fn feed(framed: &mut Framed, text: &[u8], step: usize) -> Result<(), TransportError> {
        for chunk in text.chunks(step.max(1)) {
            framed.push(chunk)?;
        }
        Ok(())
    }

    fn stdout(cap: usize) -> Framed {
        Frames::new(N, cap).stdout
    }

    #[test]
    fn a_run_is_cut_at_its_markers_however_the_bytes_arrive() {
        let text = format!("stray leftover{N}\nline 1\nline 2\n{N} 3\nlate");
        for step in [1, 2, 5, 7, 64, 4096] {
            let mut f = stdout(1 << 20);
            feed(&mut f, text.as_bytes(), step).unwrap();
            assert_eq!(f.status, Some(3), "step {step}");
            assert_eq!(f.body(), b"line 1\nline 2", "step {step}");
        }
    }

    #[test]
    fn output_without_a_final_newline_and_empty_output() {
        let mut f = stdout(100);
        feed(&mut f, format!("{N}\nno newline\n{N} 0\n").as_bytes(), 3).unwrap();
        assert_eq!(f.body(), b"no newline");
        let mut f = stdout(100);
        feed(&mut f, format!("{N}\n\n{N} 0\n").as_bytes(), 1).unwrap();
        assert_eq!(f.body(), b"");
    }

    #[test]
    fn marker_like_lines_do_not_end_a_run() {
        // Another run's nonce, a truncated nonce, this nonce without its newline in front.
        let fake = "dcmon-ffffffffffffffffffffffffffffffff 0\ndcmon-0123456789abcdef 0\n";
        let text = format!("{N}\n{fake}x{N} 0\nmore\n{N} 7\n");
        let mut f = stdout(1 << 20);
        feed(&mut f, text.as_bytes(), 1).unwrap();
        assert_eq!(f.status, Some(7));
        assert_eq!(f.body(), format!("{fake}x{N} 0\nmore").as_bytes());
    }

    #[test]
    fn the_status_waits_for_its_newline_and_a_garbled_one_is_unknown() {
        let mut f = stdout(100);
        feed(&mut f, format!("{N}\nok\n{N} 12").as_bytes(), 100).unwrap();
        assert!(f.end.is_none(), "no newline after the status yet");
        f.push(b"5\n").unwrap();
        assert_eq!(f.status, Some(125));
        let mut f = stdout(100);
        feed(
            &mut f,
            format!("{N}\nok\n{N} 99999999999\n").as_bytes(),
            100,
        )
        .unwrap();
        assert!(f.end.is_some());
        assert_eq!(f.status, None);
    }

    #[test]
    fn output_over_the_cap_is_refused_before_it_is_all_kept() {
        let mut f = stdout(1000);
        f.push(format!("{N}\n").as_bytes()).unwrap();
        let mut result = Ok(());
        let mut pushed = 0;
        while result.is_ok() && pushed < 1 << 20 {
            result = f.push(&[b'x'; 100]);
            pushed += 100;
        }
        assert!(matches!(result, Err(TransportError::OutputTooLarge(1000))));
        assert!(f.buf.len() < 1200, "kept {}", f.buf.len());
    }

    #[test]
    fn stray_bytes_before_the_start_are_not_kept() {
        let mut f = stdout(100);
        for _ in 0..1000 {
            f.push(&[b'y'; 1000]).unwrap();
        }
        assert!(f.buf.len() <= N.len() + 1);
        f.push(format!("{N}\nbody\n{N} 0\n").as_bytes()).unwrap();
        assert_eq!(f.body(), b"body");
    }

    #[test]
    fn stderr_ends_at_its_own_marker() {
        let mut f = Frames::new(N, 100).stderr;
        feed(&mut f, format!("{N}\noops\n{N}\n").as_bytes(), 2).unwrap();
        assert!(f.end.is_some());
        assert_eq!(f.body(), b"oops");
    }
}
