//! The webhook end to end over real TLS on 127.0.0.1: reviews for every kind and mode,
//! the mutating patch, malformed bodies, and the `pullgate serve` binary itself (config
//! reload, SIGTERM during a stream of requests, the audit line).

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pullgate::admission::testing::*;
use pullgate::api::Enforcement;
use pullgate::config;
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;
use serde_json::{json, Value};
use support::binary::{probe_status, Binary};
use support::webhook::{post_tls, post_tls_announcing, PullgateServer};

const EXAMPLE: &str = include_str!("../../examples/config.yaml");
const BOUND: &str = "harbor.example.com/team-a/app:1";
const UNBOUND: &str = "harbor.example.com/team-b/app:1";

fn webhook(policy: Policy) -> PullgateServer {
    let cfg = config::parse(EXAMPLE).unwrap();
    PullgateServer::start(
        Arc::new(Table::new(Snapshot::build(&cfg.objects, 1))),
        policy,
    )
}

#[test]
fn validate_every_kind_allowed_denied_warned_audited() {
    let enforce = webhook(Policy::default());
    let audit = webhook(Policy {
        mode: Enforcement::Audit,
        ..Policy::default()
    });
    for kind in KINDS {
        let ok = review(
            kind,
            "CREATE",
            object(kind, pod_spec(&["nginx", BOUND])),
            None,
        );
        let (status, v) = enforce.review("/validate", &ok);
        assert_eq!(status, 200, "{kind}");
        assert_eq!(
            (v["apiVersion"].as_str(), v["kind"].as_str()),
            (Some("admission.k8s.io/v1"), Some("AdmissionReview"))
        );
        let r = &v["response"];
        assert_eq!(r["uid"], "uid-1", "{kind}");
        assert_eq!(r["allowed"], true, "{kind}: {v}");
        assert_eq!(r["auditAnnotations"]["decision"], "allow", "{kind}");
        assert!(
            r.get("patch").is_none() && r.get("warnings").is_none(),
            "{kind}"
        );

        let bad = review(
            kind,
            "CREATE",
            object(kind, pod_spec(&["nginx", UNBOUND])),
            None,
        );
        let (_, v) = enforce.review("/validate", &bad);
        let r = &v["response"];
        assert_eq!(r["allowed"], false, "{kind}");
        assert_eq!(r["status"]["code"], 403, "{kind}");
        assert_eq!(
            r["status"]["message"],
            format!("image {UNBOUND:?} (container \"c1\") is in private registry space \"team-b\" of registry \"harbor-prod\", which is not bound to a workspace of namespace \"app-1\""),
            "{kind}"
        );
        assert_eq!(r["auditAnnotations"]["denied-images"], UNBOUND, "{kind}");
        assert!(r.get("patch").is_none(), "{kind}: /validate never patches");

        // app-3's workspace ws-b sets Warn: allowed, the denial comes back as a warning.
        let (_, v) = enforce.review(
            "/validate",
            &in_ns(
                review(
                    kind,
                    "CREATE",
                    object(kind, pod_spec(&["quay.io/x/y:1"])),
                    None,
                ),
                "app-3",
            ),
        );
        let r = &v["response"];
        assert_eq!(r["allowed"], true, "{kind}");
        assert_eq!(r["auditAnnotations"]["decision"], "warn", "{kind}");
        assert!(
            r["warnings"][0].as_str().unwrap().contains("quay.io/x/y:1"),
            "{kind}: {v}"
        );

        // Global audit mode: allowed silently, the would-be verdict in the annotations.
        let (_, v) = audit.review("/validate", &in_ns(bad.clone(), "app-9"));
        let r = &v["response"];
        assert_eq!(r["allowed"], true, "{kind}");
        assert!(r.get("warnings").is_none(), "{kind}");
        assert_eq!(r["auditAnnotations"]["decision"], "audit", "{kind}");
    }
}

