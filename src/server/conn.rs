//! Connections of the admission port: the accept loop (bounded number of connections,
//! room made by closing the one idle longest), the TLS handshake (bounded in time),
//! HTTP/1.1 with keep-alive, and the graceful close; and the simpler bounded accept loop
//! of the plain-HTTP ports ([`serve_bounded`]).
//!
//! Also the clock behind hyper's header read timeout. Hyper starts that countdown as soon
//! as it waits for a request head, so on its own it would close every keep-alive
//! connection idle for longer than the header timeout, and a client sending on one at
//! that moment would lose its request. [`HeadTimer`] gives an idle connection the
//! (longer) idle timeout and starts the header countdown at the first byte of a head.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::metrics::Metrics;
use super::routes::Routes;

/// Pause after a failed `accept` (e.g. out of file descriptors) instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// How long a connection must have been idle before it may be closed to make room for a
/// new one. The apiserver reuses the keep-alive connection it used last, so one idle
/// this long is the least likely to be sent a review at that moment; the idle timeout
/// would close it anyway.
const IDLE_BEFORE_MAKING_ROOM: Duration = Duration::from_secs(1);

/// While the connection limit is reached, how often the accept loop looks again for a
/// connection idle long enough to close.
const ROOM_RECHECK: Duration = Duration::from_millis(100);

/// Bytes read from the socket at once. rustls asks for at most 4 KiB per read, so a
/// 10 KiB review would take three system calls; through this buffer it takes one.
const READ_AHEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// TLS handshake, and a request head from its first byte.
    pub(crate) header: Duration,
    /// A keep-alive connection between requests.
    pub(crate) idle: Duration,
}

/// Everything the accept loop needs.
pub(crate) struct Acceptor {
    pub(crate) listener: TcpListener,
    pub(crate) tls: TlsAcceptor,
    pub(crate) routes: Arc<Routes>,
    pub(crate) timeouts: Timeouts,
    /// One permit per open connection; waiting for all of them is waiting for the end.
    pub(crate) connections: Arc<Semaphore>,
    /// Becomes true when no new connection may be accepted.
    pub(crate) stop: watch::Receiver<bool>,
    /// Becomes true when connections must close after their current request.
    pub(crate) close: watch::Receiver<bool>,
    pub(crate) metrics: Arc<Metrics>,
}

/// Accepts connections until told to stop. When the connection limit is reached, a new
/// connection is served once the connection idle longest (for at least
/// [`IDLE_BEFORE_MAKING_ROOM`]) has been closed, or another one closes; until then its
/// TLS handshake waits, and the connections after it wait in the listen backlog.
/// Without that, anyone who can reach the port could hold every connection with one
/// request each and keep the apiserver out for the idle timeout. A connection whose
/// request is in progress, or has begun to arrive, is never closed to make room.
pub(crate) async fn accept_loop(acceptor: Acceptor) {
    let Acceptor {
        listener,
        tls,
        routes,
        timeouts,
        connections,
        mut stop,
        close,
        metrics,
    } = acceptor;
    let mut open = OpenConnections::default();
    // While at the limit: how many connections had been closed to make room when it was
    // reached (one warning when it is reached, one line when it is left).
    let mut at_limit: Option<u64> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = signalled(&mut stop) => return,
            accepted = accept(&listener, "a connection") => accepted,
        };
        let Some((tcp, peer)) = accepted else {
            continue;
        };
        // At the limit, room is made for a connection that came (never ahead of one);
        // the ones after it wait in the listen backlog meanwhile.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                if let Some(closed_before) = at_limit.take() {
                    let closed = open.closed_to_make_room - closed_before;
                    info!(closed, "below the connection limit again; {closed} idle connections were closed to make room");
                }
                permit
            }
            Err(_) => {
                if at_limit.is_none() {
                    at_limit = Some(open.closed_to_make_room);
                    warn!(%peer, "connection limit reached: each new connection waits until the one idle longest (for {IDLE_BEFORE_MAKING_ROOM:?} at least) is closed to make room, or one closes");
                }
                match make_room(&connections, &mut open, &metrics, &mut stop).await {
                    Some(permit) => permit,
                    None => return,
                }
            }
        };
        // Replies are small and written at once; Nagle would only add latency.
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        tokio::spawn(serve_connection(
            tcp,
            peer,
            tls.clone(),
            routes.clone(),
            timeouts,
            close.clone(),
            open.add(permit),
        ));
    }
}

