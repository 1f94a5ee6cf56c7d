//! Bypass attempts through the running webhook (real TLS server, real admission handler):
//! image-reference tricks in every image location of every workload kind, UPDATE tricks,
//! namespace confusion, user-supplied pull secrets, mirror-pod impersonation, dryRun,
//! duplicate JSON keys, unknown fields, DELETE/CONNECT and a 1,000-container pod.
//!
//! The tests in `tests/it/admission.rs` show each rule once on the handler; this
//! file throws the adversary's whole table at the server, so that every trick is checked
//! in every place an image can hide. The tenant sits in namespace `evil` (no workspace);
//! `app-1` is bound to the private spaces and serves as the control: a spelling that
//! reaches the private space there must be denied in `evil`, and a spelling that is denied
//! in both never reached it.

use crate::support;

use std::sync::{Arc, OnceLock};

use pullgate::admission::testing::{group_of, KINDS};
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;
use serde_json::{json, Value};
use support::PullgateServer;

const CONFIG: &str = r#"
apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {name: harbor-prod}
spec:
  type: Harbor
  url: https://harbor.example.com
  aliases: [harbor.internal:8443, 10.0.0.5, "[fd00::5]"]
---
apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {name: dockerhub}
spec: {type: DockerRegistry, url: https://docker.io}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {name: harbor-prod.team-a}
spec: {registry: harbor-prod, space: team-a, visibility: Private, workspaces: [ws-a]}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {name: harbor-prod.shared}
spec: {registry: harbor-prod, space: shared, visibility: Public}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {name: dockerhub.library}
spec: {registry: dockerhub, space: library, visibility: Public}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {name: dockerhub.acme}
spec: {registry: dockerhub, space: acme, visibility: Private, workspaces: [ws-a]}
---
apiVersion: pullgate.io/v1alpha1
kind: Workspace
metadata: {name: ws-a}
spec: {namespaces: [app-1]}
---
apiVersion: v1
kind: Namespace
metadata: {name: evil}
"#;

/// The namespace bound to the private spaces.
const BOUND: &str = "app-1";
/// The tenant's namespace: no workspace.
const EVIL: &str = "evil";
const PRIVATE: &str = "harbor.example.com/team-a/app:1";

fn server() -> &'static PullgateServer {
    static SERVER: OnceLock<PullgateServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let cfg = pullgate::config::parse(CONFIG).expect("test config parses");
        let snap = Snapshot::build(&cfg.objects, 1);
        assert!(snap.problems().is_empty(), "{:?}", snap.problems());
        PullgateServer::start(Arc::new(Table::new(snap)), Policy::default())
    })
}

/// One image-reference trick: the reference, and whether it is allowed in the bound
/// namespace (it is never allowed in `evil` unless `public`).
struct Trick {
    what: String,
    image: String,
    in_bound: bool,
    public: bool,
}

/// Every image-reference trick aimed at the private spaces `team-a` (Harbor) and `acme`
/// (Docker Hub), plus public controls that must keep working: the rows of
/// `tests/data/bypass-tricks.json`.
fn tricks() -> Vec<Trick> {
    let data: Value = serde_json::from_str(include_str!("../data/bypass-tricks.json"))
        .expect("tests/data/bypass-tricks.json is JSON");
    let rows = data["tricks"].as_array().expect("a tricks array");
    assert!(
        rows.len() > 80,
        "only {} tricks in the data file",
        rows.len()
    );
    rows.iter()
        .map(|row| {
            let field = |name: &str| &row[name];
            Trick {
                what: field("what").as_str().expect("what").to_string(),
                image: field("image").as_str().expect("image").to_string(),
                in_bound: field("inBound").as_bool().expect("inBound"),
                public: field("public").as_bool().expect("public"),
            }
        })
        .collect()
}

/// Where an image can hide in a pod spec.
#[derive(Clone, Copy, Debug)]
enum Place {
    Container,
    Init,
    Sidecar,
    Ephemeral,
    Volume,
}

const PLACES: [Place; 5] = [
    Place::Container,
    Place::Init,
    Place::Sidecar,
    Place::Ephemeral,
    Place::Volume,
];

impl Place {
    /// How the denial message names this place.
    fn label(self) -> &'static str {
        match self {
            Place::Container => "container",
            Place::Init | Place::Sidecar => "init container",
            Place::Ephemeral => "ephemeral container",
            Place::Volume => "image volume",
        }
    }

    /// A pod spec with one entry per image at this place (named `t0`, `t1`, …), next to
    /// an allowed main container where the place is not the main containers.
    fn spec(self, images: &[&str]) -> Value {
        let entries: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let name = format!("t{i}");
                match self {
                    Place::Volume => json!({"name": name, "image": {"reference": image, "pullPolicy": "IfNotPresent"}}),
                    Place::Sidecar => json!({"name": name, "image": image, "restartPolicy": "Always"}),
                    _ => json!({"name": name, "image": image}),
                }
            })
            .collect();
        let main = json!([{"name": "main", "image": "nginx:1.25"}]);
        match self {
            Place::Container => json!({"containers": entries}),
            Place::Init | Place::Sidecar => json!({"containers": main, "initContainers": entries}),
            Place::Ephemeral => json!({"containers": main, "ephemeralContainers": entries}),
            Place::Volume => json!({"containers": main, "volumes": entries}),
        }
    }
}