#[test]
fn validate_updates_and_ephemeral_containers() {
    let w = webhook(Policy::default());
    let old = object("Pod", pod_spec(&[UNBOUND]));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"release": "2"});
    let (_, v) = w.review(
        "/validate",
        &review("Pod", "UPDATE", relabelled, Some(old.clone())),
    );
    assert_eq!(
        v["response"]["allowed"], true,
        "unchanged images are not judged"
    );
    let (_, v) = w.review(
        "/validate",
        &review(
            "Pod",
            "UPDATE",
            object("Pod", pod_spec(&["harbor.example.com/team-b/app:2"])),
            Some(old.clone()),
        ),
    );
    assert_eq!(v["response"]["allowed"], false, "a changed image is judged");

    let mut with_debug = old.clone();
    with_debug["spec"]["ephemeralContainers"] =
        json!([{"name": "debug", "image": "quay.io/tools/debug:1"}]);
    let mut body = review("Pod", "UPDATE", with_debug, Some(old));
    body["request"]["subResource"] = json!("ephemeralcontainers");
    let (_, v) = w.review("/validate", &body);
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("(ephemeral container \"debug\")"));
    let (_, v) = w.review("/mutate", &body);
    assert_eq!(v["response"]["allowed"], true);
    assert!(
        v["response"].get("patch").is_none(),
        "no patch for ephemeral containers"
    );
}

#[test]
fn mutate_injects_the_pull_secret_once() {
    let w = webhook(Policy::default());
    let mutate = |pod: &Value| -> Option<Value> {
        let (status, v) = w.review("/mutate", &review("Pod", "CREATE", pod.clone(), None));
        assert_eq!(status, 200);
        assert_eq!(v["response"]["allowed"], true, "mutate never denies");
        apply_patch(&v["response"], pod)
    };
    let mut pod = object("Pod", pod_spec(&["nginx", BOUND]));
    let patched = mutate(&pod).expect("patch for a private image");
    assert_eq!(
        patched["spec"]["imagePullSecrets"],
        json!([{"name": "pullgate-pull"}])
    );
    assert!(mutate(&patched).is_none(), "reinvocation gives no patch");
    pod["spec"]["imagePullSecrets"] = json!([{"name": "team-own"}]);
    assert_eq!(
        mutate(&pod).unwrap()["spec"]["imagePullSecrets"],
        json!([{"name": "team-own"}, {"name": "pullgate-pull"}])
    );
    pod["spec"]["imagePullSecrets"] = json!([{"name": "pullgate-pull"}, {"name": "team-own"}]);
    assert!(mutate(&pod).is_none(), "already present");
    assert!(
        mutate(&object(
            "Pod",
            pod_spec(&["nginx", "harbor.example.com/shared/x:1"])
        ))
        .is_none(),
        "public only"
    );
    // A denied private image still gets the Secret: the validating webhook decides.
    assert!(mutate(&object("Pod", pod_spec(&[UNBOUND]))).is_some());
    let old = object("Pod", pod_spec(&[BOUND]));
    let (_, v) = w.review("/mutate", &review("Pod", "UPDATE", old.clone(), Some(old)));
    assert!(v["response"].get("patch").is_none(), "no patch on UPDATE");
}

#[test]
fn malformed_requests_get_400_413_404() {
    let w = webhook(Policy::default());
    let good = review("Pod", "CREATE", object("Pod", pod_spec(&["nginx"])), None);
    let mut wrong_version = good.clone();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let bomb = good.to_string().replace(
        "\"dryRun\":false",
        &format!(
            "\"dryRun\":false,\"x\":{}{}",
            "[".repeat(5000),
            "]".repeat(5000)
        ),
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{\"apiVersion\":".to_vec()),
        (
            "no request",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
        ),
        ("wrong apiVersion", wrong_version.to_string().into_bytes()),
        ("nesting bomb", bomb.into_bytes()),
    ];
    for (what, body) in cases {
        for path in ["/validate", "/mutate"] {
            let (status, body) = w.post(path, &body);
            assert_eq!(status, 400, "{what} on {path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("\"allowed\""),
                "{what}: never a review"
            );
        }
    }
    // Announced, not sent: the answer comes before the body, which is never read.
    let big = post_tls_announcing(w.addr, &w.ca_pem, "/validate", 8 * 1024 * 1024, b"{");
    assert_eq!(big.expect("an answer").0, 413, "8 MiB body");
    assert_eq!(w.post("/admit", b"{}").0, 404);
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn config_changes_are_followed_and_a_broken_file_keeps_the_last_good_table() {
    let b = Binary::start(EXAMPLE, &[]);
    assert!(!b.allowed("app-1", UNBOUND));
    let bound = EXAMPLE.replace("spec: {registry: harbor-prod, space: team-b, visibility: Private, workspaces: [ws-b]}", "spec: {registry: harbor-prod, space: team-b, visibility: Private, workspaces: [ws-a, ws-b]}");
    assert_ne!(bound, EXAMPLE);
    std::fs::write(b.config_path(), &bound).unwrap();
    wait_until("team-b bound to ws-a", || b.allowed("app-1", UNBOUND));
    std::fs::write(
        b.config_path(),
        "apiVersion: pullgate.io/v1alpha1\nkind: Nonsense\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        b.allowed("app-1", UNBOUND),
        "an invalid file keeps the last good table"
    );
    std::fs::write(b.config_path(), EXAMPLE).unwrap();
    wait_until("back to the original bindings", || {
        !b.allowed("app-1", UNBOUND)
    });
}

