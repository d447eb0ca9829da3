//! The accept loop (SPEC §2 "Connections"): hyper's HTTP/1 server serves each connection with
//! a header-read timeout and an idle keep-alive timeout, the number of open connections is
//! capped below the process's file limit, and shutdown lets in-flight requests finish.
//!
//! It parses no HTTP itself: hyper does, and closes a connection whose head does not arrive in
//! time. This module only tells hyper *when* that is — through a per-connection timer — and
//! decides how many connections may be open.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tower::ServiceExt;
use vinr_domain::limits::{
    HTTP_ACCEPT_ERROR_BACKOFF_MS, HTTP_CONNECTIONS_DERIVED_MIN, HTTP_CONNECTIONS_MAX,
    HTTP_FILES_RESERVE_DIVISOR, HTTP_FILES_RESERVE_MIN, HTTP_LISTEN_BACKLOG_CONNECTIONS,
    HTTP_SHUTDOWN_GRACE_MS,
};

use crate::config::HttpConfig;
use crate::http::faults::DropConnection;

/// [`HttpConfig`] resolved against the process: durations, and the cap as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub keep_alive_idle_timeout: Duration,
    pub connections_max: usize,
}

impl ConnectionLimits {
    /// The configured limits; without `max_connections`, the cap derived from the file limit.
    pub fn new(config: &HttpConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            keep_alive_idle_timeout: Duration::from_millis(config.keep_alive_idle_timeout_ms),
            connections_max: config
                .max_connections
                .unwrap_or_else(|| connections_max_for_file_limit(file_limit())),
        }
    }
}

/// The cap for a soft file limit (`None`: unlimited): the limit less a reserve of a quarter of
/// it, at least `HTTP_FILES_RESERVE_MIN` (see `limits.rs` for what the reserve holds).
pub fn connections_max_for_file_limit(soft_limit: Option<u64>) -> usize {
    let Some(limit) = soft_limit else {
        return HTTP_CONNECTIONS_MAX;
    };
    let reserve = (limit / HTTP_FILES_RESERVE_DIVISOR).max(HTTP_FILES_RESERVE_MIN);
    let cap = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(HTTP_CONNECTIONS_MAX);
    cap.clamp(HTTP_CONNECTIONS_DERIVED_MIN, HTTP_CONNECTIONS_MAX)
}

/// The soft `RLIMIT_NOFILE` (`ulimit -n`); `None` when unlimited.
#[cfg(unix)]
fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn file_limit() -> Option<u64> {
    None
}

/// Listens on `addr` as `TcpListener::bind` does (`SO_REUSEADDR` on Unix), with a longer
/// accept queue than its 128, so a burst of connects is queued rather than dropped.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(HTTP_LISTEN_BACKLOG_CONNECTIONS)
}

