//! Pulls without Secrets (README, "Pulls without Secrets"), both halves:
//!
//! - the kubelet's side, `pullgate credential-provider` ([`run`]): one
//!   `CredentialProviderRequest` ([`kubelet`]) on stdin, one `POST /credentials` to
//!   `pullgate serve` with the pod's service-account token, one
//!   `CredentialProviderResponse` on stdout, exit 0 whatever happens. When anything goes
//!   wrong (bad request, no token, server unreachable, no entitlement) the response
//!   carries no credentials and one stderr line says why, so the kubelet falls back to
//!   what else it has. The token is sent only to the server and never printed.
//! - the server's side, [`issuer::TokenIssuer`]: the `/credentials` decision (TokenReview,
//!   namespace, the admission rules, the credential of the pair).

pub mod issuer;
pub mod kubelet;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::cli::CredentialProviderArgs;
use crate::input::escape;
use crate::server::credentials::{CredentialsRequest, CredentialsResponse, PATH};
use kubelet::{CredentialProviderRequest, CredentialProviderResponse};

/// The kubelet writes one small JSON object; more than this is not a request.
const MAX_REQUEST: u64 = 1024 * 1024;
/// pullgate's answers are small JSON documents.
const MAX_ANSWER: usize = 1024 * 1024;
/// Server messages are cut to this many bytes on stderr.
const MAX_MESSAGE: usize = 1024;

/// Why no credentials were given, for the stderr line.
type Why = String;

/// The command: always prints one response and returns exit code 0.
pub fn run(args: &CredentialProviderArgs) -> i32 {
    let mut input = Vec::new();
    let read = std::io::stdin()
        .take(MAX_REQUEST + 1)
        .read_to_end(&mut input);
    let (version, answer) = match read {
        Ok(_) => answer(args, &input),
        Err(e) => (
            kubelet::API_VERSION.to_string(),
            Err(format!("cannot read the request on stdin: {e}")),
        ),
    };
    let response = match answer {
        Ok(response) => response,
        Err(why) => {
            eprintln!("pullgate credential-provider: no credentials: {why}");
            CredentialProviderResponse::none(&version)
        }
    };
    // Serialising strings and maps of strings cannot fail.
    let text = serde_json::to_string(&response).unwrap_or_default();
    println!("{text}");
    0
}

/// What to do when the command line does not parse: the usual error and exit code,
/// except for `credential-provider`, which answers the kubelet with no credentials and
/// exit code 0 even then (a flag missing from its CredentialProviderConfig).
pub fn bad_flags(error: clap::Error) -> ! {
    let provider = std::env::args().nth(1).as_deref() == Some("credential-provider");
    let shown = matches!(
        error.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    );
    if !provider || shown {
        error.exit()
    }
    let text = error.to_string();
    let what = text.split("\n\nUsage").next().unwrap_or_default();
    let what = what.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("pullgate credential-provider: no credentials: {what}");
    let none = CredentialProviderResponse::none(kubelet::API_VERSION);
    println!("{}", serde_json::to_string(&none).unwrap_or_default());
    std::process::exit(0)
}

/// The request's API version (to answer in) and the response, or why there is none.
fn answer(
    args: &CredentialProviderArgs,
    input: &[u8],
) -> (String, Result<CredentialProviderResponse, Why>) {
    if input.len() as u64 > MAX_REQUEST {
        return (
            kubelet::API_VERSION.to_string(),
            Err(format!("the request on stdin exceeds {MAX_REQUEST} bytes")),
        );
    }
    let request: CredentialProviderRequest = match serde_json::from_slice(input) {
        Ok(r) => r,
        Err(e) => {
            return (
                kubelet::API_VERSION.to_string(),
                Err(format!(
                    "the request on stdin is not a CredentialProviderRequest: {e}"
                )),
            )
        }
    };
    let known = request.api_version == kubelet::API_VERSION
        || kubelet::OLDER_VERSIONS.contains(&request.api_version.as_str());
    if !known || request.kind != kubelet::REQUEST_KIND {
        return (
            kubelet::API_VERSION.to_string(),
            Err(format!(
                "the request on stdin is {} {}, not {} {}",
                escape(&request.api_version),
                escape(&request.kind),
                kubelet::API_VERSION,
                kubelet::REQUEST_KIND
            )),
        );
    }
    let version = request.api_version.clone();
    let image = escape(&request.image).into_owned();
    if request.service_account_token.is_empty() {
        return (
            version,
            Err(format!(
                "image {image:?}: the request carries no service-account token; set tokenAttributes (serviceAccountTokenAudience) in the kubelet's CredentialProviderConfig (Kubernetes 1.34 or later)"
            )),
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return (version, Err(format!("cannot start the runtime: {e}"))),
    };
    let asked = runtime.block_on(async {
        tokio::time::timeout(args.timeout, ask(args, &request))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "pullgate at {} did not answer within {:?}",
                    escape(&args.server),
                    args.timeout
                ))
            })
    });
    let result = asked
        .map(|granted| {
            CredentialProviderResponse::with(&version, granted.auth, granted.cache_seconds)
        })
        .map_err(|why| format!("image {image:?}: {why}"));
    (version, result)
}

