//! Cluster mode under faults, against the fake apiserver, complementing
//! `tests/cluster_resilience.rs` (staleness, `410 Gone`, leader takeover, unknown
//! namespace), `tests/cluster.rs` (a managed Secret deleted behind pullgate's back is
//! recreated) and `tests/registry_loop.rs` (a stopped registry changes nothing for
//! admission):
//!
//! - the apiserver unreachable or failing at start: never synced (so `/readyz` stays
//!   false, which `serve` wires to this flag), nothing written, and synced once it answers;
//! - the apiserver failing mid-run: the last good table answers exactly as before, until
//!   the staleness bound refuses only Private grants; the writes missed meanwhile land
//!   once, after recovery;
//! - a leader killed in the middle of writing Secrets: the next leader completes the set
//!   with no Secret written twice and none lost, and the crashed one writes nothing more;
//! - a leader whose Lease is taken from it stops writing until it holds the Lease again;
//! - a registry that accepts connections and never answers: admission and Secret sync go on.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use support::fake_apiserver::Write;
use support::*;

const UNMANAGED_IMAGE: &str = "quay.io/someone/tool:1";

fn ok(w: &Write) -> bool {
    (200..300).contains(&w.status)
}

/// Successful writes to pull Secrets (not the Lease, statuses or events).
fn secret_writes(fake: &FakeApiServer) -> Vec<Write> {
    fake.writes()
        .into_iter()
        .filter(|w| ok(w) && w.path.contains("/secrets"))
        .collect()
}

/// The namespace of a write to `/api/v1/namespaces/<ns>/secrets...`.
fn namespace_of(w: &Write) -> String {
    w.path
        .split('/')
        .skip_while(|p| *p != "namespaces")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn expected_secret() -> String {
    expected_config(&["127.0.0.1:5000/team-a"], "u", "p")
}

#[tokio::test]
async fn unreachable_apiserver_at_start_is_never_ready() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let r = Replica::start(&fake, options("pod-a"));
    // The listener goes away before the replica's first request: connection refused.
    drop(fake);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!*r.synced.borrow(), "synced without an apiserver");
    // Not ready, and what little it would answer is fail-closed: an empty table.
    assert!(!decide(&r.table, "app-1", IMAGE).0);
    assert!(!decide(&r.table, "app-1", PUBLIC_IMAGE).0);
    assert_eq!(r.revision(), 0);
    // It still stops cleanly when asked.
    r.stop().await;
}