/// An object of `kind` whose pods use `spec`.
fn object(kind: &str, spec: Value) -> Value {
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let api_version = match group_of(kind) {
        "" => "v1".to_string(),
        g => format!("{g}/v1"),
    };
    let mut o = match kind {
        "Pod" => json!({"spec": spec}),
        "PodTemplate" => json!({"template": template}),
        "CronJob" => {
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        _ => {
            json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": template}})
        }
    };
    o["apiVersion"] = json!(api_version);
    o["kind"] = json!(kind);
    o["metadata"] = json!({"name": "w", "labels": {"app": "x"}});
    o
}

fn review(kind: &str, op: &str, ns: &str, obj: Value, old: Option<Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "6f1c2b1e-0000-4000-8000-000000000001",
            "kind": {"group": group_of(kind), "version": "v1", "kind": kind},
            "resource": {"group": group_of(kind), "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group_of(kind), "version": "v1", "kind": kind},
            "name": "w",
            "namespace": ns,
            "operation": op,
            "userInfo": {"username": "tenant", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Posts to `/validate`; the response must be a well-formed review: (allowed, message).
fn validate(body: &Value) -> (bool, String) {
    let (status, v) = server().review("/validate", body);
    assert_eq!(status, 200, "{v}");
    check_response(&v)
}

fn check_response(v: &Value) -> (bool, String) {
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{v}");
    assert_eq!(v["kind"], "AdmissionReview", "{v}");
    let r = &v["response"];
    assert_eq!(r["uid"], "6f1c2b1e-0000-4000-8000-000000000001", "{v}");
    let allowed = r["allowed"].as_bool().expect("allowed is a bool");
    let message = r["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !allowed {
        assert_eq!(r["status"]["code"], 403, "{v}");
        assert!(!message.is_empty(), "a denial says why: {v}");
    }
    assert!(r.get("patch").is_none(), "/validate never patches: {v}");
    (allowed, message)
}

/// Every trick, alone in a Pod's only container, in both namespaces.
#[test]
fn every_reference_trick_alone_in_a_pod() {
    let mut failures = Vec::new();
    for trick in tricks() {
        for (ns, expect) in [(BOUND, trick.in_bound), (EVIL, trick.public)] {
            let body = review(
                "Pod",
                "CREATE",
                ns,
                object("Pod", Place::Container.spec(&[&trick.image])),
                None,
            );
            let (allowed, message) = validate(&body);
            if allowed != expect {
                failures.push(format!(
                    "{}: {:?} in {ns}: allowed={allowed}, expected {expect} ({message})",
                    trick.what, trick.image
                ));
            }
            if !allowed {
                assert!(
                    message.contains("(container \"t0\")"),
                    "{}: the denial names the container: {message}",
                    trick.what
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// All tricks at once, in every image location of every workload kind: each denied image
/// is listed by its own entry, each allowed one is not.
#[test]
fn every_trick_in_every_location_of_every_kind() {
    let tricks = tricks();
    let images: Vec<&str> = tricks.iter().map(|t| t.image.as_str()).collect();
    let mut failures = Vec::new();
    for kind in KINDS {
        for place in PLACES {
            for ns in [BOUND, EVIL] {
                let body = if kind == "Pod" && matches!(place, Place::Ephemeral) {
                    // Ephemeral containers reach a pod through its subresource.
                    let old = object("Pod", Place::Container.spec(&["nginx:1.25"]));
                    let mut new = old.clone();
                    new["spec"]["ephemeralContainers"] =
                        place.spec(&images)["ephemeralContainers"].clone();
                    let mut b = review("Pod", "UPDATE", ns, new, Some(old));
                    b["request"]["subResource"] = json!("ephemeralcontainers");
                    b
                } else {
                    review(kind, "CREATE", ns, object(kind, place.spec(&images)), None)
                };
                let (allowed, message) = validate(&body);
                assert!(!allowed, "{kind} {place:?} in {ns} is denied");
                let denied_count = tricks
                    .iter()
                    .filter(|t| if ns == BOUND { !t.in_bound } else { !t.public })
                    .count();
                if !message.starts_with(&format!("{denied_count} images are not allowed")) {
                    failures.push(format!("{kind} {place:?} {ns}: count: {message:.200}"));
                }
                for (i, trick) in tricks.iter().enumerate() {
                    let expect = if ns == BOUND {
                        trick.in_bound
                    } else {
                        trick.public
                    };
                    let listed = message.contains(&format!("({} \"t{i}\")", place.label()));
                    if listed == expect {
                        failures.push(format!(
                            "{kind} {place:?} in {ns}: {} ({:?}) listed={listed}",
                            trick.what, trick.image
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An UPDATE trick: old object, new object, subresource, and the expected verdict.
struct UpdateTrick {
    what: &'static str,
    kind: &'static str,
    op: &'static str,
    sub: Option<&'static str>,
    old: Option<Value>,
    new: Value,
    allowed: bool,
}

fn pod(spec: Value) -> Value {
    object("Pod", spec)
}

#[test]
fn update_tricks() {
    let good = "nginx:1.25";
    let bad = PRIVATE;
    let containers = |list: &[(&str, &str)]| -> Value {
        let c: Vec<Value> = list
            .iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect();
        json!({"containers": c})
    };
    let with_eph = |spec: Value, eph: &[(&str, &str)]| -> Value {
        let mut s = spec;
        s["ephemeralContainers"] = json!(eph
            .iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect::<Vec<_>>());
        s
    };
    let cases = vec![
        UpdateTrick {
            what: "relabel a pod whose image was admitted before (control)",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", bad)]))),
            new: {
                let mut p = pod(containers(&[("a", bad)]));
                p["metadata"]["labels"]["new"] = json!("label");
                p
            },
            allowed: true,
        },
        UpdateTrick {
            what: "move the denied image to a new container name",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", bad)]))),
            new: pod(containers(&[("b", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "keep the container name, change the image",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", good)]))),
            new: pod(containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "same name, image moved from container to init container",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", bad)]))),
            new: pod(
                json!({"containers": [{"name": "x", "image": good}], "initContainers": [{"name": "a", "image": bad}]}),
            ),
            allowed: false,
        },
        UpdateTrick {
            what: "same name, image moved from ephemeral to regular container",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(with_eph(containers(&[("x", good)]), &[("a", bad)]))),
            new: pod(containers(&[("x", good), ("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "ephemeral container added by a plain Pod UPDATE",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", good)]))),
            new: pod(with_eph(containers(&[("a", good)]), &[("debug", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "ephemeral container added through the subresource",
            kind: "Pod",
            op: "UPDATE",
            sub: Some("ephemeralcontainers"),
            old: Some(pod(containers(&[("a", good)]))),
            new: pod(with_eph(containers(&[("a", good)]), &[("debug", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "ephemeral container reusing a regular container's name and image",
            kind: "Pod",
            op: "UPDATE",
            sub: Some("ephemeralcontainers"),
            old: Some(pod(containers(&[("a", good)]))),
            new: pod(with_eph(containers(&[("a", good)]), &[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "CREATE with an oldObject claiming the image was already there",
            kind: "Pod",
            op: "CREATE",
            sub: None,
            old: Some(pod(containers(&[("a", bad)]))),
            new: pod(containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "UPDATE without an oldObject judges every image",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: None,
            new: pod(containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "UPDATE whose oldObject is of another kind's shape judges every image",
            kind: "Deployment",
            op: "UPDATE",
            sub: None,
            old: Some(pod(containers(&[("a", bad)]))),
            new: object("Deployment", containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "Deployment template image changed",
            kind: "Deployment",
            op: "UPDATE",
            sub: None,
            old: Some(object("Deployment", containers(&[("a", good)]))),
            new: object("Deployment", containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "CronJob template image changed",
            kind: "CronJob",
            op: "UPDATE",
            sub: None,
            old: Some(object("CronJob", containers(&[("a", good)]))),
            new: object("CronJob", containers(&[("a", bad)])),
            allowed: false,
        },
        UpdateTrick {
            what: "image volume reference changed, same volume name",
            kind: "Pod",
            op: "UPDATE",
            sub: None,
            old: Some(pod(Place::Volume.spec(&[good]))),
            new: pod(Place::Volume.spec(&[bad])),
            allowed: false,
        },
    ];
    for case in cases {
        let mut body = review(case.kind, case.op, EVIL, case.new, case.old);
        if let Some(sub) = case.sub {
            body["request"]["subResource"] = json!(sub);
        }
        let (allowed, message) = validate(&body);
        assert_eq!(allowed, case.allowed, "{}: {message}", case.what);
    }
}

#[test]
fn the_namespace_is_request_namespace() {
    let cases: [(&str, Option<&str>, Option<&str>, bool); 6] = [
        (
            "request evil, object claims the bound namespace",
            Some(EVIL),
            Some(BOUND),
            false,
        ),
        (
            "request evil, object claims an exempt namespace",
            Some(EVIL),
            Some("kube-system"),
            false,
        ),
        (
            "request evil, object claims pullgate's namespace",
            Some(EVIL),
            Some("pullgate-system"),
            false,
        ),
        (
            "no request namespace, object claims the bound one",
            None,
            Some(BOUND),
            false,
        ),
        (
            "request namespace differs only in case",
            Some("App-1"),
            Some(BOUND),
            false,
        ),
        (
            "request bound, object claims evil (control)",
            Some(BOUND),
            Some(EVIL),
            true,
        ),
    ];
    for (what, request_ns, object_ns, expect) in cases {
        let mut obj = pod(Place::Container.spec(&[PRIVATE]));
        obj["metadata"]["namespace"] = json!(object_ns);
        let mut body = review("Pod", "CREATE", "", obj, None);
        match request_ns {
            Some(ns) => body["request"]["namespace"] = json!(ns),
            None => {
                body["request"].as_object_mut().unwrap().remove("namespace");
            }
        }
        assert_eq!(validate(&body).0, expect, "{what}");
    }
}

#[test]
fn user_supplied_pull_secrets_grant_nothing() {
    for secrets in [
        json!([{"name": "pullgate-pull"}]),
        json!([{"name": "stolen-robot"}, {"name": "pullgate-pull"}]),
    ] {
        for kind in ["Pod", "Deployment"] {
            let mut spec = Place::Container.spec(&[PRIVATE]);
            spec["imagePullSecrets"] = secrets.clone();
            let (allowed, message) =
                validate(&review(kind, "CREATE", EVIL, object(kind, spec), None));
            assert!(!allowed, "{kind} with {secrets}");
            assert!(
                message.contains("not bound to a workspace of namespace \"evil\""),
                "{message}"
            );
        }
    }
}

#[test]
fn mirror_pod_impersonation() {
    let users = [
        ("tenant", false),
        ("system:node", false),
        ("system:nodes", false),
        ("system:node-evil", false),
        ("system:serviceaccount:kube-system:node-controller", false),
        ("System:Node:worker-1", false),
        ("system:node:worker-1", true),
    ];
    for (user, exempt) in users {
        let mut obj = pod(Place::Container.spec(&[PRIVATE]));
        obj["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
        let mut body = review("Pod", "CREATE", EVIL, obj, None);
        body["request"]["userInfo"]["username"] = json!(user);
        // Groups are not identities: a tenant claiming the nodes group is still a tenant.
        body["request"]["userInfo"]["groups"] = json!(["system:nodes"]);
        assert_eq!(validate(&body).0, exempt, "mirror pod by {user:?}");
    }
    // A node's mirror annotation on a workload exempts nothing: only Pods are mirror pods.
    let mut obj = object("Deployment", Place::Container.spec(&[PRIVATE]));
    obj["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    let mut body = review("Deployment", "CREATE", EVIL, obj.clone(), None);
    body["request"]["userInfo"]["username"] = json!("system:node:worker-1");
    assert!(!validate(&body).0, "mirror annotation on a Deployment");
    // The annotation on the template's metadata exempts nothing either.
    let mut obj = pod(Place::Container.spec(&[PRIVATE]));
    obj["spec"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    let mut body = review("Pod", "CREATE", EVIL, obj, None);
    body["request"]["userInfo"]["username"] = json!("system:node:worker-1");
    assert!(!validate(&body).0, "mirror annotation in the wrong place");
}

#[test]
fn dry_run_gets_the_same_decision() {
    for (ns, image) in [(EVIL, PRIVATE), (BOUND, PRIVATE), (EVIL, "nginx")] {
        let mut body = review(
            "Pod",
            "CREATE",
            ns,
            pod(Place::Container.spec(&[image])),
            None,
        );
        let wet = validate(&body);
        body["request"]["dryRun"] = json!(true);
        let dry = validate(&body);
        assert_eq!(wet, dry, "{image} in {ns}");
    }
}

/// Inserts `dup` right after the first occurrence of `anchor` in the serialised body.
fn with_duplicate(body: &Value, anchor: &str, dup: &str) -> Vec<u8> {
    let text = body.to_string();
    let at = text
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} in {text}"))
        + anchor.len();
    let mut out = text[..at].to_string();
    out.push_str(dup);
    out.push_str(&text[at..]);
    serde_json::from_str::<Value>(&out).expect("still JSON (serde_json keeps the last)");
    out.into_bytes()
}

#[test]
fn duplicate_keys_are_refused_not_guessed() {
    let allowed_pod = review(
        "Pod",
        "CREATE",
        BOUND,
        pod(Place::Container.spec(&["nginx"])),
        None,
    );
    let bad = PRIVATE;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "two images in a container",
            with_duplicate(
                &allowed_pod,
                r#""image":"nginx""#,
                &format!(r#","image":"{bad}""#),
            ),
        ),
        ("two images, bad one first", {
            let b = review(
                "Pod",
                "CREATE",
                BOUND,
                pod(Place::Container.spec(&[bad])),
                None,
            );
            with_duplicate(&b, &format!(r#""image":"{bad}""#), r#","image":"nginx""#)
        }),
        (
            "two container names",
            with_duplicate(&allowed_pod, r#""name":"t0""#, r#","name":"main""#),
        ),
        (
            "two containers lists",
            with_duplicate(
                &allowed_pod,
                r#""spec":{"#,
                &format!(r#""containers":[{{"name":"x","image":"{bad}"}}],"#),
            ),
        ),
        (
            "two specs",
            with_duplicate(
                &allowed_pod,
                r#""object":{"#,
                &format!(r#""spec":{{"containers":[{{"name":"x","image":"{bad}"}}]}},"#),
            ),
        ),
        ("two image volume references", {
            let b = review(
                "Pod",
                "CREATE",
                BOUND,
                pod(Place::Volume.spec(&["nginx"])),
                None,
            );
            with_duplicate(
                &b,
                r#""reference":"nginx""#,
                &format!(r#","reference":"{bad}""#),
            )
        }),
        (
            "two request namespaces",
            with_duplicate(
                &allowed_pod,
                r#""namespace":"app-1""#,
                r#","namespace":"evil""#,
            ),
        ),
        ("two object namespaces", {
            let mut b = allowed_pod.clone();
            b["request"]["object"]["metadata"]["namespace"] = json!("app-1");
            with_duplicate(&b, r#""metadata":{"#, r#""namespace":"evil","#)
        }),
        (
            "two request kinds",
            with_duplicate(
                &allowed_pod,
                r#""request":{"#,
                r#""kind":{"group":"","version":"v1","kind":"ConfigMap"},"#,
            ),
        ),
        (
            "two kind names",
            with_duplicate(
                &allowed_pod,
                r#""kind":{"group":"","#,
                r#""kind":"ConfigMap","#,
            ),
        ),
        (
            "two envelope kinds",
            with_duplicate(&allowed_pod, "{", r#""kind":"AdmissionReview","#),
        ),
        (
            "two envelope apiVersions",
            with_duplicate(&allowed_pod, "{", r#""apiVersion":"admission.k8s.io/v1","#),
        ),
        (
            "two operations",
            with_duplicate(
                &allowed_pod,
                r#""operation":"CREATE""#,
                r#","operation":"DELETE""#,
            ),
        ),
        (
            "two objects",
            with_duplicate(
                &allowed_pod,
                r#""request":{"#,
                &format!(
                    r#""object":{{"spec":{{"containers":[{{"name":"x","image":"{bad}"}}]}}}},"#
                ),
            ),
        ),
        ("two oldObjects", {
            let old = pod(Place::Container.spec(&["nginx"]));
            let b = review(
                "Pod",
                "UPDATE",
                BOUND,
                pod(Place::Container.spec(&["nginx"])),
                Some(old),
            );
            with_duplicate(&b, r#""request":{"#, r#""oldObject":null,"#)
        }),
        (
            "two requests",
            with_duplicate(
                &allowed_pod,
                "{",
                r#""request":{"uid":"x","kind":{"kind":"ConfigMap"},"operation":"CREATE"},"#,
            ),
        ),
        (
            "two subResources",
            with_duplicate(
                &allowed_pod,
                r#""request":{"#,
                r#""subResource":"status","subResource":"ephemeralcontainers","#,
            ),
        ),
        (
            "two uids",
            with_duplicate(&allowed_pod, r#""request":{"#, r#""uid":"other","#),
        ),
        (
            "two usernames",
            with_duplicate(
                &allowed_pod,
                r#""username":"tenant""#,
                r#","username":"system:node:worker-1""#,
            ),
        ),
        (
            "two dryRun flags",
            with_duplicate(&allowed_pod, r#""dryRun":false"#, r#","dryRun":true"#),
        ),
        (
            "two metadata",
            with_duplicate(&allowed_pod, r#""object":{"#, r#""metadata":{"name":"x"},"#),
        ),
        ("two templates in a Deployment", {
            let b = review(
                "Deployment",
                "CREATE",
                BOUND,
                object("Deployment", Place::Container.spec(&["nginx"])),
                None,
            );
            with_duplicate(
                &b,
                r#""replicas":1"#,
                &format!(
                    r#","template":{{"spec":{{"containers":[{{"name":"x","image":"{bad}"}}]}}}}"#
                ),
            )
        }),
        ("two jobTemplates in a CronJob", {
            let b = review(
                "CronJob",
                "CREATE",
                BOUND,
                object("CronJob", Place::Container.spec(&["nginx"])),
                None,
            );
            with_duplicate(
                &b,
                r#""schedule":"* * * * *""#,
                &format!(
                    r#","jobTemplate":{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"x","image":"{bad}"}}]}}}}}}}}"#
                ),
            )
        }),
    ];
    for (what, body) in cases {
        let (status, answer) = server().post("/validate", &body);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(
            !answer.contains("\"allowed\""),
            "{what}: never a review: {answer}"
        );
        // The mutating webhook reads the same body the same way.
        let (status, _) = server().post("/mutate", &body);
        assert_eq!(status, 400, "{what} on /mutate");
    }
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let mut spec = Place::Container.spec(&[PRIVATE]);
    spec["containers"][0]["futureField"] = json!({"image": "nginx"});
    spec["containers"][0]["Image"] = json!("nginx");
    spec["futureContainers"] = json!([{"name": "x", "image": "nginx"}]);
    let mut obj = pod(spec);
    obj["futureTopLevel"] = json!([1, 2, 3]);
    let mut body = review("Pod", "CREATE", EVIL, obj, None);
    body["request"]["futureRequestField"] = json!({"namespace": BOUND});
    body["futureEnvelopeField"] = json!(null);
    let (allowed, message) = validate(&body);
    assert!(!allowed, "unknown fields change nothing: {message}");
    // The same body in the bound namespace is allowed: unknown fields do not refuse either.
    body["request"]["namespace"] = json!(BOUND);
    assert!(validate(&body).0);
    // A container with only a case-variant `Image` key has no image: judged as empty.
    let body = review(
        "Pod",
        "CREATE",
        BOUND,
        pod(json!({"containers": [{"name": "a", "Image": "nginx"}]})),
        None,
    );
    let (allowed, message) = validate(&body);
    assert!(
        !allowed && message.contains("not a valid image reference"),
        "{message}"
    );
}

#[test]
fn delete_and_connect_are_allowed_and_other_subresources_too() {
    for op in ["DELETE", "CONNECT"] {
        let obj = pod(Place::Container.spec(&[PRIVATE]));
        let body = review("Pod", op, EVIL, obj.clone(), Some(obj));
        assert!(validate(&body).0, "{op}");
    }
    // pods/status and pods/exec do not change images pullgate judges.
    for sub in ["status", "exec", "binding"] {
        let obj = pod(Place::Container.spec(&[PRIVATE]));
        let mut body = review("Pod", "UPDATE", EVIL, obj.clone(), Some(obj));
        body["request"]["subResource"] = json!(sub);
        assert!(validate(&body).0, "subresource {sub}");
    }
    // Operations outside the four are not guessed at.
    let mut body = review(
        "Pod",
        "PATCH",
        EVIL,
        pod(Place::Container.spec(&["nginx"])),
        None,
    );
    assert_eq!(server().review("/validate", &body).0, 400);
    body["request"]["operation"] = json!("create");
    assert_eq!(server().review("/validate", &body).0, 400);
}

#[test]
fn a_thousand_container_pod_is_judged_whole() {
    let images: Vec<String> = (0..1000)
        .map(|i| match i % 4 {
            0 => format!("harbor.example.com/team-a/app-{i}:1"),
            1 => format!("nginx:{i}"),
            2 => format!("harbor.example.com/team-a-evil/app-{i}"),
            _ => format!("harbor.example.com/shared/app-{i}"),
        })
        .collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let body = review(
        "Pod",
        "CREATE",
        EVIL,
        pod(Place::Container.spec(&refs)),
        None,
    );
    let raw = body.to_string();
    assert!(raw.len() < 7 * 1024 * 1024);
    let (status, answer) = server().post("/validate", raw.as_bytes());
    assert_eq!(status, 200);
    assert!(
        answer.len() < 3 * 1024 * 1024,
        "response of {} bytes",
        answer.len()
    );
    let v: Value = serde_json::from_slice(&answer).unwrap();
    let (allowed, message) = check_response(&v);
    assert!(!allowed);
    assert!(
        message.starts_with("500 images are not allowed"),
        "{message:.100}"
    );
    let denied_annotation = v["response"]["auditAnnotations"]["denied-images"]
        .as_str()
        .unwrap();
    for (i, image) in images.iter().enumerate() {
        let denied = i % 4 == 0 || i % 4 == 2;
        let listed = message.contains(&format!("image {image:?} (container \"t{i}\")"));
        assert_eq!(listed, denied, "{image}");
        assert_eq!(
            denied_annotation.split(',').any(|d| d == image),
            denied,
            "{image}"
        );
    }
    // The same pod in the bound namespace: only the look-alike space is denied.
    let body = review(
        "Pod",
        "CREATE",
        BOUND,
        pod(Place::Container.spec(&refs)),
        None,
    );
    let (allowed, message) = validate(&body);
    assert!(!allowed);
    assert!(
        message.starts_with("250 images are not allowed"),
        "{message:.100}"
    );
}

/// With `--unmanaged allow`, a spelling of an integrated registry's host that matches no
/// registry passes as unmanaged. Spellings the runtime would dial as the same registry
/// must therefore never parse as another host. Regressions: `:0443` and the long form of
/// an IPv6 alias were "unmanaged" hosts (allowed here) while the runtime dials the
/// private registry.
#[test]
fn unmanaged_allow_opens_no_spelling_of_an_integrated_registry() {
    let cfg = pullgate::config::parse(CONFIG).unwrap();
    let table = Arc::new(Table::new(Snapshot::build(&cfg.objects, 1)));
    let policy = Policy {
        unmanaged: pullgate::policy::Unmanaged::Allow,
        ..Policy::default()
    };
    let server = PullgateServer::start(table, policy);
    for image in [
        PRIVATE,
        "harbor.example.com:0443/team-a/app",
        "harbor.example.com:00443/team-a/app",
        "harbor.internal:08443/team-a/app",
        "HARBOR.EXAMPLE.COM:443/team-a/app",
        "[FD00::5]:443/team-a/app",
        "[fd00:0:0:0:0:0:0:5]/team-a/app",
        "[fd00:0::5]:443/team-a/app",
        "registry-1.docker.io:443/acme/app",
        "harbor.example.com./team-a/app",
    ] {
        let body = review(
            "Pod",
            "CREATE",
            EVIL,
            pod(Place::Container.spec(&[image])),
            None,
        );
        let (status, v) = server.review("/validate", &body);
        assert_eq!(status, 200);
        let (allowed, message) = check_response(&v);
        assert!(!allowed, "{image} allowed in {EVIL} with --unmanaged allow");
        assert!(
            !message.contains("not an integrated registry"),
            "{image}: {message}"
        );
    }
    // A truly foreign host is allowed by that policy (the control).
    let body = review(
        "Pod",
        "CREATE",
        EVIL,
        pod(Place::Container.spec(&["quay.io/x/y:1"])),
        None,
    );
    assert!(check_response(&server.review("/validate", &body).1).0);
}

/// Host spellings a C resolver (`inet_aton`, `getaddrinfo`) reads as IPv4 address
/// 10.0.0.5 — an alias of `harbor-prod` — without being its dotted quad. Under
/// `--unmanaged allow` each was an "unmanaged" host (allowed) while the runtime dials the
/// private registry; the reference rules make them invalid. Numeric-looking hosts that are
/// no address at all are invalid too.
#[test]
fn unmanaged_allow_opens_no_numeric_spelling_of_an_ipv4_alias() {
    let cfg = pullgate::config::parse(CONFIG).unwrap();
    let table = Arc::new(Table::new(Snapshot::build(&cfg.objects, 1)));
    let policy = Policy {
        unmanaged: pullgate::policy::Unmanaged::Allow,
        ..Policy::default()
    };
    let server = PullgateServer::start(table, policy);
    let verdict = |image: &str| {
        let body = review(
            "Pod",
            "CREATE",
            EVIL,
            pod(Place::Container.spec(&[image])),
            None,
        );
        let (status, v) = server.review("/validate", &body);
        assert_eq!(status, 200, "{v}");
        check_response(&v)
    };
    let mut failures = Vec::new();
    for host in [
        "167772165",
        "0xa.0.0.5",
        "0XA.0.0.5",
        "0xA.0x0.0X0.0x5",
        "0x0a000005",
        "0X0A000005",
        "10.0.0.05",
        "012.0.0.5",
        "012.0.0.05",
        "10.0.5",
        "10.5",
        "10.0.0x5",
        "00000000012.0.0.5",
        "127.1",
        "10.1.5",
        "0x7f000001",
        "0x7F000001",
        "2130706433",
        "017700000001",
        // numeric-looking but no address (out of range, too many parts, "0x" alone)
        "10.0.0.256",
        "4294967296",
        "4294967301",
        "10.0.0.0.5",
        "0x.0.0.5",
        "08.0.0.5",
    ] {
        for port in ["", ":443", ":5000"] {
            let image = format!("{host}{port}/team-a/app:1");
            let (allowed, message) = verdict(&image);
            // Without '.', ':' or upper case the first component is no host at all: the
            // runtime pulls `docker.io/167772165/team-a/app`, as pullgate judges it.
            let hub_path = port.is_empty()
                && !host.contains('.')
                && !host.bytes().any(|b| b.is_ascii_uppercase());
            let expected = if hub_path {
                "of registry \"dockerhub\""
            } else {
                "is not a valid image reference"
            };
            if allowed || !message.contains(expected) {
                failures.push(format!("{image}: allowed={allowed}: {message}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The controls: the alias's own spelling reaches the private space (denied here as
    // not bound), and a foreign canonical address is unmanaged (allowed by the policy).
    let (allowed, message) = verdict("10.0.0.5/team-a/app:1");
    assert!(!allowed && message.contains("not bound"), "{message}");
    let (allowed, message) = verdict("10.0.0.5:443/team-a/app:1");
    assert!(!allowed && message.contains("not bound"), "{message}");
    assert!(verdict("10.0.0.6/team-a/app:1").0);
}

/// The mode rule: a namespace in a `Warn` workspace and in a workspace that sets no
/// `enforcement` gets the global mode from the second, so under the default `enforce`
/// another team's private image is denied. Regression: the strictest *set* enforcement
/// (`Warn`) won, and the image was allowed with a warning.
#[test]
fn a_warn_workspace_weakens_no_other_workspace_of_the_namespace() {
    let config = format!(
        "{CONFIG}
---
apiVersion: pullgate.io/v1alpha1
kind: Workspace
metadata: {{name: ws-warn}}
spec: {{namespaces: [mixed, warned], enforcement: Warn}}
---
apiVersion: pullgate.io/v1alpha1
kind: Workspace
metadata: {{name: ws-plain}}
spec: {{namespaces: [mixed]}}
"
    );
    let cfg = pullgate::config::parse(&config).unwrap();
    let snap = Snapshot::build(&cfg.objects, 1);
    assert!(snap.problems().is_empty(), "{:?}", snap.problems());
    let server = PullgateServer::start(Arc::new(Table::new(snap)), Policy::default());
    let run = |ns: &str| {
        let body = review(
            "Pod",
            "CREATE",
            ns,
            pod(Place::Container.spec(&[PRIVATE])),
            None,
        );
        let (status, v) = server.review("/validate", &body);
        assert_eq!(status, 200, "{v}");
        let warnings = v["response"]["warnings"].clone();
        (check_response(&v), warnings)
    };
    let ((allowed, message), _) = run("mixed");
    assert!(
        !allowed,
        "{PRIVATE} allowed in a namespace of a Warn and an unset workspace under global enforce"
    );
    assert!(message.contains("not bound"), "{message}");
    // The control: in the Warn workspace alone, the same image is allowed with a warning.
    let ((allowed, _), warnings) = run("warned");
    assert!(allowed);
    assert!(
        warnings.to_string().contains("not bound"),
        "a Warn workspace warns: {warnings}"
    );
}

/// Bodies a second reader could read differently: escaped keys, a second document,
/// invalid UTF-8 or lone surrogates, a byte-order mark.
#[test]
fn ambiguous_bodies_are_refused_and_escapes_read_once() {
    let allowed_pod = review(
        "Pod",
        "CREATE",
        BOUND,
        pod(Place::Container.spec(&["nginx"])),
        None,
    );
    let text = allowed_pod.to_string();
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "an escaped duplicate of image",
            with_duplicate(
                &allowed_pod,
                r#""image":"nginx""#,
                &format!(r#","im\u0061ge":"{PRIVATE}""#),
            ),
        ),
        (
            "an escaped duplicate of namespace",
            with_duplicate(
                &allowed_pod,
                r#""namespace":"app-1""#,
                r#","n\u0061mespace":"evil""#,
            ),
        ),
        (
            "a second document after the review",
            format!("{text}{text}").into_bytes(),
        ),
        ("a second document, denied one first", {
            let denied = review(
                "Pod",
                "CREATE",
                EVIL,
                pod(Place::Container.spec(&[PRIVATE])),
                None,
            );
            format!("{denied} {text}").into_bytes()
        }),
        (
            "a lone surrogate in the image",
            text.replace(r#""image":"nginx""#, r#""image":"nginx\ud800""#)
                .into_bytes(),
        ),
        ("invalid UTF-8 in the image", {
            let mut b = text.clone().into_bytes();
            let at = text.find("nginx").unwrap();
            b[at] = 0xff;
            b
        }),
        (
            "a byte-order mark",
            [&[0xef, 0xbb, 0xbf][..], text.as_bytes()].concat(),
        ),
    ];
    for (what, body) in refused {
        let (status, answer) = server().post("/validate", &body);
        assert_eq!(status, 400, "{what}: {}", String::from_utf8_lossy(&answer));
    }
    // An escaped key or value is read once, decoded, like the apiserver does.
    let escaped_key = text.replace(
        r#""image":"nginx""#,
        &format!(r#""im\u0061ge":"{PRIVATE}""#),
    );
    let body = escaped_key.replace(r#""namespace":"app-1""#, r#""namespace":"evil""#);
    let (status, answer) = server().post("/validate", body.as_bytes());
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&answer).unwrap();
    assert!(
        !check_response(&v).0,
        "an escaped image key is the image key"
    );
    let escaped_value = text.replace(r#""image":"nginx""#, r#""image":"nginx\u0000""#);
    let v: Value =
        serde_json::from_slice(&server().post("/validate", escaped_value.as_bytes()).1).unwrap();
    let (allowed, message) = check_response(&v);
    assert!(
        !allowed && message.contains("not a valid image reference"),
        "{message}"
    );
}

/// Found by the `admission_review` fuzz target: bytes that are not UTF-8 inside a field
/// pullgate skips (`resource.group` here) are not refused — Go's decoder, too, replaces
/// them rather than failing — and change nothing: the verdict is the one without them.
/// In a field pullgate reads they are refused (see above).
#[test]
fn bad_bytes_in_skipped_fields_change_no_verdict() {
    for (ns, image, expect) in [
        (EVIL, PRIVATE, false),
        (BOUND, PRIVATE, true),
        (EVIL, "nginx", true),
    ] {
        let mut body = review(
            "Pod",
            "CREATE",
            ns,
            pod(Place::Container.spec(&[image])),
            None,
        );
        body["request"]["resource"]["group"] = json!("aXps");
        body["request"]["futureField"] = json!("aXb");
        let text = body.to_string().into_bytes();
        let mut bad = text.clone();
        for (i, w) in text.windows(3).enumerate() {
            if w == b"aXp" || w == b"aXb" {
                bad[i + 1] = 0x92;
            }
        }
        assert!(std::str::from_utf8(&bad).is_err());
        let (status, answer) = server().post("/validate", &bad);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(check_response(&v).0, expect, "{image} in {ns}");
    }
}

/// Objects written as JSON arrays, which the apiserver never writes: serde reads them by
/// field position, so they are judged like the object (never skipped into an allow).
#[test]
fn arrays_in_place_of_objects_are_judged_never_skipped() {
    let cases: Vec<(&str, Value)> = vec![
        (
            "container as an array",
            json!({"containers": [["t0", PRIVATE]]}),
        ),
        (
            "container as a one-element array",
            json!({"containers": [["t0"]]}),
        ),
        (
            "spec as an array",
            json!([[{"name": "t0", "image": PRIVATE}]]),
        ),
        (
            "image volume as an array",
            json!({"containers": [{"name": "m", "image": "nginx"}], "volumes": [["v", [PRIVATE]]]}),
        ),
    ];
    for (what, spec) in cases {
        let mut obj = pod(json!({}));
        obj["spec"] = spec;
        let body = review("Pod", "CREATE", EVIL, obj, None);
        let (status, v) = server().review("/validate", &body);
        assert!(
            status == 400 || (status == 200 && !check_response(&v).0),
            "{what}: {status} {v}"
        );
    }
    // The whole object as an array: [metadata, spec].
    let obj = json!([{"name": "w"}, {"containers": [{"name": "t0", "image": PRIVATE}]}]);
    let body = review("Pod", "CREATE", EVIL, obj, None);
    let (status, v) = server().review("/validate", &body);
    assert!(
        status == 400 || (status == 200 && !check_response(&v).0),
        "object as an array: {status} {v}"
    );
}
