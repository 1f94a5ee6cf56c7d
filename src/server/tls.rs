//! TLS of the admission port: the rustls configuration (TLS 1.2 and 1.3 only, ALPN
//! `http/1.1` only), the serving pair loaded and checked before the port is bound, and its
//! hot reload.
//!
//! The pair lives in an `ArcSwap` read by a [`ResolvesServerCert`] at each handshake, so
//! a reload is one atomic swap: handshakes in progress keep the pair they started with,
//! new ones get the new pair, none fails. The reloader compares file *content*: a
//! Kubernetes Secret volume update swaps a `..data` symlink, which changes neither the
//! path nor, reliably, an mtime that a watcher of `tls.crt` would see.
//!
//! The expiry of the pair in use and the count of unusable new pairs go to [`Metrics`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use tracing::{info, warn};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Metrics, TlsSource};

/// TLS 1.0 and 1.1 are refused; the apiserver speaks 1.2 and 1.3.
pub(crate) const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// The apiserver calls webhooks over HTTP/1.1 only; offering h2 would be a lie.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why a certificate/key pair was refused. Each message names the file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate file {path} is not a PEM certificate chain: {reason}")]
    BadCertificatePem { path: PathBuf, reason: String },
    #[error(
        "TLS certificate file {path} holds no certificate (expected a PEM \"CERTIFICATE\" block)"
    )]
    NoCertificate { path: PathBuf },
    #[error("TLS certificate file {path}: the first certificate is not valid X.509: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("TLS key file {path} holds no usable private key (expected a PEM PKCS#8, SEC1 or PKCS#1 key): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("TLS key file {key} does not belong to certificate {cert}: give the key of that certificate")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

/// What the serving certificate is, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial number, lower-case hex with colons (as `openssl x509 -serial` groups it).
    pub serial: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "serial {} valid until {}",
            self.serial,
            humantime::format_rfc3339_seconds(self.not_after)
        )
    }
}

/// A parsed, consistent certificate chain and key.
pub(crate) struct LoadedPair {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) info: CertInfo,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration around a resolver.
pub(crate) fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .context("building the TLS configuration")?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Loads (or generates) the first pair; for files, also the reloader that keeps it fresh.
/// The pair's expiry goes to `metrics`, and so will the reloader's.
pub(crate) fn prepare(
    source: &TlsSource,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<CertResolver>, Option<CertReloader>)> {
    match source {
        TlsSource::Files { cert, key } => {
            let cert_pem = read(cert, "certificate")?;
            let key_pem = read(key, "key")?;
            let pair = parse_pair(&cert_pem, &key_pem, cert, key)?;
            info!(cert = %cert.display(), certificate = %pair.info, "loaded the serving certificate");
            warn_if_outside_validity(&pair.info);
            metrics.set_certificate_expiry(pair.info.not_after);
            let resolver = Arc::new(CertResolver::new(pair.key));
            let reloader = CertReloader {
                cert_path: cert.clone(),
                key_path: key.clone(),
                resolver: resolver.clone(),
                last_content: Some((cert_pem, key_pem)),
                last_error: None,
                metrics: metrics.clone(),
            };
            Ok((resolver, Some(reloader)))
        }
        TlsSource::SelfSigned { ca_out } => {
            let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
            let generated = crate::certs::generate(&names)?;
            if let Some(path) = ca_out {
                // `--ca-out target/dev/ca.crt` on a fresh clone: make the directory.
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {} for --ca-out", dir.display()))?;
                }
                std::fs::write(path, &generated.ca_cert_pem).with_context(|| {
                    format!(
                        "writing the generated CA certificate to {} (--ca-out)",
                        path.display()
                    )
                })?;
                info!(ca = %path.display(), "wrote the CA of the self-signed serving certificate");
            }
            let pair = parse_pair(
                generated.cert_pem.as_bytes(),
                generated.key_pem.as_bytes(),
                Path::new("<generated>"),
                Path::new("<generated>"),
            )?;
            info!(certificate = %pair.info, "generated a self-signed serving certificate for localhost and 127.0.0.1");
            metrics.set_certificate_expiry(pair.info.not_after);
            Ok((Arc::new(CertResolver::new(pair.key)), None))
        }
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    // `fs::read` follows symlinks, so `tls.crt -> ..data/tls.crt` reads the current target.
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Parses a PEM chain and key and checks that the key belongs to the first certificate.
pub(crate) fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedPair, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificatePem {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    };
    let info = cert_info(leaf).map_err(|reason| TlsError::BadCertificate {
        path: cert_path.to_owned(),
        reason,
    })?;
    let bad_key = |reason: String| TlsError::BadKey {
        path: key_path.to_owned(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad_key(e.to_string()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
    })?;
    Ok(LoadedPair {
        key: Arc::new(certified),
        info,
    })
}

/// Serial and validity of a DER certificate.
pub(crate) fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    Ok(CertInfo {
        serial: cert.raw_serial_as_string().to_lowercase(),
        not_before: to_system_time(validity.not_before.timestamp()),
        not_after: to_system_time(validity.not_after.timestamp()),
    })
}

