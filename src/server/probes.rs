//! The plain-HTTP probe port: `/healthz` (the process serves), `/readyz` (the binding
//! table is synced and the server is not draining; a stale table is still ready, and the
//! body says it is stale), `/metrics` (Prometheus text).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

use super::conn::{http1_builder, serve_bounded, signalled, CountingIo, HeadClock, Timeouts};
use super::reply::text;
use super::{metrics, Health, Metrics};

/// Probes and scrapes come from a handful of clients; a connection beyond these closes
/// the one open longest ([`super::conn::serve_bounded`]).
const MAX_PROBE_CONNECTIONS: usize = 64;

#[derive(Clone)]
pub(crate) struct ProbeState {
    health: Health,
    metrics: Arc<Metrics>,
}

impl ProbeState {
    pub(crate) fn new(health: Health, metrics: Arc<Metrics>) -> Self {
        ProbeState { health, metrics }
    }

    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return text(
                StatusCode::NOT_FOUND,
                "not found: try /healthz, /readyz or /metrics\n",
            );
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            // Stale is still ready: the degraded table keeps answering public, unmanaged
            // and exempt decisions (the staleness bound, `--max-staleness`), and with `failurePolicy: Fail` a webhook
            // with no ready replica would block every pod. The body says so instead, and
            // `pullgate_binding_table_stale` is what to alert on.
            "/readyz" if self.health.is_ready() && self.metrics.is_stale() => text(
                StatusCode::OK,
                "ready, but stale: the watches have been broken for longer than --max-staleness; grants of Private spaces are refused\n",
            ),
            "/readyz" if self.health.is_ready() => text(StatusCode::OK, "ready\n"),
            "/readyz" if self.health.is_draining() => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shutting down\n",
            ),
            "/readyz" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the binding table has not been synced yet\n",
            ),
            _ => {
                let mut response = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                response
            }
        }
    }
}

/// Serves probes until `stop` turns true; open probe connections are then dropped.
pub(crate) async fn run(
    listener: TcpListener,
    state: ProbeState,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let stop = signalled(&mut stop);
    serve_bounded(
        listener,
        MAX_PROBE_CONNECTIONS,
        "a probe connection",
        stop,
        |tcp, peer| {
            let state = state.clone();
            async move {
                let clock = Arc::new(HeadClock::default());
                let io = TokioIo::new(CountingIo::new(tcp, clock.clone()));
                let service = service_fn(move |request| {
                    let response = state.answer(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                if let Err(e) = http1_builder(timeouts, clock)
                    .serve_connection(io, service)
                    .await
                {
                    debug!(%peer, error = %e, "probe connection ended with an error");
                }
            }
        },
    )
    .await;
}