/// Serves `router` on `listener` until `stop` changes, then stops accepting and waits for
/// the open connections: in-flight requests finish, idle ones close at once, and one still
/// sending its head closes at its header timeout at the latest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // EMFILE and kin: the error repeats until a descriptor is freed, so pause
                // rather than spin (the pending connection waits in the listen backlog).
                tracing::warn!(%error, "accept failed; backing off");
                metrics::counter!("vinr_http_accept_errors_total").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(HTTP_ACCEPT_ERROR_BACKOFF_MS)) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // At the cap: accepted and closed at once (dropping the stream closes it), so the
            // client learns now instead of waiting in the backlog.
            metrics::counter!("vinr_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watched = serve_connection(stream, peer, router.clone(), limits, &graceful);
        tokio::spawn(async move {
            metrics::gauge!("vinr_http_connections_open").increment(1.0);
            if let Err(error) = watched.await {
                // A header or idle timeout, a reset, a malformed request: the connection's own
                // business, not the server's.
                tracing::debug!(%error, "connection closed with an error");
            }
            metrics::gauge!("vinr_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(HTTP_SHUTDOWN_GRACE_MS);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = HTTP_SHUTDOWN_GRACE_MS,
            "connections still open at the end of the shutdown grace period were closed"
        );
    }
}

/// One connection, watched by `graceful`: it resolves when the connection closes.
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    graceful: &GracefulShutdown,
) -> impl Future<Output = hyper::Result<()>> + Send + 'static {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Counted {
        stream,
        activity: activity.clone(),
    });
    let timer = ConnectionTimer {
        activity: activity.clone(),
        limits,
    };
    // A response marked `DropConnection` (the `commit-then-drop` fault) is never sent: its
    // request waits forever while the connection is dropped, closing the socket unanswered.
    let dropped = Arc::new(Notify::new());
    let drop_signal = dropped.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        activity.requests.fetch_add(1, Ordering::Relaxed);
        // The peer's address, as axum's `ConnectInfo` (the dashboard's sign-in throttle).
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let (router, drop_signal) = (router.clone(), drop_signal.clone());
        async move {
            let response = router.oneshot(request).await?;
            if response.extensions().get::<DropConnection>().is_some() {
                drop_signal.notify_one();
                std::future::pending::<()>().await;
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    let watched = graceful.watch(connection);
    async move {
        tokio::select! {
            served = watched => served,
            _ = dropped.notified() => {
                metrics::counter!("vinr_http_connections_dropped_total").increment(1);
                Ok(())
            }
        }
    }
}

/// Errors of one connection that came and went before `accept` returned it: try the next.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// What one connection has done so far, for its timer.
#[derive(Default)]
struct Activity {
    /// Request heads hyper has parsed (each one calls the service).
    requests: AtomicU64,
    bytes_read: AtomicU64,
}

/// The connection's socket, counting the bytes read.
struct Counted {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            self.activity.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// hyper's HTTP/1 server asks its timer for one thing only: the deadline of the request head
/// it starts waiting for, from the moment it starts waiting. That is right for a connection's
/// first request, but after an answer it would close an idle kept-alive connection at the
/// header timeout. This timer turns that deadline into Go's `IdleTimeout` +
/// `ReadHeaderTimeout`: on a connection that has answered, the wait for the first byte of the
/// next request is bounded by the idle timeout, and the header timeout runs from that byte.
#[derive(Clone)]
struct ConnectionTimer {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        // `deadline` is hyper's "now + header timeout"; the wait started now.
        let started = deadline
            .checked_sub(self.limits.header_read_timeout)
            .unwrap_or_else(Instant::now);
        Box::pin(HeadDeadline {
            activity: self.activity.clone(),
            limits: self.limits,
            started,
            kept_alive: self.activity.requests.load(Ordering::Relaxed) > 0,
            bytes_read_at_start: self.activity.bytes_read.load(Ordering::Relaxed),
            first_byte_at: None,
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}

/// The deadline of one request head; see [`ConnectionTimer`].
struct HeadDeadline {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    started: Instant,
    /// The connection has answered a request: the idle timeout applies until a byte arrives.
    kept_alive: bool,
    bytes_read_at_start: u64,
    first_byte_at: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HeadDeadline {
    fn deadline(&mut self) -> Instant {
        if !self.kept_alive {
            return self.started + self.limits.header_read_timeout;
        }
        if self.activity.bytes_read.load(Ordering::Relaxed) == self.bytes_read_at_start {
            return self.started + self.limits.keep_alive_idle_timeout;
        }
        // hyper polls this right after each read that left the head unfinished, so the first
        // poll that sees new bytes is when they came.
        *self.first_byte_at.get_or_insert_with(Instant::now) + self.limits.header_read_timeout
    }
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let deadline = tokio::time::Instant::from_std(this.deadline());
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadDeadline {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_a_reserve_below_the_file_limit() {
        // A quarter of the limit, at least 64, is kept for everything but connections.
        assert_eq!(connections_max_for_file_limit(Some(256)), 192);
        assert_eq!(connections_max_for_file_limit(Some(1024)), 768);
        assert_eq!(connections_max_for_file_limit(Some(4096)), 3072);
        assert_eq!(connections_max_for_file_limit(Some(200)), 136);
        // Too small for the reserve: the server still serves a few connections.
        assert_eq!(
            connections_max_for_file_limit(Some(64)),
            HTTP_CONNECTIONS_DERIVED_MIN
        );
        assert_eq!(
            connections_max_for_file_limit(Some(u64::MAX)),
            HTTP_CONNECTIONS_MAX
        );
        assert_eq!(connections_max_for_file_limit(None), HTTP_CONNECTIONS_MAX);
    }
}
