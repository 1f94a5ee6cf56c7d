//! `Admission::review` on bodies, without a server: kinds, UPDATE, subresources,
//! malformed bodies, the patch, the bounds on what an answer names.

use std::sync::Arc;

use pullgate::admission::testing::*;
use pullgate::admission::{diff, review, Admission, Outcome, Webhook};
use pullgate::audit_record::{MAX_ECHOED, MAX_LISTED};
use pullgate::config;
use pullgate::index::{Snapshot, Table};
use pullgate::object;
use pullgate::policy::{ImageUse, Location, Policy};
use pullgate::wire::out::clip;
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../examples/config.yaml");

fn admission() -> Admission {
    let cfg = config::parse(CONFIG).expect("example config parses");
    Admission {
        policy: Policy::default(),
        pull_secret_name: "pullgate-pull".into(),
        table: Arc::new(Table::new(Snapshot::build(&cfg.objects, 1))),
        changes: None,
    }
}

fn send(webhook: Webhook, body: &Value) -> (Outcome, Value) {
    let r = admission().review(webhook, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&r.body).expect("response is JSON");
    (r, v)
}

const PRIVATE_OK: &str = "harbor.example.com/team-a/app:1";
const PRIVATE_BAD: &str = "harbor.example.com/team-b/app:1";

#[test]
fn every_kind_is_judged_on_its_template() {
    for kind in KINDS {
        let (r, v) = send(
            Webhook::Validate,
            &review(
                kind,
                "CREATE",
                object(kind, pod_spec(&["nginx", PRIVATE_BAD])),
                None,
            ),
        );
        assert_eq!(r.status, 200, "{kind}");
        let resp = &v["response"];
        assert_eq!(resp["uid"], "uid-1");
        assert_eq!(resp["allowed"], false, "{kind}: {v}");
        assert_eq!(resp["status"]["code"], 403);
        assert!(
            resp["status"]["message"]
                .as_str()
                .unwrap()
                .contains(PRIVATE_BAD),
            "{kind}"
        );
        assert_eq!(resp["auditAnnotations"]["decision"], "deny");
        assert_eq!(resp["auditAnnotations"]["denied-images"], PRIVATE_BAD);
        assert!(resp.get("patch").is_none());
        let (_, v) = send(
            Webhook::Validate,
            &review(
                kind,
                "CREATE",
                object(kind, pod_spec(&["nginx", PRIVATE_OK])),
                None,
            ),
        );
        assert_eq!(v["response"]["allowed"], true, "{kind}: {v}");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
    }
}

#[test]
fn other_kinds_and_operations_are_allowed() {
    let (_, v) = send(
        Webhook::Validate,
        &review(
            "ConfigMap",
            "CREATE",
            json!({"data": {"image": PRIVATE_BAD}}),
            None,
        ),
    );
    assert_eq!(v["response"]["allowed"], true);
    for op in ["DELETE", "CONNECT"] {
        let (_, v) = send(
            Webhook::Validate,
            &review("Pod", op, object("Pod", pod_spec(&[PRIVATE_BAD])), None),
        );
        assert_eq!(v["response"]["allowed"], true, "{op}");
    }
}

#[test]
fn update_judges_only_new_or_changed_images() {
    let old = object("Pod", pod_spec(&[PRIVATE_BAD, "nginx"]));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"new": "label"});
    let (_, v) = send(
        Webhook::Validate,
        &review("Pod", "UPDATE", relabelled, Some(old.clone())),
    );
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let changed = object(
        "Pod",
        pod_spec(&[PRIVATE_BAD, "harbor.example.com/team-b/other:2"]),
    );
    let (r, v) = send(
        Webhook::Validate,
        &review("Pod", "UPDATE", changed, Some(old)),
    );
    assert_eq!(v["response"]["allowed"], false);
    let audit = r.audit.unwrap();
    assert_eq!(audit.images.len(), 1, "only the changed image is judged");
    assert_eq!(audit.images[0].image, "harbor.example.com/team-b/other:2");
}

