//! The background audit against the fake apiserver (README, "Background audit and reports"): running workloads that
//! the bindings deny appear in their namespace's Report and disappear when fixed;
//! a pod is reported once under its Deployment; counts reach status and the metrics
//! hook; the Reports written validate against the OpenReports v1alpha1 schema
//! (`tests/data/openreports-v1alpha1-report.schema.json`); a refused Report is retried;
//! the format follows discovery.

use crate::support;

use std::sync::{Arc, Mutex};

use pullgate::cluster::{AuditSummary, Hook};
use serde_json::{json, Value};
use support::*;

const OPENREPORTS: &str = "openreports.io/v1alpha1";
const WGPOLICY: &str = "wgpolicyk8s.io/v1alpha2";

fn pod(ns: &str, name: &str, image: &str, owner: Option<(&str, &str, &str)>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": image}]},
        "status": {"phase": "Running"}});
    if let Some((kind, owner, api)) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": api, "kind": kind,
            "name": owner, "uid": "6f1e2d3c-0000-4000-8000-000000000001", "controller": true}]);
    }
    p
}

fn deployment(ns: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn replica_set(ns: &str, name: &str, image: &str, deployment: &str) -> Value {
    let mut rs = deployment_like("ReplicaSet", ns, name, image);
    rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
        "name": deployment, "uid": "6f1e2d3c-0000-4000-8000-000000000002", "controller": true}]);
    rs
}

fn deployment_like(kind: &str, ns: &str, name: &str, image: &str) -> Value {
    let mut d = deployment(ns, name, image);
    d["kind"] = json!(kind);
    d
}

/// The reports stored in `ns` (of `api_version`), by name.
fn reports(fake: &FakeApiServer, api_version: &str, ns: &str) -> Vec<Value> {
    let kind = if api_version == OPENREPORTS {
        "Report"
    } else {
        "PolicyReport"
    };
    fake.list(api_version, kind)
        .into_iter()
        .filter(|r| r["metadata"]["namespace"] == ns)
        .collect()
}

