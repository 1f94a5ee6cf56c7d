//! Cluster mode when things go wrong: watches broken longer than the staleness bound,
//! `410 Gone` relists, and leader failover between two replicas.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

fn has_secret(fake: &FakeApiServer, ns: &str) -> bool {
    fake.get("v1", "Secret", ns, PULL).is_some()
}

#[tokio::test]
async fn broken_watches_past_max_staleness_refuse_private_grants_until_recovery() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut r = Replica::start(&fake, options("pod-a")); // max_staleness 1s
    r.synced().await;
    wait_until("app-1 may pull", || decide(&r.table, "app-1", IMAGE).0).await;

    fake.set_failing(true);
    fake.break_watches();
    wait_until("table stale", || r.table.is_stale()).await;
    let (allowed, msg) = decide(&r.table, "app-1", IMAGE);
    assert!(!allowed, "private grant refused while stale");
    assert!(msg.contains("out of date; retry later"), "{msg}");
    assert!(
        decide(&r.table, "app-1", PUBLIC_IMAGE).0,
        "public still allowed"
    );
    assert!(
        decide(&r.table, "app-2", PUBLIC_IMAGE).0,
        "public still allowed"
    );

    // While broken, a binding change happens; after recovery it is seen.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    assert!(!decide(&r.table, "app-2", IMAGE).0);
    fake.set_failing(false);
    wait_until("fresh again", || !r.table.is_stale()).await;
    wait_until("app-1 may pull again", || {
        decide(&r.table, "app-1", IMAGE).0
    })
    .await;
    wait_until("app-2 bound after recovery", || {
        decide(&r.table, "app-2", IMAGE).0
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn a_short_break_is_not_stale() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut opts = options("pod-a");
    opts.max_staleness = Duration::from_secs(30);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    fake.set_failing(true);
    fake.break_watches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !r.table.is_stale(),
        "a break shorter than the bound keeps grants"
    );
    assert!(decide(&r.table, "app-1", IMAGE).0);
    fake.set_failing(false);
    r.stop().await;
}

#[tokio::test]
async fn gone_410_relist_keeps_the_table_correct() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;
    wait_until("app-1 may pull", || decide(&r.table, "app-1", IMAGE).0).await;
    let before = r.revision();

    // In one step: every watch breaks, things change, history is compacted, so the
    // watches come back with a resourceVersion that is gone.
    {
        let mut tx = fake.tx();
        tx.break_watches();
        tx.put(workspace("ws-a", &["app-2"], None));
        tx.delete(PG, "RegistrySpace", "", "reg.pub");
        tx.compact();
    }
    wait_until("relisted after 410", || {
        decide(&r.table, "app-2", IMAGE).0
            && !decide(&r.table, "app-1", IMAGE).0
            && !decide(&r.table, "app-1", PUBLIC_IMAGE).0
    })
    .await;
    assert!(fake.gone_count() > 0, "the watches were answered 410 Gone");
    assert!(r.revision() > before);
    let (_, msg) = decide(&r.table, "app-1", PUBLIC_IMAGE);
    assert!(msg.contains("not in any registry space"), "{msg}");
    // The Secrets follow the relisted table too.
    wait_until("Secret moved from app-1 to app-2", || {
        has_secret(&fake, "app-2") && !has_secret(&fake, "app-1")
    })
    .await;
    // And later changes still arrive on the new watches.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("app-1 back", || decide(&r.table, "app-1", IMAGE).0).await;
    r.stop().await;
}

#[tokio::test]
async fn only_the_leader_writes_and_the_other_replica_takes_over() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut a = Replica::start(&fake, options("pod-a")); // lease 2s
    a.synced().await;
    wait_until("pod-a leads", || {
        lease_holder(&fake).as_deref() == Some("pod-a")
    })
    .await;
    let mut b = Replica::start(&fake, options("pod-b"));
    b.synced().await;
    wait_until("Secret in app-1", || has_secret(&fake, "app-1")).await;

    // Both replicas see the change; only pod-a writes, across several renewals.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("both tables bound", || {
        decide(&a.table, "app-2", IMAGE).0 && decide(&b.table, "app-2", IMAGE).0
    })
    .await;
    wait_until("Secret in app-2", || has_secret(&fake, "app-2")).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let writers: Vec<String> = fake.writes().iter().map(|w| w.client.clone()).collect();
    assert!(writers.iter().all(|c| c == "pod-a"), "writers: {writers:?}");
    let renewals = fake
        .writes()
        .iter()
        .filter(|w| w.method == "PUT" && w.path.contains("/leases/"))
        .count();
    assert!(renewals >= 1, "the leader renewed its lease ({renewals})");

    // pod-a crashes (no release): pod-b takes over once the lease expires.
    a.kill();
    wait_until("pod-b leads", || {
        lease_holder(&fake).as_deref() == Some("pod-b")
    })
    .await;
    fake.clear_writes();
    fake.put(workspace("ws-a", &["app-1"], None));
    wait_until("pod-b deleted app-2's Secret", || {
        !has_secret(&fake, "app-2")
    })
    .await;
    let delete = fake
        .writes()
        .into_iter()
        .find(|w| w.method == "DELETE" && w.path.ends_with("app-2/secrets/pullgate-pull"))
        .expect("delete recorded");
    assert_eq!(delete.client, "pod-b");
    assert!(fake.writes().iter().all(|w| w.client == "pod-b"));

    // A graceful stop hands over at once (released lease) to a new replica.
    let mut c = Replica::start(&fake, options("pod-c"));
    c.synced().await;
    b.stop().await;
    let lease: Value = fake
        .get("coordination.k8s.io/v1", "Lease", OWN_NS, "pullgate-leader")
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null() || lease["spec"]["holderIdentity"] == "pod-c"
    );
    wait_until("pod-c leads", || {
        lease_holder(&fake).as_deref() == Some("pod-c")
    })
    .await;
    fake.clear_writes();
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("pod-c wrote app-2's Secret", || has_secret(&fake, "app-2")).await;
    assert!(fake.writes().iter().all(|w| w.client == "pod-c"));
    c.stop().await;
}

#[tokio::test]
async fn a_namespace_not_known_yet_gets_a_retryable_denial_then_its_binding() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    fake.put(workspace("ws-a", &["app-1"], Some(json!({"team": "a"}))));
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;
    let (allowed, msg) = decide(&r.table, "brand-new", IMAGE);
    assert!(!allowed);
    assert!(msg.contains("is not known to pullgate yet; retry"), "{msg}");
    fake.put(namespace("brand-new", json!({"team": "a"})));
    wait_until("brand-new joins ws-a by label", || {
        decide(&r.table, "brand-new", IMAGE).0
    })
    .await;
    wait_until("and gets its Secret", || has_secret(&fake, "brand-new")).await;
    r.stop().await;
}
