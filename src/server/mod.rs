//! The HTTPS admission server: TLS listener with certificate hot reload, request limits,
//! graceful shutdown, and the plain-HTTP probe port (`/healthz`, `/readyz`, `/metrics`).
//!
//! It does not read AdmissionReviews: the body of `POST /validate` and `POST /mutate`
//! goes to a [`Handler`], whose [`Outcome`] is sent back. Entry points: [`serve`], or
//! [`Server::bind`] then [`Server::run`] when the caller needs the bound addresses first.
//!
//! Every request is counted in [`Metrics`], by the outcome's verdict (`allow`, `deny`,
//! `warn`, `audit`) or by what the server decided itself: `overload` (503), `timeout`
//! (504, the handler answered after the deadline), and `invalid` (a body that is too
//! large, too slow or unreadable, and every non-2xx answer of the handler).

mod conn;
pub mod credentials;
mod limits;
pub mod metrics;
mod probes;
mod reply;
mod routes;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

pub(crate) use self::conn::serve_bounded;
pub use self::metrics::Metrics;
pub(crate) use self::reply::text;
pub use self::tls::TlsError;
pub use crate::admission::{Outcome, Webhook};

/// What turns an admission request body into an [`Outcome`]. Plugged in by `serve`.
pub trait Handler: Send + Sync + 'static {
    /// CPU-only, no IO, microseconds, so it is not interrupted: an outcome produced after
    /// the apiserver's deadline (from `?timeout=`, default 10s) is not sent; the server
    /// answers 504 instead, so a late answer is never an allow.
    fn handle(&self, webhook: Webhook, body: &[u8]) -> Outcome;
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files, checked before the port is bound and reloaded when their content changes.
    Files { cert: PathBuf, key: PathBuf },
    /// A CA and a certificate for `localhost`/`127.0.0.1` made at start; the CA certificate
    /// is written to `ca_out` when given, for clients to trust.
    SelfSigned { ca_out: Option<PathBuf> },
}

/// Settings of [`serve`]. [`ServerOptions::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The TLS admission port.
    pub listen: SocketAddr,
    /// The plain-HTTP probe port: `/healthz`, `/readyz`, `/metrics`.
    pub probe_listen: SocketAddr,
    pub tls: TlsSource,
    /// Larger bodies get 413 without being read.
    pub max_body_bytes: usize,
    /// Bytes of request bodies held in memory at once, across all requests; a body that
    /// finds no room gets 503 at once. Keeps memory bounded whatever the clients send.
    /// Held as bytes arrive; a body's bytes beyond its first 64 KiB may use only the part
    /// that leaves 64 KiB for each in-flight request (as far as one maximum-size body fits).
    pub max_body_memory: usize,
    /// Bytes per second a request body must keep up, measured over 2s windows from its
    /// start (so a body of up to twice this must arrive within 2s); slower ones get 408
    /// and release their memory. 0 turns the floor off.
    pub min_body_rate: u64,
    /// Time allowed for a TLS handshake and for a request head, counted from its first byte.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests. Longer than the
    /// apiserver's own idle timeout (90s), so the client closes first and never sends on
    /// a connection the server is closing.
    pub idle_timeout: Duration,
    /// Admission requests handled at once; the excess gets 503 at once, never a queue.
    pub max_in_flight: usize,
    /// After shutdown is requested, keep serving this long with `/readyz` false.
    pub drain_period: Duration,
    /// How often the certificate files are checked for new content.
    pub cert_reload_interval: Duration,
    /// Serves `POST /credentials` with this issuer (README, "Pulls without Secrets"); without one the path is
    /// unknown (404).
    pub credentials: Option<Arc<dyn credentials::Issuer>>,
    /// `/credentials` requests per second a node may make, on average.
    pub credential_rate_per_node: f64,
    /// `/credentials` requests a node may make at once before the rate applies.
    pub credential_burst_per_node: u32,
}

impl ServerOptions {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
    /// Room for a few maximum-size bodies, or thousands of real ones (~10 KiB), within
    /// the Deployment's 128 Mi limit next to the ~45 MiB the process needs at scale.
    pub const DEFAULT_MAX_BODY_MEMORY: usize = 64 * 1024 * 1024;
    /// 64 KiB/s, a 512 kbit/s line. The apiserver writes a review in one go over a LAN
    /// (megabytes per second even on a busy 100 Mbit/s link, and ~10 KiB arrive in one
    /// window whatever the link); a body slower than this is a sender holding memory and
    /// an in-flight slot without using them.
    pub const DEFAULT_MIN_BODY_RATE: u64 = 64 * 1024;
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
    pub const DEFAULT_DRAIN_PERIOD: Duration = Duration::from_secs(5);
    pub const DEFAULT_CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

