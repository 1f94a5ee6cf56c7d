//! Cluster mode against the fake apiserver: binding changes reach admission decisions
//! and the pull Secrets (byte for byte), foreign Secrets are left alone, staleness,
//! leader election, `410 Gone` relists, status and Events.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const KEYS: [&str; 2] = ["127.0.0.1:5000/team-a", "registry.local:5000/team-a"];
const USER: &str = "puller-a";
const PASS: &str = "s3cret-a";

/// Registry `reg` with a private space team-a (bound to ws-a = {app-1}, credentials from
/// a basic-auth Secret) and a public space pub; namespaces app-1..3.
fn seed(fake: &FakeApiServer) {
    fake.put(registry(
        "reg",
        "http://127.0.0.1:5000",
        &["registry.local:5000"],
    ));
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(space("reg.pub", "reg", "pub", "Public", &[]));
    fake.put(workspace("ws-a", &["app-1"], None));
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", USER, PASS));
    for ns in ["app-1", "app-2", "app-3"] {
        fake.put(namespace(ns, json!({})));
    }
}

fn secret(fake: &FakeApiServer, ns: &str) -> Option<Value> {
    fake.get("v1", "Secret", ns, PULL)
}

/// Waits until admission gives `allowed` for `image` in each namespace.
async fn wait_decisions(r: &Replica, image: &str, expect: &[(&str, bool)]) {
    let what = format!("decisions for {image}: {expect:?}");
    r.wait_table(&what, |r| {
        expect
            .iter()
            .all(|(ns, allowed)| decide(&r.table, ns, image).0 == *allowed)
    })
    .await;
}

/// Waits until exactly the namespaces in `expect` hold a pull Secret with that content.
async fn wait_secrets(fake: &FakeApiServer, expect: &[(&str, &str)]) {
    let what = format!(
        "pull Secrets exactly in {:?}",
        expect.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    wait_until(&what, || {
        let all: Vec<Value> = fake
            .list("v1", "Secret")
            .into_iter()
            .filter(|s| s["metadata"]["name"] == PULL)
            .collect();
        all.len() == expect.len()
            && expect.iter().all(|(ns, content)| {
                secret(fake, ns).is_some_and(|s| docker_config(&s) == *content)
            })
    })
    .await;
    for (ns, _) in expect {
        let s = secret(fake, ns).expect("secret");
        assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(
            s["metadata"]["labels"]["pullgate.io/managed-by"],
            "pullgate"
        );
    }
}

#[tokio::test]
async fn binding_changes_reach_admission_and_pull_secrets() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let syncs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut opts = options("pod-a");
    let seen = syncs.clone();
    opts.pull_secret_syncs = pullgate::cluster::Hook(Some(std::sync::Arc::new(move |r: &str| {
        seen.lock().unwrap().push(r.to_string())
    })));
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    let team_a = expected_config(&KEYS, USER, PASS);

    // Start: only app-1 (ws-a) may pull and has the Secret.
    wait_decisions(
        &r,
        IMAGE,
        &[("app-1", true), ("app-2", false), ("app-3", false)],
    )
    .await;
    wait_decisions(&r, PUBLIC_IMAGE, &[("app-1", true), ("app-2", true)]).await;
    let (_, msg) = decide(&r.table, "app-2", IMAGE);
    assert!(
        msg.contains("not bound to a workspace of namespace \"app-2\""),
        "{msg}"
    );
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // Bind: ws-b = {app-2} is bound too.
    fake.put(workspace("ws-b", &["app-2"], None));
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a", "ws-b"]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_decisions(
        &r,
        IMAGE,
        &[("app-1", true), ("app-2", true), ("app-3", false)],
    )
    .await;
    wait_secrets(&fake, &[("app-1", &team_a), ("app-2", &team_a)]).await;

    // Unbind ws-b: app-2 loses access and its Secret (its last entry).
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_decisions(&r, IMAGE, &[("app-1", true), ("app-2", false)]).await;
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // app-3 joins ws-a by list, then leaves.
    fake.put(workspace("ws-a", &["app-1", "app-3"], None));
    wait_decisions(&r, IMAGE, &[("app-3", true)]).await;
    wait_secrets(&fake, &[("app-1", &team_a), ("app-3", &team_a)]).await;
    fake.put(workspace("ws-a", &["app-1"], None));
    wait_decisions(&r, IMAGE, &[("app-3", false)]).await;
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // app-2 joins ws-a by label, then leaves by relabelling.
    fake.put(workspace("ws-a", &["app-1"], Some(json!({"team": "a"}))));
    fake.put(namespace("app-2", json!({"team": "a"})));
    wait_decisions(&r, IMAGE, &[("app-2", true)]).await;
    wait_secrets(&fake, &[("app-1", &team_a), ("app-2", &team_a)]).await;
    fake.put(namespace("app-2", json!({"team": "b"})));
    wait_decisions(&r, IMAGE, &[("app-2", false)]).await;
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // A managed Secret deleted behind pullgate's back comes back.
    fake.delete("v1", "Secret", "app-1", PULL);
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // Made public (keeping its pullSecretRef): every namespace may pull and needs it.
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Public", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_decisions(
        &r,
        IMAGE,
        &[("app-1", true), ("app-2", true), ("app-3", true)],
    )
    .await;
    wait_secrets(
        &fake,
        &[("app-1", &team_a), ("app-2", &team_a), ("app-3", &team_a)],
    )
    .await;

    // Public without credentials: no Secret anywhere.
    fake.put(space("reg.team-a", "reg", "team-a", "Public", &["ws-a"]));
    wait_secrets(&fake, &[]).await;

    // Private again: back to app-1 only.
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_decisions(
        &r,
        IMAGE,
        &[("app-1", true), ("app-2", false), ("app-3", false)],
    )
    .await;
    wait_secrets(&fake, &[("app-1", &team_a)]).await;

    // The source Secret changes: the derived one follows.
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", USER, "rotated"));
    wait_secrets(
        &fake,
        &[("app-1", &expected_config(&KEYS, USER, "rotated"))],
    )
    .await;

    // The space is deleted: its images are in no space, and the Secret goes.
    fake.delete(PG, "RegistrySpace", "", "reg.team-a");
    wait_decisions(&r, IMAGE, &[("app-1", false)]).await;
    let (_, msg) = decide(&r.table, "app-1", IMAGE);
    assert!(msg.contains("not in any registry space"), "{msg}");
    wait_secrets(&fake, &[]).await;

    // Every Secret write was pullgate's own pull Secret, with the field manager.
    for w in fake.writes().iter().filter(|w| w.path.contains("/secrets")) {
        assert!(
            w.path.ends_with(PULL) || w.method == "POST",
            "{} {}",
            w.method,
            w.path
        );
        if w.method == "PATCH" {
            assert!(w.query.contains("fieldManager=pullgate"), "{}", w.query);
            assert!(
                w.content_type.starts_with("application/apply-patch"),
                "{}",
                w.content_type
            );
        }
    }
    // Every write was reported to the sync hook (the pull-Secret metric).
    let results = syncs.lock().unwrap().clone();
    for kind in ["created", "updated", "deleted"] {
        assert!(
            results.iter().any(|r| r == kind),
            "no {kind} in {results:?}"
        );
    }
    r.stop().await;
}

