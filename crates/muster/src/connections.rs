//! The HTTP listener: accepts connections up to a cap and closes the ones that hold a slot
//! without using it.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client likes, so a
//! thousand clients that connect and send nothing (or a byte a second) use up the process's
//! file descriptors, and then the engine cannot open the database or reach a provider. Here:
//!
//! - **Cap.** At most [`ConnectionLimits::max_connections`] connections are open at once.
//!   At the cap the server stops accepting (rather than accept and close): further clients
//!   wait in the kernel's listen backlog, which costs this process no descriptor, and are
//!   served in turn as slots free up, which the timeouts below make happen. Accepting only to
//!   close would spend a descriptor and a syscall per attempt on exactly the clients that are
//!   hammering, and turn every waiting client away.
//! - **Header timeout.** A new connection must deliver its first request's head within
//!   [`ConnectionLimits::header_timeout`] of being accepted; on a kept-alive connection, the
//!   head of the next request must arrive within that time of its first byte. Counted from
//!   the start, not per byte: one byte a second does not keep a connection.
//! - **Body timeout.** A request's body must arrive within
//!   [`ConnectionLimits::body_timeout`] of its head. Past that the request is answered
//!   `408 Request Timeout` and the connection closed.
//! - **Idle timeout.** A kept-alive connection with no request in progress is closed after
//!   [`ConnectionLimits::idle_timeout`].
//!
//! A connection over a deadline is dropped (its socket closed); requests in progress have no
//! deadline of their own beyond the body's. On shutdown the listener closes, every connection
//! finishes the request it is serving and closes, and [`serve`] returns once all have.

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// The caps and timeouts of the HTTP listener (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Most connections open at once (at least 1).
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Descriptors kept for everything but HTTP connections when the connection cap is derived
/// from the descriptor limit: a quarter of the limit, and at least this many (the engine
/// sends up to 512 pages at once, each with a socket or the outbox file; the database pool,
/// the listener, logs and the runtime need a few more).
pub const MIN_RESERVED_DESCRIPTORS: u64 = 640;
/// The derived connection cap is never more than this: past it, memory rather than
/// descriptors is what runs out.
pub const MAX_DERIVED_CONNECTIONS: u64 = 16_384;
/// The derived connection cap is never less than this (a process with fewer descriptors
/// than the reserve still serves someone; the startup log says the limit is too low).
pub const MIN_DERIVED_CONNECTIONS: u64 = 16;

/// The default connection cap for a process that may open `nofile` descriptors: what is
/// left after the reserve (a quarter, at least [`MIN_RESERVED_DESCRIPTORS`]), between
/// [`MIN_DERIVED_CONNECTIONS`] and [`MAX_DERIVED_CONNECTIONS`].
pub fn derived_max_connections(nofile: u64) -> usize {
    let reserve = (nofile / 4).max(MIN_RESERVED_DESCRIPTORS);
    let cap = nofile
        .saturating_sub(reserve)
        .clamp(MIN_DERIVED_CONNECTIONS, MAX_DERIVED_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The descriptor limit of this process: raises the soft `RLIMIT_NOFILE` to the hard limit
/// and logs both. Returns the soft limit in force afterwards (`None` where there is no such
/// limit, or it cannot be read).
pub fn raise_descriptor_limit() -> Option<u64> {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file-descriptor limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    if soft >= hard {
        tracing::info!(soft, hard, "file-descriptor limit (RLIMIT_NOFILE)");
        return Some(soft);
    }
    match rlimit::increase_nofile_limit(hard) {
        Ok(now) => {
            tracing::info!(
                was = soft,
                soft = now,
                hard,
                "raised the soft file-descriptor limit (RLIMIT_NOFILE) to the hard limit"
            );
            Some(now)
        }
        Err(e) => {
            tracing::warn!(
                soft,
                hard,
                error = %e,
                "cannot raise the soft file-descriptor limit (RLIMIT_NOFILE)"
            );
            Some(soft)
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then finishes
/// the requests in progress and returns once every connection has closed. Each request
/// carries [`ConnectInfo<SocketAddr>`] with the peer's address, as
/// `into_make_service_with_connect_info::<SocketAddr>` gives it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let (close_tx, close_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!("muster_http_connection_cap_reached_total").increment(1);
                if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_full_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = max,
                        "connection cap reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            close_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = close_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all ended.
    let _ = slots.acquire_many(max).await;
}

/// How long a connection may take to finish its request once the server is stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// After a failed `accept`: nothing for a client that gave up in the backlog; a pause for
/// anything else (out of descriptors: `accept` would fail again at once until some close).
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    metrics::counter!("muster_http_accept_errors_total").increment(1);
    tracing::error!(error = %e, "cannot accept a connection; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// No time set (an [`AtomicU64`] of milliseconds since the connection was accepted).
const UNSET: u64 = u64::MAX;

/// Where a connection is, shared by its socket, its requests and its watchdog.
struct ConnState {
    accepted: Instant,
    /// Requests whose response has not been sent in full.
    in_flight: AtomicUsize,
    /// Whether a request has been received on this connection.
    served: AtomicBool,
    /// When the first byte of a request head not yet complete came in (ms since accepted).
    head_since: AtomicU64,
    /// When the last request's response was sent (ms since accepted).
    idle_since: AtomicU64,
    /// Wakes the watchdog when a deadline may have moved.
    changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Header,
    Idle,
}

impl Expiry {
    fn as_str(self) -> &'static str {
        match self {
            Expiry::Header => "header_timeout",
            Expiry::Idle => "idle_timeout",
        }
    }
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            head_since: AtomicU64::new(UNSET),
            idle_since: AtomicU64::new(UNSET),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(UNSET - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    /// When this connection must be closed if nothing changes, and why; `None` while a
    /// request is in progress.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.served.load(Ordering::Acquire) {
            return Some((self.accepted + limits.header_timeout, Expiry::Header));
        }
        let head = self.head_since.load(Ordering::Acquire);
        if head != UNSET {
            return Some((self.at(head) + limits.header_timeout, Expiry::Header));
        }
        let idle = self.idle_since.load(Ordering::Acquire);
        Some((self.at(idle) + limits.idle_timeout, Expiry::Idle))
    }

    /// Bytes came in: the start of a request head if none is in progress.
    fn received(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == UNSET
        {
            self.head_since.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }
}

/// Marks a request in progress from its head until its response is sent (or dropped).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.served.store(true, Ordering::Release);
        state.head_since.store(UNSET, Ordering::Release);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Serves one connection until it ends, a deadline passes, or the server shuts down (then
/// after the request in progress).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut close: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let open = metrics::gauge!("muster_http_connections_open");
    open.increment(1.0);
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        state: state.clone(),
    });
    let service = ConnService {
        router,
        peer,
        state: state.clone(),
        body_timeout: limits.body_timeout,
    };
    // HTTP/1 only: every client Muster serves (AWS SDKs and CLI, browsers, Twilio, mail
    // gateways, Alertmanager) speaks it, and an h2c client could hold a response (and its
    // connection slot) forever by never opening its flow-control window.
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    // The watchdog below keeps the header deadline (hyper's own would also cut idle
    // kept-alive connections at the header timeout).
    builder.http1().header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let far = Duration::from_secs(86_400 * 365);
    let mut sleep = pin!(tokio::time::sleep(far));
    // Once the server is stopping, a connection gets this long to finish its request: a
    // client that never reads its response cannot hold the shutdown up.
    let mut grace = pin!(tokio::time::sleep(far));
    let mut closing = false;
    loop {
        let deadline = state.deadline(&limits);
        sleep
            .as_mut()
            .reset(deadline.map_or_else(|| Instant::now() + far, |(at, _)| at));
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = close.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
                grace.as_mut().reset(Instant::now() + SHUTDOWN_GRACE);
            }
            () = &mut grace, if closing => {
                tracing::debug!(%peer, "closing a connection still busy at the end of the shutdown grace");
                break;
            }
            () = state.changed.notified() => {}
            () = &mut sleep => {
                if let Some((at, why)) = state.deadline(&limits)
                    && at <= Instant::now()
                {
                    metrics::counter!("muster_http_connections_timed_out_total", "reason" => why.as_str())
                        .increment(1);
                    tracing::debug!(%peer, reason = why.as_str(), "closing a connection");
                    break;
                }
            }
        }
    }
    open.decrement(1.0);
}