#[test]
fn ephemeral_containers_subresource() {
    let old = object("Pod", pod_spec(&["nginx"]));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": PRIVATE_BAD}]);
    let mut body = review("Pod", "UPDATE", new, Some(old));
    body["request"]["subResource"] = json!("ephemeralcontainers");
    let (_, v) = send(Webhook::Validate, &body);
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("(ephemeral container \"debug\")"));
    let (_, v) = send(Webhook::Mutate, &body);
    assert!(
        v["response"].get("patch").is_none(),
        "no patch for ephemeral containers"
    );
    body["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    assert_eq!(
        send(Webhook::Validate, &body).0.status,
        400,
        "wrong kind for the subresource"
    );
}

#[test]
fn init_and_image_volume_images_are_judged() {
    let spec = json!({
        "initContainers": [{"name": "sidecar", "image": "nginx", "restartPolicy": "Always"}, {"name": "init", "image": PRIVATE_BAD}],
        "containers": [{"name": "c", "image": "nginx"}],
        "volumes": [{"name": "data", "image": {"reference": "quay.io/x/data:1", "pullPolicy": "IfNotPresent"}}, {"name": "e", "emptyDir": {}}]
    });
    let (_, v) = send(
        Webhook::Validate,
        &review("Pod", "CREATE", object("Pod", spec), None),
    );
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("2 images are not allowed"), "{msg}");
    assert!(
        msg.contains("(init container \"init\")") && msg.contains("(image volume \"data\")"),
        "{msg}"
    );
}

#[test]
fn mirror_pods_need_a_node_user() {
    let mut pod = object("Pod", pod_spec(&[PRIVATE_BAD]));
    pod["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    let mut body = review("Pod", "CREATE", pod, None);
    assert_eq!(
        send(Webhook::Validate, &body).1["response"]["allowed"],
        false,
        "non-node user"
    );
    body["request"]["userInfo"]["username"] = json!("system:node:worker-1");
    assert_eq!(
        send(Webhook::Validate, &body).1["response"]["allowed"],
        true
    );
}

#[test]
fn request_namespace_wins_over_object_namespace() {
    let mut pod = object("Pod", pod_spec(&[PRIVATE_OK]));
    pod["metadata"]["namespace"] = json!("app-1");
    let mut body = review("Pod", "CREATE", pod, None);
    body["request"]["namespace"] = json!("app-9");
    let (_, v) = send(Webhook::Validate, &body);
    assert_eq!(
        v["response"]["allowed"], false,
        "judged in request.namespace app-9"
    );
}

#[test]
fn malformed_reviews_get_400() {
    let good = review("Pod", "CREATE", object("Pod", pod_spec(&["nginx"])), None);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("invalid JSON".into(), b"{not json".to_vec()),
        ("empty body".into(), Vec::new()),
        (
            "no request".into(),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
        ),
    ];
    let mut variant = |what: &str, f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        cases.push((what.into(), b.to_string().into_bytes()));
    };
    variant("wrong apiVersion", &|b| {
        b["apiVersion"] = json!("admission.k8s.io/v1beta1")
    });
    variant("wrong kind", &|b| b["kind"] = json!("TokenReview"));
    variant("empty uid", &|b| b["request"]["uid"] = json!(""));
    variant("unknown operation", &|b| {
        b["request"]["operation"] = json!("PATCH")
    });
    variant("no object", &|b| b["request"]["object"] = Value::Null);
    variant("object of the wrong shape", &|b| {
        b["request"]["object"]["spec"]["containers"] = json!("nginx")
    });
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bomb = good.to_string().replace(
        "\"dryRun\":false",
        &format!("\"dryRun\":false,\"extra\":{deep}"),
    );
    cases.push(("nesting bomb".into(), bomb.into_bytes()));
    let dup = good.to_string().replace(
        "\"image\":\"nginx\",",
        "\"image\":\"nginx\",\"image\":\"quay.io/evil\",",
    );
    assert!(dup.contains("quay.io/evil"));
    cases.push(("duplicate image key".into(), dup.into_bytes()));
    for (what, body) in cases {
        let r = admission().review(Webhook::Validate, &body);
        assert_eq!(r.status, 400, "{what}");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], 400, "{what}");
        assert!(v.get("response").is_none(), "{what}: never a review");
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut body = review("Pod", "CREATE", object("Pod", pod_spec(&["nginx"])), None);
    body["request"]["futureField"] = json!({"a": [1, 2]});
    body["request"]["object"]["spec"]["containers"][0]["futureField"] = json!(true);
    assert_eq!(
        send(Webhook::Validate, &body).1["response"]["allowed"],
        true
    );
}