/// A permit for one more connection: closes the connection idle longest once one has
/// been idle long enough, and takes the permit it frees (or any other). `None` on stop.
async fn make_room(
    connections: &Arc<Semaphore>,
    open: &mut OpenConnections,
    metrics: &Metrics,
    stop: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Some(idle) = open.idle_longest(Instant::now(), IDLE_BEFORE_MAKING_ROOM) {
            idle.closing.store(true, Ordering::Relaxed);
            idle.make_room.notify_one();
            open.closed_to_make_room += 1;
            metrics.inc_connection_closed_to_make_room();
        }
        tokio::select! {
            biased;
            _ = signalled(stop) => return None,
            permit = connections.clone().acquire_owned() => return permit.ok(),
            _ = tokio::time::sleep(ROOM_RECHECK) => {}
        }
    }
}

/// The open connections of the admission port, as the accept loop sees them.
#[derive(Default)]
struct OpenConnections {
    /// One entry per accepted connection; an entry whose connection ended is dead.
    all: Vec<Weak<Activity>>,
    /// When `all` is next rid of its dead entries (it holds at most twice the open ones).
    prune_at: usize,
    closed_to_make_room: u64,
}

impl OpenConnections {
    fn add(&mut self, permit: OwnedSemaphorePermit) -> Arc<Activity> {
        if self.all.len() >= self.prune_at {
            self.all.retain(|a| a.strong_count() > 0);
            self.prune_at = (2 * self.all.len()).max(64);
        }
        let activity = Arc::new(Activity::new(permit));
        self.all.push(Arc::downgrade(&activity));
        activity
    }

    /// The connection idle longest at `now`, if it has been idle for at least `min`.
    fn idle_longest(&self, now: Instant, min: Duration) -> Option<Arc<Activity>> {
        self.all
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|a| Some((a.idle_for(now)?, a)))
            .filter(|(idle, _)| *idle >= min)
            .max_by_key(|(idle, _)| *idle)
            .map(|(_, a)| a)
    }
}

/// What the accept loop needs to know of one connection of the admission port: whether
/// it is between requests and since when, and how to ask it to close. It holds the
/// connection's permit, so the slot is free once the connection is gone.
struct Activity {
    _permit: OwnedSemaphorePermit,
    clock: Arc<HeadClock>,
    accepted: Instant,
    /// A request is being served (from its complete head to its response).
    busy: AtomicBool,
    /// When the connection last became idle (µs after `accepted`), and the bytes it had
    /// read by then: more bytes since mean a request has begun.
    idle_since_us: AtomicU64,
    bytes_at_idle: AtomicU64,
    /// Chosen to make room; `make_room` is notified.
    closing: AtomicBool,
    make_room: Notify,
}

impl Activity {
    fn new(permit: OwnedSemaphorePermit) -> Activity {
        Activity {
            _permit: permit,
            clock: Arc::new(HeadClock::default()),
            accepted: Instant::now(),
            busy: AtomicBool::new(false),
            idle_since_us: AtomicU64::new(0),
            bytes_at_idle: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            make_room: Notify::new(),
        }
    }

    /// How long the connection has been idle; `None` while a request is in progress or
    /// has begun to arrive, and once it was asked to close.
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        // Acquire: pairs with the Release in `Serving::drop`, so `idle_since_us` and
        // `bytes_at_idle` read below are the ones of the request that just ended.
        if self.busy.load(Ordering::Acquire)
            || self.closing.load(Ordering::Relaxed)
            || self.clock.bytes_read() > self.bytes_at_idle.load(Ordering::Relaxed)
        {
            return None;
        }
        let since =
            self.accepted + Duration::from_micros(self.idle_since_us.load(Ordering::Relaxed));
        Some(now.saturating_duration_since(since))
    }

    /// Marks a request in progress until the returned guard is dropped.
    fn serving(self: &Arc<Self>) -> Serving {
        self.busy.store(true, Ordering::Relaxed);
        Serving(self.clone())
    }
}