/// The socket of a connection, telling its state when bytes come in.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
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

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as one connection's hyper service: adds the peer's address, bounds the
/// request body's time, and tracks requests in progress.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    state: Arc<ConnState>,
    body_timeout: Duration,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(self.state.clone());
        let timed_out = Arc::new(AtomicBool::new(false));
        let version = req.version();
        let mut req = req.map(|body| {
            axum::body::Body::new(Deadline {
                inner: body,
                until: Instant::now() + self.body_timeout,
                limit: self.body_timeout,
                sleep: None,
                timed_out: timed_out.clone(),
            })
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        let limit = self.body_timeout;
        Box::pin(async move {
            let response = match tower_service::Service::call(&mut router, req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if timed_out.load(Ordering::Acquire) {
                body_timeout_response(version, limit)
            } else {
                response
            };
            Ok(response.map(|body| {
                axum::body::Body::new(Tracked {
                    inner: body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// `408 Request Timeout`, closing the connection (HTTP/1: HTTP/2 has no such header, and its
/// stream ends with the response anyway).
fn body_timeout_response(version: http::Version, limit: Duration) -> axum::response::Response {
    metrics::counter!("muster_http_connections_timed_out_total", "reason" => "body_timeout")
        .increment(1);
    let mut response = axum::response::Response::new(axum::body::Body::from(format!(
        "the request body did not arrive within {} s\n",
        limit.as_secs_f64()
    )));
    *response.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if version <= http::Version::HTTP_11 {
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The request body's deadline passed.
#[derive(Debug)]
struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails once its deadline passes.
struct Deadline {
    inner: Incoming,
    until: Instant,
    limit: Duration,
    /// Made the first time the body has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(BodyTimeout(this.limit).into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let until = this.until;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(BodyTimeout(this.limit).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that ends its request's time in flight when it is dropped (sent in full,
/// or abandoned).
struct Tracked {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_cap_leaves_a_quarter_and_at_least_the_reserve() {
        // 1,024 descriptors: 640 kept, 384 for connections.
        assert_eq!(derived_max_connections(1024), 384);
        // 4,096: a quarter (1,024) kept.
        assert_eq!(derived_max_connections(4096), 3072);
        // Just past the point where a quarter exceeds the reserve (4 × 640 = 2,560).
        assert_eq!(derived_max_connections(2560), 1920);
        assert_eq!(derived_max_connections(2564), 1923);
        // Fewer descriptors than the reserve: still a few connections.
        assert_eq!(derived_max_connections(256), 16);
        assert_eq!(derived_max_connections(656), 16);
        assert_eq!(derived_max_connections(657), 17);
        // Plenty: memory, not descriptors, bounds it.
        assert_eq!(derived_max_connections(1 << 20), 16_384);
        assert_eq!(derived_max_connections(21_845), 16_384);
        assert_eq!(derived_max_connections(21_844), 16_383);
        assert_eq!(derived_max_connections(u64::MAX), 16_384);
    }
}
