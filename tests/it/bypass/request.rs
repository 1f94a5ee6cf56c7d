//! Tricks played on the request's other fields: UPDATE against the old object and
//! subresources, the namespace, user-supplied pull secrets, mirror pods, dryRun.

use super::*;

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
        let mut body = pod_create(ns, &[image]);
        let wet = validate(&body);
        body["request"]["dryRun"] = json!(true);
        let dry = validate(&body);
        assert_eq!(wet, dry, "{image} in {ns}");
    }
}