    /// Options with every limit at its default.
    pub fn new(listen: SocketAddr, probe_listen: SocketAddr, tls: TlsSource) -> Self {
        ServerOptions {
            listen,
            probe_listen,
            tls,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_body_memory: Self::DEFAULT_MAX_BODY_MEMORY,
            min_body_rate: Self::DEFAULT_MIN_BODY_RATE,
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            drain_period: Self::DEFAULT_DRAIN_PERIOD,
            cert_reload_interval: Self::DEFAULT_CERT_RELOAD_INTERVAL,
            credentials: None,
            credential_rate_per_node: credentials::RATE_PER_NODE,
            credential_burst_per_node: credentials::BURST_PER_NODE,
        }
    }

    /// Open connections allowed at once, so file descriptors stay bounded: room for every
    /// in-flight request plus idle keep-alive connections (the apiserver keeps up to 25).
    pub fn max_connections(&self) -> usize {
        self.max_in_flight
            .saturating_mul(CONNECTIONS_PER_IN_FLIGHT)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
    }

    fn check(&self) -> Result<()> {
        if self.max_in_flight == 0 || self.max_in_flight > MAX_CONNECTIONS {
            bail!(
                "max in-flight requests must be between 1 and {MAX_CONNECTIONS}, not {}",
                self.max_in_flight
            );
        }
        if self.max_body_bytes == 0 {
            bail!("the maximum body size must be above 0 bytes");
        }
        if self.max_body_memory > tokio::sync::Semaphore::MAX_PERMITS {
            bail!(
                "the body memory budget must be at most {} bytes",
                tokio::sync::Semaphore::MAX_PERMITS
            );
        }
        if self.max_body_memory < self.max_body_bytes {
            bail!(
                "the body memory budget ({} bytes) must hold at least one body of the maximum size ({} bytes)",
                self.max_body_memory,
                self.max_body_bytes
            );
        }
        if self.header_timeout.is_zero() {
            bail!("the header timeout must be above 0");
        }
        if self.idle_timeout < self.header_timeout {
            bail!(
                "the idle timeout ({:?}) must not be shorter than the header timeout ({:?})",
                self.idle_timeout,
                self.header_timeout
            );
        }
        if self.cert_reload_interval.is_zero() {
            bail!("the certificate reload interval must be above 0");
        }
        Ok(())
    }
}

impl Default for ServerOptions {
    /// The `pullgate serve` defaults: `0.0.0.0:8443`, probes on `0.0.0.0:9090`, a
    /// self-signed certificate.
    fn default() -> Self {
        ServerOptions::new(
            SocketAddr::from(([0, 0, 0, 0], 8443)),
            SocketAddr::from(([0, 0, 0, 0], 9090)),
            TlsSource::SelfSigned { ca_out: None },
        )
    }
}

const CONNECTIONS_PER_IN_FLIGHT: usize = 4;
/// Even a tiny in-flight limit leaves room for the apiserver's 25 keep-alive connections.
const MIN_CONNECTIONS: usize = 32;
/// Far below common fd limits, and within what a semaphore can count.
const MAX_CONNECTIONS: usize = 65_536;
/// In-flight requests get this long to finish after the drain before `run` returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Readiness shared with the rest of the program: ready = synced && !draining.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    synced: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    /// Not ready until [`Health::set_synced`]`(true)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the binding table has completed its first sync.
    pub fn set_synced(&self, synced: bool) {
        self.inner.synced.store(synced, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire) && !self.is_draining()
    }

    /// True from the moment shutdown is requested.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }
}

/// Runs until `shutdown` resolves (main passes a SIGTERM/SIGINT future), then drains.
/// Returns when all in-flight requests are answered.
pub async fn serve(
    opts: ServerOptions,
    handler: Arc<dyn Handler>,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Server::bind(opts, handler, health, metrics)
        .await?
        .run(shutdown)
        .await
}

/// A server whose certificate is loaded and whose ports are bound, not yet serving.
pub struct Server {
    opts: ServerOptions,
    listener: TcpListener,
    probe_listener: TcpListener,
    local_addr: SocketAddr,
    probe_addr: SocketAddr,
    acceptor: TlsAcceptor,
    reloader: Option<tls::CertReloader>,
    routes: Arc<routes::Routes>,
    health: Health,
    metrics: Arc<Metrics>,
}

