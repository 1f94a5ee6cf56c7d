//! Events about denied workloads with two replicas: every replica writes the
//! Events of the denials it served, leader or not; one Event object per (workload,
//! reason) whichever replicas wrote it, updated (count + 1) at most once per interval
//! across replicas; the fields the apiserver checks stay within its limits.

use crate::support;

use std::time::{Duration, Instant};

use pullgate::admission::testing::{in_ns, object, pod_spec, review};
use pullgate::admission::Admission;
use pullgate::policy::Policy;
use pullgate::serve::AdmissionHandler;
use pullgate::server::{Handler, Webhook};
use serde_json::{json, Value};
use support::*;

/// A replica and the admission handler `serve` would put in front of it.
struct Node {
    replica: Replica,
    handler: AdmissionHandler,
    identity: String,
    flushes: usize,
}

impl Node {
    async fn start(fake: &FakeApiServer, identity: &str) -> Node {
        let mut replica = Replica::start(fake, options(identity));
        replica.synced().await;
        let handler = AdmissionHandler {
            admission: Admission {
                policy: Policy::default(),
                pull_secret_name: PULL.into(),
                table: replica.table.clone(),
                changes: None,
            },
            events: Some(replica.events.clone()),
            denials: None,
        };
        Node {
            replica,
            handler,
            identity: identity.to_string(),
            flushes: 0,
        }
    }

    /// Sends a review of a `kind` named `name` in app-2 using `images`; it must be denied.
    fn deny(&self, kind: &str, name: &str, images: &[&str]) {
        let mut obj = object(kind, pod_spec(images));
        obj["metadata"]["name"] = json!(name);
        let body = in_ns(review(kind, "CREATE", obj, None), "app-2").to_string();
        let reply = self.handler.handle(Webhook::Validate, body.as_bytes());
        assert_eq!(reply.status, 200);
        let v: Value = serde_json::from_slice(&reply.body).expect("JSON answer");
        assert_eq!(v["response"]["allowed"], false, "{kind} {name} denied: {v}");
    }

    /// Waits until this replica has worked through every denial sent to it so far: its
    /// Events are written one after another, so once a fresh denial's Event exists, the
    /// earlier ones are done.
    async fn flush(&mut self, fake: &FakeApiServer) {
        self.flushes += 1;
        let name = format!("flush-{}-{}", self.identity, self.flushes);
        self.deny("Deployment", &name, &[IMAGE]);
        wait_until(&format!("the Event of {name}"), || {
            about(fake, "Deployment", &name).len() == 1
        })
        .await;
    }
}

/// Every ImageDenied Event.
fn denials(fake: &FakeApiServer) -> Vec<Value> {
    fake.list("v1", "Event")
        .into_iter()
        .filter(|e| e["reason"] == "ImageDenied")
        .collect()
}

/// The ImageDenied Events about one workload in app-2.
fn about(fake: &FakeApiServer, kind: &str, name: &str) -> Vec<Value> {
    denials(fake)
        .into_iter()
        .filter(|e| {
            e["involvedObject"]["kind"] == kind
                && e["involvedObject"]["name"] == name
                && e["metadata"]["namespace"] == "app-2"
        })
        .collect()
}