fn apply_mutation(pod: &Value) -> (Value, bool) {
    let (_, v) = send(Webhook::Mutate, &review("Pod", "CREATE", pod.clone(), None));
    assert_eq!(v["response"]["allowed"], true, "mutate never denies");
    match apply_patch(&v["response"], pod) {
        Some(out) => {
            assert_eq!(v["response"]["patchType"], "JSONPatch");
            (out, true)
        }
        None => (pod.clone(), false),
    }
}

#[test]
fn mutate_appends_the_pull_secret_once() {
    let mut pod = object("Pod", pod_spec(&["nginx", PRIVATE_BAD]));
    // no list: created
    let (patched, changed) = apply_mutation(&pod);
    assert!(changed);
    assert_eq!(
        patched["spec"]["imagePullSecrets"],
        json!([{"name": "pullgate-pull"}])
    );
    let mut without = patched.clone();
    without["spec"]
        .as_object_mut()
        .unwrap()
        .remove("imagePullSecrets");
    assert_eq!(without, pod, "nothing else is touched");
    // reinvocation: no patch
    assert!(!apply_mutation(&patched).1);
    // existing list: appended, order kept
    pod["spec"]["imagePullSecrets"] = json!([{"name": "mine"}, {"name": "other"}]);
    let (patched, _) = apply_mutation(&pod);
    assert_eq!(
        patched["spec"]["imagePullSecrets"],
        json!([{"name": "mine"}, {"name": "other"}, {"name": "pullgate-pull"}])
    );
    // already present: no patch
    pod["spec"]["imagePullSecrets"] = json!([{"name": "pullgate-pull"}]);
    assert!(!apply_mutation(&pod).1);
    // null list is replaced
    pod["spec"]["imagePullSecrets"] = Value::Null;
    assert_eq!(
        apply_mutation(&pod).0["spec"]["imagePullSecrets"],
        json!([{"name": "pullgate-pull"}])
    );
    // public only: no patch; space with pullSecretRef: patch
    assert!(
        !apply_mutation(&object(
            "Pod",
            pod_spec(&["nginx", "harbor.example.com/shared/x"])
        ))
        .1
    );
    assert!(
        apply_mutation(&object(
            "Pod",
            pod_spec(&["127.0.0.1:5000/teams/platform/x"])
        ))
        .1
    );
}

#[test]
fn mutate_patches_only_pod_create() {
    let old = object("Pod", pod_spec(&[PRIVATE_OK]));
    let (_, v) = send(
        Webhook::Mutate,
        &review("Pod", "UPDATE", old.clone(), Some(old)),
    );
    assert!(v["response"].get("patch").is_none());
    let (_, v) = send(
        Webhook::Mutate,
        &review(
            "Deployment",
            "CREATE",
            object("Deployment", pod_spec(&[PRIVATE_OK])),
            None,
        ),
    );
    assert!(v["response"].get("patch").is_none());
}

