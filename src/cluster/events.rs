//! Kubernetes Events about denied workloads (SPEC §6.7). Admission calls
//! [`DenialEvents::report`], which never blocks and never fails: when the queue is full
//! the report is dropped. The leader drains the queue through [`Recorder`], which writes
//! a core/v1 Event at most once per object per [`EVENT_INTERVAL`]; on other replicas the
//! reports are dropped (only the leader writes).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Reports waiting for the leader; beyond this, reports are dropped.
pub const QUEUE_CAPACITY: usize = 256;
/// At most one Event per object per interval: a crash-looping controller retrying a
/// denied pod must not flood the apiserver.
pub const EVENT_INTERVAL: Duration = Duration::from_secs(60);
/// Reason of the Events pullgate writes for denials.
pub const DENIED_REASON: &str = "ImageDenied";
/// Component named as the Events' source.
pub const COMPONENT: &str = "pullgate";

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

/// The receiving end, handed to [`super::run`].
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
    /// full, or cluster mode not running).
    pub fn report(&self, kind: &str, namespace: &str, name: &str, message: &str) -> bool {
        // Checked first so a full queue costs no allocation.
        if self.tx.capacity() == 0 {
            return false;
        }
        self.tx
            .try_send(Report {
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                reason: DENIED_REASON,
                message: message.to_string(),
            })
            .is_ok()
    }
}

/// Per-object rate limit of Events.
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

    /// Whether an Event about this object may be written at `now` (and, if so, notes it).
    pub fn admit(&mut self, kind: &str, namespace: &str, name: &str, now: Instant) -> bool {
        // Forget old entries now and then so the map stays small.
        if self.last.len() > 10_000 {
            let interval = self.interval;
            self.last.retain(|_, t| now.duration_since(*t) < interval);
        }
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        match self.last.get(&key) {
            Some(t) if now.duration_since(*t) < self.interval => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }
}

/// Writes rate-limited Events (leader only).
pub struct Recorder {
    client: Client,
    identity: String,
    limiter: Limiter,
}

impl Recorder {
    pub fn new(client: Client, identity: &str) -> Recorder {
        Recorder {
            client,
            identity: identity.to_string(),
            limiter: Limiter::new(EVENT_INTERVAL),
        }
    }

    /// Writes the Event unless one about the same object was written recently.
    pub async fn record(&mut self, r: &Report) {
        if !self
            .limiter
            .admit(&r.kind, &r.namespace, &r.name, Instant::now())
        {
            return;
        }
        let api: Api<Event> = Api::namespaced(self.client.clone(), &r.namespace);
        if let Err(e) = api
            .create(&PostParams::default(), &event_for(r, &self.identity))
            .await
        {
            tracing::warn!(kind = %r.kind, namespace = %r.namespace, name = %r.name, error = %e, "could not write Event");
        }
    }
}

/// The apiVersion of the kinds pullgate reports on.
fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "RegistrySpace" | "Registry" | "Workspace" => "pullgate.io/v1alpha1",
        _ => "v1",
    }
}

/// A core/v1 Event (type Warning) about the reported object.
pub fn event_for(r: &Report, identity: &str) -> Event {
    let now = Timestamp::now();
    let base = if r.name.is_empty() { "object" } else { &r.name };
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{base}.")),
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
        message: Some(r.message.clone()),
        type_: Some("Warning".to_string()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some("Admit".to_string()),
        reporting_component: Some(COMPONENT.to_string()),
        reporting_instance: Some(identity.to_string()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        ..Event::default()
    }
}
