//! Kubernetes Events about denied workloads. Admission calls
//! [`DenialEvents::report`], which never blocks and never fails: when the queue is full
//! the report is dropped. Every replica, leader or not, drains its own queue in a
//! background task ([`run`]) through a [`Recorder`], so the replica that served a denial
//! writes its Event.
//!
//! Replicas share nothing but the apiserver, so the Event itself is the shared record:
//! its name is derived from (kind, namespace, name, reason) ([`event_name`]), so every
//! replica writing the same denial meets the same object. The first create wins; a
//! replica that finds it (`409 AlreadyExists`) reads it and, only if its `lastTimestamp`
//! is older than [`EVENT_INTERVAL`], replaces it with `count + 1` under the
//! resourceVersion it read. Of replicas racing on one Event, one update wins and the
//! others get `409 Conflict` and drop theirs, so `count` grows by one per interval at
//! most, whatever the number of replicas. Each replica also skips objects it wrote
//! about within the interval (no API call at all) and writes at most [`WRITE_BURST`]
//! Events at once and [`WRITE_RATE`] per second afterwards; beyond that the queue fills
//! and admission drops reports.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::api::{CrKind, API_VERSION};
use crate::object::Kind;

/// Reports waiting for the writer; beyond this, reports are dropped. With
/// [`MESSAGE_LIMIT`] and the name limits this holds at most about 400 KiB.
pub const QUEUE_CAPACITY: usize = 256;
/// At most one Event write per object per interval, across replicas: a crash-looping
/// controller retrying a denied workload must not flood the apiserver.
pub const EVENT_INTERVAL: Duration = Duration::from_secs(60);
/// Events one replica may write at once (a `kubectl apply` of a few denied workloads
/// gets all its Events at once).
pub const WRITE_BURST: u32 = 20;
/// Events per second one replica writes beyond the burst (each is one to three API
/// calls); a flood of distinct denials waits in the queue, and what overflows it is
/// dropped.
pub const WRITE_RATE: u32 = 5;
/// The apiserver refuses a core/v1 Event with `eventTime` whose message is longer than
/// 1024 bytes (`NoteLengthLimit`, pkg/apis/core/validation/events.go).
pub const MESSAGE_LIMIT: usize = 1024;
/// The apiserver's limit on `reportingInstance` (`ReportingInstanceLengthLimit`).
const INSTANCE_LIMIT: usize = 128;
/// Longest object name (a DNS subdomain); reports about longer names are not about a
/// real object.
const NAME_LIMIT: usize = 253;
/// Longest kind pullgate reports about; a longer one is not a real kind.
const KIND_LIMIT: usize = 63;
/// Hex digits of the hash in an Event's name (64 bits: no collision among the Events
/// of one namespace in practice).
const HASH_HEX: usize = 16;
/// How long a stopping replica keeps writing what was already queued.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Reason of the Events pullgate writes for denials.
pub const DENIED_REASON: &str = "ImageDenied";
/// Component named as the Events' source and reporting controller.
pub const COMPONENT: &str = "pullgate";
/// The Events' action (what pullgate did about the object).
const ACTION: &str = "Admit";

/// Something worth an Event: the object it is about and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: &'static str,
    pub message: String,
}

/// The cheap, non-blocking handle admission reports denials through. Cloneable.
#[derive(Clone, Debug)]
pub struct DenialEvents {
    tx: mpsc::Sender<Report>,
}

/// The receiving end, handed to [`crate::cluster::run`].
#[derive(Debug)]
pub struct EventQueue {
    pub(crate) rx: mpsc::Receiver<Report>,
}

/// A connected pair: admission keeps the sender, cluster mode the queue.
pub fn denial_events() -> (DenialEvents, EventQueue) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    (DenialEvents { tx }, EventQueue { rx })
}

impl DenialEvents {
    /// Queues an Event for a denied workload; returns false when it was dropped (queue
    /// full, cluster mode not running, or not about an object that can exist). The
    /// message is cut to what the apiserver accepts.
    pub fn report(&self, kind: &str, namespace: &str, name: &str, message: &str) -> bool {
        // Checked first so a full queue costs no allocation.
        if self.tx.capacity() == 0 || !reportable(kind, namespace, name) {
            return false;
        }
        self.tx
            .try_send(Report {
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                reason: DENIED_REASON,
                message: bounded(message, MESSAGE_LIMIT).to_string(),
            })
            .is_ok()
    }
}

