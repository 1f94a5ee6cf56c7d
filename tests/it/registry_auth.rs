//! A generated pull Secret authenticates against a real Docker Registry: an image is
//! pushed into space team-a, the namespace Secret is derived from a basic-auth
//! `pullSecretRef`, and skopeo with exactly that Secret's content can read the image,
//! while a namespace that was unbound cannot.

use crate::support;

use serde_json::json;
use support::registry::{tools_available, RealRegistry};
use support::*;

const USER: &str = "puller";
const PASS: &str = "pull-s3cret";

#[tokio::test]
async fn derived_pull_secret_authenticates_against_a_real_registry() {
    if !tools_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let registry_proc = RealRegistry::start(Some((USER, PASS)));
    registry_proc.push("team-a/app", "1");
    let host = registry_proc.host();

    let fake = FakeApiServer::start().await;
    fake.put(registry("local", &format!("http://{host}"), &[]));
    fake.put(with_ref(
        space("local.team-a", "local", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", USER, PASS));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;
    let pull_secret = |ns: &str| fake.get("v1", "Secret", ns, PULL);
    wait_until("Secrets in app-1 and app-2", || {
        pull_secret("app-1").is_some() && pull_secret("app-2").is_some()
    })
    .await;

    let inspect_with = |config: &str, name: &str| {
        let file = tmp.path().join(name);
        std::fs::write(&file, config).unwrap();
        registry_proc.inspect_with_authfile("team-a/app:1", &file)
    };
    let app1 = docker_config(&pull_secret("app-1").unwrap());
    assert_eq!(
        app1,
        expected_config(&[&format!("{host}/team-a")], USER, PASS)
    );
    if let Err(e) = inspect_with(&app1, "app-1.json") {
        panic!("inspect with app-1's Secret: {e}");
    }

    // app-2 is unbound: its Secret goes, and what the namespace holds no longer pulls.
    fake.put(workspace("ws-a", &["app-1"], None));
    wait_until("app-2's Secret deleted", || pull_secret("app-2").is_none()).await;
    let err = inspect_with(r#"{"auths":{}}"#, "app-2.json")
        .expect_err("inspect must fail for the unbound namespace")
        .to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    // app-1 still pulls.
    assert!(inspect_with(
        &docker_config(&pull_secret("app-1").unwrap()),
        "app-1b.json"
    )
    .is_ok());
    r.stop().await;
}
