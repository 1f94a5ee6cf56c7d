//! Tricks played on the body's bytes: duplicate and escaped keys, unknown fields, bad
//! bytes, arrays in place of objects, and operations that carry no new image.

use super::*;

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
    let allowed_pod = pod_create(BOUND, &["nginx"]);
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
            let b = pod_create(BOUND, &[bad]);
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

/// Bodies a second reader could read differently: escaped keys, a second document,
/// invalid UTF-8 or lone surrogates, a byte-order mark.
#[test]
fn ambiguous_bodies_are_refused_and_escapes_read_once() {
    let allowed_pod = pod_create(BOUND, &["nginx"]);
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
            let denied = pod_create(EVIL, &[PRIVATE]);
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
        let mut body = pod_create(ns, &[image]);
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
