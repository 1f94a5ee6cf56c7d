//! Cluster mode against the fake apiserver: binding changes reach admission decisions
//! and the pull Secrets (byte for byte), foreign Secrets are left alone, staleness,
//! leader election, `410 Gone` relists, status and Events.

mod support;

use serde_json::{json, Value};
use support::*;

const IMAGE: &str = "127.0.0.1:5000/team-a/app:1";
const PUBLIC_IMAGE: &str = "127.0.0.1:5000/pub/tool:1";
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
    let mut r = Replica::start(&fake, options("pod-a"));
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
    r.stop().await;
}
