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
//!
//! The requests' other fields (UPDATE, namespace, pull secrets, mirror pods, dryRun) are
//! in `request`; the body's own bytes (duplicate keys, unknown fields, escapes, bad
//! bytes, arrays, operations) in `body`.

mod body;
mod request;

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
    let data: Value = serde_json::from_str(include_str!("../../data/bypass-tricks.json"))
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

fn pod(spec: Value) -> Value {
    object("Pod", spec)
}

/// A Pod CREATE in `ns` whose only containers run `images`.
fn pod_create(ns: &str, images: &[&str]) -> Value {
    review(
        "Pod",
        "CREATE",
        ns,
        pod(Place::Container.spec(images)),
        None,
    )
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
    let body = pod_create(EVIL, &refs);
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
    let body = pod_create(BOUND, &refs);
    let (allowed, message) = validate(&body);
    assert!(!allowed);
    assert!(
        message.starts_with("250 images are not allowed"),
        "{message:.100}"
    );
}

/// The webhook on [`CONFIG`] under `--unmanaged allow`.
fn unmanaged_allow_server() -> PullgateServer {
    let cfg = pullgate::config::parse(CONFIG).unwrap();
    let table = Arc::new(Table::new(Snapshot::build(&cfg.objects, 1)));
    let policy = Policy {
        unmanaged: pullgate::policy::Unmanaged::Allow,
        ..Policy::default()
    };
    PullgateServer::start(table, policy)
}

/// With `--unmanaged allow`, a spelling of an integrated registry's host that matches no
/// registry passes as unmanaged. Spellings the runtime would dial as the same registry
/// must therefore never parse as another host. Regressions: `:0443` and the long form of
/// an IPv6 alias were "unmanaged" hosts (allowed here) while the runtime dials the
/// private registry.
#[test]
fn unmanaged_allow_opens_no_spelling_of_an_integrated_registry() {
    let server = unmanaged_allow_server();
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
        let body = pod_create(EVIL, &[image]);
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
    let body = pod_create(EVIL, &["quay.io/x/y:1"]);
    assert!(check_response(&server.review("/validate", &body).1).0);
}

/// Host spellings a C resolver (`inet_aton`, `getaddrinfo`) reads as IPv4 address
/// 10.0.0.5 — an alias of `harbor-prod` — without being its dotted quad. Under
/// `--unmanaged allow` each was an "unmanaged" host (allowed) while the runtime dials the
/// private registry; the reference rules make them invalid. Numeric-looking hosts that are
/// no address at all are invalid too.
#[test]
fn unmanaged_allow_opens_no_numeric_spelling_of_an_ipv4_alias() {
    let server = unmanaged_allow_server();
    let verdict = |image: &str| {
        let body = pod_create(EVIL, &[image]);
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
        let body = pod_create(ns, &[PRIVATE]);
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
