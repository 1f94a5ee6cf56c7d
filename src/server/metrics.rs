//! The Prometheus metrics of pullgate, served as text on the probe port's `/metrics`.
//!
//! One [`Metrics`] is made at start and shared (`Arc`); each part of the program records
//! through its methods. Label values are kept to known sets where the code chooses them,
//! so a bug cannot grow the number of series without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tracing::error;

use super::Endpoint;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Decisions and outcomes counted by `pullgate_admission_requests_total`.
pub const DECISIONS: &[&str] = &[
    "allow", "deny", "warn", "audit", "invalid", "overload", "timeout",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Admission handling takes microseconds; the buckets run from 25µs to ~0.8s (doubling),
/// so both the normal case and a struggling server are visible.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(25e-6, 2.0, 16))
}

/// The endpoints, in the order of [`Metrics`]' per-endpoint arrays.
const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

/// All pullgate metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// The series of `requests` for each endpoint and each of [`DECISIONS`], and of
    /// `duration` for each endpoint, made at start: they are exported (at zero) from the
    /// first scrape, and a request counts itself without a lookup in the family's map.
    requests_by: [[Counter; DECISIONS.len()]; ENDPOINTS.len()],
    duration_by: [Histogram; ENDPOINTS.len()],
    table_revision: Gauge,
    table_age: Gauge<f64, AtomicU64>,
    /// When the current binding table was built, in nanoseconds since the Unix epoch
    /// (0: none yet); the age gauge is computed from it at each scrape.
    table_built_at: AtomicU64,
    registry_health: Family<RegistryLabels, Gauge>,
    pull_secret_syncs: Family<ResultLabels, Counter>,
    /// Serialises scrapes, which set the age gauge before encoding.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "pullgate_admission_requests",
            "Admission requests by endpoint and decision (allow, deny, warn, audit; invalid, overload, timeout when no decision was sent)",
            requests.clone(),
        );
        let duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "pullgate_admission_duration_seconds",
            "Time from receiving an admission request's head to having its answer",
            duration.clone(),
        );
        let table_revision = Gauge::default();
        registry.register(
            "pullgate_binding_table_revision",
            "Revision of the binding table that admission reads",
            table_revision.clone(),
        );
        let table_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "pullgate_binding_table_age_seconds",
            "Seconds since the binding table in use was built (0 before the first one)",
            table_age.clone(),
        );
        let registry_health = Family::<RegistryLabels, Gauge>::default();
        registry.register(
            "pullgate_registry_health",
            "Whether the last probe found the registry healthy (1) or not (0)",
            registry_health.clone(),
        );
        let pull_secret_syncs = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pullgate_pull_secret_syncs",
            "Pull-secret synchronisations by result",
            pull_secret_syncs.clone(),
        );
        let requests_by = ENDPOINTS.map(|endpoint| {
            std::array::from_fn(|d| {
                let labels = RequestLabels {
                    endpoint: endpoint.as_str(),
                    decision: DECISIONS[d],
                };
                requests.get_or_create(&labels).clone()
            })
        });
        let duration_by = ENDPOINTS.map(|endpoint| {
            let labels = EndpointLabels {
                endpoint: endpoint.as_str(),
            };
            duration.get_or_create(&labels).clone()
        });
        Metrics {
            registry,
            requests,
            requests_by,
            duration_by,
            table_revision,
            table_age,
            table_built_at: AtomicU64::new(0),
            registry_health,
            pull_secret_syncs,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one admission request and its latency. `decision` is one of [`DECISIONS`];
    /// anything else is counted as `unknown` (and is a bug in the caller).
    pub fn observe_request(&self, endpoint: Endpoint, decision: &str, elapsed: Duration) {
        let e = ENDPOINTS
            .iter()
            .position(|known| *known == endpoint)
            .expect("every endpoint is in ENDPOINTS");
        match DECISIONS.iter().position(|known| *known == decision) {
            Some(d) => self.requests_by[e][d].inc(),
            None => self
                .requests
                .get_or_create(&RequestLabels {
                    endpoint: endpoint.as_str(),
                    decision: "unknown",
                })
                .inc(),
        };
        self.duration_by[e].observe(elapsed.as_secs_f64());
    }

    /// Records the binding table now in use.
    pub fn set_binding_table(&self, revision: u64, built_at: SystemTime) {
        self.table_revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
        let nanos = built_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.table_built_at.store(nanos, Ordering::Release);
    }

    /// Records the outcome of the last probe of registry `name`.
    pub fn set_registry_health(&self, name: &str, healthy: bool) {
        self.registry_health
            .get_or_create(&RegistryLabels {
                registry: name.to_owned(),
            })
            .set(i64::from(healthy));
    }

    /// Counts one pull-secret synchronisation with its result (e.g. `created`, `updated`,
    /// `deleted`, `unchanged`, `error`).
    pub fn inc_pull_secret_sync(&self, result: &str) {
        self.pull_secret_syncs
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let built_at = self.table_built_at.load(Ordering::Acquire);
        let age = if built_at == 0 {
            0.0
        } else {
            let built_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(built_at);
            SystemTime::now()
                .duration_since(built_at)
                .unwrap_or_default()
                .as_secs_f64()
        };
        self.table_age.set(age);
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            error!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed() {
        let metrics = Metrics::new();
        metrics.observe_request(Endpoint::Validate, "allow", Duration::from_micros(40));
        metrics.observe_request(Endpoint::Mutate, "overload", Duration::from_micros(5));
        metrics.set_binding_table(7, SystemTime::now() - Duration::from_secs(90));
        metrics.set_registry_health("harbor-prod", true);
        metrics.set_registry_health("docker-lab", false);
        metrics.inc_pull_secret_sync("created");
        let text = metrics.encode();
        for line in [
            r#"pullgate_admission_requests_total{endpoint="validate",decision="allow"} 1"#,
            r#"pullgate_admission_requests_total{endpoint="mutate",decision="overload"} 1"#,
            r#"pullgate_admission_duration_seconds_bucket{le="0.00005",endpoint="validate"} 1"#,
            r#"pullgate_admission_duration_seconds_count{endpoint="mutate"} 1"#,
            "pullgate_binding_table_revision 7",
            r#"pullgate_registry_health{registry="harbor-prod"} 1"#,
            r#"pullgate_registry_health{registry="docker-lab"} 0"#,
            r#"pullgate_pull_secret_syncs_total{result="created"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let age: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("pullgate_binding_table_age_seconds "))
            .expect("age line")
            .parse()
            .expect("number");
        assert!((90.0..120.0).contains(&age), "age {age}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn unknown_decisions_do_not_make_new_series() {
        let metrics = Metrics::new();
        metrics.observe_request(Endpoint::Validate, "maybe", Duration::ZERO);
        metrics.observe_request(Endpoint::Validate, "perhaps", Duration::ZERO);
        let text = metrics.encode();
        assert!(text.contains(r#"decision="unknown"} 2"#), "{text}");
        assert!(!text.contains("maybe"));
    }

    #[test]
    fn every_request_series_is_exported_from_the_start() {
        let text = Metrics::new().encode();
        for endpoint in ENDPOINTS {
            for decision in DECISIONS {
                let line = format!(
                    r#"pullgate_admission_requests_total{{endpoint="{}",decision="{decision}"}} 0"#,
                    endpoint.as_str()
                );
                assert!(text.contains(&line), "missing {line:?} in\n{text}");
            }
            let count = format!(
                r#"pullgate_admission_duration_seconds_count{{endpoint="{}"}} 0"#,
                endpoint.as_str()
            );
            assert!(text.contains(&count), "missing {count:?} in\n{text}");
        }
        assert!(!text.contains("unknown"));
    }

    #[test]
    fn age_is_zero_before_the_first_table() {
        let text = Metrics::new().encode();
        assert!(
            text.contains("pullgate_binding_table_age_seconds 0.0"),
            "{text}"
        );
    }
}
