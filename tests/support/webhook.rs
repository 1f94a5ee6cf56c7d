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
        let metrics = Arc::new(Metrics::new());
        let handler = Arc::new(AdmissionHandler {
            admission: Admission {
                policy,
                pull_secret_name: "pullgate-pull".into(),
                table,
            },
            metrics: metrics.clone(),
            events: None,
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
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let conn = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(self.addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).unwrap();
        tls.write_all(body).unwrap();
        let mut raw = Vec::new();
        // A close without close_notify after the full response is fine here.
        let _ = tls.read_to_end(&mut raw);
        parse_response(&raw)
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

/// Splits an HTTP/1.1 response into status and body (Content-Length or chunked).
fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    (status, body)
}