/// A request in progress on a connection; dropped when its response is ready.
struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        let a = &self.0;
        let us = u64::try_from(a.accepted.elapsed().as_micros()).unwrap_or(u64::MAX);
        a.bytes_at_idle
            .store(a.clock.bytes_read(), Ordering::Relaxed);
        a.idle_since_us.store(us, Ordering::Relaxed);
        a.busy.store(false, Ordering::Release);
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    routes: Arc<Routes>,
    timeouts: Timeouts,
    mut close: watch::Receiver<bool>,
    activity: Arc<Activity>,
) {
    let tcp = BufReader::with_capacity(READ_AHEAD, tcp);
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(timeouts.header, tls.accept(tcp)) => handshake,
        _ = activity.make_room.notified() => return debug!(%peer, "closed during its TLS handshake to make room"),
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            log_handshake_error(peer, &e);
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let clock = activity.clock.clone();
    let io = TokioIo::new(CountingIo::new(stream, clock.clone()));
    let served = activity.clone();
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        let serving = served.serving();
        // The sender's address, for the per-node limit of `/credentials`.
        request.extensions_mut().insert(peer);
        let routes = routes.clone();
        async move {
            let response = routes.serve(request).await;
            drop(serving);
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1_builder(timeouts, clock.clone()).serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = activity.make_room.notified() => {
            // Idle: hyper closes it at once (a request that began meanwhile is finished).
            debug!(%peer, "closing the connection idle longest to make room for a new one");
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        _ = signalled(&mut close) => {
            // A connection accepted moments ago gets to send its first request (or hit
            // the header timeout): its client has committed a request to it, and hyper
            // would close a connection that has seen no byte yet at once.
            if clock.bytes_read() == 0 {
                tokio::select! {
                    result = connection.as_mut() => return log_end(peer, result),
                    _ = clock.first_byte.notified() => {}
                }
            }
            // Finishes the request in progress (its response says `connection: close`),
            // closes an idle connection at once.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    log_end(peer, result);
}

/// One connection from `listener`; `None` once an accept failed, logged and waited out
/// (a full file table, say, must not turn the loop into a busy one).
async fn accept(listener: &TcpListener, what: &str) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            warn!(error = %e, "accepting {what} failed");
            tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            None
        }
    }
}

fn log_end(peer: SocketAddr, result: hyper::Result<()>) {
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The accept loop of the small plain-HTTP ports (probes, the overview page): at most
/// `limit` connections at once, each served by `serve` in a task of its own, until `stop`
/// resolves; open connections are then dropped. `what` names a connection in the logs.
///
/// When all `limit` are open, a new connection closes the one open longest rather than
/// wait in the listen backlog: otherwise anyone who can reach the port could hold every
/// connection open, sending nothing, and keep the kubelet's probes out until the
/// replica is restarted or taken out of the Service. A probe opens a connection, asks
/// at once and is answered in microseconds, so it is never the oldest; what is closed is
/// an idle keep-alive (a scraper reconnects) or a connection that never asked.
pub(crate) async fn serve_bounded<S, F>(
    listener: TcpListener,
    limit: usize,
    what: &str,
    stop: impl Future<Output = ()>,
    mut serve: S,
) where
    S: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    // Open connections, oldest first.
    let mut open: VecDeque<(AbortHandle, SocketAddr)> = VecDeque::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                open.retain(|(handle, _)| handle.id() != id);
                continue;
            }
            accepted = accept(&listener, what) => accepted,
        };
        let Some((tcp, peer)) = accepted else {
            continue;
        };
        if open.len() >= limit {
            if let Some((oldest, oldest_peer)) = open.pop_front() {
                debug!(peer = %oldest_peer, "closing {what}, the one open longest, to take a new one");
                oldest.abort();
            }
        }
        let served = serve(tcp, peer);
        let handle = connections.spawn(served);
        open.push_back((handle, peer));
    }
    connections.shutdown().await;
}

/// Resolves once the flag is true (or its sender is gone, which means the same).
pub(crate) async fn signalled(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// HTTP/1.1 with keep-alive and the head/idle timeouts, for one connection.
pub(crate) fn http1_builder(timeouts: Timeouts, clock: Arc<HeadClock>) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(HeadTimer { clock, timeouts })
        .header_read_timeout(timeouts.header);
    builder
}

fn log_handshake_error(peer: SocketAddr, error: &std::io::Error) {
    use rustls::AlertDescription as Alert;
    let alert = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::AlertReceived(alert) => Some(*alert),
            _ => None,
        });
    match alert {
        // The client refused our certificate: almost always a wrong caBundle.
        Some(Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown) => warn!(
            %peer,
            error = %error,
            "a client refused the serving certificate: check that the webhook's caBundle is the CA of this certificate"
        ),
        _ => debug!(%peer, error = %error, "TLS handshake failed"),
    }
}

/// Counts the bytes read on one connection, shared between the IO and its timer.
#[derive(Debug, Default)]
pub(crate) struct HeadClock {
    bytes_read: AtomicU64,
    /// Notified once, when the connection's first bytes arrive.
    first_byte: Notify,
}