/// Two replicas on a cluster where app-2 may not use the private space team-a: pod-a
/// holds the Lease, pod-b does not.
async fn two_replicas(fake: &FakeApiServer) -> (Node, Node) {
    seed_reg(fake, &["app-1"]);
    let a = Node::start(fake, "pod-a").await;
    wait_until("pod-a leads", || {
        lease_holder(fake).as_deref() == Some("pod-a")
    })
    .await;
    let b = Node::start(fake, "pod-b").await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_writes_the_events_of_the_denials_it_served() {
    let fake = FakeApiServer::start().await;
    let (mut a, mut b) = two_replicas(&fake).await;

    a.deny("Deployment", "web", &[IMAGE]);
    b.deny("Deployment", "api", &[IMAGE]);
    a.deny("Deployment", "shared", &[IMAGE]);
    b.deny("Deployment", "shared", &[IMAGE]);
    for (kind, name) in [("Deployment", "web"), ("Deployment", "api")] {
        wait_until(&format!("an Event about {kind} {name}"), || {
            !about(&fake, kind, name).is_empty()
        })
        .await;
    }
    a.flush(&fake).await;
    b.flush(&fake).await;

    assert_eq!(
        lease_holder(&fake).as_deref(),
        Some("pod-a"),
        "pod-b never led"
    );
    for name in ["web", "api", "shared"] {
        let events = about(&fake, "Deployment", name);
        assert_eq!(events.len(), 1, "one Event about {name}: {events:?}");
        let e = &events[0];
        assert_eq!(e["involvedObject"]["apiVersion"], "apps/v1");
        assert_eq!(e["involvedObject"]["namespace"], "app-2");
        assert_eq!(e["type"], "Warning");
        // Denied on both replicas within the interval: one Event, counted once.
        assert_eq!(e["count"], 1, "{name} counted once: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains("team-a")),
            "{e}"
        );
    }
    let by = |name: &str| about(&fake, "Deployment", name)[0]["reportingInstance"].clone();
    assert_eq!(by("web"), "pod-a");
    assert_eq!(
        by("api"),
        "pod-b",
        "the non-leader wrote its own denial's Event"
    );
    assert!(
        fake.writes()
            .iter()
            .any(|w| w.client == "pod-b" && w.path.ends_with("/events")),
        "pod-b wrote Events"
    );
    a.replica.stop().await;
    b.replica.stop().await;
}

/// An Event as a replica (`by`) wrote it `count` times, last at `last`.
fn stored_event(name: &str, workload: &str, count: u32, last: &str, by: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": name, "namespace": "app-2"},
           "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment",
                              "name": workload, "namespace": "app-2"},
           "reason": "ImageDenied", "message": "an older message", "type": "Warning",
           "count": count, "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": last,
           "eventTime": "2020-01-01T00:00:00.000000Z", "action": "Admit",
           "reportingComponent": "pullgate", "reportingInstance": by,
           "source": {"component": "pullgate"}})
}