#[test]
fn warn_mode_allows_with_warnings() {
    let mut a = admission();
    a.policy.mode = pullgate::api::Enforcement::Warn;
    let mut body = review(
        "Pod",
        "CREATE",
        object("Pod", pod_spec(&["quay.io/x/y"])),
        None,
    );
    body["request"]["namespace"] = json!("app-9");
    let r = a.review(Webhook::Validate, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("quay.io/x/y"));
    assert_eq!(v["response"]["auditAnnotations"]["decision"], "warn");
    assert_eq!(r.audit.unwrap().decision, "warn");
}

#[test]
fn audit_record_has_every_field() {
    let mut body = review(
        "Pod",
        "CREATE",
        object("Pod", pod_spec(&[PRIVATE_BAD])),
        None,
    );
    body["request"]["dryRun"] = json!(true);
    let (r, _) = send(Webhook::Validate, &body);
    let rec = serde_json::to_value(r.audit.unwrap()).unwrap();
    for field in [
        "time",
        "uid",
        "operation",
        "kind",
        "namespace",
        "name",
        "user",
        "dryRun",
        "mode",
        "decision",
        "images",
        "revision",
        "latencyUs",
    ] {
        assert!(rec.get(field).is_some(), "missing {field} in {rec}");
    }
    assert_eq!(rec["dryRun"], true);
    assert_eq!(rec["decision"], "deny");
    let img = &rec["images"][0];
    for field in [
        "image",
        "container",
        "registry",
        "space",
        "visibility",
        "verdict",
        "reason",
    ] {
        assert!(
            img.get(field).is_some(),
            "missing images[].{field} in {img}"
        );
    }
    assert!(!rec.to_string().contains("example-only-password"));
}

#[test]
fn objects_of_kinds_not_judged_never_make_a_request_invalid() {
    // The one-pass decode fails on this shape; the fallback leaves the object raw.
    let odd = json!({"spec": {"containers": "not a list", "template": 7}});
    for (kind, op) in [("ConfigMap", "CREATE"), ("Pod", "DELETE")] {
        let (r, v) = send(Webhook::Validate, &review(kind, op, odd.clone(), None));
        assert_eq!(r.status, 200, "{kind} {op}");
        assert_eq!(v["response"]["allowed"], true, "{kind} {op}");
    }
    let (r, _) = send(Webhook::Validate, &review("Pod", "CREATE", odd, None));
    assert_eq!(
        r.status, 400,
        "a judged object that cannot be read is refused"
    );
}

#[test]
fn the_update_diff_is_linear() {
    for n in [1_000, 10_000] {
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let old_images: Vec<String> = (0..n).map(|i| format!("nginx:{i}")).collect();
        // Half unchanged, half with a new image: the worst case of a scan is a miss.
        let new_images: Vec<String> = (0..n)
            .map(|i| format!("nginx:{}", if i % 2 == 0 { i } else { i + n }))
            .collect();
        let (old, new) = (uses(&names, &old_images), uses(&names, &new_images));
        let (changed, work) = diff::changed_counted(new, &old);
        assert_eq!(changed.len(), n / 2);
        eprintln!("diff of {n} containers: {work:?}");
        assert!(
            work.total() <= 4 * 2 * n,
            "diff of {n} old and {n} new images did {work:?}, more than linear work"
        );
    }
}

proptest::proptest! {
    /// The table diff keeps the meaning of the scan it replaced: an image use is
    /// unchanged when any old use has the same location, name and image (duplicate
    /// names and moves between location kinds included).
    #[test]
    fn the_update_diff_means_what_the_scan_meant(
        old in proptest::collection::vec((0..4usize, "[ab]{0,2}", "[xy]{0,2}"), 0..12),
        new in proptest::collection::vec((0..4usize, "[ab]{0,2}", "[xy]{0,2}"), 0..12),
    ) {
        let (old, new) = (located(&old), located(&new));
        let scanned: Vec<ImageUse<'_>> = new
            .iter()
            .filter(|n| !old.iter().any(|o| o == *n))
            .cloned()
            .collect();
        proptest::prop_assert_eq!(diff::changed(new, &old), scanned);
    }
}

