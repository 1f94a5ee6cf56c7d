//! `pullgate serve` in cluster mode, as a process: a kubeconfig points it at the fake
//! apiserver; it turns ready after the first sync, judges with the cluster's bindings,
//! follows changes, writes the pull Secret as leader, reports denied workloads as Events,
//! and shuts down cleanly on SIGTERM.

use crate::support;

use pullgate::admission::testing::*;
use serde_json::json;
use support::binary::Binary;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_config_follows_the_cluster() {
    let fake = FakeApiServer::start().await;
    fake.put(registry("local", "http://127.0.0.1:5000", &[]));
    fake.put(with_ref(
        space("local.team-a", "local", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "puller",
    ));
    fake.put(workspace("ws-a", &["app-1"], None));
    fake.put(basic_auth_secret(
        OWN_NS,
        "puller",
        "puller",
        "cluster-only-s3cret",
    ));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    let b = Binary::in_cluster(&fake.url(), "pullgate-0", &["--drain-period", "200ms"]);
    b.ready().await;
    assert!(b.allowed("app-1", IMAGE));
    assert!(!b.allowed("app-2", IMAGE));
    wait_until("pull Secret in app-1", || {
        fake.get("v1", "Secret", "app-1", PULL).is_some()
    })
    .await;
    assert!(fake.get("v1", "Secret", "app-2", PULL).is_none());

    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("app-2 joins ws-a", || b.allowed("app-2", IMAGE)).await;
    wait_until("pull Secret in app-2", || {
        fake.get("v1", "Secret", "app-2", PULL).is_some()
    })
    .await;

    // A denied Deployment becomes an Event on it, written by the replica that denied it.
    let deny = in_ns(
        review(
            "Deployment",
            "CREATE",
            object("Deployment", pod_spec(&["quay.io/x/y:1"])),
            None,
        ),
        "app-2",
    );
    let (status, _) =
        support::webhook::post_tls(b.addr, &b.ca_pem, "/validate", deny.to_string().as_bytes())
            .unwrap();
    assert_eq!(status, 200);
    wait_until("an Event about the denied Deployment", || {
        fake.writes().iter().any(|w| {
            w.method == "POST"
                && w.path.ends_with("/events")
                && String::from_utf8_lossy(&w.body).contains("quay.io/x/y:1")
        })
    })
    .await;

    b.sigterm();
    let mut b = b;
    let status = tokio::task::spawn_blocking(move || b.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
}