#[tokio::test]
async fn a_foreign_secret_of_the_same_name_is_never_touched() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let foreign = fake.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": PULL, "namespace": "app-1"},
        "type": "Opaque", "data": {"token": b64("not pullgate's")}}));
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;

    // Said on the space, and in an Event on the Secret.
    wait_until("Ready=False on reg.team-a naming the foreign Secret", || {
        condition(&fake, "RegistrySpace", "reg.team-a", "Ready").is_some_and(|c| {
            c["status"] == "False"
                && c["message"].as_str().unwrap_or_default().contains("namespace \"app-1\" has a Secret \"pullgate-pull\" that pullgate did not create")
        })
    })
    .await;
    wait_until("an Event on the foreign Secret", || {
        fake.list("v1", "Event").iter().any(|e| {
            e["involvedObject"]["kind"] == "Secret"
                && e["involvedObject"]["name"] == PULL
                && e["metadata"]["namespace"] == "app-1"
                && e["reason"] == "SecretNotManaged"
        })
    })
    .await;

    // Elsewhere the sync goes on: app-2 joins and gets its Secret.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    let team_a = expected_config(&KEYS, USER, PASS);
    wait_until("Secret in app-2", || {
        secret(&fake, "app-2").is_some_and(|s| docker_config(&s) == team_a)
    })
    .await;
    // Resyncs pass without touching the foreign Secret.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        secret(&fake, "app-1"),
        Some(foreign),
        "foreign Secret unchanged"
    );
    let touched: Vec<_> = fake
        .writes()
        .into_iter()
        .filter(|w| w.path.starts_with("/api/v1/namespaces/app-1/secrets"))
        .collect();
    assert!(touched.is_empty(), "writes to app-1's Secrets: {touched:?}");

    // Once the admin removes it, pullgate's own takes its place.
    fake.delete("v1", "Secret", "app-1", PULL);
    wait_secrets(&fake, &[("app-1", &team_a), ("app-2", &team_a)]).await;
    r.stop().await;
}

fn condition(fake: &FakeApiServer, kind: &str, name: &str, ty: &str) -> Option<Value> {
    let obj = fake.get(PG, kind, "", name)?;
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
        .cloned()
}

