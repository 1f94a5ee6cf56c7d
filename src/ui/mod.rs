//! The overview page of `serve --ui-listen ADDR`: a read-only HTML page on plain HTTP,
//! the graphical form of `pullgate overview` ([`crate::overview`]) plus the latest
//! denials of this replica ([`denials::RecentDenials`]) and the audit findings per
//! workspace (from a [`FindingsSource`], when one is plugged in).
//!
//! It keeps the last [`Overview`] collected, from the same source as the CLI: in
//! standalone mode the `--config` file, with every registry probed live; in cluster mode
//! the objects and the status the leader recorded. A request collects again when the
//! kept one is older than [`COLLECT_EVERY`], so registries and the apiserver are asked at
//! most that often however many browsers keep the page open, and not at all when none
//! does. `GET /` is the page; every other method gets 405, every other path 404, a
//! Host other than `localhost` or an IP address 403; nothing is ever written.

pub mod denials;
pub mod findings;
pub mod page;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::api::Enforcement;
use crate::config;
use crate::overview::{self, Overview};
use crate::server::{serve_bounded, text};
use denials::RecentDenials;

/// The kept overview is collected again when older than this on a request.
pub const COLLECT_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for one registry's probe (standalone): an unreachable registry turns
/// Unhealthy after this rather than holding the page.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the apiserver's lists (cluster mode).
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the page reloads itself.
const REFRESH_SECONDS: u64 = 30;
/// A page is read by a person or two; a connection beyond these closes the one open
/// longest ([`crate::server::conn::serve_bounded`]).
const MAX_CONNECTIONS: usize = 32;
/// Time for a request head, and for an idle keep-alive connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the overview comes from: the same sources as `pullgate overview`.
pub enum Source {
    /// Standalone: the `--config` file, read again at each collection (the file the
    /// server reloads), its registries probed live.
    Config(PathBuf),
    /// Cluster mode: the objects and their recorded status, listed from the apiserver.
    Cluster(kube::Client),
}

/// The audit findings of one workspace (README, "Background audit and reports"): `total` findings, the first few of
/// them listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceFindings {
    pub workspace: String,
    pub total: u64,
    pub findings: Vec<Finding>,
}

/// One running workload that the current bindings would deny.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finding {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub image: String,
    /// The sentence the developer would get.
    pub reason: String,
}

/// What the background audit reports, read at each rendering.
pub trait FindingsSource: Send + Sync {
    /// `None` while there is no audit data; the page then says so.
    fn findings(&self) -> Option<Vec<WorkspaceFindings>>;
}

/// The page's state: its source, the kept overview, the denial ring.
pub struct Ui {
    source: Source,
    global_mode: Enforcement,
    denials: Arc<RecentDenials>,
    findings: Option<Arc<dyn FindingsSource>>,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    overview: Option<Arc<Overview>>,
    collected_at: Option<SystemTime>,
    /// When the last collection was tried, good or bad.
    tried: Option<Instant>,
    error: Option<String>,
}