#[test]
fn sigterm_during_a_stream_of_requests_loses_none() {
    let b = Arc::new(Binary::start(EXAMPLE, &["--drain-period", "1s"]));
    assert_eq!(probe_status(b.probe, "/readyz"), 200);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, lost) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let body = review(
        "Pod",
        "CREATE",
        object("Pod", pod_spec(&[BOUND, "nginx"])),
        None,
    )
    .to_string();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (b, stop, answered, lost, body) = (
                b.clone(),
                stop.clone(),
                answered.clone(),
                lost.clone(),
                body.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match post_tls(b.addr, &b.ca_pem, "/validate", body.as_bytes()) {
                        Ok((200, _)) => answered.fetch_add(1, Ordering::Relaxed),
                        Ok((status, _)) => panic!("status {status} during shutdown"),
                        // Refused, or the handshake failed on a connection the kernel queued
                        // but the server never accepted: no request was sent; the apiserver
                        // has moved to a ready replica long before this in a real rollout.
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionRefused
                                    | std::io::ErrorKind::NotConnected
                            ) =>
                        {
                            break
                        }
                        Err(e) => {
                            eprintln!("request cut after it was sent: {e:?}");
                            lost.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    wait_until("requests flowing", || answered.load(Ordering::Relaxed) > 20);
    let before = answered.load(Ordering::Relaxed);
    b.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        probe_status(b.probe, "/readyz"),
        503,
        "not ready while draining"
    );
    assert_eq!(probe_status(b.probe, "/healthz"), 200);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        answered.load(Ordering::Relaxed) > before,
        "requests during the drain were answered"
    );
    assert_eq!(lost.load(Ordering::Relaxed), 0, "a request was cut");
    let mut b = Arc::try_unwrap(b).ok().expect("workers done");
    let status = b.child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

#[test]
fn audit_line_of_a_denial_has_every_field_and_no_credential() {
    let b = Binary::start(EXAMPLE, &[]);
    let mut body = review(
        "Deployment",
        "CREATE",
        object(
            "Deployment",
            pod_spec(&["127.0.0.1:5000/teams/platform/agent:1", UNBOUND]),
        ),
        None,
    );
    body["request"]["userInfo"]["username"] = json!("bob@example.com");
    body["request"]["dryRun"] = json!(true);
    let (status, _) =
        post_tls(b.addr, &b.ca_pem, "/validate", body.to_string().as_bytes()).unwrap();
    assert_eq!(status, 200);
    wait_until("audit line written", || !b.audit.lock().unwrap().is_empty());
    let line = b.audit.lock().unwrap()[0].clone();
    let rec: Value = serde_json::from_str(&line).expect("audit line is one JSON object");
    for (field, expected) in [
        ("uid", json!("uid-1")),
        ("operation", json!("CREATE")),
        ("kind", json!("Deployment")),
        ("namespace", json!("app-1")),
        ("name", json!("p")),
        ("user", json!("bob@example.com")),
        ("dryRun", json!(true)),
        ("mode", json!("enforce")),
        ("decision", json!("deny")),
        ("revision", json!(1)),
    ] {
        assert_eq!(rec[field], expected, "{field} in {line}");
    }
    assert!(rec["time"].as_str().unwrap().ends_with('Z'));
    assert!(rec["latencyUs"].is_u64());
    let denied = &rec["images"][1];
    for (field, expected) in [
        ("image", json!(UNBOUND)),
        ("container", json!("c1")),
        ("registry", json!("harbor-prod")),
        ("space", json!("team-b")),
        ("visibility", json!("Private")),
        ("verdict", json!("deny")),
        ("reason", json!("notBound")),
    ] {
        assert_eq!(denied[field], expected, "images[1].{field} in {line}");
    }
    assert_eq!(rec["images"][0]["verdict"], "allow");
    // The config holds a basic-auth Secret for the space of images[0].
    assert!(
        !line.contains("example-only-password") && !line.contains("ZXhhbXBsZS1vbmx5"),
        "{line}"
    );
}