/// Successful replaces of the Event `name` in app-2.
fn updates(fake: &FakeApiServer, name: &str) -> usize {
    let path = format!("/api/v1/namespaces/app-2/events/{name}");
    fake.writes()
        .iter()
        .filter(|w| w.method == "PUT" && w.path == path && w.status == 200)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_counts_once_per_interval_across_replicas() {
    use pullgate::cluster::replica::events::event_name;
    let fake = FakeApiServer::start().await;
    let (mut a, mut b) = two_replicas(&fake).await;
    // `web` was last reported long ago (count 4), `fresh` a moment ago by another replica.
    let web = event_name("Deployment", "app-2", "web", "ImageDenied");
    let fresh = event_name("Deployment", "app-2", "fresh", "ImageDenied");
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    fake.put(stored_event(
        &web,
        "web",
        4,
        "2020-01-01T00:00:00Z",
        "pod-old",
    ));
    fake.put(stored_event(&fresh, "fresh", 7, &now, "pod-c"));

    // More old Events, so that the replicas' reads and writes interleave every way.
    let racers: Vec<String> = (0..8).map(|i| format!("race-{i}")).collect();
    for r in &racers {
        let name = event_name("Deployment", "app-2", r, "ImageDenied");
        fake.put(stored_event(&name, r, 4, "2020-01-01T00:00:00Z", "pod-old"));
    }

    // Both replicas see `web` denied at once: one of them adds one to the count.
    a.deny("Deployment", "web", &[IMAGE]);
    b.deny("Deployment", "web", &[IMAGE]);
    b.deny("Deployment", "fresh", &[IMAGE]);
    for r in &racers {
        a.deny("Deployment", r, &[IMAGE]);
        b.deny("Deployment", r, &[IMAGE]);
    }
    a.flush(&fake).await;
    b.flush(&fake).await;
    for r in &racers {
        let name = event_name("Deployment", "app-2", r, "ImageDenied");
        let events = about(&fake, "Deployment", r);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["count"], 5, "{r} counted once: {}", events[0]);
        assert_eq!(updates(&fake, &name), 1, "one update of {r}");
    }
    let events = about(&fake, "Deployment", "web");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["metadata"]["name"], web.as_str());
    assert_eq!(e["count"], 5, "counted once for both replicas: {e}");
    assert_ne!(e["lastTimestamp"], "2020-01-01T00:00:00Z", "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("team-a")),
        "{e}"
    );
    assert_eq!(updates(&fake, &web), 1, "one update of web");
    // Updated within the interval by another replica: left as it is.
    let f = &about(&fake, "Deployment", "fresh")[0];
    assert_eq!(
        (f["count"].clone(), f["message"].clone()),
        (json!(7), json!("an older message"))
    );
    assert_eq!(updates(&fake, &fresh), 0);
    assert!(
        fake.writes().iter().any(|w| w.client == "pod-b"
            && w.method == "POST"
            && w.status == 409
            && w.body_json()["metadata"]["name"] == fresh.as_str()),
        "pod-b tried to create fresh and found it"
    );

    // Again within the interval, on both: nothing changes.
    a.deny("Deployment", "web", &[IMAGE]);
    b.deny("Deployment", "web", &[IMAGE]);
    a.flush(&fake).await;
    b.flush(&fake).await;
    assert_eq!(about(&fake, "Deployment", "web")[0]["count"], 5);
    assert_eq!(updates(&fake, &web), 1);
    a.replica.stop().await;
    b.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_fields_stay_within_what_the_apiserver_accepts() {
    use pullgate::cluster::replica::events::{event_name, MESSAGE_LIMIT};
    let fake = FakeApiServer::start().await;
    let (a, mut b) = two_replicas(&fake).await;
    // The longest possible name, and far more denied images than one message can say.
    let long = format!("{}.{}", "a".repeat(126), "b".repeat(126));
    assert_eq!(long.len(), 253);
    let images: Vec<String> = (0..200)
        .map(|i| format!("127.0.0.1:5000/team-a/app-{i}:1"))
        .collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    b.deny("Deployment", &long, &images);
    b.deny("StatefulSet", "db", &[IMAGE]);
    b.flush(&fake).await;

    // The fake refuses what the apiserver would (422): nothing was refused.
    let refused: Vec<String> = fake
        .writes()
        .into_iter()
        .filter(|w| w.path.contains("/events") && w.status == 422)
        .map(|w| w.path)
        .collect();
    assert!(refused.is_empty(), "Events refused as invalid: {refused:?}");
    let e = &about(&fake, "Deployment", &long)[0];
    let name = e["metadata"]["name"].as_str().unwrap_or_default();
    assert_eq!(
        name,
        event_name("Deployment", "app-2", &long, "ImageDenied")
    );
    assert!(name.len() <= 253, "{name}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.len() <= MESSAGE_LIMIT, "{} bytes", message.len());
    assert!(
        message.ends_with("...") && message.contains("app-0:1"),
        "{message}"
    );
    for (field, want) in [
        ("type", "Warning"),
        ("reason", "ImageDenied"),
        ("action", "Admit"),
        ("reportingComponent", "pullgate"),
        ("reportingInstance", "pod-b"),
    ] {
        assert_eq!(e[field], want, "{field}: {e}");
    }
    assert_eq!(e["source"]["component"], "pullgate");
    assert_eq!(e["count"], 1);
    assert!(
        e["eventTime"].is_string() && e["firstTimestamp"].is_string(),
        "{e}"
    );
    let db = &about(&fake, "StatefulSet", "db")[0];
    assert_eq!(db["involvedObject"]["apiVersion"], "apps/v1");
    a.replica.stop().await;
    b.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_denials_is_written_at_the_replicas_budget() {
    use pullgate::cluster::replica::events::{QUEUE_CAPACITY, WRITE_BURST, WRITE_RATE};
    let fake = FakeApiServer::start().await;
    let (a, b) = two_replicas(&fake).await;
    let start = Instant::now();
    let accepted = (0..5000)
        .filter(|i| {
            b.replica
                .events
                .report("Deployment", "app-2", &format!("w-{i}"), "denied")
        })
        .count();
    // The queue takes what the writer has not caught up with, and no more.
    assert!(accepted < QUEUE_CAPACITY + 100, "{accepted} of 5000 queued");
    let posts = |f: &FakeApiServer| {
        f.writes()
            .iter()
            .filter(|w| w.client == "pod-b" && w.method == "POST" && w.path.ends_with("/events"))
            .count()
    };
    wait_until("the burst is written", || {
        posts(&fake) >= WRITE_BURST as usize
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Counted against the time since the first report: a slow machine writes fewer, never
    // more.
    let written = posts(&fake);
    let bound =
        WRITE_BURST as usize + WRITE_RATE as usize * (start.elapsed().as_secs() as usize + 1);
    assert!(written <= bound, "{written} Events written, budget {bound}");
    a.replica.stop().await;
    b.replica.stop().await;
}
