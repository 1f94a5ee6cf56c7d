//! One request on the admission port: route, limits, the handler, the reply.
//!
//! Order matters: the path and method are checked first (404/405), then an announced
//! body size (413 without reading), then a free in-flight slot (503 as soon as the body
//! has been read and dropped, never a queue), then the body is read under the size cap,
//! the deadline, the minimum rate (408 below it) and the memory budget (no room: the
//! body is dropped as it arrives, then 503), then the handler runs inline (it is
//! CPU-only and takes microseconds), and a reply that comes after the deadline is
//! replaced by 504.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use tokio::sync::Semaphore;
use tracing::{error, warn};

use super::credentials::{self, CredentialsRoute};
use super::limits::{self, BodyBudget, BodyError, Pace};
pub(crate) use super::reply::HttpResponse;
use super::reply::{json, status};
use super::{Handler, Health, Metrics, Outcome, Webhook};

/// Overload is momentary: a retry a second later is likely to find a free slot.
const RETRY_AFTER_SECONDS: &str = "1";

pub(crate) struct Routes {
    handler: Arc<dyn Handler>,
    metrics: Arc<Metrics>,
    health: Health,
    in_flight: Arc<Semaphore>,
    max_body_bytes: usize,
    /// Bytes of request bodies held at once, across all requests.
    body_budget: BodyBudget,
    /// Bytes per second a body must keep up (0: no floor).
    min_body_rate: u64,
    /// `POST /credentials`, when an issuer is plugged in (README, "Pulls without Secrets").
    credentials: Option<CredentialsRoute>,
}

impl Routes {
    pub(crate) fn new(
        handler: Arc<dyn Handler>,
        metrics: Arc<Metrics>,
        health: Health,
        max_in_flight: usize,
        max_body_bytes: usize,
        max_body_memory: usize,
        min_body_rate: u64,
    ) -> Self {
        Routes {
            handler,
            metrics,
            health,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_body_bytes,
            body_budget: BodyBudget::new(max_body_memory, max_in_flight, max_body_bytes),
            min_body_rate,
            credentials: None,
        }
    }

    /// Serves `POST /credentials` with `route` too.
    pub(crate) fn with_credentials(mut self, route: Option<CredentialsRoute>) -> Self {
        self.credentials = route;
        self
    }

    pub(crate) async fn serve(&self, request: Request<Incoming>) -> HttpResponse {
        let mut response = self.route(request).await;
        // While draining, every response closes its connection: the client's next
        // request opens a new one, which reaches a replica that is still ready.
        if self.health.is_draining() {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    async fn route(&self, request: Request<Incoming>) -> HttpResponse {
        let started = Instant::now();
        if let (credentials::PATH, Some(route)) = (request.uri().path(), &self.credentials) {
            return route
                .serve(request, &self.body_budget, self.min_body_rate)
                .await;
        }
        let endpoint = match request.uri().path() {
            "/validate" => Webhook::Validate,
            "/mutate" => Webhook::Mutate,
            path => {
                let message = format!("no such path {path:?}: the admission paths are POST /validate and POST /mutate");
                return status(StatusCode::NOT_FOUND, "NotFound", &message);
            }
        };
        if request.method() != Method::POST {
            let message = format!("{} takes POST only", request.uri().path());
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }

        let timeout = limits::request_timeout(request.uri().query());
        let deadline = started + timeout;
        let pace = Pace {
            deadline: tokio::time::Instant::from_std(deadline),
            min_rate: self.min_body_rate,
            window: limits::RATE_WINDOW,
        };
        let mut body = request.into_body();
        if limits::announced_too_large(&body, self.max_body_bytes) {
            // Answered before the body is read; the connection then closes, unread.
            return self.refuse(endpoint, started, BodyError::TooLarge);
        }
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            // No slot is taken to read and drop the body, and none of it is kept.
            let discarded = limits::discard(&mut body, self.max_body_bytes, pace).await;
            if let Err(e) = discarded {
                return self.refuse(endpoint, started, e);
            }
            return self.overloaded(
                endpoint,
                started,
                "pullgate is at its limit of concurrent admission requests; retry",
            );
        };

        let read = limits::read_body(body, self.max_body_bytes, pace, &self.body_budget);
        // `_held` keeps the body's share of the memory budget until the answer is built.
        let (body, _held) = match read.await {
            Ok(read) => read,
            Err(e) => return self.refuse(endpoint, started, e),
        };

        let handler = &self.handler;
        let reply = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(endpoint, &body)));
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => {
                error!(
                    endpoint = endpoint.as_str(),
                    "the admission handler panicked; answering 500"
                );
                self.metrics
                    .observe_request(endpoint, "invalid", started.elapsed());
                return status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "pullgate failed to evaluate the request",
                );
            }
        };
        if Instant::now() > deadline {
            warn!(endpoint = endpoint.as_str(), ?timeout, elapsed = ?started.elapsed(), "the admission answer came after the deadline; answering 504");
            self.metrics
                .observe_request(endpoint, "timeout", started.elapsed());
            return status(
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout",
                &format!("pullgate could not answer within the request timeout of {timeout:?}"),
            );
        }
        self.reply(endpoint, started, reply)
    }

    fn reply(&self, endpoint: Webhook, started: Instant, reply: Outcome) -> HttpResponse {
        let Ok(code) = StatusCode::from_u16(reply.status) else {
            error!(
                status = reply.status,
                "the admission handler returned an invalid HTTP status; answering 500"
            );
            self.metrics
                .observe_request(endpoint, "invalid", started.elapsed());
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "pullgate produced an invalid answer",
            );
        };
        let decision = match reply.verdict {
            Some(verdict) if code.is_success() => verdict.as_str(),
            _ => "invalid",
        };
        self.metrics
            .observe_request(endpoint, decision, started.elapsed());
        json(code, Bytes::from(reply.body))
    }

    /// 503 at once, never a queue: overload is momentary, and the apiserver retries.
    fn overloaded(&self, endpoint: Webhook, started: Instant, message: &str) -> HttpResponse {
        self.metrics
            .observe_request(endpoint, "overload", started.elapsed());
        let mut response = status(StatusCode::SERVICE_UNAVAILABLE, "TooManyRequests", message);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        response
    }

    /// The answer to a body that could not be read or kept. Unless it was read to its end
    /// (`Busy`), the connection closes after it, as the rest of the body is not read.
    fn refuse(&self, endpoint: Webhook, started: Instant, error: BodyError) -> HttpResponse {
        let invalid = |code, reason, message: &str| {
            self.metrics
                .observe_request(endpoint, "invalid", started.elapsed());
            status(code, reason, message)
        };
        let mut response = match error {
            BodyError::Busy => {
                return self.overloaded(
                    endpoint,
                    started,
                    "pullgate is at its limit of request bodies held in memory; retry",
                )
            }
            BodyError::TooLarge => invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!(
                    "the request body exceeds the limit of {} bytes",
                    self.max_body_bytes
                ),
            ),
            BodyError::TimedOut => invalid(
                StatusCode::REQUEST_TIMEOUT,
                "Timeout",
                "the request body did not arrive before the request timeout",
            ),
            BodyError::TooSlow => invalid(
                StatusCode::REQUEST_TIMEOUT,
                "Timeout",
                &format!(
                    "the request body arrived slower than {} bytes per second",
                    self.min_body_rate
                ),
            ),
            BodyError::Broken(reason) => invalid(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("the request body could not be read: {reason}"),
            ),
        };
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}