fn located(list: &[(usize, String, String)]) -> Vec<ImageUse<'_>> {
    const LOCATIONS: [Location; 4] = [
        Location::Container,
        Location::InitContainer,
        Location::EphemeralContainer,
        Location::ImageVolume,
    ];
    list.iter()
        .map(|(l, name, image)| ImageUse {
            image,
            location: LOCATIONS[*l],
            name,
        })
        .collect()
}

/// A Pod CREATE whose spec holds `entries` of `list`, each the JSON `entry`.
fn pod_with(list: &str, entry: &str, entries: usize) -> Vec<u8> {
    let items = vec![entry; entries].join(",");
    let mut body = review("Pod", "CREATE", object("Pod", json!({})), None).to_string();
    body = body.replace(r#""spec":{}"#, &format!(r#""spec":{{"{list}":[{items}]}}"#));
    body.into_bytes()
}

#[test]
fn objects_beyond_what_the_apiserver_can_store_get_400() {
    let a = admission();
    let container = r#"{"name":"c","image":"nginx"}"#;
    let image_volume = r#"{"name":"v","image":{"reference":"nginx"}}"#;
    for (list, entry, bound) in [
        ("containers", container, object::MAX_IMAGE_LOCATIONS),
        ("initContainers", container, object::MAX_IMAGE_LOCATIONS),
        ("volumes", image_volume, object::MAX_IMAGE_LOCATIONS),
        ("imagePullSecrets", r#"{}"#, object::MAX_PULL_SECRETS),
    ] {
        let r = a.review(Webhook::Validate, &pod_with(list, entry, bound));
        assert_eq!(r.status, 200, "{list}: {bound} entries are judged");
        let r = a.review(Webhook::Validate, &pod_with(list, entry, bound + 1));
        assert_eq!(r.status, 400, "{list}: {} entries are refused", bound + 1);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("more than {bound} ")),
            "{list}: {message}"
        );
    }
    // Volumes without an image are not image locations.
    let r = a.review(
        Webhook::Validate,
        &pod_with(
            "volumes",
            r#"{"name":"e","emptyDir":{}}"#,
            object::MAX_IMAGE_LOCATIONS + 1,
        ),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_uid_longer_than_the_apiservers_gets_400() {
    let mut body = review("Pod", "CREATE", object("Pod", pod_spec(&["nginx"])), None);
    body["request"]["uid"] = json!("u".repeat(review::MAX_UID_BYTES));
    assert_eq!(send(Webhook::Validate, &body).0.status, 200);
    body["request"]["uid"] = json!("u".repeat(review::MAX_UID_BYTES + 1));
    assert_eq!(send(Webhook::Validate, &body).0.status, 400);
}

#[test]
fn warnings_stay_within_the_apiservers_limits() {
    let a = Admission {
        policy: Policy {
            mode: pullgate::api::Enforcement::Warn,
            ..Policy::default()
        },
        ..admission()
    };
    let long = format!("quay.io/x/{}:1", "é".repeat(400));
    for n in [1, 3, 200] {
        let mut images: Vec<String> = (0..n).map(|i| format!("quay.io/x/app-{i}")).collect();
        images[0] = long.clone();
        let refs: Vec<&str> = images.iter().map(String::as_str).collect();
        let body = in_ns(
            review("Pod", "CREATE", object("Pod", pod_spec(&refs)), None),
            "app-9",
        );
        let r = a.review(Webhook::Validate, body.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["response"]["allowed"], true);
        let warnings: Vec<&str> = v["response"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert!(warnings.iter().all(|w| w.len() <= 256), "{warnings:?}");
        assert!(warnings.iter().map(|w| w.len()).sum::<usize>() <= 4096);
        assert!(warnings[0].ends_with('…'), "{}", warnings[0]);
        if n <= 3 {
            assert_eq!(warnings.len(), n, "every denied image: {warnings:?}");
        } else {
            let listed = warnings.len() - 1;
            assert_eq!(
                warnings[listed],
                format!("and {} more images are not allowed", n - listed)
            );
        }
    }
}

#[test]
fn clip_cuts_at_a_character_boundary() {
    assert_eq!(clip("abc", 3), "abc");
    assert_eq!(clip("abcdef", 5), "ab…");
    let cut = clip("ééééé", 6);
    assert!(cut.len() <= 6, "{cut}");
    assert_eq!(cut, "é…");
}

#[test]
fn a_denial_names_at_most_max_listed_images_and_counts_the_rest() {
    let n = MAX_LISTED + 7;
    let mut images: Vec<String> = (0..n).map(|i| format!("quay.io/x/app-{i}")).collect();
    images.insert(1, "nginx".into());
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let (r, v) = send(
        Webhook::Validate,
        &review("Pod", "CREATE", object("Pod", pod_spec(&refs)), None),
    );
    let message = v["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{n} images are not allowed: ")));
    assert!(
        message.ends_with("; and 7 more"),
        "{}",
        &message[message.len() - 40..]
    );
    assert!(message.contains(&format!("\"quay.io/x/app-{}\"", MAX_LISTED - 1)));
    assert!(!message.contains(&format!("\"quay.io/x/app-{}\"", MAX_LISTED)));
    let denied = v["response"]["auditAnnotations"]["denied-images"]
        .as_str()
        .unwrap();
    assert_eq!(denied.split(',').count(), MAX_LISTED + 1);
    assert!(denied.ends_with(",(and 7 more)"));
    let audit = r.audit.unwrap();
    assert_eq!(audit.images.len(), MAX_LISTED);
    assert!(
        audit.images.iter().all(|i| i.verdict == "deny"),
        "denied ones first"
    );
    assert_eq!((audit.omitted_images, audit.omitted_denied), (8, 7));
}

#[test]
fn the_outcome_names_the_event_of_a_denied_workload_only() {
    let deny = |kind: &str, dry_run: bool, images: &[&str]| {
        let mut body = review(kind, "CREATE", object(kind, pod_spec(images)), None);
        body["request"]["dryRun"] = json!(dry_run);
        send(Webhook::Validate, &body).0
    };
    let r = deny("Deployment", false, &["nginx", PRIVATE_BAD]);
    let event = r.event.expect("a denied Deployment is reported");
    assert_eq!(event.kind.as_str(), "Deployment");
    assert!(event.message.contains(PRIVATE_BAD), "{}", event.message);
    assert!(!event.message.contains("nginx"), "{}", event.message);
    assert_eq!(
        r.audit.map(|a| (a.namespace, a.name)),
        Some((event.namespace, event.name))
    );
    // Pods are reported by the apiserver's own events; dry runs create nothing.
    assert!(deny("Pod", false, &[PRIVATE_BAD]).event.is_none());
    assert!(deny("Deployment", true, &[PRIVATE_BAD]).event.is_none());
    assert!(deny("Deployment", false, &[PRIVATE_OK]).event.is_none());
    let many: Vec<String> = (0..500)
        .map(|i| format!("harbor.example.com/team-b/app-{i}:1"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let event = deny("Deployment", false, &many).event.expect("reported");
    assert!(
        event.message.len() <= 2 * MAX_ECHOED + 2,
        "{} bytes",
        event.message.len()
    );
    let r = send(
        Webhook::Mutate,
        &review(
            "Deployment",
            "CREATE",
            object("Deployment", pod_spec(&[PRIVATE_BAD])),
            None,
        ),
    )
    .0;
    assert!(r.event.is_none() && r.audit.is_none());
}

#[test]
fn an_unknown_operation_is_refused_when_the_body_is_read() {
    let mut body = review("Pod", "CREATE", object("Pod", pod_spec(&["nginx"])), None);
    body["request"]["operation"] = json!("PATCH");
    let (r, v) = send(Webhook::Validate, &body);
    assert_eq!(r.status, 400);
    assert!(
        v["message"].as_str().unwrap_or_default().contains("PATCH"),
        "{v}"
    );
}
