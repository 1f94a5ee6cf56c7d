//! The real pullgate webhook (TLS server + admission handler) on 127.0.0.1, running on
//! its own thread and runtime so that tests can post reviews with a blocking client from
//! any context, sync closures included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pullgate::admission::Admission;
use pullgate::index::Table;
use pullgate::policy::Policy;
use pullgate::serve::AdmissionHandler;
use pullgate::server::{Health, Metrics, Server, ServerOptions, TlsSource};
use pullgate::whatif::{Running, Warnings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::sync::oneshot;

pub struct PullgateServer {
    pub addr: SocketAddr,
    pub probe_addr: SocketAddr,
    pub ca_pem: String,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl PullgateServer {
    /// Serves admission for `table` with `policy` (self-signed certificate).
    pub fn start(table: Arc<Table>, policy: Policy) -> PullgateServer {
        Self::start_with(table, policy, |_| {})
    }

    /// Like [`PullgateServer::start`]; `adjust` changes the server options first.
    pub fn start_with(
        table: Arc<Table>,
        policy: Policy,
        adjust: impl FnOnce(&mut ServerOptions),
    ) -> PullgateServer {
        Self::start_running(table, policy, None, adjust)
    }

    /// Like [`PullgateServer::start_with`], with the running workloads that warnings on
    /// an admin's change are computed from.
    pub fn start_running(
        table: Arc<Table>,
        policy: Policy,
        running: Option<Arc<dyn Running>>,
        adjust: impl FnOnce(&mut ServerOptions),
    ) -> PullgateServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_out = dir.path().join("ca.crt");
        let mut opts = ServerOptions::new(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            TlsSource::SelfSigned {
                ca_out: Some(ca_out.clone()),
            },
        );
        opts.drain_period = Duration::from_millis(100);
        adjust(&mut opts);
        let metrics = Arc::new(Metrics::new());
        let handler = Arc::new(AdmissionHandler {
            admission: Admission {
                policy,
                pull_secret_name: "pullgate-pull".into(),
                table,
                changes: running.map(|r| Arc::new(Warnings(r)) as _),
            },
            events: None,
            denials: None,
        });
        let (addrs_tx, addrs_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let m = metrics.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let health = Health::new();
                health.set_synced(true);
                let server = Server::bind(opts, handler, health, m).await.expect("bind");
                addrs_tx
                    .send((server.local_addr(), server.probe_addr()))
                    .unwrap();
                server
                    .run(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("server run");
            });
        });
        let (addr, probe_addr) = addrs_rx.recv().expect("server started");
        PullgateServer {
            addr,
            probe_addr,
            ca_pem: std::fs::read_to_string(ca_out).expect("CA written"),
            metrics,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// POSTs `body` to `path` over a new TLS connection; (HTTP status, body).
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        post_tls(self.addr, &self.ca_pem, path, body).expect("complete response")
    }

    /// Posts a JSON review to `/validate` or `/mutate`; (status, JSON body).
    pub fn review(&self, path: &str, review: &serde_json::Value) -> (u16, serde_json::Value) {
        let (status, body) = self.post(path, review.to_string().as_bytes());
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, v)
    }
}

impl Drop for PullgateServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// POSTs `body` to `https://addr/path` trusting `ca_pem`, on a new connection with
/// `Connection: close`; (HTTP status, body), or the I/O error that cut the exchange.
pub fn post_tls(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    post_tls_announcing(addr, ca_pem, path, body.len(), body)
}

/// [`post_tls`] with a Content-Length of `announced`, of which only `body` is sent: a
/// server that refuses the size before reading answers without the client being cut off
/// mid-body.
pub fn post_tls_announcing(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    announced: usize,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The handshake first, on its own: a failure here means no byte of the request left.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("TLS handshake: {e}"),
            )
        })?;
    }
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A close without close_notify after a complete response is fine.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw).ok_or_else(|| std::io::Error::other("incomplete HTTP response"))
}

/// Splits an HTTP/1.1 response into status and body (Content-Length or chunked).
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16)
                    .ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(line_end + 2..line_end + 2 + size)?);
            rest = rest.get(line_end + 2 + size + 2..)?;
        }
        body = out;
    } else if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        if body.len() < len {
            return None;
        }
        body.truncate(len);
    }
    Some((status, body))
}
