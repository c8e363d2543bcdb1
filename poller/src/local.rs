//! The `local` transport: the same probe scripts, run with `sh` on the poller's own machine.

use crate::error::TransportError;
use crate::exec::{ExecOutput, script_command};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `script` on stdin of `sh -s` (or `sudo -n sh -s`), with a deadline and an output cap.
pub async fn run_script(
    script: &str,
    become_root: bool,
    timeout: Duration,
    output_cap: usize,
) -> Result<ExecOutput, TransportError> {
    let mut words = script_command(become_root).split(' ');
    let program = words.next().unwrap_or("sh");
    let mut child = tokio::process::Command::new(program)
        .args(words)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(TransportError::Local)?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(TransportError::Local(std::io::Error::other(
            "child pipes missing",
        )));
    };
    let script = script.as_bytes().to_vec();
    let work = async {
        // Write and read at once: a script that prints a lot before reading all of
        // stdin would otherwise block on a full pipe. Output over the cap fails the
        // join at once (the child is killed on drop) instead of blocking the child.
        let write = async move {
            let _ = stdin.write_all(&script).await; // a script may exit without reading it all
            Ok(())
        };
        let (_, stdout, stderr) = tokio::try_join!(
            write,
            read_capped(stdout, output_cap),
            read_capped(stderr, output_cap)
        )?;
        let status = child.wait().await.map_err(TransportError::Local)?;
        Ok::<_, TransportError>((stdout, stderr, status))
    };
    let (stdout, stderr, status) = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| TransportError::Timeout(timeout))??;
    let exit = crate::exec::exit_of(status);
    Ok(ExecOutput {
        stdout,
        stderr,
        exit,
    })
}

async fn read_capped(
    pipe: impl tokio::io::AsyncRead + Unpin,
    cap: usize,
) -> Result<Vec<u8>, TransportError> {
    let mut buf = Vec::new();
    pipe.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(TransportError::Local)?;
    if buf.len() > cap {
        return Err(TransportError::OutputTooLarge(cap));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Exit;

    #[tokio::test]
    async fn runs_script_on_stdin_and_keeps_stderr_and_exit() {
        let out = run_script(
            "echo out; echo err >&2; exit 3",
            false,
            Duration::from_secs(5),
            1024,
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr_excerpt(), "err");
        assert_eq!(out.exit, Exit::Code(3));
    }

    #[tokio::test]
    async fn a_hanging_script_is_cut_at_the_timeout() {
        let started = std::time::Instant::now();
        let err = run_script("sleep 30", false, Duration::from_millis(300), 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout(_)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_over_the_cap_is_refused() {
        let err = run_script("yes | head -c 100000", false, Duration::from_secs(5), 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::OutputTooLarge(1000)));
    }
}
