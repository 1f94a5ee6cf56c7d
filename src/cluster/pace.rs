//! The client-side rate limit of cluster mode's writes (`--kube-api-qps`,
//! `--kube-api-burst`): one token bucket per process, shared by every task that writes
//! to the apiserver through the client [`paced`] returns (the leader's pull Secrets,
//! statuses, Registries, robot Secrets, Reports and Events, and every replica's denial
//! Events). Only writes take a token; reads and watches never wait. The Lease is kept
//! with the unpaced client, so renewals never queue behind a backlog of writes.
//!
//! The limiter only delays: a write is never dropped, refused or turned into an error
//! here. What it costs is told to a [`WaitHook`] (the wait metric).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper::{Method, Request};
use kube::client::Body;
use kube::Client;

use crate::cluster::hook::Hook;

/// Writes per second by default: Flux's default for the same flag. At 50 a first sync of
/// 10,000 namespaces takes a pull Secret each in about 200 s, and afterwards a cluster
/// in steady state writes a handful per minute. client-go's 5 would take over half an
/// hour; the apiserver's own priority and fairness protects it from a faster client.
pub const DEFAULT_QPS: f64 = crate::api::DEFAULT_KUBE_API_QPS;
/// Writes allowed at once before the rate applies: Flux's default, two seconds' worth,
/// so that the few writes of an ordinary change (one namespace, one status) never wait.
pub const DEFAULT_BURST: u32 = crate::api::DEFAULT_KUBE_API_BURST;
/// The lowest rate other than 0 (no limit): one write every 1,000 s. Slower would stall
/// the leader for no purpose (and the token bucket keeps its period in 64-bit
/// nanoseconds).
pub const MIN_QPS: f64 = crate::api::MIN_KUBE_API_QPS;

/// `--kube-api-qps` and `--kube-api-burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WriteRate {
    /// Writes per second on average; 0: no limit (the burst is then unused).
    pub qps: f64,
    /// Writes allowed at once (at least 1).
    pub burst: u32,
}

impl Default for WriteRate {
    fn default() -> Self {
        WriteRate {
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
        }
    }
}

impl WriteRate {
    /// The bucket's quota; `None` for no limit. Refuses what the CLI refuses too (a
    /// negative, not-a-number, infinite or too small rate, a burst of 0), so that a
    /// rate built in code cannot slip past the checks of the flags.
    pub fn quota(&self) -> Result<Option<Quota>, String> {
        if !crate::api::is_kube_api_qps(self.qps) {
            return Err(format!(
                "--kube-api-qps {} is not a rate: 0 (no limit) or at least {MIN_QPS} writes per second",
                self.qps
            ));
        }
        if self.qps == 0.0 {
            return Ok(None);
        }
        let burst = NonZeroU32::new(self.burst)
            .ok_or("--kube-api-burst must be at least 1 when --kube-api-qps is not 0")?;
        // Above a billion per second the period rounds to 0; one nanosecond is as good as
        // no limit.
        let period = Duration::from_secs_f64(1.0 / self.qps).max(Duration::from_nanos(1));
        Ok(Quota::with_period(period).map(|q| q.allow_burst(burst)))
    }
}

/// Told how long each paced write waited for its token (zero when one was free).
pub type WaitHook = Hook<WaitFn>;

/// A callback told one write's wait.
pub type WaitFn = dyn Fn(Duration) + Send + Sync;

impl WaitHook {
    fn tell(&self, waited: Duration) {
        if let Some(f) = &self.0 {
            f(waited);
        }
    }
}

/// Whether a request changes something: every method but the reads (GET, which watches
/// are too, HEAD and OPTIONS).
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A client whose writes wait for a token of one bucket of `rate` (shared by all its
/// clones); reads go straight through. With no limit, `client` itself.
pub fn paced(client: Client, rate: WriteRate, hook: WaitHook) -> Result<Client, String> {
    let Some(quota) = rate.quota()? else {
        return Ok(client);
    };
    let limiter: Arc<DefaultDirectRateLimiter> = Arc::new(RateLimiter::direct(quota));
    let default_ns = client.default_namespace().to_string();
    let valid_until = *client.valid_until();
    let inner = client;
    let service = tower::service_fn(move |request: Request<Body>| {
        let (client, limiter, hook) = (inner.clone(), limiter.clone(), hook.clone());
        async move {
            if is_write(request.method()) {
                let start = Instant::now();
                limiter.until_ready().await;
                hook.tell(start.elapsed());
            }
            client.send(request).await
        }
    });
    Ok(Client::new(service, default_ns).with_valid_until(valid_until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_are_paced() {
        for read in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_write(&read), "{read}");
        }
        for write in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_write(&write), "{write}");
        }
    }

    #[test]
    fn rates() {
        let rate = |qps, burst| WriteRate { qps, burst }.quota();
        assert_eq!(rate(0.0, 0), Ok(None), "0: no limit, burst unused");
        let q = rate(50.0, 100).expect("valid").expect("limited");
        assert_eq!(q.replenish_interval(), Duration::from_millis(20));
        assert_eq!(q.burst_size().get(), 100);
        let q = rate(0.5, 1).expect("valid").expect("limited");
        assert_eq!(q.replenish_interval(), Duration::from_secs(2));
        let q = rate(1e12, 1).expect("valid").expect("limited");
        assert_eq!(q.replenish_interval(), Duration::from_nanos(1));
        for (qps, burst) in [
            (-1.0, 10),
            (f64::NAN, 10),
            (f64::INFINITY, 10),
            (1e-9, 10),
            (5.0, 0),
        ] {
            assert!(rate(qps, burst).is_err(), "{qps}/{burst}");
        }
    }
}