impl Ui {
    pub fn new(source: Source, global_mode: Enforcement, denials: Arc<RecentDenials>) -> Ui {
        Ui {
            source,
            global_mode,
            denials,
            findings: None,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// Plugs in the audit findings.
    pub fn with_findings(mut self, findings: Arc<dyn FindingsSource>) -> Ui {
        self.findings = Some(findings);
        self
    }

    fn source_label(&self) -> String {
        match &self.source {
            Source::Config(path) => format!("standalone · {}", path.display()),
            Source::Cluster(_) => "cluster mode".into(),
        }
    }

    async fn collect(&self) -> Result<Overview, String> {
        match &self.source {
            Source::Config(path) => {
                let path = path.clone();
                let cfg = tokio::task::spawn_blocking(move || config::load(&path))
                    .await
                    .map_err(|e| format!("reading the configuration failed: {e}"))?
                    .map_err(|e| e.to_string())?;
                Ok(overview::collect(&cfg.objects, &cfg.secrets, PROBE_TIMEOUT).await)
            }
            Source::Cluster(client) => {
                match tokio::time::timeout(LIST_TIMEOUT, overview::from_cluster(client.clone()))
                    .await
                {
                    Ok(Ok(o)) => Ok(o),
                    Ok(Err(e)) => Err(format!("cannot read the cluster: {e}")),
                    Err(_) => Err(format!(
                        "the apiserver did not answer within {}s",
                        LIST_TIMEOUT.as_secs()
                    )),
                }
            }
        }
    }

    /// The page, collecting the overview first if the kept one is too old.
    pub async fn page(&self) -> String {
        let mut kept = self.kept.lock().await;
        if kept.tried.is_none_or(|t| t.elapsed() >= COLLECT_EVERY) {
            match self.collect().await {
                Ok(o) => {
                    kept.overview = Some(Arc::new(o));
                    kept.collected_at = Some(SystemTime::now());
                    kept.error = None;
                }
                Err(e) => {
                    warn!(error = %e, "overview page: cannot collect the overview");
                    kept.error = Some(e);
                }
            }
            kept.tried = Some(Instant::now());
        }
        let (overview, collected_at, error) =
            (kept.overview.clone(), kept.collected_at, kept.error.clone());
        drop(kept);
        let denials = self.denials.latest();
        let findings = self.findings.as_ref().and_then(|f| f.findings());
        page::render(&page::View {
            source: &self.source_label(),
            global_mode: self.global_mode,
            overview: overview.as_deref(),
            collected_at,
            error: error.as_deref(),
            denials: &denials,
            findings: findings.as_deref(),
            refresh_seconds: REFRESH_SECONDS,
        })
    }

    async fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: the overview page is read-only (GET)\n",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        if !local_host(request) {
            return text(
                StatusCode::FORBIDDEN,
                "forbidden: the overview page answers only to localhost or an IP address as Host (a web page cannot rebind its own name to it); reach it with kubectl port-forward\n",
            );
        }
        if request.uri().path() != "/" {
            return text(StatusCode::NOT_FOUND, "not found: the overview is at /\n");
        }
        let mut response = Response::new(Full::new(Bytes::from(self.page().await)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

/// Whether the request names the page by `localhost` or an IP address, as
/// `kubectl proxy` accepts by default. A page on another site cannot read this one even
/// by pointing its own name at 127.0.0.1 (DNS rebinding): the browser then sends that
/// name as Host. A request without Host (HTTP/1.0) names nothing else either.
fn local_host(request: &Request<Incoming>) -> bool {
    let Some(host) = request.headers().get(hyper::header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Headers of every answer: never cached, never framed, no script, no outside request,
/// and no style but the page's own stylesheet (allowed by its hash; the bars are SVG, so
/// no element carries a `style` attribute).
fn harden(response: &mut Response<Full<Bytes>>) {
    static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, page::CSS.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        HeaderValue::from_str(&format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        ))
        .unwrap_or(HeaderValue::from_static("default-src 'none'"))
    });
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        POLICY.clone(),
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

/// `serve --ui-listen`: serves the page on `addr` (standalone with the `config` file,
/// else in cluster mode) until `stop` resolves; returns the ring of denials that the
/// admission handler fills for it.
pub async fn start(
    addr: SocketAddr,
    config: Option<&Path>,
    global_mode: Enforcement,
    findings: Option<Arc<dyn FindingsSource>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<Arc<RecentDenials>> {
    let source = match config {
        Some(path) => Source::Config(path.to_path_buf()),
        None => Source::Cluster(kube::Client::try_default().await.context(
            "the overview page needs in-cluster config or a kubeconfig (or --config FILE)",
        )?),
    };
    let denials = Arc::new(RecentDenials::new());
    let mut ui = Ui::new(source, global_mode, denials.clone());
    if let Some(findings) = findings {
        ui = ui.with_findings(findings);
    }
    let listener = bind(addr).await?;
    let bound = listener
        .local_addr()
        .context("reading the overview page address")?;
    info!(ui = %bound, "serving the overview page");
    tokio::spawn(run(listener, Arc::new(ui), stop));
    Ok(denials)
}

/// Binds the page's port (before anything is served, so a taken port fails the start).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!(
            "binding the overview page port {addr}: is the address free and local? (--ui-listen)"
        )
    })
}

/// Serves the page until `stop` resolves; open connections are then dropped.
pub async fn run(listener: TcpListener, ui: Arc<Ui>, stop: impl Future<Output = ()>) {
    let what = "an overview page connection";
    serve_bounded(listener, MAX_CONNECTIONS, what, stop, |tcp, peer| {
        let ui = ui.clone();
        async move {
            let service = service_fn(move |request| {
                let ui = ui.clone();
                async move {
                    let mut response = ui.answer(&request).await;
                    harden(&mut response);
                    Ok::<_, Infallible>(response)
                }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = served {
                debug!(%peer, error = %e, "overview page connection ended with an error");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests;