impl HeadClock {
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// A stream that tells its [`HeadClock`] how many bytes were read.
pub(crate) struct CountingIo<T> {
    inner: T,
    clock: Arc<HeadClock>,
}

impl<T> CountingIo<T> {
    pub(crate) fn new(inner: T, clock: Arc<HeadClock>) -> Self {
        CountingIo { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            let before = this
                .clock
                .bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
            if before == 0 {
                this.clock.first_byte.notify_one();
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The timer hyper uses for its header read timeout (its only use on an HTTP/1 server).
/// Each sleep it asks for starts when hyper begins waiting for a request head. Bytes of
/// a next request that arrived with the previous one count as idle time, still bounded
/// by the idle timeout.
#[derive(Debug, Clone)]
pub(crate) struct HeadTimer {
    clock: Arc<HeadClock>,
    timeouts: Timeouts,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let seen = self.clock.bytes_read();
        // The first request of a connection gets no idle allowance: a client that
        // connects and says nothing is held to the header timeout.
        let head_started = seen == 0;
        let allowance = if head_started {
            self.timeouts.header
        } else {
            self.timeouts.idle
        };
        Box::pin(HeadSleep {
            clock: self.clock.clone(),
            seen,
            head_started,
            header_timeout: self.timeouts.header,
            sleep: Box::pin(tokio::time::sleep(allowance)),
        })
    }
}

/// Fires when a started head has not completed within the header timeout, or when an
/// idle connection has stayed idle for the idle timeout.
struct HeadSleep {
    clock: Arc<HeadClock>,
    /// Bytes read when the wait began: more means a head has started.
    seen: u64,
    head_started: bool,
    header_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Hyper polls this right after each read that left the head incomplete, so the
        // first poll that sees new bytes is (close to) when they arrived.
        if !this.head_started && this.clock.bytes_read() > this.seen {
            this.head_started = true;
            let head_deadline = tokio::time::Instant::now() + this.header_timeout;
            if head_deadline < this.sleep.deadline() {
                this.sleep.as_mut().reset(head_deadline);
            }
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    fn timer(clock: &Arc<HeadClock>) -> HeadTimer {
        HeadTimer {
            clock: clock.clone(),
            timeouts: Timeouts {
                header: Duration::from_secs(1),
                idle: Duration::from_secs(60),
            },
        }
    }

    type BoxedSleep = Pin<Box<dyn hyper::rt::Sleep>>;

    async fn fires_within(sleep: &mut BoxedSleep, limit: Duration) -> bool {
        tokio::time::timeout(limit, sleep).await.is_ok()
    }

    /// Only a connection between requests, with no byte of a next one, may be closed to
    /// make room; the one idle longest is chosen.
    #[test]
    fn room_is_made_only_from_connections_idle_long_enough() {
        let slots = Arc::new(Semaphore::new(3));
        let mut open = OpenConnections::default();
        let [a, b, c] = [(); 3].map(|_| open.add(slots.clone().try_acquire_owned().unwrap()));
        let minute = Duration::from_secs(60);
        let later = Instant::now() + 2 * minute;
        // `a` is serving; `b` has read the start of a next request; `c` is idle.
        let serving = a.serving();
        b.clock.bytes_read.store(10, Ordering::Relaxed);
        assert_eq!(a.idle_for(later), None);
        assert_eq!(b.idle_for(later), None);
        assert!(c.idle_for(later).unwrap() >= 2 * minute);
        assert!(open.idle_longest(later, 3 * minute).is_none());
        assert!(Arc::ptr_eq(&open.idle_longest(later, minute).unwrap(), &c));
        // Once answered, `a` is idle from then on: less long than `c`.
        std::thread::sleep(Duration::from_millis(1));
        drop(serving);
        assert!(a.idle_for(later).unwrap() < c.idle_for(later).unwrap());
        c.closing.store(true, Ordering::Relaxed);
        assert!(Arc::ptr_eq(&open.idle_longest(later, minute).unwrap(), &a));
        // A connection that ended gives its slot back.
        drop(c);
        assert_eq!(slots.available_permits(), 1);
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn first_head_gets_the_header_timeout() {
        let clock = Arc::new(HeadClock::default());
        let mut sleep = timer(&clock).sleep_until(Instant::now());
        assert!(fires_within(&mut sleep, Duration::from_millis(1100)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_gets_the_idle_timeout() {
        let clock = Arc::new(HeadClock::default());
        clock.bytes_read.store(100, Ordering::Relaxed);
        let mut sleep = timer(&clock).sleep_until(Instant::now());
        assert!(!fires_within(&mut sleep, Duration::from_secs(59)).await);
        assert!(fires_within(&mut sleep, Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn header_countdown_starts_at_the_first_byte() {
        let clock = Arc::new(HeadClock::default());
        clock.bytes_read.store(100, Ordering::Relaxed);
        let mut sleep = timer(&clock).sleep_until(Instant::now());
        // Idle for 30s: still open.
        assert!(!fires_within(&mut sleep, Duration::from_secs(30)).await);
        // Half a head arrives; the next poll sees it and the header timeout applies.
        clock.bytes_read.store(120, Ordering::Relaxed);
        assert!(!fires_within(&mut sleep, Duration::from_millis(900)).await);
        assert!(fires_within(&mut sleep, Duration::from_millis(200)).await);
    }
}
