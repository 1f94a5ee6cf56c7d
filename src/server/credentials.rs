//! `POST /credentials` on the TLS port (README, "Pulls without Secrets"): the HTTP side of pulls without
//! Secrets. The kubelet's credential provider (`pullgate credential-provider`) sends the
//! pod's service-account token as `Authorization: Bearer …` and the image as
//! [`CredentialsRequest`]; an [`Issuer`] (plugged in by `serve`, as admission is through
//! [`super::Handler`]) checks the token and decides; the answer is a
//! [`CredentialsResponse`] or a Kubernetes `Status` saying why there are none.
//!
//! Order: a request without a bearer token is refused first (no TokenReview is spent on
//! it), then the sender's address is rate limited (per node: the provider runs on the
//! node, so its address is the node's), then an in-flight slot of its own is taken (a
//! flood of credential requests never takes the slots admission needs), then the small
//! body is read under the server's limits, then the issuer runs within the request
//! deadline. Every request is counted once in `pullgate_credential_requests_total` by
//! its [`Outcome`]. The token is never logged, echoed or kept: the issuer caches by its
//! SHA-256.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::limits::{self, BodyBudget, BodyError, Pace};
use super::reply::{json, status, HttpResponse};
use super::Metrics;

/// The path of the route.
pub const PATH: &str = "/credentials";

/// A request body is one image reference (at most a few hundred bytes); anything much
/// larger is not a credential request.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Requests a node may make per second, on average, by default. A node starting a hundred
/// pods of new images at once asks once per image and service account (the kubelet caches
/// the answer per service account and image for `cacheDuration`).
pub const RATE_PER_NODE: f64 = 20.0;
/// Requests a node may make at once before the rate applies, by default: ten seconds'
/// worth, enough for a full node (110 pods) to start with a few images each.
pub const BURST_PER_NODE: u32 = 200;
/// Nodes whose buckets are remembered; a bucket unused for a minute is full again anyway
/// and is forgotten.
const MAX_NODES: u64 = 100_000;
const NODE_IDLE: Duration = Duration::from_secs(60);

/// What `POST /credentials` carries besides the token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequest {
    /// The image as the kubelet names it (the pod spec's spelling).
    pub image: String,
}

/// One registry login. Never printed: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthConfig(<redacted>)")
    }
}

/// The answer of `POST /credentials` when credentials are issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsResponse {
    /// `host[:port]/space` (every spelling of the registry's host) → the login.
    pub auth: BTreeMap<String, AuthConfig>,
    /// How long the kubelet may keep them, in whole seconds (never longer than the
    /// credential's remaining life).
    pub cache_seconds: u64,
}

/// Why a request got what it got; the label of `pullgate_credential_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Credentials were returned.
    Issued,
    /// No bearer token: refused before any TokenReview.
    NoToken,
    /// The TokenReview did not accept the token for the audience (unknown, expired,
    /// revoked, or made for another audience).
    Unauthenticated,
    /// The token is valid but not a service account's.
    NotServiceAccount,
    /// The body or the image reference is not valid.
    Invalid,
    /// The namespace may not use the image's space.
    Denied,
    /// The image needs no credentials (a public space, an unmanaged registry).
    NotNeeded,
    /// No credential for the space yet (robot not created, Secret missing), or the
    /// binding table is not synced yet.
    Unavailable,
    /// The TokenReview could not be made (the apiserver did not answer).
    ReviewFailed,
    /// The node sent more than its share.
    RateLimited,
    /// No in-flight slot or no body memory left.
    Overload,
    /// No answer within the request's deadline.
    Timeout,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::Issued,
        Outcome::NoToken,
        Outcome::Unauthenticated,
        Outcome::NotServiceAccount,
        Outcome::Invalid,
        Outcome::Denied,
        Outcome::NotNeeded,
        Outcome::Unavailable,
        Outcome::ReviewFailed,
        Outcome::RateLimited,
        Outcome::Overload,
        Outcome::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Issued => "issued",
            Outcome::NoToken => "no_token",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::NotServiceAccount => "not_service_account",
            Outcome::Invalid => "invalid",
            Outcome::Denied => "denied",
            Outcome::NotNeeded => "not_needed",
            Outcome::Unavailable => "unavailable",
            Outcome::ReviewFailed => "review_failed",
            Outcome::RateLimited => "rate_limited",
            Outcome::Overload => "overload",
            Outcome::Timeout => "timeout",
        }
    }

    /// The HTTP status and `Status.reason` of a refusal with this outcome.
    fn http(self) -> (StatusCode, &'static str) {
        match self {
            Outcome::Issued => (StatusCode::OK, "Issued"),
            Outcome::NoToken | Outcome::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "Unauthorized")
            }
            Outcome::NotServiceAccount | Outcome::Denied => (StatusCode::FORBIDDEN, "Forbidden"),
            Outcome::Invalid => (StatusCode::BAD_REQUEST, "BadRequest"),
            Outcome::NotNeeded => (StatusCode::NOT_FOUND, "NotFound"),
            Outcome::Unavailable | Outcome::ReviewFailed | Outcome::Overload => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            Outcome::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            Outcome::Timeout => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
        }
    }
}

