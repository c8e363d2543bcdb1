//! Limits on the dashboard's connections, so no client can hold the server: at most
//! `MAX_CONNECTIONS` at once (one more gets a 503 and is closed), a connection that
//! sends nothing within `FIRST_BYTE_TIMEOUT` is closed, and hyper closes one whose
//! request headers take longer than `HEADER_READ_TIMEOUT` (see `configure`).

use axum_server::accept::Accept;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections served at once. Each costs a file descriptor and some memory; a browser
/// holds a handful.
pub const MAX_CONNECTIONS: usize = 4096;
/// A connection must start its request this soon after it is opened.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's headers must arrive whole this soon.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection over the cap is told before it is closed.
const BUSY_BODY: &str =
    r#"{"error":"too many connections to the dashboard: try again shortly","status":503}"#;

fn busy() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\nretry-after: 5\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    )
}

/// Raises this process's open-file limit to what the connection cap and the hosts'
/// SSH sessions need (Debian's soft default of 1,024 would run out first), up to the
/// hard limit. Returns the limit in force.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANTED: u64 = 65_536;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let target = WANTED.min(hard);
    if soft < target && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return target;
    }
    soft
}

/// Header timeouts for HTTP/1 (hyper needs a timer for them).
pub fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
}

/// Wraps another acceptor (plain or TLS) with the connection cap and first-byte timeout.
#[derive(Clone)]
pub struct Limited<A> {
    inner: A,
    slots: Arc<Semaphore>,
}

impl<A> Limited<A> {
    pub fn new(inner: A) -> Limited<A> {
        Limited {
            inner,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }
}

impl<A, S> Accept<TcpStream, S> for Limited<A>
where
    A: Accept<TcpStream, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, mut stream: TcpStream, service: S) -> Self::Future {
        let (inner, slots) = (self.inner.clone(), self.slots.clone());
        Box::pin(async move {
            let Ok(permit) = slots.try_acquire_owned() else {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stream.write_all(busy().as_bytes()),
                )
                .await;
                return Err(io::Error::other("connection cap reached"));
            };
            let mut byte = [0u8; 1];
            match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut byte)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Err(io::Error::other("nothing sent in time")),
            }
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                Counted {
                    inner: stream,
                    _slot: permit,
                },
                service,
            ))
        })
    }
}

/// A connection holding one of the slots until it is dropped.
pub struct Counted<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
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
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = super::busy();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
