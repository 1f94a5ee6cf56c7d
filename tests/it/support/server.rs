//! Helpers for the server tests: a server on 127.0.0.1 with a test handler, and real
//! rustls/hyper clients that trust its CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use pullgate::policy::Verdict;
use pullgate::server::{
    Handler, Health, Metrics, Outcome, Server, ServerOptions, TlsSource, Webhook,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Echoes `{"len":N,"endpoint":"validate"}`. Bodies starting with a command change that:
/// `sleep:<ms>` sleeps first, `gate` waits until the test opens the gate, `panic` panics,
/// `status:<code>` answers that status.
pub struct TestHandler {
    pub entered: AtomicUsize,
    gate: Mutex<bool>,
    opened: Condvar,
}

impl TestHandler {
    pub fn new() -> Arc<Self> {
        Arc::new(TestHandler {
            entered: AtomicUsize::new(0),
            gate: Mutex::new(false),
            opened: Condvar::new(),
        })
    }

    pub fn open_gate(&self) {
        *self.gate.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Handler for TestHandler {
    fn handle(&self, endpoint: Webhook, body: &[u8]) -> Outcome {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let text = std::str::from_utf8(body).unwrap_or("");
        let mut status = 200;
        // A real handler takes microseconds; these slow ones stand for a struggling one.
        // `block_in_place` moves the runtime's other tasks off this thread meanwhile, so
        // the rest of the test (the server's other connections, the clients) runs on.
        if let Some(ms) = text.strip_prefix("sleep:") {
            let pause = Duration::from_millis(ms.trim().parse().unwrap_or(0));
            blocking(|| std::thread::sleep(pause));
        } else if text == "gate" {
            // Bounded, so that a failing test cannot leave a runtime thread blocked for ever.
            blocking(|| {
                let open = self.gate.lock().unwrap();
                let _ = self
                    .opened
                    .wait_timeout_while(open, Duration::from_secs(10), |open| !*open)
                    .unwrap();
            });
        } else if text == "panic" {
            panic!("test handler asked to panic");
        } else if let Some(code) = text.strip_prefix("status:") {
            status = code.trim().parse().unwrap_or(500);
        }
        let body = format!(
            r#"{{"len":{},"endpoint":"{}"}}"#,
            body.len(),
            endpoint.as_str()
        );
        Outcome {
            status,
            body: body.into_bytes(),
            verdict: Some(Verdict::Allow),
            audit: None,
            event: None,
        }
    }
}

fn blocking(f: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub probe_addr: SocketAddr,
    /// CA certificates a client should trust.
    pub cas: Vec<String>,
    pub handler: Arc<TestHandler>,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

pub fn local_options(tls: TlsSource) -> ServerOptions {
    let mut opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        tls,
    );
    opts.drain_period = Duration::from_millis(200);
    opts.cert_reload_interval = Duration::from_millis(100);
    opts
}

/// A server with a self-signed certificate; `adjust` changes the options first.
pub async fn start(adjust: impl FnOnce(&mut ServerOptions)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.crt");
    let mut opts = local_options(TlsSource::SelfSigned {
        ca_out: Some(ca_out.clone()),
    });
    adjust(&mut opts);
    let mut server = start_with(opts, dir).await;
    server.cas = vec![std::fs::read_to_string(ca_out).unwrap()];
    server
}

/// A server with the given options; `dir` lives as long as the server.
pub async fn start_with(opts: ServerOptions, dir: tempfile::TempDir) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    health.set_synced(true);
    let handler = TestHandler::new();
    let server = Server::bind(opts, handler.clone(), health.clone(), metrics.clone())
        .await
        .expect("server binds");
    let (addr, probe_addr) = (server.local_addr(), server.probe_addr());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        probe_addr,
        cas: Vec::new(),
        handler,
        metrics,
        health,
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl TestServer {
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config(
            &self.cas,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr, self.client_config())
            .await
            .expect("connect")
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.trigger_shutdown();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops within 10s")
            .expect("server task")
            .expect("server returns Ok");
        started.elapsed()
    }
}

pub fn client_config(
    cas: &[String],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Like the apiserver: every connection is a full handshake and sees the current cert.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// Serial number of a DER certificate, as `pullgate` logs it.
pub fn serial_of_der(der: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.raw_serial_as_string().to_lowercase()
}

pub fn serial_of_pem(pem: &str) -> String {
    serial_of_der(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
}

pub struct Response {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn closes(&self) -> bool {
        self.headers
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    }
}

/// One HTTP/1.1 keep-alive connection over TLS.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    pub version: Option<rustls::ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    pub serial: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Client> {
        let stream = tls_connect(addr, config).await?;
        let (_, session) = stream.get_ref();
        let version = session.protocol_version();
        let alpn = session.alpn_protocol().map(|p| p.to_vec());
        let serial = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| serial_of_der(leaf))
            .unwrap_or_default();
        let sender = http1_handshake(TokioIo::new(stream)).await?;
        Ok(Client {
            sender,
            version,
            alpn,
            serial,
        })
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> hyper::Result<Response> {
        send(&mut self.sender, "POST", path, body.into()).await
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> hyper::Result<Response> {
        send(&mut self.sender, method, path, body.into()).await
    }
}

async fn http1_handshake<T>(io: TokioIo<T>) -> std::io::Result<SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: Bytes,
) -> hyper::Result<Response> {
    sender.ready().await?;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .unwrap();
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A plain-HTTP GET on the probe port.
pub async fn probe(addr: SocketAddr, path: &str) -> Response {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut sender = http1_handshake(TokioIo::new(tcp)).await.unwrap();
    send(&mut sender, "GET", path, Bytes::new()).await.unwrap()
}

/// A directory laid out like a mounted Secret volume: `..<stamp>/tls.*` files, a
/// `..data` symlink to the current stamp, and `tls.crt`/`tls.key` symlinks through it.
pub struct SecretVolume {
    pub dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    pub fn create(dir: &Path, cert: &str, key: &str) -> SecretVolume {
        let mut volume = SecretVolume {
            dir: dir.to_owned(),
            generation: 0,
        };
        volume.update(cert, key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        volume
    }

    /// Writes a new dated directory and swaps `..data` to it atomically, as the kubelet does.
    pub fn update(&mut self, cert: &str, key: &str) {
        self.generation += 1;
        let stamp = format!("..2026_01_{:02}_00_00_00.000000001", self.generation);
        let data = self.dir.join(&stamp);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tls.crt"), cert).unwrap();
        std::fs::write(data.join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    pub fn source(&self) -> TlsSource {
        TlsSource::Files {
            cert: self.dir.join("tls.crt"),
            key: self.dir.join("tls.key"),
        }
    }
}

/// Reads until the peer closes (or `limit` passes): the bytes and whether it closed.
pub async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => return (seen, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A TLS ClientHello record that offers only `version` (0x0301 = 1.0, 0x0302 = 1.1).
pub fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = Vec::new();
    hello.extend(version);
    hello.extend([0x42; 32]); // random
    hello.push(0); // no session id
    let suites: [u16; 4] = [0xc013, 0xc014, 0x002f, 0x0035];
    hello.extend(((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        hello.extend(suite.to_be_bytes());
    }
    hello.extend([1, 0]); // compression: null only
                          // Extensions a real client sends, so that only the version is wrong: signature
                          // algorithms (ecdsa_secp256r1_sha256, rsa_pkcs1_sha256), groups (secp256r1), point
                          // formats (uncompressed).
    let extensions: [&[u8]; 3] = [
        &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01],
        &[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
    ];
    let extensions = extensions.concat();
    hello.extend((extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}