#[tokio::test]
async fn status_reports_members_bindings_conflicts_and_bad_objects() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    // A second object declaring the same space: both in conflict.
    fake.put(space(
        "reg.team-a-again",
        "reg",
        "team-a",
        "Private",
        &["ws-a", "ws-b"],
    ));
    // A space of a registry that does not exist, and an object that cannot be parsed.
    fake.put(space("nowhere.x", "nowhere", "x", "Private", &["ws-a"]));
    fake.put(
        json!({"apiVersion": PG, "kind": "Workspace", "metadata": {"name": "ws-bad"},
                    "spec": {"namespaces": "app-2"}}),
    );
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;

    wait_until("ws-a status", || {
        fake.get(PG, "Workspace", "", "ws-a")
            .is_some_and(|w| w["status"]["namespaces"] == json!(["app-1"]))
            && condition(&fake, "Workspace", "ws-a", "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    wait_until("conflict on both declarations", || {
        ["reg.team-a", "reg.team-a-again"].iter().all(|n| {
            condition(&fake, "RegistrySpace", n, "Conflict").is_some_and(|c| c["status"] == "True")
        })
    })
    .await;
    wait_until("bad objects reported", || {
        condition(&fake, "Workspace", "ws-bad", "Ready")
            .is_some_and(|c| c["status"] == "False" && c["reason"] == "Invalid")
            && condition(&fake, "RegistrySpace", "nowhere.x", "Ready").is_some_and(|c| {
                c["status"] == "False"
                    && c["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("does not exist")
            })
    })
    .await;
    let team_a = fake.get(PG, "RegistrySpace", "", "reg.team-a").unwrap();
    assert_eq!(
        team_a["status"]["boundNamespaces"], 1,
        "intersection of bindings: ws-a"
    );
    let public = fake.get(PG, "RegistrySpace", "", "reg.pub").unwrap();
    assert_eq!(
        public["status"]["boundNamespaces"], 3,
        "public: every namespace"
    );
    assert_eq!(
        condition(&fake, "RegistrySpace", "reg.pub", "Conflict").unwrap()["status"],
        "False"
    );
    // The conflict fails closed: Private with the bindings both list.
    wait_decisions(&r, IMAGE, &[("app-1", true), ("app-2", false)]).await;

    // The bad object did not stall its watch: a later Workspace change still lands.
    fake.put(workspace("ws-a", &["app-1", "app-3"], None));
    wait_decisions(&r, IMAGE, &[("app-3", true)]).await;

    // Statuses are written only when they change: a quiet period (past a resync) adds none.
    wait_until("ws-a status updated", || {
        fake.get(PG, "Workspace", "", "ws-a")
            .is_some_and(|w| w["status"]["namespaces"] == json!(["app-1", "app-3"]))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = |f: &FakeApiServer| {
        f.writes()
            .iter()
            .filter(|w| w.path.ends_with("/status"))
            .count()
    };
    let before = count(&fake);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&fake), before, "no status rewrites without a change");
    r.stop().await;
}

#[tokio::test]
async fn denial_events_are_rate_limited_and_written_by_the_replica_that_denied() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let mut a = Replica::start(&fake, options("pod-a"));
    a.synced().await;
    wait_until("pod-a leads", || {
        lease_holder(&fake).as_deref() == Some("pod-a")
    })
    .await;
    let mut b = Replica::start(&fake, options("pod-b"));
    b.synced().await;

    for _ in 0..3 {
        assert!(a
            .events
            .report("Deployment", "app-2", "web", "image \"x\" is not allowed"));
    }
    assert!(a
        .events
        .report("Pod", "app-2", "api-1", "image \"y\" is not allowed"));
    assert!(b
        .events
        .report("Deployment", "app-2", "other", "image \"z\" is not allowed"));
    let denials = |f: &FakeApiServer| -> Vec<Value> {
        f.list("v1", "Event")
            .into_iter()
            .filter(|e| e["reason"] == "ImageDenied")
            .collect()
    };
    wait_until("three Events", || denials(&fake).len() == 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = denials(&fake);
    assert_eq!(events.len(), 3, "one per object: {events:?}");
    let web = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "web")
        .expect("web");
    assert_eq!(web["involvedObject"]["kind"], "Deployment");
    assert_eq!(web["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(web["type"], "Warning");
    assert_eq!(web["message"], "image \"x\" is not allowed");
    assert_eq!(web["count"], 1, "reported three times within the interval");
    let other = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "other")
        .expect("the non-leader's Event");
    assert_eq!(other["reportingInstance"], "pod-b");
    assert_eq!(lease_holder(&fake).as_deref(), Some("pod-a"));
    a.stop().await;
    b.stop().await;
}
