//! Which stage of opening an SSH session was reached, so a failure says where it
//! stopped: a black-holed TCP connect, a port that accepts but never sends a banner
//! (SIGSTOPped sshd, a wrong service) and a key exchange that stalls are different
//! problems with different fixes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The stages in order; a session only moves forward through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Tcp = 0,
    Banner = 1,
    KeyExchange = 2,
    HostKey = 3,
    Auth = 4,
}

impl Stage {
    /// What was being waited for when the stage's deadline passed.
    pub fn waiting_for(self) -> &'static str {
        match self {
            Stage::Tcp => "TCP connect got no answer (host down, or a firewall drops the packets)",
            Stage::Banner => {
                "TCP connected but no SSH banner came (sshd stopped or overloaded, or not an SSH port)"
            }
            Stage::KeyExchange => "the SSH key exchange did not finish",
            Stage::HostKey => "the host key check did not finish",
            Stage::Auth => "authentication got no answer",
        }
    }

    /// The stage as a word for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Tcp => "TCP connect",
            Stage::Banner => "SSH banner",
            Stage::KeyExchange => "key exchange",
            Stage::HostKey => "host key check",
            Stage::Auth => "authentication",
        }
    }
}

/// The stage reached, shared by the stream, the host key check and the connector.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU8>);

impl Progress {
    pub fn reach(&self, stage: Stage) {
        self.0.fetch_max(stage as u8, Ordering::Relaxed);
    }

    pub fn stage(&self) -> Stage {
        match self.0.load(Ordering::Relaxed) {
            0 => Stage::Tcp,
            1 => Stage::Banner,
            2 => Stage::KeyExchange,
            3 => Stage::HostKey,
            _ => Stage::Auth,
        }
    }
}

/// A connected stream that notes the first byte the server sends (its banner).
pub struct Watched<S> {
    pub inner: S,
    pub progress: Progress,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progress.reach(Stage::KeyExchange);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_only_move_forward() {
        let p = Progress::default();
        assert_eq!(p.stage(), Stage::Tcp);
        p.reach(Stage::HostKey);
        p.reach(Stage::Banner);
        assert_eq!(p.stage(), Stage::HostKey);
    }
}
