//! The HTTP transport both clients share: hyper's pooled HTTP/1.1 client over rustls,
//! with the Registry's `caBundle` and `insecureSkipTLSVerify`, connect and request
//! timeouts, a response size cap, and no cookie store (a Harbor session cookie would turn
//! on its CSRF check and break writes). Also the `Link` header and query helpers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ClientOptions, RegistryError, TlsSettings};

/// Largest response body read; registry API answers are small JSON documents, so a larger
/// one is a misconfigured URL (e.g. a web page), not something to buffer.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One base URL's transport.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
    request_timeout: Duration,
}

impl Http {
    pub fn new(base: &str, tls: &TlsSettings, opts: &ClientOptions) -> Result<Http, RegistryError> {
        let config = tls_config(tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(opts.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_string(),
            request_timeout: opts.request_timeout,
        })
    }

    /// Absolute URL of a path (`/v2/…`) on this registry.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request to an absolute URL and reads the whole answer, within the request
    /// timeout. Redirects are not followed: a registry API answers directly.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, RegistryError> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        builder = builder.header(hyper::header::ACCEPT, "application/json");
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| RegistryError::Settings(format!("invalid request URL {url:?}: {e}")))?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| RegistryError::Unreachable {
                        url: url.to_string(),
                        reason: error_chain(&e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| RegistryError::InvalidResponse {
                    url: url.to_string(),
                    reason: format!("reading the body: {e}"),
                })?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| RegistryError::Timeout {
                url: url.to_string(),
                seconds: self.request_timeout.as_secs(),
            })?
    }
}

/// The error and its sources in one line ("client error (Connect): tcp connect error:
/// Connection refused"), since hyper's top-level message alone says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// rustls client settings: Mozilla's roots plus the Registry's `caBundle`, or no
/// verification at all with `insecureSkipTLSVerify`.
fn tls_config(tls: &TlsSettings) -> Result<rustls::ClientConfig, RegistryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Settings(format!("TLS settings: {e}")))?;
    // ALPN is left to the connector, which offers http/1.1 (`enable_http1`).
    let config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = tls.ca_bundle.as_deref().filter(|p| !p.trim().is_empty()) {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| RegistryError::Settings(format!("caBundle: {e}")))?;
                roots.add(cert).map_err(|e| {
                    RegistryError::Settings(format!("caBundle holds an unusable certificate: {e}"))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(RegistryError::Settings(
                    "caBundle holds no PEM certificate".into(),
                ));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// Accepts any certificate (`insecureSkipTLSVerify`), still checking that the handshake
/// signatures are made with the presented key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Characters escaped in a query value: everything but unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one query or path value.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The target of the `rel="next"` entry of a `Link` header. Entries are separated by
/// commas (Harbor joins them with `" , "`); URLs are inside `<…>` and may hold commas.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_and_more = &after[end + 1..];
        let params = match params_and_more.find('<') {
            Some(next) => &params_and_more[..next],
            None => params_and_more,
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            match p.split_once('=') {
                Some((k, v)) => {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                }
                None => false,
            }
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = params_and_more;
    }
    None
}

/// Resolves a `Link` target against the registry's base URL. Registries send path-only
/// targets; an absolute one is followed only on the same origin, so credentials are never
/// sent to another host.
pub(crate) fn resolve_link(http: &Http, target: &str) -> Option<String> {
    if target.starts_with("http://") || target.starts_with("https://") {
        let same_origin = target
            .strip_prefix(http.base.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        same_origin.then(|| target.to_string())
    } else if target.starts_with('/') {
        Some(http.url(target))
    } else {
        Some(http.url(&format!("/{target}")))
    }
}
