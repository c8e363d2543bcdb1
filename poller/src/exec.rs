//! What a command run on a host gives back, whichever transport ran it.

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(u32),
    /// Killed by a signal (`KILL`, `TERM`, ...).
    Signal(String),
    /// The channel closed without saying.
    Unknown,
}

/// How a local child process ended.
pub(crate) fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code as u32),
        (None, Some(signal)) => Exit::Signal(signal.to_string()),
        (None, None) => Exit::Unknown,
    }
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// Trimmed stderr for an error message, shortened the way ripgrep shows a failed command.
    pub fn stderr_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    }
}
