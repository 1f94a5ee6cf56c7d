//! The Prometheus metrics of pullgate, served on the probe port's `/metrics` in the
//! Prometheus text format 0.0.4 (what `promtool check metrics` reads).
//!
//! One [`Metrics`] is made at start and shared (`Arc`); each part of the program records
//! through its methods. Every series that can be named in advance exists from the start
//! (at 0), on every replica and in both modes, so a rate or an alert has a series before
//! the first event. Label values are kept to known sets where the code chooses them, and
//! registry labels to the registries of the binding table ([`Metrics::set_registries`]),
//! so a bug cannot grow the number of series without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::error;

use super::Webhook;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Decisions and outcomes counted by `pullgate_admission_requests_total`.
pub const DECISIONS: &[&str] = &[
    "allow", "deny", "warn", "audit", "invalid", "overload", "timeout",
];

/// Results counted by `pullgate_pull_secret_syncs_total`; anything else counts as `other`.
pub const SYNC_RESULTS: &[&str] = &["created", "updated", "deleted", "error"];

/// Operations of `pullgate_registry_api_errors_total`: `health` (the health check, or no
/// answer to a whole pass), `read` (the other reads of a probe: catalog, statistics,
/// projects, current user), `project` (Harbor project creation and visibility), `robot`
/// (Harbor robot accounts). Anything else counts as `other`.
pub const REGISTRY_OPERATIONS: &[&str] = &["health", "read", "project", "robot"];

/// Outcomes counted by `pullgate_credential_requests_total` (README, "Pulls without Secrets"), the labels of
/// [`super::credentials::Outcome`]; anything else counts as `other`.
pub const CREDENTIAL_OUTCOMES: &[&str] = &[
    "issued",
    "no_token",
    "unauthenticated",
    "not_service_account",
    "invalid",
    "denied",
    "not_needed",
    "unavailable",
    "review_failed",
    "rate_limited",
    "overload",
    "timeout",
];

/// Admission handling takes microseconds; the buckets run from 25µs to ~0.8s (doubling),
/// so both the normal case and a struggling server are visible.
const DURATION_BUCKETS: (f64, f64, usize) = (25e-6, 2.0, 16);

/// A write waits nothing while the burst lasts, a period (20 ms at the default 50/s)
/// once it is spent, and longer while many writers share the rate: 1 ms to ~65 s
/// (times 4).
const WRITE_WAIT_BUCKETS: (f64, f64, usize) = (1e-3, 4.0, 9);

/// The endpoints, in the order of [`Metrics`]' per-endpoint arrays.
const ENDPOINTS: [Webhook; 2] = [Webhook::Validate, Webhook::Mutate];

/// All pullgate metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    /// The series of `requests` for each endpoint and each of [`DECISIONS`], and of
    /// `duration` for each endpoint, made at start: a request counts itself without a
    /// lookup in the vector's map.
    requests_by: [[IntCounter; DECISIONS.len()]; ENDPOINTS.len()],
    duration_by: [Histogram; ENDPOINTS.len()],
    table_revision: IntGauge,
    table_age: Gauge,
    /// When the current binding table was built, in nanoseconds since the Unix epoch
    /// (0: none yet); the age gauge is computed from it at each scrape.
    table_built_at: AtomicU64,
    table_stale: IntGauge,
    table_staleness: Gauge,
    /// Since when the binding table may be behind its source, in nanoseconds since the
    /// Unix epoch (0: it is current); the staleness gauge is computed from it at scrape.
    table_behind_since: AtomicU64,
    leader: IntGauge,
    config_reload_failures: IntCounter,
    certificate_reload_failures: IntCounter,
    certificate_expiry: IntGauge,
    registry_health: IntGaugeVec,
    registry_api_errors: IntCounterVec,
    /// Registries that have series in `registry_health` and `registry_api_errors`.
    registries: Mutex<BTreeSet<String>>,
    pull_secret_syncs: IntCounterVec,
    credential_requests: IntCounterVec,
    robot_rotations: IntCounter,
    connections_closed_to_make_room: IntCounter,
    robot_earliest_expiry: IntGauge,
    audit_findings: IntGaugeVec,
    /// Workspaces that have a series in `audit_findings` (the key `""` is always there).
    workspaces: Mutex<BTreeSet<String>>,
    audit_stale: IntGauge,
    kube_api_write_wait: Histogram,
    /// Serialises scrapes, which set the computed gauges before encoding.
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

