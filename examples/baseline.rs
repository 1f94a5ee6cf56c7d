//! The minimal server of BENCHMARKS.md's throughput target, the yardstick of `benches/load.sh`: hyper 1 + rustls
//! with the same certificate type (ECDSA P-256 from `pullgate::certs::generate`), the same
//! TLS settings (TLS 1.2 and 1.3, ALPN `http/1.1`, the ring provider), the same runtime
//! (tokio multi-thread, default worker count) and TCP_NODELAY, answering every request
//! with a fixed allowed AdmissionReview after reading the whole body.
//!
//! Run: `cargo run --release --example baseline -- 127.0.0.1:18443 [--work-us N | --parse-json]`
//!
//! `--work-us N` makes it spend about N µs of CPU per request (a loop calibrated at
//! start) after reading the body: the load benchmark's yardstick of how much work per
//! request each target of BENCHMARKS.md leaves room for. `--parse-json` makes it check
//! that the body is one JSON document (serde_json into `IgnoredAny`, nothing kept) and
//! answer 400 if not: the least any webhook does with a review before it can decide.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const ALLOWED: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true,"status":{"status":"Success"},"auditAnnotations":{"decision":"allow"}}}"#;

/// What the server does with a body after reading it.
#[derive(Clone, Copy)]
enum Work {
    Nothing,
    /// This many iterations of [`busy`].
    Loop(u64),
    /// Check that the body is JSON.
    ParseJson,
}

async fn answer(
    request: Request<Incoming>,
    work: Work,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body fully, as the webhook must.
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = match work {
        Work::Nothing => true,
        Work::Loop(iterations) => {
            std::hint::black_box(busy(iterations));
            true
        }
        Work::ParseJson => serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok(),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(ALLOWED)));
    if !json {
        *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
    }
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `iterations` steps of a loop the compiler cannot remove or shorten.
fn busy(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = std::hint::black_box(x ^ i).rotate_left(5);
    }
    x
}

/// Loop iterations that take `us` microseconds here: the fastest of a few timed runs.
fn calibrate(us: f64) -> u64 {
    const PROBE: u64 = 20_000_000;
    let fastest = (0..5)
        .map(|_| {
            let started = Instant::now();
            busy(PROBE);
            started.elapsed()
        })
        .min()
        .unwrap_or_default();
    (us * 1e-6 / fastest.as_secs_f64().max(1e-9) * PROBE as f64) as u64
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen: SocketAddr = args
        .first()
        .map_or("127.0.0.1:18443", String::as_str)
        .parse()?;
    let work = match args.get(1).map(String::as_str) {
        Some("--work-us") => match args.get(2) {
            Some(us) => Work::Loop(calibrate(us.parse()?)),
            None => anyhow::bail!("--work-us needs a number of microseconds"),
        },
        Some("--parse-json") => Work::ParseJson,
        Some(other) => anyhow::bail!("unknown argument {other:?}"),
        None => Work::Nothing,
    };
    let certs = pullgate::certs::generate(&["localhost".into(), "127.0.0.1".into()])?;
    let chain =
        CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes())?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        eprintln!(
            "baseline listening on {} ({})",
            listener.local_addr()?,
            match work {
                Work::Nothing => "reading the body".to_string(),
                Work::Loop(n) => format!("{n} work iterations per request"),
                Work::ParseJson => "checking the body is JSON".to_string(),
            }
        );
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(
                        TokioIo::new(tls),
                        service_fn(move |request| answer(request, work)),
                    )
                    .await;
            });
        }
    })
}