/// Credentials for one image, or why there are none.
#[derive(Debug)]
pub enum Issued {
    Granted(CredentialsResponse),
    /// No credentials: the outcome and a sentence for the node's log (never a secret,
    /// never another tenant's name).
    Refused(Outcome, String),
}

/// The future an [`Issuer`] returns.
pub type IssueFuture<'a> = Pin<Box<dyn Future<Output = Issued> + Send + 'a>>;

/// Turns a bearer token and an image into credentials. Plugged in by `serve`.
pub trait Issuer: Send + Sync + std::fmt::Debug + 'static {
    /// `token` is not empty. Implementations must never log or keep it.
    fn issue<'a>(&'a self, token: &'a str, image: &'a str) -> IssueFuture<'a>;
}

/// A token bucket per node address, in a bounded map that forgets idle nodes.
struct NodeLimiter {
    buckets: moka::future::Cache<IpAddr, Arc<Mutex<Bucket>>>,
    rate: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl NodeLimiter {
    fn new(rate: f64, burst: f64) -> Self {
        NodeLimiter {
            buckets: moka::future::Cache::builder()
                .max_capacity(MAX_NODES)
                .time_to_idle(NODE_IDLE)
                .build(),
            rate,
            burst,
        }
    }

    /// Takes one request from `node`'s bucket; false when it is empty.
    async fn allow(&self, node: IpAddr) -> bool {
        let burst = self.burst;
        let bucket = self
            .buckets
            .get_with(node, async move {
                Arc::new(Mutex::new(Bucket {
                    tokens: burst,
                    at: Instant::now(),
                }))
            })
            .await;
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The `/credentials` route: its issuer, its own in-flight slots and the node limiter.
pub(crate) struct CredentialsRoute {
    issuer: Arc<dyn Issuer>,
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    limiter: NodeLimiter,
}

impl CredentialsRoute {
    /// `rate` requests per second and `burst` at once per node.
    pub(crate) fn new(
        issuer: Arc<dyn Issuer>,
        metrics: Arc<Metrics>,
        max_in_flight: usize,
        rate: f64,
        burst: u32,
    ) -> Self {
        CredentialsRoute {
            issuer,
            metrics,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            limiter: NodeLimiter::new(rate, f64::from(burst)),
        }
    }

    /// Answers one request; `budget` and `min_rate` are the server's body limits.
    pub(crate) async fn serve(
        &self,
        request: Request<Incoming>,
        budget: &BodyBudget,
        min_rate: u64,
    ) -> HttpResponse {
        let started = Instant::now();
        if request.method() != Method::POST {
            let mut response = status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "/credentials takes POST only",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let node = request.extensions().get::<SocketAddr>().map(SocketAddr::ip);
        let Some(token) = bearer_token(&request) else {
            return self.refuse(
                Outcome::NoToken,
                "no service-account token: send it as \"Authorization: Bearer <token>\" (the kubelet passes one when its CredentialProviderConfig sets tokenAttributes)",
            );
        };
        if let Some(node) = node {
            if !self.limiter.allow(node).await {
                let mut response = self.refuse(
                    Outcome::RateLimited,
                    &format!(
                        "this node sent more credential requests than its share ({} at once, then {} a second); retry",
                        self.limiter.burst, self.limiter.rate
                    ),
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
        let timeout = limits::request_timeout(request.uri().query());
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let pace = Pace {
            deadline,
            min_rate,
            window: limits::RATE_WINDOW,
        };
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            return self.refuse(
                Outcome::Overload,
                "pullgate is at its limit of concurrent credential requests; retry",
            );
        };
        let (body, _held) =
            match limits::read_body(request.into_body(), MAX_BODY_BYTES, pace, budget).await {
                Ok(read) => read,
                Err(BodyError::Busy) => {
                    return self.refuse(
                        Outcome::Overload,
                        "pullgate is at its limit of request bodies held in memory; retry",
                    )
                }
                Err(e) => {
                    let mut response = self.refuse(
                        Outcome::Invalid,
                        &format!("the request body could not be read: {}", body_problem(&e)),
                    );
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                    return response;
                }
            };
        let image = match serde_json::from_slice::<CredentialsRequest>(&body) {
            Ok(r) => r.image,
            Err(e) => {
                return self.refuse(
                    Outcome::Invalid,
                    &format!("the body is not a credentials request ({{\"image\": \"...\"}}): {e}"),
                )
            }
        };
        let issued = tokio::time::timeout_at(deadline, self.issuer.issue(&token, &image)).await;
        match issued {
            Err(_) => self.refuse(
                Outcome::Timeout,
                &format!("pullgate could not answer within the request timeout of {timeout:?}"),
            ),
            Ok(Issued::Refused(outcome, message)) => self.refuse(outcome, &message),
            Ok(Issued::Granted(granted)) => {
                self.metrics
                    .inc_credential_request(Outcome::Issued.as_str());
                // Serialising strings and integers cannot fail.
                let body = serde_json::to_vec(&granted).unwrap_or_default();
                json(StatusCode::OK, Bytes::from(body))
            }
        }
    }

    /// Counts the outcome and answers with a `Status` saying why there are no
    /// credentials.
    fn refuse(&self, outcome: Outcome, message: &str) -> HttpResponse {
        self.metrics.inc_credential_request(outcome.as_str());
        let (code, reason) = outcome.http();
        match outcome {
            Outcome::ReviewFailed | Outcome::Timeout | Outcome::Overload => {
                warn!(outcome = outcome.as_str(), "{message}")
            }
            // Every pull of a public image asks too: not worth a line each.
            Outcome::NotNeeded => debug!(outcome = outcome.as_str(), "no credentials: {message}"),
            _ => info!(outcome = outcome.as_str(), "no credentials: {message}"),
        }
        status(code, reason, message)
    }
}

/// The bearer token of the request, if it has a non-empty one.
fn bearer_token(request: &Request<Incoming>) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

fn body_problem(e: &BodyError) -> String {
    match e {
        BodyError::TooLarge => format!("it exceeds {MAX_BODY_BYTES} bytes"),
        BodyError::TimedOut => "it did not arrive before the request timeout".into(),
        BodyError::TooSlow => "it arrived too slowly".into(),
        BodyError::Broken(reason) => reason.clone(),
        BodyError::Busy => "no memory left".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_gets_its_burst_then_its_rate() {
        let limiter = NodeLimiter::new(1.0, 3.0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.allow(a).await);
        }
        assert!(!limiter.allow(a).await, "the burst is spent");
        assert!(limiter.allow(b).await, "another node has its own bucket");
    }

    #[test]
    fn outcomes_are_distinct_labels() {
        let mut labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Outcome::ALL.len());
        assert_eq!(labels, {
            let mut l = crate::server::metrics::CREDENTIAL_OUTCOMES.to_vec();
            l.sort();
            l
        });
    }

    #[test]
    fn credentials_never_print() {
        let a = AuthConfig {
            username: "u".into(),
            password: "Pw-secret-1".into(),
        };
        assert!(!format!("{a:?}").contains("Pw-secret-1"));
    }
}
