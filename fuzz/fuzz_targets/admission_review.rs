//! `Admission::review` (parse -> decide -> respond) on arbitrary bytes, for both webhooks,
//! with the example configuration's binding table.
//!
//! Oracles (each sound whatever the input):
//! - no panic; the HTTP status is 200 or 400;
//! - a 400 body is a `Status` (code 400) and never a review;
//! - a 200 body is an `admission.k8s.io/v1` AdmissionReview echoing the request's uid;
//!   a denial carries status code 403; `/validate` never patches; `/mutate` never denies;
//! - a Pod CREATE in an enforcing, non-exempt namespace, not a node's mirror pod, with an
//!   invalid image reference in a container, init container, ephemeral container or
//!   image volume, is never allowed by `/validate`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use pullgate::admission::{Admission, Webhook};
use pullgate::api::Enforcement;
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;
use pullgate::reference::ImageRef;
use serde_json::Value;

fn admission() -> &'static Admission {
    static ADMISSION: OnceLock<Admission> = OnceLock::new();
    ADMISSION.get_or_init(|| {
        let cfg = pullgate::config::parse(include_str!("../../examples/config.yaml"))
            .expect("example config");
        Admission {
            policy: Policy::default(),
            pull_secret_name: "pullgate-pull".into(),
            table: Arc::new(Table::new(Snapshot::build(&cfg.objects, 1))),
            changes: None,
        }
    })
}

/// Whether the input is a Pod CREATE that must be denied for an invalid image.
fn must_deny(input: &Value, admission: &Admission) -> bool {
    let req = &input["request"];
    let is_pod =
        req["kind"]["kind"] == "Pod" && req["kind"]["group"].as_str().unwrap_or("").is_empty();
    if !is_pod || req["operation"] != "CREATE" || !req["subResource"].is_null() {
        return false;
    }
    let ns = req["namespace"].as_str().unwrap_or("");
    if admission.policy.exempt_namespaces.iter().any(|e| e == ns) {
        return false;
    }
    let mode = admission.table.load().mode_of(ns, admission.policy.mode);
    if mode != Enforcement::Enforce {
        return false;
    }
    let object = &req["object"];
    let user = req["userInfo"]["username"].as_str().unwrap_or("");
    if user.starts_with("system:node:") {
        // A node's mirror pod may be exempt: no claim.
        return false;
    }
    let spec = &object["spec"];
    let mut images: Vec<&str> = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            if c.is_object() {
                images.push(c["image"].as_str().unwrap_or(""));
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if v.is_object() && v["image"].is_object() {
            images.push(v["image"]["reference"].as_str().unwrap_or(""));
        }
    }
    images.iter().any(|i| ImageRef::parse(i).is_err())
}

fuzz_target!(|data: &[u8]| {
    let admission = admission();
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        let r = admission.review(webhook, data);
        assert!(r.status == 200 || r.status == 400, "status {}", r.status);
        let body: Value = serde_json::from_slice(&r.body).expect("the answer is JSON");
        if r.status == 400 {
            assert_eq!(body["code"], 400);
            assert!(body.get("response").is_none());
            continue;
        }
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        let resp = &body["response"];
        // Parts pullgate skips are not checked for UTF-8 (Go's decoder, too, replaces bad
        // bytes rather than failing), so a judged body need not be valid JSON throughout:
        // read it as Go would, bad bytes replaced. Should even that fail (an escape
        // serde_json refuses in a skipped string), only the checks above apply.
        let input = serde_json::from_slice::<Value>(data)
            .or_else(|_| serde_json::from_str::<Value>(&String::from_utf8_lossy(data)));
        let Ok(input) = input else {
            assert!(resp["allowed"].is_boolean());
            continue;
        };
        if input["request"].is_object() {
            assert_eq!(resp["uid"], input["request"]["uid"]);
        }
        let allowed = resp["allowed"].as_bool().expect("allowed is a bool");
        if !allowed {
            assert_eq!(resp["status"]["code"], 403);
        }
        match webhook {
            Webhook::Validate => {
                assert!(resp.get("patch").is_none(), "validate never patches");
                if must_deny(&input, admission) {
                    assert!(!allowed, "an invalid image was allowed");
                }
            }
            Webhook::Mutate => assert!(allowed, "mutate never denies"),
        }
    }
});
