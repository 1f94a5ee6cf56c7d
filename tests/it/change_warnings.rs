//! Warnings on an admin's change (README, "Background audit and reports") through the real TLS webhook: a review of a
//! RegistrySpace, Workspace or Registry is allowed, and its warnings name exactly the
//! running workloads the change newly denies (tests/data/audit: the current
//! configuration and a kubectl dump of what runs).

use std::path::PathBuf;
use std::sync::Arc;

use pullgate::admission::testing::review;
use pullgate::audit_cli::workloads_from_files;
use pullgate::config;
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;
use pullgate::whatif::Shared;
use serde_json::{json, Value};

use crate::support::webhook::PullgateServer;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/audit")
        .join(name)
}

/// The webhook with the current configuration's table and the dump's workloads.
fn webhook() -> PullgateServer {
    let cfg = config::load(&data("current.yaml")).unwrap();
    let running = Shared::default();
    running.set_objects(Arc::new(cfg.objects.clone()));
    let workloads = workloads_from_files(&[data("running.yaml")]).unwrap();
    running.set_workloads(workloads.workloads);
    PullgateServer::start_running(
        Arc::new(Table::new(Snapshot::build(&cfg.objects, 1))),
        Policy::default(),
        Some(Arc::new(running)),
        |_| {},
    )
}

fn cr(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "pullgate.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec
    })
}

fn space(name: &str, space: &str, workspaces: &[&str]) -> Value {
    cr(
        "RegistrySpace",
        name,
        json!({"registry": "harbor-prod", "space": space, "visibility": "Private", "workspaces": workspaces}),
    )
}

/// A review of one of pullgate's kinds (cluster-scoped: no namespace).
fn admin_review(kind: &str, op: &str, object: Value, old: Option<Value>) -> Value {
    let name = object["metadata"]["name"].clone();
    let mut r = review(kind, op, object, old);
    r["request"]["kind"] = json!({"group": "pullgate.io", "version": "v1alpha1", "kind": kind});
    r["request"]["resource"]["group"] = json!("pullgate.io");
    r["request"]["namespace"] = Value::Null;
    r["request"]["name"] = name;
    if op == "DELETE" {
        r["request"]["oldObject"] = r["request"]["object"].take();
    }
    r
}

/// The response's warnings; the response must allow.
fn warnings(w: &PullgateServer, body: &Value) -> Vec<String> {
    let (status, v) = w.review("/validate", body);
    assert_eq!(status, 200, "{v}");
    let response = &v["response"];
    assert_eq!(response["allowed"], true, "{v}");
    assert_eq!(response["uid"], "uid-1");
    response["warnings"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The workloads named (every warning after the first).
fn named(warnings: &[String]) -> Vec<String> {
    warnings
        .iter()
        .skip(1)
        .map(|w| w.split(':').next().unwrap().to_string())
        .collect()
}

#[test]
fn an_unbind_warns_of_exactly_the_newly_denied_workloads() {
    let w = webhook();
    let old = space("harbor-prod.team-a", "team-a", &["ws-a"]);
    let unbound = space("harbor-prod.team-a", "team-a", &[]);
    let got = warnings(
        &w,
        &admin_review("RegistrySpace", "UPDATE", unbound, Some(old)),
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("newly deny 1 running workload "), "{got:?}");
    // Its ReplicaSet and Pod say the same: named once, under the Deployment.
    assert_eq!(
        got[1],
        "Deployment app-1/web: image \"harbor.example.com/team-a/web:1.4\" (notBound)"
    );
}

#[test]
fn a_change_that_denies_nothing_new_gets_no_warning() {
    let w = webhook();
    // Binding team-b to ws-a too only allows more (Deployment app-1/api).
    let old = space("harbor-prod.team-b", "team-b", &["ws-b"]);
    let wider = space("harbor-prod.team-b", "team-b", &["ws-a", "ws-b"]);
    assert_eq!(
        warnings(
            &w,
            &admin_review("RegistrySpace", "UPDATE", wider, Some(old))
        ),
        Vec::<String>::new()
    );
    // A new space of a registry nobody pulls from.
    let other = space("harbor-prod.team-c", "team-c", &[]);
    assert!(warnings(&w, &admin_review("RegistrySpace", "CREATE", other, None)).is_empty());
}

#[test]
fn deletes_of_a_workspace_and_a_registry_warn_too() {
    let w = webhook();
    let ws_b = cr(
        "Workspace",
        "ws-b",
        json!({"namespaces": ["app-3"], "enforcement": "Warn"}),
    );
    // app-3 loses team-b; its CronJob was denied already (unmanaged image).
    let got = warnings(&w, &admin_review("Workspace", "DELETE", ws_b, None));
    assert_eq!(named(&got), ["Pod app-3/debug"], "{got:?}");
    // Without the registry, its images are unmanaged and denied; api was denied already.
    let harbor = cr(
        "Registry",
        "harbor-prod",
        json!({"type": "Harbor", "url": "https://harbor.example.com"}),
    );
    let got = warnings(&w, &admin_review("Registry", "DELETE", harbor, None));
    assert_eq!(
        named(&got),
        ["Deployment app-1/web", "Pod app-3/debug"],
        "{got:?}"
    );
}

#[test]
fn a_change_that_cannot_be_checked_is_allowed_with_a_warning_saying_so() {
    let w = webhook();
    let bad = cr("RegistrySpace", "harbor-prod.team-a", json!("not a spec"));
    let got = warnings(&w, &admin_review("RegistrySpace", "UPDATE", bad, None));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("pullgate could not check"), "{got:?}");
}
