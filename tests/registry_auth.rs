//! A generated pull Secret authenticates against a real Docker Registry: an image is
//! pushed into space team-a, the namespace Secret is derived from a basic-auth
//! `pullSecretRef`, and skopeo with exactly that Secret's content can read the image,
//! while a namespace that was unbound cannot.

mod support;

use serde_json::json;
use support::registry::{skopeo, tools_present, write_oci_layout, DockerRegistry};
use support::*;

const USER: &str = "puller";
const PASS: &str = "pull-s3cret";

#[tokio::test]
async fn derived_pull_secret_authenticates_against_a_real_registry() {
    if !tools_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let layout = tmp.path().join("layout");
    let reg_dir = tmp.path().join("registry");
    for d in [&home, &layout, &reg_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let registry_proc = DockerRegistry::start(&reg_dir, USER, PASS);
    let host = format!("127.0.0.1:{}", registry_proc.port);
    let image = format!("docker://{host}/team-a/app:1");
    write_oci_layout(&layout, "1");
    let push = skopeo(
        &home,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASS}"),
            &format!("oci:{}:1", layout.display()),
            &image,
        ],
    );
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );

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
        skopeo(
            &home,
            &[
                "inspect",
                "--tls-verify=false",
                "--authfile",
                file.to_str().unwrap(),
                &image,
            ],
        )
    };
    let app1 = docker_config(&pull_secret("app-1").unwrap());
    assert_eq!(
        app1,
        expected_config(&[&format!("{host}/team-a")], USER, PASS)
    );
    let ok = inspect_with(&app1, "app-1.json");
    assert!(
        ok.status.success(),
        "inspect with app-1's Secret: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"Digest\""));

    // app-2 is unbound: its Secret goes, and what the namespace holds no longer pulls.
    fake.put(workspace("ws-a", &["app-1"], None));
    wait_until("app-2's Secret deleted", || pull_secret("app-2").is_none()).await;
    let nothing = inspect_with(r#"{"auths":{}}"#, "app-2.json");
    assert!(
        !nothing.status.success(),
        "inspect must fail for the unbound namespace"
    );
    let err = String::from_utf8_lossy(&nothing.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    // app-1 still pulls.
    assert!(inspect_with(
        &docker_config(&pull_secret("app-1").unwrap()),
        "app-1b.json"
    )
    .status
    .success());
    r.stop().await;
}