impl Server {
    /// Loads and checks the certificate (or generates one), then binds both ports.
    pub async fn bind(
        opts: ServerOptions,
        handler: Arc<dyn Handler>,
        health: Health,
        metrics: Arc<Metrics>,
    ) -> Result<Server> {
        opts.check()?;
        let (resolver, reloader) = tls::prepare(&opts.tls, &metrics)?;
        let acceptor = TlsAcceptor::from(tls::server_config(resolver)?);

        let listener = TcpListener::bind(opts.listen).await.with_context(|| {
            format!(
                "binding the admission port {}: is the address free and local? (--listen)",
                opts.listen
            )
        })?;
        let probe_listener = TcpListener::bind(opts.probe_listen)
            .await
            .with_context(|| {
                format!(
                    "binding the probe port {}: is the address free and local? (--probe-listen)",
                    opts.probe_listen
                )
            })?;
        let local_addr = listener
            .local_addr()
            .context("reading the admission port address")?;
        let probe_addr = probe_listener
            .local_addr()
            .context("reading the probe port address")?;

        let routes = Arc::new(
            routes::Routes::new(
                handler,
                metrics.clone(),
                health.clone(),
                opts.max_in_flight,
                opts.max_body_bytes,
                opts.max_body_memory,
                opts.min_body_rate,
            )
            .with_credentials(opts.credentials.clone().map(|issuer| {
                credentials::CredentialsRoute::new(
                    issuer,
                    metrics.clone(),
                    opts.max_in_flight,
                    opts.credential_rate_per_node,
                    opts.credential_burst_per_node,
                )
            })),
        );
        Ok(Server {
            opts,
            listener,
            probe_listener,
            local_addr,
            probe_addr,
            acceptor,
            reloader,
            routes,
            health,
            metrics,
        })
    }

    /// The bound admission (TLS) address; useful after binding port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound probe (plain HTTP) address.
    pub fn probe_addr(&self) -> SocketAddr {
        self.probe_addr
    }

    /// Serves until `shutdown` resolves, then: readiness off at once; keeps serving for
    /// the drain period (each response then closes its connection, so clients reconnect
    /// to a ready replica); stops accepting; lets every connection finish its request;
    /// returns when all are closed (or after a grace period of 30s).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Server {
            opts,
            listener,
            probe_listener,
            local_addr,
            probe_addr,
            acceptor,
            reloader,
            routes,
            health,
            metrics,
        } = self;

        let reload_task =
            reloader.map(|reloader| tokio::spawn(reloader.run(opts.cert_reload_interval)));
        let timeouts = conn::Timeouts {
            header: opts.header_timeout,
            idle: opts.idle_timeout,
        };
        let (probe_stop, probe_stop_rx) = watch::channel(false);
        let probe_task = tokio::spawn(probes::run(
            probe_listener,
            probes::ProbeState::new(health.clone(), metrics.clone()),
            timeouts,
            probe_stop_rx,
        ));

        let max_connections = opts.max_connections();
        let connections = Arc::new(Semaphore::new(max_connections));
        let (stop_accepting, stop_accepting_rx) = watch::channel(false);
        let (close_connections, close_connections_rx) = watch::channel(false);
        let accept_task = tokio::spawn(conn::accept_loop(conn::Acceptor {
            listener,
            tls: acceptor,
            routes,
            timeouts,
            connections: connections.clone(),
            stop: stop_accepting_rx,
            close: close_connections_rx,
            metrics,
        }));
        info!(listen = %local_addr, probe = %probe_addr, "serving admission requests");

        shutdown.await;
        health.start_draining();
        info!(
            drain_period = ?opts.drain_period,
            "shutdown requested: not ready any more, serving on for the drain period"
        );
        tokio::time::sleep(opts.drain_period).await;

        // Nothing is accepted after this; connections finish their current request.
        let _ = stop_accepting.send(true);
        if let Err(e) = accept_task.await {
            error!(error = %e, "the accept loop ended abnormally");
        }
        let _ = close_connections.send(true);
        let limit = u32::try_from(max_connections).unwrap_or(u32::MAX);
        match tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(limit)).await {
            Ok(_) => info!("all connections closed; server stopped"),
            Err(_) => warn!(
                open = max_connections - connections.available_permits(),
                "connections still open after {SHUTDOWN_GRACE:?}; stopping anyway"
            ),
        }

        let _ = probe_stop.send(true);
        if let Err(e) = probe_task.await {
            error!(error = %e, "the probe server ended abnormally");
        }
        if let Some(task) = reload_task {
            task.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_budget_must_hold_one_body_of_the_maximum_size() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut opts = ServerOptions::new(addr, addr, TlsSource::SelfSigned { ca_out: None });
        assert!(opts.check().is_ok());
        opts.max_body_memory = opts.max_body_bytes - 1;
        let err = opts.check().unwrap_err().to_string();
        assert!(err.contains("body memory budget"), "{err}");
        opts.max_body_memory = usize::MAX;
        assert!(opts.check().is_err());
    }
}