/// The results of every report in `ns`.
fn results(fake: &FakeApiServer, api_version: &str, ns: &str) -> Vec<Value> {
    reports(fake, api_version, ns)
        .iter()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// (kind, name, image) of each result in `ns`, sorted.
fn found(fake: &FakeApiServer, ns: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = results(fake, OPENREPORTS, ns)
        .iter()
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&r["resources"][0]["kind"]),
                s(&r["resources"][0]["name"]),
                s(&r["properties"]["image"]),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(kind: &str, name: &str, image: &str) -> (String, String, String) {
    (kind.into(), name.into(), image.into())
}

async fn wait_found(fake: &FakeApiServer, ns: &str, expect: &[(String, String, String)]) {
    wait_until(&format!("findings in {ns}: {expect:?}"), || {
        found(fake, ns) == expect
    })
    .await;
}

fn status(fake: &FakeApiServer, kind: &str, name: &str) -> Value {
    fake.get(PG, kind, "", name).expect("object")["status"].clone()
}

/// A replica that leads alone, with OpenReports served, a hook that keeps the last
/// audit summary, and the seed of `seed_reg` (ws-a = `bound`).
async fn start(fake: &FakeApiServer, bound: &[&str]) -> (Replica, Arc<Mutex<AuditSummary>>) {
    seed_reg(fake, bound);
    fake.serve_api(OPENREPORTS, "reports", "Report");
    let last = Arc::new(Mutex::new(AuditSummary::default()));
    let mut opts = options("pod-a");
    let seen = last.clone();
    opts.audit_findings = Hook(Some(Arc::new(move |s: &AuditSummary| {
        *seen.lock().unwrap() = s.clone();
    })));
    let mut r = Replica::start(fake, opts);
    r.synced().await;
    (r, last)
}

#[tokio::test]
async fn a_running_pod_in_an_unbound_namespace_is_reported_until_bound() {
    let fake = FakeApiServer::start().await;
    fake.put(pod("app-2", "web", IMAGE, None));
    fake.put(pod("app-2", "tool", PUBLIC_IMAGE, None));
    fake.put(pod("app-1", "web", IMAGE, None));
    let (r, last) = start(&fake, &["app-1"]).await;

    wait_found(&fake, "app-2", &[row("Pod", "web", IMAGE)]).await;
    let result = &results(&fake, OPENREPORTS, "app-2")[0];
    assert_eq!(result["properties"]["reason"], "notBound", "{result}");
    assert_eq!(result["properties"]["mode"], "Enforce", "{result}");
    assert_eq!(result["result"], "fail", "{result}");
    assert_eq!(result["resources"][0]["namespace"], "app-2");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("not bound to a workspace of namespace \"app-2\""),
        "{result}"
    );
    let report = &reports(&fake, OPENREPORTS, "app-2")[0];
    assert_eq!(report["source"], "pullgate");
    assert_eq!(report["summary"]["fail"], 1);
    assert!(
        reports(&fake, OPENREPORTS, "app-1").is_empty(),
        "a bound namespace has no findings"
    );
    wait_until("the summary counts app-2 outside any workspace", || {
        let s = last.lock().unwrap();
        s.by_workspace.get("") == Some(&1) && s.by_workspace.get("ws-a") == Some(&0)
    })
    .await;
    wait_until("the space counts its finding", || {
        status(&fake, "RegistrySpace", "reg.team-a")["findings"] == 1
    })
    .await;

    // Binding the namespace fixes it: the finding, and then the report, go.
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    wait_until("app-2's report deleted", || {
        reports(&fake, OPENREPORTS, "app-2").is_empty()
    })
    .await;
    wait_until("the counts follow", || {
        last.lock().unwrap().total == 0
            && status(&fake, "RegistrySpace", "reg.team-a")["findings"] == 0
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn an_unbind_makes_the_namespaces_workloads_appear_and_binding_again_clears_them() {
    let fake = FakeApiServer::start().await;
    fake.put(deployment("app-1", "api", IMAGE));
    fake.put(pod("app-1", "batch", IMAGE, None));
    let (r, last) = start(&fake, &["app-1"]).await;
    wait_until("the audit has judged", || last.lock().unwrap().computed).await;
    assert!(reports(&fake, OPENREPORTS, "app-1").is_empty());
    wait_until("ws-a's status counts none", || {
        status(&fake, "Workspace", "ws-a")["findings"] == 0
    })
    .await;

    // Unbind: the space keeps no workspace.
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &[]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_found(
        &fake,
        "app-1",
        &[row("Deployment", "api", IMAGE), row("Pod", "batch", IMAGE)],
    )
    .await;
    wait_until("ws-a's status counts them", || {
        let s = status(&fake, "Workspace", "ws-a");
        s["findings"] == 2
            && s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Audited" && c["status"] == "True")
    })
    .await;
    assert_eq!(last.lock().unwrap().by_workspace.get("ws-a"), Some(&2));

    // Bound again: nothing left.
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_until("app-1's report deleted", || {
        reports(&fake, OPENREPORTS, "app-1").is_empty()
    })
    .await;
    wait_until("ws-a counts none", || {
        status(&fake, "Workspace", "ws-a")["findings"] == 0
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn a_pod_is_reported_once_under_its_deployment() {
    let fake = FakeApiServer::start().await;
    fake.put(deployment("app-2", "api", IMAGE));
    fake.put(replica_set("app-2", "api-5d9f", IMAGE, "api"));
    fake.put(pod(
        "app-2",
        "api-5d9f-x1",
        IMAGE,
        Some(("ReplicaSet", "api-5d9f", "apps/v1")),
    ));
    // A pod whose template differs from its owner's is reported on its own.
    fake.put(pod(
        "app-2",
        "api-5d9f-x2",
        PUBLIC_IMAGE,
        Some(("ReplicaSet", "api-5d9f", "apps/v1")),
    ));
    fake.put(pod("app-2", "lone", "127.0.0.1:5000/team-a/other:2", None));
    let (r, _) = start(&fake, &["app-1"]).await;
    wait_found(
        &fake,
        "app-2",
        &[
            row("Deployment", "api", IMAGE),
            row("Pod", "lone", "127.0.0.1:5000/team-a/other:2"),
        ],
    )
    .await;
    r.stop().await;
}

#[tokio::test]
async fn a_pod_that_changes_rejudges_its_namespace_and_a_deleted_one_goes() {
    let fake = FakeApiServer::start().await;
    let (r, _) = start(&fake, &["app-1"]).await;
    fake.put(pod("app-2", "web", IMAGE, None));
    wait_found(&fake, "app-2", &[row("Pod", "web", IMAGE)]).await;
    // A finished pod runs nothing.
    let mut done = pod("app-2", "web", IMAGE, None);
    done["status"]["phase"] = json!("Succeeded");
    fake.put(done);
    wait_until("the finished pod's report deleted", || {
        reports(&fake, OPENREPORTS, "app-2").is_empty()
    })
    .await;
    fake.put(pod("app-2", "web2", IMAGE, None));
    wait_found(&fake, "app-2", &[row("Pod", "web2", IMAGE)]).await;
    fake.delete("v1", "Pod", "app-2", "web2");
    wait_until("the deleted pod's report deleted", || {
        reports(&fake, OPENREPORTS, "app-2").is_empty()
    })
    .await;
    r.stop().await;
}

/// A subset of JSON Schema, enough for the schema in `tests/data`: type, enum,
/// properties, required, additionalProperties (false or a schema), items, minimum,
/// maximum, `$ref` to `#/definitions/<name>`. Returns every violation with its path.
fn violations(root: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/definitions/");
        return violations(root, &root["definitions"][name], v, path, out);
    }
    let ty = schema["type"].as_str().unwrap_or("any");
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !ok {
        out.push(format!("{path}: not a {ty}: {v}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            out.push(format!("{path}: {v} not one of {allowed:?}"));
        }
    }
    if let Some(min) = schema["minimum"].as_i64() {
        if v.as_i64().is_some_and(|n| n < min) {
            out.push(format!("{path}: below {min}"));
        }
    }
    if let Some(max) = schema["maximum"].as_i64() {
        if v.as_i64().is_some_and(|n| n > max) {
            out.push(format!("{path}: above {max}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for req in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(req.as_str().unwrap_or_default()) {
                out.push(format!("{path}: missing {req}"));
            }
        }
        for (k, val) in obj {
            let sub = format!("{path}.{k}");
            match (
                schema["properties"].get(k),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => violations(root, s, val, &sub, out),
                (None, Some(Value::Bool(false))) => {
                    out.push(format!("{sub}: not a field of the API"))
                }
                (None, Some(s)) if s.is_object() => violations(root, s, val, &sub, out),
                _ => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            violations(root, items, item, &format!("{path}[{i}]"), out);
        }
    }
}

fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/openreports-v1alpha1-report.schema.json"
    ))
    .expect("schema file");
    serde_json::from_str(&text).expect("schema JSON")
}

/// The walker itself catches what it must (else a passing validation means nothing).
#[test]
fn the_schema_walker_finds_violations() {
    let schema = schema();
    let bad = json!({"apiVersion": OPENREPORTS, "kind": "Report", "metadata": {},
        "summary": {"fail": "1"},
        "results": [{"result": "failed", "timestamp": {"seconds": 1}, "extra": 1,
                     "properties": {"n": 5}}]});
    let mut out = Vec::new();
    violations(&schema, &schema, &bad, "", &mut out);
    for expected in [
        ".summary.fail: not a integer",
        ".results[0]: missing \"policy\"",
        ".results[0].result: \"failed\" not one of",
        ".results[0].timestamp: missing \"nanos\"",
        ".results[0].extra: not a field of the API",
        ".results[0].properties.n: not a string",
    ] {
        assert!(
            out.iter().any(|o| o.starts_with(expected)),
            "{expected} not in {out:?}"
        );
    }
}

#[tokio::test]
async fn reports_validate_against_the_openreports_schema() {
    let fake = FakeApiServer::start().await;
    fake.put(deployment("app-2", "api", IMAGE));
    fake.put(pod("app-2", "bad", "Not A Valid/Image", None));
    fake.put(pod("app-2", "hub", "nginx:1.27", None));
    let (r, _) = start(&fake, &["app-1"]).await;
    wait_until("three findings in app-2", || {
        results(&fake, OPENREPORTS, "app-2").len() == 3
    })
    .await;
    let schema = schema();
    for report in reports(&fake, OPENREPORTS, "app-2") {
        // What pullgate sent, not what the fake made of it.
        let mut sent = report.clone();
        let meta = sent["metadata"].as_object_mut().unwrap();
        meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations"));
        let mut out = Vec::new();
        violations(&schema, &schema, &sent, "", &mut out);
        assert!(out.is_empty(), "{out:?} in {sent:#}");
    }
    r.stop().await;
}

#[tokio::test]
async fn a_refused_report_is_retried_and_the_leader_goes_on() {
    let fake = FakeApiServer::start().await;
    fake.refuse_writes(Some(("reports", 422)));
    fake.put(pod("app-2", "web", IMAGE, None));
    let (r, _) = start(&fake, &["app-1"]).await;
    wait_until("two refused report writes", || {
        fake.writes()
            .iter()
            .filter(|w| w.path.contains("/reports/") && w.status == 422)
            .count()
            >= 2
    })
    .await;
    // The leader still does its other work meanwhile.
    fake.put(workspace("ws-b", &["app-2"], None));
    wait_until("ws-b's status written", || {
        fake.get(PG, "Workspace", "", "ws-b")
            .is_some_and(|w| w["status"]["namespaces"] == json!(["app-2"]))
    })
    .await;
    fake.refuse_writes(None);
    wait_found(&fake, "app-2", &[row("Pod", "web", IMAGE)]).await;
    r.stop().await;
}

#[tokio::test]
async fn without_openreports_a_policy_report_is_written_and_with_neither_none() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    fake.serve_api(WGPOLICY, "policyreports", "PolicyReport");
    fake.put(pod("app-2", "web", IMAGE, None));
    let mut r = Replica::start(&fake, options("pod-a"));
    r.synced().await;
    wait_until("a PolicyReport in app-2", || {
        results(&fake, WGPOLICY, "app-2").len() == 1
    })
    .await;
    let report = &reports(&fake, WGPOLICY, "app-2")[0];
    assert!(report.get("source").is_none(), "{report}");
    assert_eq!(report["results"][0]["source"], "pullgate");
    r.stop().await;

    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    fake.put(pod("app-2", "web", IMAGE, None));
    let summary = Arc::new(Mutex::new(AuditSummary::default()));
    let mut opts = options("pod-a");
    let seen = summary.clone();
    opts.audit_findings = Hook(Some(Arc::new(move |s: &AuditSummary| {
        *seen.lock().unwrap() = s.clone();
    })));
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("the finding counted", || summary.lock().unwrap().total == 1).await;
    assert!(
        fake.writes().iter().all(|w| !w.path.contains("reports")),
        "no report API, no report writes"
    );
    r.stop().await;
}

/// The cluster's own watches feed the warnings on an admin's change: an unbind of
/// team-a names the running workloads of ws-a that it would newly deny, and a change
/// that denies nothing new warns of nothing.
#[tokio::test]
async fn the_watched_workloads_feed_the_warnings_on_an_admins_change() {
    let fake = FakeApiServer::start().await;
    seed_reg(&fake, &["app-1"]);
    fake.put(deployment("app-1", "api", IMAGE));
    fake.put(pod("app-1", "tool", PUBLIC_IMAGE, None));
    let opts = options("pod-a");
    let running = opts.running.clone();
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("the workloads are listed", || {
        let now = running.load();
        now.synced && now.len() == 2
    })
    .await;
    let server = PullgateServer::start_running(
        r.table.clone(),
        pullgate::policy::Policy::default(),
        Some(Arc::new(running.clone())),
        |_| {},
    );
    let review = |spec_workspaces: &[&str]| {
        let object = space("reg.team-a", "reg", "team-a", "Private", spec_workspaces);
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "pullgate.io", "version": "v1alpha1", "kind": "RegistrySpace"},
                "resource": {"group": "pullgate.io", "version": "v1alpha1", "resource": "registryspaces"},
                "name": "reg.team-a",
                "operation": "UPDATE",
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
                "dryRun": false
            }
        })
    };
    let warnings = |body: &Value| -> Vec<String> {
        let (status, v) = server.review("/validate", body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["response"]["allowed"], true, "{v}");
        v["response"]["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let unbind = warnings(&review(&[]));
    let text = unbind.join("\n");
    assert!(text.contains("Deployment app-1/api"), "{text}");
    assert!(!text.contains("tool"), "{text}");
    assert!(warnings(&review(&["ws-a", "ws-b"])).is_empty());
    r.stop().await;
}

/// A broken workload watch makes the findings stale: the summary (metrics) and the
/// `Audited` condition say so, counts follow the table but no report is written from
/// the partial view; once the watch lists again the reports catch up.
/// A watch the binding table is built from, broken: the table may be behind, so the
/// findings judged on it are stale too, and reports wait until it lists again.
#[tokio::test]
async fn a_broken_binding_watch_marks_findings_stale_and_holds_the_reports() {
    let fake = FakeApiServer::start().await;
    fake.put(pod("app-2", "web", IMAGE, None));
    let (r, last) = start(&fake, &["app-1"]).await;
    wait_found(&fake, "app-2", &[row("Pod", "web", IMAGE)]).await;

    fake.fail_reads(Some("registryspaces"));
    fake.break_watches();
    wait_until("the summary names the broken watch", || {
        let stale = last.lock().unwrap().stale.clone();
        stale.is_some_and(|s| s.contains("registryspaces"))
    })
    .await;
    // A new pod is judged (counts follow), but app-2's report is not rewritten.
    fake.put(pod("app-2", "api", IMAGE, None));
    wait_until("the new pod counted", || last.lock().unwrap().total == 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        found(&fake, "app-2"),
        [row("Pod", "web", IMAGE)],
        "a report written while the table may be behind"
    );

    fake.fail_reads(None);
    wait_found(
        &fake,
        "app-2",
        &[row("Pod", "api", IMAGE), row("Pod", "web", IMAGE)],
    )
    .await;
    wait_until("current again", || last.lock().unwrap().stale.is_none()).await;
    r.stop().await;
}

#[tokio::test]
async fn a_broken_workload_watch_marks_findings_stale_and_holds_the_reports() {
    let fake = FakeApiServer::start().await;
    fake.put(pod("app-1", "web", IMAGE, None));
    fake.put(pod("app-2", "web", IMAGE, None));
    let (r, last) = start(&fake, &["app-1"]).await;
    wait_found(&fake, "app-2", &[row("Pod", "web", IMAGE)]).await;

    fake.fail_reads(Some("pods"));
    fake.break_watches();
    wait_until("the summary says stale", || {
        last.lock().unwrap().stale.is_some()
    })
    .await;
    wait_until("ws-a's Audited condition is False", || {
        status(&fake, "Workspace", "ws-a")["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Audited" && c["status"] == "False" && c["reason"] == "Stale")
    })
    .await;
    // The unbind is judged (counts follow), but app-1 gets no report while stale.
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &[]),
        OWN_NS,
        "team-a-puller",
    ));
    wait_until("the unbind counted", || last.lock().unwrap().total == 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        reports(&fake, OPENREPORTS, "app-1").is_empty(),
        "a report written from a stale view"
    );

    fake.fail_reads(None);
    wait_found(&fake, "app-1", &[row("Pod", "web", IMAGE)]).await;
    wait_until("current again", || last.lock().unwrap().stale.is_none()).await;
    r.stop().await;
}
