//! Builders of AdmissionReview bodies for tests and benchmarks. Not part of the
//! supported API.

use serde_json::{json, Value};

use crate::policy::{ImageUse, Location};

/// A pod spec with one container per image, named `c0`, `c1`, ….
pub fn pod_spec(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
        .collect();
    json!({ "containers": containers })
}

/// An object of `kind` whose pods use `spec` (at the kind's template path).
pub fn object(kind: &str, spec: Value) -> Value {
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let api_version = match group_of(kind) {
        "" => "v1".to_string(),
        g => format!("{g}/v1"),
    };
    let mut obj = match kind {
        "Pod" => json!({"spec": spec}),
        "PodTemplate" => json!({"template": template}),
        "CronJob" => {
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        _ => json!({"spec": {"replicas": 1, "template": template}}),
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    obj["metadata"] = json!({"name": "p"});
    obj
}

/// The API group of a judged kind.
pub fn group_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps",
        "Job" | "CronJob" => "batch",
        _ => "",
    }
}

/// The kinds the validating webhook judges.
pub const KINDS: [&str; 9] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "PodTemplate",
];

/// An AdmissionReview `admission.k8s.io/v1` for `obj` in namespace `app-1` by `alice`.
pub fn review(kind: &str, op: &str, obj: Value, old: Option<Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": group_of(kind), "version": "v1", "kind": kind},
            "resource": {"group": group_of(kind), "version": "v1", "resource": "x"},
            "namespace": "app-1",
            "operation": op,
            "userInfo": {"username": "alice"},
            "object": obj,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// The same review with `request.namespace` set to `ns`.
pub fn in_ns(mut review: Value, ns: &str) -> Value {
    review["request"]["namespace"] = json!(ns);
    review
}

/// The patch bytes of a response: kube-core writes `[]byte` as an array of numbers, which
/// the apiserver's decoder accepts like the base64 string form.
pub fn patch_bytes(response: &Value) -> Option<Vec<u8>> {
    use base64::Engine;
    match &response["patch"] {
        Value::String(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
        Value::Array(bytes) => bytes.iter().map(|b| b.as_u64().map(|b| b as u8)).collect(),
        _ => None,
    }
}

/// Applies the JSONPatch of a /mutate response to `obj`; `None` when there is no patch.
pub fn apply_patch(response: &Value, obj: &Value) -> Option<Value> {
    let bytes = patch_bytes(response)?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).ok()?;
    let mut out = obj.clone();
    json_patch::patch(&mut out, &patch).ok()?;
    Some(out)
}

/// Image uses of containers `names` with `images`, alternating between containers and
/// init containers (the UPDATE diff's input in tests and benchmarks).
pub fn uses<'a>(names: &'a [String], images: &'a [String]) -> Vec<ImageUse<'a>> {
    names
        .iter()
        .zip(images)
        .enumerate()
        .map(|(i, (name, image))| ImageUse {
            image,
            location: [Location::Container, Location::InitContainer][i % 2],
            name,
        })
        .collect()
}
