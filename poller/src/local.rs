//! The `local` transport: the same probe runs, watchdog included, with `sh` on the
//! poller's own machine.

use crate::command::{Collector, Stream, run_local};
use crate::error::TransportError;
use crate::exec::ExecOutput;
use std::time::Duration;

/// Runs a probe (`command::probe_line`, its `probe_input` on stdin) with a deadline and
/// an output cap; a late run's process group is stopped like a remote one.
pub async fn run_script(
    line: &str,
    input: &[u8],
    timeout: Duration,
    output_cap: usize,
) -> Result<ExecOutput, TransportError> {
    let mut quiet = |_: Stream, _: &[u8]| {};
    run_local(line, input, timeout, Collector::new(output_cap, &mut quiet)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{probe_input, probe_line};
    use crate::exec::Exit;

    async fn run(
        script: &str,
        timeout: Duration,
        cap: usize,
    ) -> Result<ExecOutput, TransportError> {
        let input = probe_input(script);
        run_script(&probe_line(input.len(), false), &input, timeout, cap).await
    }

    #[tokio::test]
    async fn runs_the_script_and_keeps_stderr_and_exit() {
        let out = run(
            "echo out; echo err >&2; exit 3",
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
    async fn scripts_cannot_read_the_channel() {
        // The script's stdin is /dev/null: `cat` neither eats the watchdog's input nor hangs.
        let out = run("cat; echo after", Duration::from_secs(5), 1024)
            .await
            .unwrap();
        assert_eq!(out.stdout, b"after\n");
    }

    #[tokio::test]
    async fn a_hanging_script_is_cut_at_the_timeout_and_stopped() {
        let marker = format!("sleep 7{}", std::process::id() % 1000 + 1000);
        let started = std::time::Instant::now();
        let err = run(
            &format!("trap '' TERM; {marker}"),
            Duration::from_millis(300),
            1024,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TransportError::Timeout(_)));
        assert!(started.elapsed() < Duration::from_secs(5));
        // TERM is ignored: the watchdog's KILL 2 s later ends it.
        let gone = (0..60).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let pgrep = std::process::Command::new("pgrep")
                .args(["-f", &marker])
                .output()
                .unwrap();
            pgrep.stdout.is_empty()
        });
        assert!(gone, "`{marker}` still runs after its deadline");
    }

    #[tokio::test]
    async fn output_over_the_cap_is_refused() {
        let err = run("yes | head -c 100000", Duration::from_secs(5), 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::OutputTooLarge(1000)));
    }
}