fn to_system_time(unix: i64) -> SystemTime {
    match u64::try_from(unix) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

fn warn_if_outside_validity(info: &CertInfo) {
    let now = SystemTime::now();
    if now > info.not_after {
        warn!(certificate = %info, "the serving certificate has expired: clients will refuse it; replace it");
    } else if now < info.not_before {
        warn!(certificate = %info, "the serving certificate is not valid yet: check the clock or the certificate");
    }
}

/// Hands the current pair to every handshake.
#[derive(Debug)]
pub(crate) struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Self {
        CertResolver {
            current: ArcSwap::new(key),
        }
    }

    fn swap(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What one reload check did (logged as it happens; the details are for tests).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum ReloadOutcome {
    Unchanged,
    Reloaded(CertInfo),
    /// The files changed but could not be used; the previous pair stays.
    Kept(String),
}

/// Re-reads the certificate files and swaps in a new pair when their content changed.
pub(crate) struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    resolver: Arc<CertResolver>,
    /// Content last looked at, good or bad, so a bad pair is reported once, not per tick.
    last_content: Option<(Vec<u8>, Vec<u8>)>,
    last_error: Option<String>,
    metrics: Arc<Metrics>,
}

impl CertReloader {
    pub(crate) async fn run(mut self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the pair was just loaded
        loop {
            ticks.tick().await;
            self.check().await;
        }
    }

    pub(crate) async fn check(&mut self) -> ReloadOutcome {
        let content = tokio::try_join!(
            read_async(&self.cert_path, "certificate"),
            read_async(&self.key_path, "key")
        );
        let (cert_pem, key_pem) = match content {
            Ok(content) => content,
            Err(e) => return self.keep(e.to_string()),
        };
        if self
            .last_content
            .as_ref()
            .is_some_and(|(c, k)| *c == cert_pem && *k == key_pem)
        {
            self.last_error = None;
            return ReloadOutcome::Unchanged;
        }
        let parsed = parse_pair(&cert_pem, &key_pem, &self.cert_path, &self.key_path);
        self.last_content = Some((cert_pem, key_pem));
        match parsed {
            Ok(pair) => {
                self.resolver.swap(pair.key);
                self.last_error = None;
                info!(cert = %self.cert_path.display(), certificate = %pair.info, "reloaded the serving certificate; new connections use it");
                warn_if_outside_validity(&pair.info);
                self.metrics.set_certificate_expiry(pair.info.not_after);
                ReloadOutcome::Reloaded(pair.info)
            }
            Err(e) => self.keep(e.to_string()),
        }
    }

    /// Keeps the previous pair. A failure is logged and counted once, not at every check
    /// that finds the same broken files.
    fn keep(&mut self, reason: String) -> ReloadOutcome {
        if self.last_error.as_deref() != Some(reason.as_str()) {
            self.metrics.inc_certificate_reload_failure();
            warn!(error = %reason, "the certificate files changed but cannot be used; keeping the previous certificate");
            self.last_error = Some(reason.clone());
        }
        ReloadOutcome::Kept(reason)
    }
}

async fn read_async(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests;