#[tokio::test]
async fn failing_apiserver_at_start_then_recovering() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    fake.set_failing(true);
    let mut r = Replica::start(&fake, options("pod-a"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(fake.requests() > 0, "it kept asking");
    assert!(!*r.synced.borrow(), "synced from 500s");
    assert!(!decide(&r.table, "app-1", IMAGE).0);
    assert!(
        fake.writes().iter().all(|w| !ok(w)),
        "nothing written while the apiserver fails"
    );
    fake.set_failing(false);
    r.synced().await;
    wait_until("app-1 may pull", || decide(&r.table, "app-1", IMAGE).0).await;
    wait_until("the Secret is written", || {
        fake.get("v1", "Secret", "app-1", PULL).is_some()
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn failing_mid_run_serves_the_last_good_table_then_the_bound_applies() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut opts = options("pod-a");
    opts.max_staleness = Duration::from_secs(3);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("app-1 may pull", || decide(&r.table, "app-1", IMAGE).0).await;
    wait_until("app-1 has its Secret", || {
        fake.get("v1", "Secret", "app-1", PULL).is_some()
    })
    .await;
    let matrix = |r: &Replica| -> Vec<bool> {
        [
            ("app-1", IMAGE),
            ("app-2", IMAGE),
            ("app-1", PUBLIC_IMAGE),
            ("app-2", PUBLIC_IMAGE),
            ("app-2", UNMANAGED_IMAGE),
            ("kube-system", IMAGE),
        ]
        .iter()
        .map(|(ns, image)| decide(&r.table, ns, image).0)
        .collect()
    };
    let good = matrix(&r);
    assert_eq!(good, [true, false, true, true, false, true]);
    // The leader's own status writes come back through the watches as new revisions;
    // wait until that settles.
    let mut rev = r.revision();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if r.revision() == rev {
            break;
        }
        rev = r.revision();
    }

    fake.set_failing(true);
    {
        // In one step: the watches break, then a change the replica cannot see.
        let mut tx = fake.tx();
        tx.break_watches();
        tx.put(workspace("ws-a", &["app-1", "app-2"], None));
    }
    fake.clear_writes();
    // Within the bound: exactly the last good answers, from the same revision.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!r.table.is_stale());
    assert_eq!(matrix(&r), good);
    assert_eq!(r.revision(), rev);

    // Past the bound: only the Private grant changes (retryable); the rest goes on.
    wait_until("stale", || r.table.is_stale()).await;
    assert_eq!(matrix(&r), [false, false, true, true, false, true]);
    let (_, msg) = decide(&r.table, "app-1", IMAGE);
    assert!(msg.contains("retry later"), "{msg}");
    assert!(
        secret_writes(&fake).is_empty(),
        "no write succeeded meanwhile"
    );

    // Recovery: the change is seen, and the missed Secret lands, once.
    fake.set_failing(false);
    wait_until("fresh with app-2 bound", || {
        !r.table.is_stale()
            && decide(&r.table, "app-1", IMAGE).0
            && decide(&r.table, "app-2", IMAGE).0
    })
    .await;
    wait_until("app-2 has its Secret", || {
        fake.get("v1", "Secret", "app-2", PULL)
            .is_some_and(|s| docker_config(&s) == expected_secret())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: Vec<String> = secret_writes(&fake)
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert_eq!(
        writes,
        ["POST /api/v1/namespaces/app-2/secrets".to_string()],
        "one create for app-2, nothing rewritten for app-1"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_sync_neither_duplicates_nor_loses_writes() {
    const N: usize = 60;
    let names: Vec<String> = (0..N).map(|i| format!("ns-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &refs);
    let mut a = Replica::start(&fake, options("pod-a"));
    a.synced().await;
    // Kill the leader as soon as it has written some, but (most likely) not all, Secrets.
    wait_until("pod-a writes Secrets", || !secret_writes(&fake).is_empty()).await;
    a.kill();
    let written_by_a = secret_writes(&fake).len();
    eprintln!("pod-a was killed after {written_by_a} of {N} Secrets");

    let mut b = Replica::start(&fake, options("pod-b"));
    b.synced().await;
    wait_until("pod-b leads", || {
        lease_holder(&fake).as_deref() == Some("pod-b")
    })
    .await;
    wait_until("every namespace has its Secret", || {
        names.iter().all(|ns| {
            fake.get("v1", "Secret", ns, PULL)
                .is_some_and(|s| docker_config(&s) == expected_secret())
        })
    })
    .await;
    // Let a resync pass (2s in the test options): it must find nothing to do.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let writes = secret_writes(&fake);
    let mut creates: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for w in &writes {
        assert_eq!(
            w.method, "POST",
            "only creates: {} {} by {}",
            w.method, w.path, w.client
        );
        creates
            .entry(namespace_of(w))
            .or_default()
            .push(w.client.clone());
    }
    for ns in &names {
        assert_eq!(
            creates.get(ns).map(Vec::len),
            Some(1),
            "{ns}: created exactly once ({creates:?})"
        );
    }
    let by_a = writes.iter().filter(|w| w.client == "pod-a").count();
    assert!(by_a >= written_by_a, "the log lost writes");
    // The killed leader wrote nothing after the new one's first write.
    let first_b = writes.iter().position(|w| w.client == "pod-b");
    if let Some(first_b) = first_b {
        assert!(
            writes[first_b..].iter().all(|w| w.client == "pod-b"),
            "a write by pod-a after pod-b took over"
        );
    }
    b.stop().await;
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_writing() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    let mut a = Replica::start(&fake, options("pod-a")); // lease 2s
    a.synced().await;
    wait_until("pod-a leads", || {
        lease_holder(&fake).as_deref() == Some("pod-a")
    })
    .await;
    wait_until("app-1 has its Secret", || {
        fake.get("v1", "Secret", "app-1", PULL).is_some()
    })
    .await;

    // Someone else holds the Lease now (another replica after a partition, say).
    let mut lease = fake
        .get("coordination.k8s.io/v1", "Lease", OWN_NS, "pullgate-leader")
        .unwrap();
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    lease["spec"]["holderIdentity"] = json!("intruder");
    lease["spec"]["renewTime"] = json!(now);
    lease["spec"]["leaseDurationSeconds"] = json!(3600);
    fake.put(lease);
    // pod-a notices within its renew period (a third of the 2s lease) and steps down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    fake.clear_writes();
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("admission sees the binding", || {
        decide(&a.table, "app-2", IMAGE).0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let by_a: Vec<String> = fake
        .writes()
        .iter()
        .filter(|w| ok(w) && w.client == "pod-a")
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert!(by_a.is_empty(), "pod-a wrote without the Lease: {by_a:?}");
    assert!(fake.get("v1", "Secret", "app-2", PULL).is_none());

    // The intruder's Lease expires: pod-a takes it back and catches up.
    let mut lease = fake
        .get("coordination.k8s.io/v1", "Lease", OWN_NS, "pullgate-leader")
        .unwrap();
    lease["spec"]["leaseDurationSeconds"] = json!(1);
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(lease);
    wait_until("pod-a leads again", || {
        lease_holder(&fake).as_deref() == Some("pod-a")
    })
    .await;
    wait_until("app-2 has its Secret", || {
        fake.get("v1", "Secret", "app-2", PULL).is_some()
    })
    .await;
    a.stop().await;
}

#[tokio::test]
async fn a_registry_that_never_answers_changes_nothing_for_admission_or_secrets() {
    // Accepts connections and never answers (a black hole).
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            conns.push(c);
        }
    });
    let fake = FakeApiServer::start().await;
    let url = format!("http://{hole_addr}");
    fake.put(registry("hole", &url, &[]));
    fake.put(with_ref(
        space("hole.team-a", "hole", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(workspace("ws-a", &["app-1"], None));
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", "u", "p"));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    let mut opts = options("pod-a");
    opts.probe_interval = Duration::from_millis(100);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    let image = format!("{hole_addr}/team-a/app:1");
    let key = format!("{hole_addr}/team-a");
    wait_until("app-1 may pull", || decide(&r.table, "app-1", &image).0).await;
    assert!(!decide(&r.table, "app-2", &image).0);
    wait_until("app-1 has its Secret", || {
        fake.get("v1", "Secret", "app-1", PULL)
            .is_some_and(|s| docker_config(&s) == expected_config(&[&key], "u", "p"))
    })
    .await;
    // While the probes hang, a binding change reaches admission and the Secrets.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("app-2 may pull", || decide(&r.table, "app-2", &image).0).await;
    wait_until("app-2 has its Secret", || {
        fake.get("v1", "Secret", "app-2", PULL).is_some()
    })
    .await;
    r.stop().await;
    held.abort();
}