/// Whether a report names something an Event can be about: a namespace that is a DNS
/// label (it goes into the request path), a name and kind of possible length. A direct
/// caller of the webhook can send anything; this keeps its junk off the apiserver.
fn reportable(kind: &str, namespace: &str, name: &str) -> bool {
    let label = namespace.len() <= 63
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && namespace
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && namespace
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    label && !kind.is_empty() && kind.len() <= KIND_LIMIT && name.len() <= NAME_LIMIT
}

/// `s` cut to at most `limit` bytes at a character boundary, marked with `...` when cut.
pub fn bounded(s: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= limit {
        return s.into();
    }
    let mut end = limit.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end]).into()
}

/// The name of the one Event about (kind, namespace, name, reason): the object's name,
/// made a DNS label, then `.` and a hash of all four. The same on every replica and in
/// every version, so replicas writing the same denial meet on one object; at most 253
/// characters and a valid DNS subdomain whatever the input.
pub fn event_name(kind: &str, namespace: &str, name: &str, reason: &str) -> String {
    let mut input = Vec::with_capacity(kind.len() + namespace.len() + name.len() + 32);
    for part in [kind, namespace, name, reason] {
        input.extend_from_slice(part.as_bytes());
        // A separator no part contains, so ("ab", "c") and ("a", "bc") differ.
        input.push(0);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let hash: String = digest.as_ref()[..HASH_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .take(NAME_LIMIT - 1 - HASH_HEX)
        .collect();
    match readable.trim_matches('-') {
        "" => format!("{COMPONENT}.{hash}"),
        r => format!("{r}.{hash}"),
    }
}

/// Per-object rate limit of Events on one replica (saves the API calls for objects this
/// replica wrote about within the interval).
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    last: HashMap<(String, String, String), Instant>,
}

impl Limiter {
    pub fn new(interval: Duration) -> Limiter {
        Limiter {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether this object was written about less than the interval before `now`.
    pub fn recent(&self, kind: &str, namespace: &str, name: &str, now: Instant) -> bool {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        self.last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < self.interval)
    }

    /// Notes a write about this object at `now`.
    pub fn note(&mut self, kind: &str, namespace: &str, name: &str, now: Instant) {
        // Forget old entries now and then so the map stays small; entries are added at
        // the write rate, so at most WRITE_RATE × interval of them are recent.
        if self.last.len() > 10_000 {
            let interval = self.interval;
            self.last.retain(|_, t| now.duration_since(*t) < interval);
        }
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        self.last.insert(key, now);
    }

    /// Whether an Event about this object may be written at `now` (and, if so, notes it).
    pub fn admit(&mut self, kind: &str, namespace: &str, name: &str, now: Instant) -> bool {
        if self.recent(kind, namespace, name, now) {
            return false;
        }
        self.note(kind, namespace, name, now);
        true
    }
}

/// A token bucket: `burst` writes at once, then `rate` per second.
#[derive(Debug)]
pub struct Budget {
    burst: f64,
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    pub fn new(burst: u32, rate: u32, now: Instant) -> Budget {
        Budget {
            burst: f64::from(burst),
            rate: f64::from(rate.max(1)),
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one write at `now`, or says how long to wait for it.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// What became of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This replica wrote about the object within the interval: no API call.
    Skipped,
    Created,
    /// The Event existed and was older than the interval: count + 1.
    Updated,
    /// The Event existed and was updated within the interval (by any replica).
    Recent,
    /// Another replica updated it between our read and our write.
    Conflict,
    Failed,
}

/// Writes rate-limited Events.
pub struct Recorder {
    client: Client,
    identity: String,
    limiter: Limiter,
    budget: Budget,
}

impl Recorder {
    pub fn new(client: Client, identity: &str) -> Recorder {
        Recorder {
            client,
            identity: bounded(identity, INSTANCE_LIMIT).into_owned(),
            limiter: Limiter::new(EVENT_INTERVAL),
            budget: Budget::new(WRITE_BURST, WRITE_RATE, Instant::now()),
        }
    }

    /// Writes the Event unless one about the same object was written recently (by this
    /// replica, or by any as its `lastTimestamp` says); waits for the write budget.
    pub async fn record(&mut self, r: &Report) -> Outcome {
        if self
            .limiter
            .recent(&r.kind, &r.namespace, &r.name, Instant::now())
        {
            return Outcome::Skipped;
        }
        while let Err(wait) = self.budget.take(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let outcome = self.write(r).await;
        // A failed write is tried again at the next denial (the budget bounds how often).
        if outcome != Outcome::Failed {
            self.limiter
                .note(&r.kind, &r.namespace, &r.name, Instant::now());
        }
        tracing::debug!(kind = %r.kind, namespace = %r.namespace, name = %r.name, ?outcome, "Event");
        outcome
    }

    /// Create; on `409 AlreadyExists`, read and replace (count + 1) if old enough.
    async fn write(&self, r: &Report) -> Outcome {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &r.namespace);
        let name = event_name(&r.kind, &r.namespace, &r.name, r.reason);
        let now = Timestamp::now();
        let pp = PostParams::default();
        let fail = |e: kube::Error| {
            tracing::warn!(kind = %r.kind, namespace = %r.namespace, name = %r.name, error = %e, "could not write Event");
            Outcome::Failed
        };
        match api
            .create(&pp, &event_for(r, &name, &self.identity, now))
            .await
        {
            Ok(_) => return Outcome::Created,
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return fail(e),
        }
        let mut existing = match api.get(&name).await {
            Ok(e) => e,
            // Expired between the create and the read: the next denial creates it.
            Err(kube::Error::Api(e)) if e.code == 404 => return Outcome::Conflict,
            Err(e) => return fail(e),
        };
        if updated_within(&existing, now, EVENT_INTERVAL) {
            return Outcome::Recent;
        }
        existing.count = Some(existing.count.unwrap_or(1).saturating_add(1));
        existing.last_timestamp = Some(Time(now));
        existing.message = Some(r.message.clone());
        // `existing` carries the resourceVersion read above: a replica that updated the
        // Event meanwhile makes this a 409, and its update is the one that counts.
        match api.replace(&name, &pp, &existing).await {
            Ok(_) => Outcome::Updated,
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Outcome::Conflict,
            Err(e) => fail(e),
        }
    }
}

/// Whether the Event was last written less than `interval` before `now` (or after it:
/// another replica's clock may run ahead).
fn updated_within(e: &Event, now: Timestamp, interval: Duration) -> bool {
    let last = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0));
    let Some(last) = last else {
        return false;
    };
    let age_ms = now.as_millisecond().saturating_sub(last.as_millisecond());
    age_ms < i64::try_from(interval.as_millis()).unwrap_or(i64::MAX)
}

/// The writer every replica runs: drains `queue` until `shutdown`, then writes what is
/// already queued for at most [`DRAIN_TIME`] (admission's reports fail from then on).
pub async fn run(
    mut recorder: Recorder,
    mut queue: EventQueue,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            report = queue.rx.recv() => match report {
                Some(r) => {
                    recorder.record(&r).await;
                }
                None => return,
            },
            _ = crate::cluster::stopped(&mut shutdown) => break,
        }
    }
    queue.rx.close();
    let drain = async {
        while let Some(r) = queue.rx.recv().await {
            recorder.record(&r).await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}

/// The apiVersion of the kinds pullgate reports on: the judged workloads, its own
/// resources, and core kinds (a Secret it leaves alone).
fn api_version_of(kind: &str) -> &'static str {
    if CrKind::from_kind(kind).is_some() {
        return API_VERSION;
    }
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .map_or("v1", Kind::api_version)
}

/// The core/v1 Event (type Warning) named `name` about the reported object, first seen
/// `now` by the replica `identity`.
pub fn event_for(r: &Report, name: &str, identity: &str, now: Timestamp) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(r.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(api_version_of(&r.kind).to_string()),
            kind: Some(r.kind.clone()),
            name: Some(r.name.clone()),
            namespace: Some(r.namespace.clone()),
            ..ObjectReference::default()
        },
        reason: Some(r.reason.to_string()),
        message: Some(bounded(&r.message, MESSAGE_LIMIT).into_owned()),
        type_: Some("Warning".to_string()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some(ACTION.to_string()),
        reporting_component: Some(COMPONENT.to_string()),
        reporting_instance: Some(bounded(identity, INSTANCE_LIMIT).into_owned()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `IsDNS1123Subdomain`, as the apiserver checks Event names.
    fn is_dns_subdomain(s: &str) -> bool {
        s.len() <= 253
            && s.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            })
    }

    #[test]
    fn event_names_are_valid_stable_and_distinct() {
        let long = "x".repeat(253);
        let cases = [
            ("Deployment", "app", "web"),
            ("Deployment", "app", "web.v2"),
            ("Deployment", "app", ""),
            ("Deployment", "app", "-"),
            ("Deployment", "app", "Web_ÄPP"),
            ("Deployment", "app", long.as_str()),
            ("StatefulSet", "app", "web"),
            ("Deployment", "other", "web"),
        ];
        let names: Vec<String> = cases
            .iter()
            .map(|(k, ns, n)| event_name(k, ns, n, DENIED_REASON))
            .collect();
        for (name, case) in names.iter().zip(&cases) {
            assert!(is_dns_subdomain(name), "{name:?} for {case:?}");
        }
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names[0].starts_with("web."), "{}", names[0]);
        assert_ne!(names[0], event_name("Deployment", "app", "web", "Other"));
        // Fixed forever (SHA-256 of the parts, each ended by NUL: `printf` piped to
        // `sha256sum` gives it): replicas of different versions meet on one name.
        assert_eq!(names[0], "web.16531e4faf4d05b8");
        // Parts do not run into each other.
        assert_ne!(
            event_name("Deployment", "ab", "c", DENIED_REASON),
            event_name("Deployment", "a", "bc", DENIED_REASON)
        );
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary_within_the_limit() {
        assert_eq!(bounded("short", MESSAGE_LIMIT), "short");
        let s = "é".repeat(MESSAGE_LIMIT);
        let cut = bounded(&s, MESSAGE_LIMIT);
        assert!(
            cut.len() <= MESSAGE_LIMIT && cut.ends_with("..."),
            "{}",
            cut.len()
        );
    }

    #[test]
    fn reports_about_impossible_objects_are_dropped() {
        let (events, _queue) = denial_events();
        assert!(events.report("Deployment", "app-2", "web", "denied"));
        assert!(events.report("Deployment", "app-2", "", "generateName, no name yet"));
        for (kind, ns, name) in [
            ("Deployment", "../x", "web"),
            ("Deployment", "App", "web"),
            ("Deployment", "", "web"),
            ("Deployment", "-a", "web"),
            ("", "app-2", "web"),
            ("Deployment", "app-2", &"x".repeat(254)),
        ] {
            assert!(!events.report(kind, ns, name, "m"), "{kind:?} {ns:?}");
        }
    }

    #[test]
    fn the_write_budget_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(WRITE_BURST, WRITE_RATE, t0);
        let now_ok = (0..1000).filter(|_| b.take(t0).is_ok()).count();
        assert_eq!(now_ok, WRITE_BURST as usize);
        let wait = b.take(t0).expect_err("empty");
        assert!(wait <= Duration::from_secs(1) / WRITE_RATE, "{wait:?}");
        let t1 = t0 + Duration::from_secs(2);
        let later = (0..1000).filter(|_| b.take(t1).is_ok()).count();
        assert_eq!(later, 2 * WRITE_RATE as usize);
        // A long quiet spell refills the burst, no more.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(
            (0..1000).filter(|_| b.take(t2).is_ok()).count(),
            WRITE_BURST as usize
        );
    }

    #[test]
    fn an_event_names_its_objects_api_version() {
        for (kind, api_version) in [
            ("Deployment", "apps/v1"),
            ("CronJob", "batch/v1"),
            ("Pod", "v1"),
            ("Secret", "v1"),
            ("RegistrySpace", "pullgate.io/v1alpha1"),
        ] {
            assert_eq!(api_version_of(kind), api_version, "{kind}");
        }
    }

    #[test]
    fn an_event_is_recent_by_its_last_timestamp() {
        let r = Report {
            kind: "Deployment".into(),
            namespace: "app".into(),
            name: "web".into(),
            reason: DENIED_REASON,
            message: "m".into(),
        };
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let e = event_for(&r, "web.x", "pod-a", t);
        let at = |s: i64| t + k8s_openapi::jiff::SignedDuration::from_secs(s);
        assert!(updated_within(&e, at(59), EVENT_INTERVAL));
        assert!(!updated_within(&e, at(60), EVENT_INTERVAL));
        // Written by a replica whose clock runs ahead: recent, not ancient.
        assert!(updated_within(&e, at(-5), EVENT_INTERVAL));
        let mut bare = e.clone();
        (bare.last_timestamp, bare.event_time, bare.first_timestamp) = (None, None, None);
        assert!(!updated_within(&bare, t, EVENT_INTERVAL));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-a"));
        let long = event_for(&r, "web.x", &"p".repeat(300), t);
        assert!(long
            .reporting_instance
            .is_some_and(|i| i.len() <= INSTANCE_LIMIT));
    }
}