/// Registers `metric` in `registry` and returns it. The definitions are constants, so a
/// failure (an invalid or duplicated name) is a bug that every test run would show.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("a valid metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("a metric name registered once");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let requests = registered(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "pullgate_admission_requests_total",
                    "Admission requests by endpoint and decision (allow, deny, warn, audit; invalid, overload, timeout when no decision was sent)",
                ),
                &["endpoint", "decision"],
            ),
        );
        let (start, factor, count) = DURATION_BUCKETS;
        let duration = registered(
            &r,
            exponential_buckets(start, factor, count).and_then(|buckets| {
                HistogramVec::new(
                    HistogramOpts::new(
                        "pullgate_admission_duration_seconds",
                        "Time from receiving an admission request's head to having its answer",
                    )
                    .buckets(buckets),
                    &["endpoint"],
                )
            }),
        );
        let table_revision = registered(
            &r,
            IntGauge::new(
                "pullgate_binding_table_revision",
                "Revision of the binding table that admission reads",
            ),
        );
        let table_age = registered(
            &r,
            Gauge::new(
                "pullgate_binding_table_age_seconds",
                "Seconds since the binding table in use was built; grows while nothing changes, so not a sign of trouble",
            ),
        );
        let table_stale = registered(
            &r,
            IntGauge::new(
                "pullgate_binding_table_stale",
                "1 while the watches have been broken for longer than --max-staleness and grants of Private spaces are refused; else 0 (always 0 in standalone mode)",
            ),
        );
        let table_staleness = registered(
            &r,
            Gauge::new(
                "pullgate_binding_table_staleness_seconds",
                "Seconds since the binding table was last known current: 0 while every watch it is built from is healthy (standalone: while the config file reads and parses)",
            ),
        );
        let leader = registered(
            &r,
            IntGauge::new(
                "pullgate_leader",
                "1 while this replica holds the leader Lease and writes pull Secrets, status and registry changes; else 0 (always 0 in standalone mode)",
            ),
        );
        let config_reload_failures = registered(
            &r,
            IntCounter::new(
                "pullgate_config_reload_failures_total",
                "Times the --config file changed or became unreadable and could not be loaded (the last good table stays); 0 in cluster mode",
            ),
        );
        let certificate_reload_failures = registered(
            &r,
            IntCounter::new(
                "pullgate_certificate_reload_failures_total",
                "Times the serving certificate files changed or became unreadable and could not be used (the previous pair stays)",
            ),
        );
        let certificate_expiry = registered(
            &r,
            IntGauge::new(
                "pullgate_certificate_expiry_timestamp_seconds",
                "When the serving certificate in use expires, in seconds since the Unix epoch",
            ),
        );
        let registry_health = registered(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "pullgate_registry_health",
                    "1 when this replica's last probe found the registry healthy; 0 when unhealthy or not probed here (only the leader probes)",
                ),
                &["registry"],
            ),
        );
        let registry_api_errors = registered(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "pullgate_registry_api_errors_total",
                    "Failed calls to a registry's API by registry and operation (health, read, project, robot)",
                ),
                &["registry", "operation"],
            ),
        );
        let pull_secret_syncs = registered(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "pullgate_pull_secret_syncs_total",
                    "Pull-Secret writes by result (created, updated, deleted, error)",
                ),
                &["result"],
            ),
        );
        for result in SYNC_RESULTS {
            pull_secret_syncs.with_label_values(&[*result]);
        }
        let credential_requests = registered(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "pullgate_credential_requests_total",
                    "POST /credentials requests of kubelet credential providers by outcome (issued; no_token, unauthenticated, not_service_account, invalid, denied, not_needed, unavailable, review_failed, rate_limited, overload, timeout when no credentials were sent)",
                ),
                &["outcome"],
            ),
        );
        for outcome in CREDENTIAL_OUTCOMES {
            credential_requests.with_label_values(&[*outcome]);
        }
        let robot_rotations = registered(
            &r,
            IntCounter::new(
                "pullgate_robot_rotations_total",
                "Harbor robot rotations finished by this replica as leader (new robot in every pull Secret, old robot deleted)",
            ),
        );
        let connections_closed_to_make_room = registered(
            &r,
            IntCounter::new(
                "pullgate_connections_closed_to_make_room_total",
                "Idle connections of the admission port closed to make room for a new one at the connection limit",
            ),
        );
        let robot_earliest_expiry = registered(
            &r,
            IntGauge::new(
                "pullgate_robot_earliest_expiry_timestamp_seconds",
                "When the first of this cluster's Harbor robots expires, in seconds since the Unix epoch (0: none, or not the leader)",
            ),
        );
        let audit_findings = registered(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "pullgate_audit_findings",
                    "Images of running workloads the current bindings deny (background audit), by workspace (a namespace counts in each of its workspaces; workspace=\"\" counts namespaces in no workspace); 0 on replicas that do not lead",
                ),
                &["workspace"],
            ),
        );
        audit_findings.with_label_values(&[""]);
        let audit_stale = registered(
            &r,
            IntGauge::new(
                "pullgate_audit_findings_stale",
                "1 while a watch of running workloads, or one the binding table is built from, is broken and the audit findings (and Reports) may be out of date; else 0 (always 0 on replicas that do not lead)",
            ),
        );
        let (start, factor, count) = WRITE_WAIT_BUCKETS;
        let kube_api_write_wait = registered(
            &r,
            exponential_buckets(start, factor, count).and_then(|buckets| {
                Histogram::with_opts(
                    HistogramOpts::new(
                        "pullgate_kube_api_write_wait_seconds",
                        "Time each write to the apiserver waited for --kube-api-qps/--kube-api-burst (cluster mode; 0 standalone and with --kube-api-qps=0)",
                    )
                    .buckets(buckets),
                )
            }),
        );
        let requests_by = ENDPOINTS.map(|endpoint| {
            std::array::from_fn(|d| requests.with_label_values(&[endpoint.as_str(), DECISIONS[d]]))
        });
        let duration_by =
            ENDPOINTS.map(|endpoint| duration.with_label_values(&[endpoint.as_str()]));
        Metrics {
            registry: r,
            requests,
            requests_by,
            duration_by,
            table_revision,
            table_age,
            table_built_at: AtomicU64::new(0),
            table_stale,
            table_staleness,
            table_behind_since: AtomicU64::new(0),
            leader,
            config_reload_failures,
            certificate_reload_failures,
            certificate_expiry,
            registry_health,
            registry_api_errors,
            registries: Mutex::new(BTreeSet::new()),
            pull_secret_syncs,
            credential_requests,
            robot_rotations,
            connections_closed_to_make_room,
            robot_earliest_expiry,
            audit_findings,
            workspaces: Mutex::new(BTreeSet::from([String::new()])),
            audit_stale,
            kube_api_write_wait,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one admission request and its latency. `decision` is one of [`DECISIONS`];
    /// anything else is counted as `unknown` (and is a bug in the caller).
    pub fn observe_request(&self, endpoint: Webhook, decision: &str, elapsed: Duration) {
        let e = match endpoint {
            Webhook::Validate => 0,
            Webhook::Mutate => 1,
        };
        match DECISIONS.iter().position(|known| *known == decision) {
            Some(d) => self.requests_by[e][d].inc(),
            None => self
                .requests
                .with_label_values(&[endpoint.as_str(), "unknown"])
                .inc(),
        };
        self.duration_by[e].observe(elapsed.as_secs_f64());
    }

    /// One sample, by its full name (with labels); for tests.
    #[cfg(test)]
    pub(crate) fn sample(&self, name: &str) -> f64 {
        let text = self.encode();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .expect("a number")
    }

    /// Records the binding table now in use.
    pub fn set_binding_table(&self, revision: u64, built_at: SystemTime) {
        self.table_revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
        self.table_built_at
            .store(unix_nanos(built_at), Ordering::Release);
    }

    /// Records whether grants of Private spaces are refused (`stale`) and since when the
    /// table may be behind its source (`None`: current).
    pub fn set_staleness(&self, stale: bool, behind_since: Option<SystemTime>) {
        self.table_stale.set(i64::from(stale));
        let since = behind_since.map_or(0, |t| unix_nanos(t).max(1));
        self.table_behind_since.store(since, Ordering::Release);
    }

    /// Whether the last [`Metrics::set_staleness`] said stale (for `/readyz`'s text).
    pub fn is_stale(&self) -> bool {
        self.table_stale.get() != 0
    }

    /// Records whether this replica leads. A replica that stops leading stops probing:
    /// its registry health series go back to 0 ("not probed here").
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        if !leading {
            self.robot_earliest_expiry.set(0);
            for name in self.lock_registries().iter() {
                self.registry_health.with_label_values(&[name]).set(0);
            }
        }
    }

    /// Counts a `--config` file that could not be loaded.
    pub fn inc_config_reload_failure(&self) {
        self.config_reload_failures.inc();
    }

    /// Counts certificate files that could not be used.
    pub fn inc_certificate_reload_failure(&self) {
        self.certificate_reload_failures.inc();
    }

    /// Records the expiry of the serving certificate now in use.
    pub fn set_certificate_expiry(&self, not_after: SystemTime) {
        let secs = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.certificate_expiry
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// The registries of the binding table: each gets its series (health at 0 until a
    /// probe here says otherwise, every API-error operation at 0); series of registries
    /// no longer listed are removed.
    pub fn set_registries<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let wanted: BTreeSet<String> = names.into_iter().map(str::to_owned).collect();
        let mut known = self.lock_registries();
        for gone in known.difference(&wanted) {
            let _ = self.registry_health.remove_label_values(&[gone]);
            for op in REGISTRY_OPERATIONS {
                let _ = self
                    .registry_api_errors
                    .remove_label_values(&[gone.as_str(), op]);
            }
        }
        for name in wanted.difference(&known) {
            self.add_registry_series(name);
        }
        *known = wanted;
    }

    /// Records the outcome of this replica's last probe of registry `name`.
    pub fn set_registry_health(&self, name: &str, healthy: bool) {
        self.ensure_registry(name);
        self.registry_health
            .with_label_values(&[name])
            .set(i64::from(healthy));
    }

    /// Counts a failed call to registry `name`'s API; `operation` is one of
    /// [`REGISTRY_OPERATIONS`] (anything else counts as `other`).
    pub fn inc_registry_api_error(&self, name: &str, operation: &str) {
        self.ensure_registry(name);
        let operation = if REGISTRY_OPERATIONS.contains(&operation) {
            operation
        } else {
            "other"
        };
        self.registry_api_errors
            .with_label_values(&[name, operation])
            .inc();
    }

    /// Counts one pull-Secret write with its result, one of [`SYNC_RESULTS`] (anything
    /// else counts as `other`).
    pub fn inc_pull_secret_sync(&self, result: &str) {
        let result = if SYNC_RESULTS.contains(&result) {
            result
        } else {
            "other"
        };
        self.pull_secret_syncs.with_label_values(&[result]).inc();
    }

    /// Counts one `POST /credentials` request by its outcome, one of
    /// [`CREDENTIAL_OUTCOMES`] (anything else counts as `other`).
    pub fn inc_credential_request(&self, outcome: &str) {
        let outcome = if CREDENTIAL_OUTCOMES.contains(&outcome) {
            outcome
        } else {
            "other"
        };
        self.credential_requests.with_label_values(&[outcome]).inc();
    }

    /// The workspaces of the binding table: each gets its findings series (at 0 until
    /// the audit says otherwise); series of workspaces no longer listed are removed.
    pub fn set_workspaces<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut wanted: BTreeSet<String> = names.into_iter().map(str::to_owned).collect();
        wanted.insert(String::new());
        let mut known = lock(&self.workspaces);
        for gone in known.difference(&wanted) {
            let _ = self.audit_findings.remove_label_values(&[gone]);
        }
        for name in wanted.difference(&known) {
            self.audit_findings.with_label_values(&[name]);
        }
        *known = wanted;
    }

    /// Records the audit's findings per workspace (`""`: namespaces in no workspace) and
    /// whether they may be out of date. Workspaces not named go to 0; an empty map and
    /// `false` is what a replica that does not lead shows.
    pub fn set_audit_findings(&self, by_workspace: &BTreeMap<String, u64>, stale: bool) {
        let mut known = lock(&self.workspaces);
        for name in by_workspace.keys() {
            known.insert(name.clone());
        }
        for name in known.iter() {
            let n = by_workspace.get(name).copied().unwrap_or(0);
            self.audit_findings
                .with_label_values(&[name])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.audit_stale.set(i64::from(stale));
    }

    /// Counts one idle connection closed to make room for a new one.
    pub fn inc_connection_closed_to_make_room(&self) {
        self.connections_closed_to_make_room.inc();
    }

    /// Counts one finished robot rotation.
    pub fn inc_robot_rotation(&self) {
        self.robot_rotations.inc();
    }

    /// The earliest expiry of this cluster's robots (`None`: none expires).
    pub fn set_robot_earliest_expiry(&self, at: Option<i64>) {
        self.robot_earliest_expiry.set(at.unwrap_or(0));
    }

    /// Records how long one write to the apiserver waited for the client-side rate.
    pub fn observe_kube_api_write_wait(&self, waited: Duration) {
        self.kube_api_write_wait.observe(waited.as_secs_f64());
    }

    /// The metrics in the Prometheus text format 0.0.4 (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = SystemTime::now();
        let seconds_since = |nanos: u64| {
            if nanos == 0 {
                return 0.0;
            }
            let then = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
            now.duration_since(then).unwrap_or_default().as_secs_f64()
        };
        self.table_age
            .set(seconds_since(self.table_built_at.load(Ordering::Acquire)));
        self.table_staleness.set(seconds_since(
            self.table_behind_since.load(Ordering::Acquire),
        ));
        let mut text = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            error!(error = %e, "encoding the metrics failed");
        }
        text
    }

    fn lock_registries(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.registries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A probe may report a registry a moment before the table lists it.
    fn ensure_registry(&self, name: &str) {
        let mut known = self.lock_registries();
        if !known.contains(name) {
            self.add_registry_series(name);
            known.insert(name.to_owned());
        }
    }

    fn add_registry_series(&self, name: &str) {
        self.registry_health.with_label_values(&[name]);
        for op in REGISTRY_OPERATIONS {
            self.registry_api_errors.with_label_values(&[name, op]);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `text` (no comments), for exact matches.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn value(text: &str, series: &str) -> f64 {
        samples(text)
            .iter()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .expect("a number")
    }

    #[test]
    fn robot_rotations_and_earliest_expiry() {
        let metrics = Metrics::new();
        let text = metrics.encode();
        assert_eq!(value(&text, "pullgate_robot_rotations_total"), 0.0);
        assert_eq!(
            value(&text, "pullgate_robot_earliest_expiry_timestamp_seconds"),
            0.0
        );
        metrics.inc_robot_rotation();
        metrics.set_robot_earliest_expiry(Some(1_900_000_000));
        let text = metrics.encode();
        assert_eq!(value(&text, "pullgate_robot_rotations_total"), 1.0);
        assert_eq!(
            value(&text, "pullgate_robot_earliest_expiry_timestamp_seconds"),
            1_900_000_000.0
        );
        // Only the leader knows its robots.
        metrics.set_leader(false);
        assert_eq!(
            value(
                &metrics.encode(),
                "pullgate_robot_earliest_expiry_timestamp_seconds"
            ),
            0.0
        );
    }

    #[test]
    fn every_family_is_exposed() {
        let metrics = Metrics::new();
        metrics.observe_request(Webhook::Validate, "allow", Duration::from_micros(40));
        metrics.observe_request(Webhook::Mutate, "overload", Duration::from_micros(5));
        metrics.set_binding_table(7, SystemTime::now() - Duration::from_secs(90));
        metrics.set_registries(["harbor-prod", "docker-lab"]);
        metrics.set_registry_health("harbor-prod", true);
        metrics.set_registry_health("docker-lab", false);
        metrics.inc_registry_api_error("docker-lab", "read");
        metrics.inc_pull_secret_sync("created");
        metrics.inc_config_reload_failure();
        metrics.inc_certificate_reload_failure();
        metrics.set_certificate_expiry(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000));
        metrics.set_leader(true);
        let text = metrics.encode();
        let lines = samples(&text);
        for line in [
            r#"pullgate_admission_requests_total{decision="allow",endpoint="validate"} 1"#,
            r#"pullgate_admission_requests_total{decision="overload",endpoint="mutate"} 1"#,
            r#"pullgate_admission_duration_seconds_bucket{endpoint="validate",le="0.00005"} 1"#,
            r#"pullgate_admission_duration_seconds_count{endpoint="mutate"} 1"#,
            "pullgate_binding_table_revision 7",
            "pullgate_binding_table_stale 0",
            "pullgate_binding_table_staleness_seconds 0",
            "pullgate_leader 1",
            "pullgate_config_reload_failures_total 1",
            "pullgate_certificate_reload_failures_total 1",
            "pullgate_certificate_expiry_timestamp_seconds 1900000000",
            r#"pullgate_registry_health{registry="harbor-prod"} 1"#,
            r#"pullgate_registry_health{registry="docker-lab"} 0"#,
            r#"pullgate_registry_api_errors_total{operation="read",registry="docker-lab"} 1"#,
            r#"pullgate_registry_api_errors_total{operation="robot",registry="harbor-prod"} 0"#,
            r#"pullgate_pull_secret_syncs_total{result="created"} 1"#,
            r#"pullgate_pull_secret_syncs_total{result="error"} 0"#,
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        let age = value(&text, "pullgate_binding_table_age_seconds");
        assert!((90.0..120.0).contains(&age), "age {age}");
    }

    /// Every workspace of the table has a findings series, at 0 until the audit (on the
    /// leader) counts; a replica that stops leading goes back to 0; a workspace that
    /// goes takes its series along.
    #[test]
    fn audit_findings_per_workspace() {
        let metrics = Metrics::new();
        metrics.set_workspaces(["ws-a", "ws-b"]);
        let text = metrics.encode();
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace="ws-a"}"#),
            0.0
        );
        let counts = BTreeMap::from([("ws-a".to_string(), 3), (String::new(), 2)]);
        metrics.set_audit_findings(&counts, true);
        let text = metrics.encode();
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace="ws-a"}"#),
            3.0
        );
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace="ws-b"}"#),
            0.0
        );
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace=""}"#),
            2.0
        );
        assert_eq!(value(&text, "pullgate_audit_findings_stale"), 1.0);
        metrics.set_audit_findings(&BTreeMap::new(), false);
        metrics.set_workspaces(["ws-b"]);
        let text = metrics.encode();
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace="ws-b"}"#),
            0.0
        );
        assert_eq!(
            value(&text, r#"pullgate_audit_findings{workspace=""}"#),
            0.0
        );
        assert!(!text.contains(r#"workspace="ws-a""#), "{text}");
        assert_eq!(value(&text, "pullgate_audit_findings_stale"), 0.0);
    }

    #[test]
    fn staleness_counts_from_when_the_table_fell_behind() {
        let metrics = Metrics::new();
        metrics.set_staleness(true, Some(SystemTime::now() - Duration::from_secs(400)));
        let text = metrics.encode();
        assert_eq!(value(&text, "pullgate_binding_table_stale"), 1.0);
        let behind = value(&text, "pullgate_binding_table_staleness_seconds");
        assert!((400.0..430.0).contains(&behind), "staleness {behind}");
        assert!(metrics.is_stale());
        metrics.set_staleness(false, None);
        let text = metrics.encode();
        assert_eq!(value(&text, "pullgate_binding_table_stale"), 0.0);
        assert_eq!(
            value(&text, "pullgate_binding_table_staleness_seconds"),
            0.0
        );
    }

    #[test]
    fn unknown_label_values_do_not_make_new_series() {
        let metrics = Metrics::new();
        metrics.observe_request(Webhook::Validate, "maybe", Duration::ZERO);
        metrics.observe_request(Webhook::Validate, "perhaps", Duration::ZERO);
        metrics.inc_pull_secret_sync("sideways");
        metrics.inc_registry_api_error("r", "dance");
        let text = metrics.encode();
        assert!(
            text.contains(r#"decision="unknown",endpoint="validate"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"pullgate_pull_secret_syncs_total{result="other"} 1"#));
        assert!(text.contains(r#"{operation="other",registry="r"} 1"#));
        for made_up in ["maybe", "perhaps", "sideways", "dance"] {
            assert!(!text.contains(made_up), "{made_up} in\n{text}");
        }
    }

    /// Registry series follow the table: a registry that goes takes its series along, so
    /// their number stays bounded by the registries that exist.
    #[test]
    fn registry_series_follow_the_table() {
        let metrics = Metrics::new();
        metrics.set_registries(["a", "b"]);
        metrics.set_leader(true);
        metrics.set_registry_health("a", true);
        metrics.set_registries(["b"]);
        let text = metrics.encode();
        assert!(!text.contains(r#"registry="a""#), "{text}");
        assert!(text.contains(r#"pullgate_registry_health{registry="b"} 0"#));
        for op in REGISTRY_OPERATIONS {
            let line =
                format!(r#"pullgate_registry_api_errors_total{{operation="{op}",registry="b"}} 0"#);
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        // Losing the lease: no probes here any more, so no health claims either.
        metrics.set_registry_health("b", true);
        metrics.set_leader(false);
        assert!(metrics
            .encode()
            .contains(r#"pullgate_registry_health{registry="b"} 0"#));
    }

    #[test]
    fn every_series_that_can_be_named_is_exported_from_the_start() {
        let text = Metrics::new().encode();
        for endpoint in ENDPOINTS {
            for decision in DECISIONS {
                let line = format!(
                    r#"pullgate_admission_requests_total{{decision="{decision}",endpoint="{}"}} 0"#,
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
        for result in SYNC_RESULTS {
            let line = format!(r#"pullgate_pull_secret_syncs_total{{result="{result}"}} 0"#);
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        for outcome in CREDENTIAL_OUTCOMES {
            let line = format!(r#"pullgate_credential_requests_total{{outcome="{outcome}"}} 0"#);
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        for line in [
            "pullgate_binding_table_age_seconds 0",
            "pullgate_binding_table_stale 0",
            "pullgate_binding_table_staleness_seconds 0",
            "pullgate_leader 0",
            "pullgate_config_reload_failures_total 0",
            "pullgate_certificate_reload_failures_total 0",
            r#"pullgate_audit_findings{workspace=""} 0"#,
            "pullgate_audit_findings_stale 0",
        ] {
            assert!(
                samples(&text).contains(&line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("unknown"));
    }
}