/// `POST /credentials` with the token as a bearer token.
async fn ask(
    args: &CredentialProviderArgs,
    request: &CredentialProviderRequest,
) -> Result<CredentialsResponse, Why> {
    let tls = tls_config(&args.ca_file)?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let builder = match &args.tls_server_name {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("--tls-server-name {:?}: {e}", escape(name)))?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let https = builder.enable_http1().wrap_connector(http);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let base = args.server.trim_end_matches('/');
    let url = format!("{base}{PATH}?timeout={}s", args.timeout.as_secs().max(1));
    let body = serde_json::to_vec(&CredentialsRequest {
        image: request.image.clone(),
    })
    .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", request.service_account_token))
        .map_err(|_| {
            "the service-account token holds characters no HTTP header may carry".to_string()
        })?;
    let http = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, bearer)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("invalid --server URL {:?}: {e}", escape(&args.server)))?;
    let response = client.request(http).await.map_err(|e| {
        format!(
            "cannot reach pullgate at {}: {}",
            escape(&args.server),
            chain(&e)
        )
    })?;
    let code = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading pullgate's answer: {e}"))?
        .to_bytes();
    if code == StatusCode::OK {
        return serde_json::from_slice(&body)
            .map_err(|e| format!("pullgate's answer is not a credentials response: {e}"));
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let message = crate::wire::out::clip(&message, MAX_MESSAGE);
    Err(format!(
        "pullgate answered {}: {}",
        code.as_u16(),
        escape(&message)
    ))
}

/// TLS that trusts only the CA of `--ca-file`.
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, Why> {
    let pem = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read --ca-file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("--ca-file {}: {e}", ca_file.display()))?;
        roots.add(cert).map_err(|e| {
            format!(
                "--ca-file {} holds an unusable certificate: {e}",
                ca_file.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "--ca-file {} holds no PEM certificate",
            ca_file.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// An error with its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How long a kubelet may keep a credential: at most `max`, and never past its expiry.
pub fn cache_seconds(max: Duration, remaining: Option<Duration>) -> u64 {
    remaining.map_or(max, |r| r.min(max)).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str) -> CredentialProviderArgs {
        CredentialProviderArgs {
            server: server.into(),
            ca_file: "/nonexistent/ca.crt".into(),
            tls_server_name: None,
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn bad_requests_get_no_credentials_and_a_reason() {
        let a = args("https://127.0.0.1:1");
        for (input, want) in [
            (&b"not json"[..], "not a CredentialProviderRequest"),
            (
                br#"{"apiVersion":"v1","kind":"Pod","image":"x"}"#,
                "not credentialprovider.kubelet.k8s.io/v1",
            ),
            (
                br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x","serviceAccountToken":""}"#,
                "no service-account token",
            ),
        ] {
            let (version, result) = answer(&a, input);
            assert_eq!(version, kubelet::API_VERSION);
            let why = result.unwrap_err();
            assert!(why.contains(want), "{why}");
        }
    }

    #[test]
    fn older_versions_are_answered_in_their_version() {
        let input = br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"x","serviceAccountToken":"tok-Zq81"}"#;
        let (version, result) = answer(&args("https://127.0.0.1:1"), input);
        assert_eq!(version, "credentialprovider.kubelet.k8s.io/v1beta1");
        let why = result.unwrap_err();
        assert!(why.contains("--ca-file"), "{why}");
        assert!(!why.contains("tok-Zq81"), "{why}");
    }

    #[test]
    fn cache_never_outlives_the_credential() {
        let max = Duration::from_secs(300);
        assert_eq!(cache_seconds(max, None), 300);
        assert_eq!(cache_seconds(max, Some(Duration::from_secs(42))), 42);
        assert_eq!(cache_seconds(max, Some(Duration::from_secs(9_000))), 300);
    }
}
