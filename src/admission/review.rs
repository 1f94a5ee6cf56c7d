//! AdmissionReview `admission.k8s.io/v1` in and out. The request is deserialised by
//! serde in one pass into borrowed structs holding only the fields pullgate needs,
//! objects included. An object that is JSON but not the shape pullgate reads makes the
//! request invalid only for a kind pullgate judges: when the typed read fails, the body
//! is read again with the objects skipped, to tell the two apart. The response is the
//! JSON kube-core's `AdmissionResponse` writes.

use std::borrow::Cow;

use kube::core::response::StatusSummary;
use kube::core::Status;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::object::{Kind, Object};
use crate::wire::out as json;
use crate::wire::{self, text};

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// The longest `request.uid` answered (the apiserver sends UUIDs).
pub const MAX_UID_BYTES: usize = 256;

/// Why a body is not an AdmissionReview pullgate can judge (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// The request fields pullgate reads; `O` is how the objects are read (skipped, with
/// [`IgnoredAny`], in the second reading).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a, O = Box<Object<'a>>> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    #[serde(default, borrow)]
    pub user_info: UserInfo<'a>,
    // Boxed: the request is moved several times while it is read.
    pub object: Option<O>,
    pub old_object: Option<O>,
    pub dry_run: Option<bool>,
    /// The kind whose pods are judged, if this request is one pullgate judges (set once
    /// the envelope is checked).
    #[serde(skip)]
    pub judged: Option<Kind>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    pub group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub username: Option<Cow<'a, str>>,
}

/// The operations of an admission request; any other is refused when the body is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    #[default]
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, O> {
    #[serde(default, borrow, deserialize_with = "text")]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<Request<'a, O>>,
}

impl<'a> Request<'a> {
    /// Reads and checks an AdmissionReview.
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, BadReview> {
        let typed = match wire::from_slice::<Envelope<'a, Box<Object<'a>>>>(body) {
            Ok(envelope) => return envelope.check(),
            Err(e) => e,
        };
        // Read again with the objects skipped: if that fails too, the body is not a
        // review; if not, only an object is not the shape pullgate reads, which matters
        // only when it is judged.
        let req = wire::from_slice::<Envelope<'a, IgnoredAny>>(body)
            .map_err(|e| BadReview(format!("body is not a valid AdmissionReview: {e}")))?
            .check()?;
        if req.judged.is_some() && matches!(req.operation, Operation::Create | Operation::Update) {
            return Err(BadReview(format!(
                "request.object or oldObject is not a valid {}: {typed}",
                req.kind.kind
            )));
        }
        Ok(Request {
            uid: req.uid,
            kind: req.kind,
            sub_resource: req.sub_resource,
            name: req.name,
            namespace: req.namespace,
            operation: req.operation,
            user_info: req.user_info,
            object: None,
            old_object: None,
            dry_run: req.dry_run,
            judged: req.judged,
        })
    }
}

impl<'a, O> Envelope<'a, O> {
    /// The request, when the envelope is an `admission.k8s.io/v1` AdmissionReview.
    fn check(self) -> Result<Request<'a, O>, BadReview> {
        for (field, got, want) in [
            ("apiVersion", &self.api_version, API_VERSION),
            ("kind", &self.kind, KIND),
        ] {
            if got.as_deref() != Some(want) {
                return Err(BadReview(format!(
                    "{field} must be {want:?}, got {:?}",
                    got.as_deref().unwrap_or_default()
                )));
            }
        }
        let mut req = self
            .request
            .ok_or_else(|| BadReview("AdmissionReview has no request".into()))?;
        if req.uid.is_empty() {
            return Err(BadReview("request.uid is empty".into()));
        }
        // The answer echoes the uid; the apiserver's are UUIDs (36 characters).
        if req.uid.len() > MAX_UID_BYTES {
            return Err(BadReview(format!(
                "request.uid is longer than {MAX_UID_BYTES} bytes"
            )));
        }
        req.judged = req.judged_kind()?;
        Ok(req)
    }
}

impl<O> Request<'_, O> {
    /// The kind whose pods are judged, if this request is one pullgate judges (a
    /// covered kind, or the `ephemeralcontainers` subresource of a Pod).
    fn judged_kind(&self) -> Result<Option<Kind>, BadReview> {
        let kind = Kind::from_group_kind(&self.kind.group, &self.kind.kind);
        Ok(match self.sub_resource.as_deref() {
            None => kind,
            Some("ephemeralcontainers") if kind == Some(Kind::Pod) => kind,
            Some("ephemeralcontainers") => {
                return Err(BadReview(format!(
                    "subresource ephemeralcontainers needs kind Pod, got {:?}",
                    self.kind.kind
                )))
            }
            Some(_) => None,
        })
    }

    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    pub fn user(&self) -> &str {
        self.user_info.username.as_deref().unwrap_or_default()
    }
}

/// Parts of a response besides allowed/denied.
#[derive(Debug, Default)]
pub struct ResponseParts {
    pub warnings: Vec<String>,
    pub audit_annotations: Vec<(&'static str, String)>,
    pub patch: Option<json_patch::Patch>,
}

/// Serialises the AdmissionReview response for `uid`: the JSON kube-core's
/// `AdmissionResponse` writes (checked by a test), written by hand, with the patch as the
/// base64 string Go writes for `[]byte`.
pub fn respond(uid: &str, denial: Option<String>, parts: ResponseParts) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut review = json::Object::new(&mut out);
    review.str("apiVersion", API_VERSION).str("kind", KIND);
    review.object("response", |r| {
        r.str("uid", uid).bool("allowed", denial.is_none());
        r.object("status", |s| match &denial {
            None => {
                s.str("status", "Success");
            }
            Some(message) => {
                s.str("status", "Failure")
                    .u64("code", 403)
                    .str("message", message)
                    .str("reason", "Forbidden");
            }
        });
        // Serialising a patch of plain JSON values cannot fail; without it, no patch.
        if let Some(patch) = parts.patch.and_then(|p| serde_json::to_vec(&p).ok()) {
            use base64::Engine;
            r.str(
                "patch",
                &base64::engine::general_purpose::STANDARD.encode(patch),
            )
            .str("patchType", "JSONPatch");
        }
        if !parts.audit_annotations.is_empty() {
            r.object("auditAnnotations", |a| {
                for (key, value) in &parts.audit_annotations {
                    a.str(key, value);
                }
            });
        }
        if !parts.warnings.is_empty() {
            r.strs("warnings", parts.warnings.iter().map(String::as_str));
        }
    });
    review.end();
    out
}

/// The body of a 400 answer: a `Status` saying what is wrong, never a review.
pub fn bad_request_body(err: &BadReview) -> Vec<u8> {
    let status = Status {
        status: Some(StatusSummary::Failure),
        code: 400,
        message: err.0.clone(),
        reason: "BadRequest".into(),
        ..Status::default()
    };
    serde_json::to_vec(&status).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use kube::core::admission::AdmissionResponse;
    use serde_json::{json, Value};

    use super::*;

    /// A Pod UPDATE review holding every field pullgate reads, once, and one unknown
    /// field named `future` in every object (annotations included, whose keys are
    /// compared but never refused when repeated).
    fn full_review() -> Value {
        let spec = json!({
            "containers": [{"name": "c", "image": "nginx", "future": 1}],
            "initContainers": [{"name": "i", "image": "nginx", "future": 1}],
            "ephemeralContainers": [{"name": "e", "image": "nginx", "future": 1}],
            "volumes": [{"name": "v", "image": {"reference": "nginx", "future": 1}, "future": 1}],
            "imagePullSecrets": [{"name": "s", "future": 1}],
            "template": {"spec": {"containers": [{"image": "nginx"}]}, "future": 1},
            "jobTemplate": {"spec": {"containers": [{"image": "nginx"}]}, "future": 1},
            "future": 1
        });
        let object = json!({
            "metadata": {"name": "p", "generateName": "p-", "namespace": "app-1",
                "annotations": {"future": "x"}, "future": 1},
            "spec": spec,
            "template": {"spec": {"containers": [{"image": "nginx"}]}, "future": 1},
            "future": 1
        });
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "future": 1,
            "request": {
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod", "future": 1},
                "subResource": "ephemeralcontainers", "name": "p", "namespace": "app-1",
                "operation": "UPDATE", "userInfo": {"username": "alice", "future": 1},
                "object": object, "oldObject": object, "dryRun": false, "future": 1
            }
        })
    }

    /// Every (JSON pointer of an object, key) in `v`.
    fn members(v: &Value, at: String, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    out.push((at.clone(), k.clone()));
                    members(child, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    members(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_read_field_refuses_a_repeat_and_unknown_ones_do_not() {
        let full = full_review();
        assert!(Request::parse(full.to_string().as_bytes()).is_ok());
        let mut all = Vec::new();
        members(&full, String::new(), &mut all);
        assert!(all.len() > 60, "{}", all.len());
        for (at, key) in all {
            let mut v = full.clone();
            let value = v.pointer(&format!("{at}/{key}")).unwrap().clone();
            v.pointer_mut(&at).unwrap()["__dup__"] = value;
            let text = v.to_string().replace("\"__dup__\":", &format!("{key:?}:"));
            let read = Request::parse(text.as_bytes());
            assert_eq!(read.is_ok(), key == "future", "{at}/{key} twice: {read:?}");
        }
    }

    #[test]
    fn depth_is_bounded_in_skipped_values_too() {
        // The envelope and the request are two levels.
        let with = |depth: usize| {
            let deep = "[".repeat(depth - 2) + &"]".repeat(depth - 2);
            let v = full_review().to_string();
            v.replacen("\"future\":1", &format!("\"future\":{deep}"), 2)
        };
        assert!(Request::parse(with(wire::MAX_DEPTH).as_bytes()).is_ok());
        let err = Request::parse(with(wire::MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(err.0.contains("nests deeper than 128 levels"), "{err}");
        // Brackets inside strings are not nesting.
        let quoted = format!("\"{}\\\"{}\"", "[".repeat(200), "{".repeat(200));
        let v = full_review().to_string();
        let body = v.replacen("\"future\":1", &format!("\"future\":{quoted}"), 1);
        assert!(Request::parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn read_strings_are_decoded_and_must_be_text() {
        let v = full_review().to_string();
        let read = |body: &[u8]| Request::parse(body).map(|r| r.uid.into_owned());
        let uid = |u: &str| v.replacen("\"uid\":\"u\"", &format!("\"uid\":\"{u}\""), 1);
        assert_eq!(
            read(uid(r"u\u0061\ud83d\ude00\/").as_bytes()).unwrap(),
            "ua\u{1f600}/"
        );
        for lone in [r"\ud800", r"\udc00x", r"\ud800\u0041"] {
            assert!(read(uid(lone).as_bytes()).is_err(), "{lone} read");
            // Where it is skipped, a lone surrogate is not looked at.
            let skipped = v.replacen("\"future\":1", &format!("\"future\":\"{lone}\""), 1);
            assert!(read(skipped.as_bytes()).is_ok(), "{lone} skipped");
        }
        let not_utf8 = |body: String, needle: &str| {
            let at = body.find(needle).unwrap() + 1;
            let mut bytes = body.into_bytes();
            bytes[at] = 0xff;
            bytes
        };
        assert!(read(&not_utf8(uid("ux"), "\"ux\"")).is_err(), "read value");
        assert!(
            read(&not_utf8(v.clone(), "\"future\"")).is_err(),
            "key of a read object"
        );
        let skipped = v.replacen("\"future\":1", "\"future\":\"ab\"", 1);
        assert!(read(&not_utf8(skipped, "\"ab\"")).is_ok(), "skipped value");
    }

    proptest::proptest! {
        /// The request fields read by our types are those a `serde_json::Value` walk
        /// finds, with other fields of any name around them.
        #[test]
        fn reads_the_request_fields_a_value_walk_finds(
            strings in proptest::collection::vec(proptest::prelude::any::<String>(), 5),
            extra in proptest::collection::btree_map("[a-zA-Z]{1,12}", 0u8..3, 0..6),
        ) {
            let mut v = full_review();
            let req = &mut v["request"];
            for (field, s) in ["uid", "name", "namespace"].iter().zip(&strings) {
                req[*field] = json!(format!("x{s}"));
            }
            req["userInfo"]["username"] = json!(strings[3]);
            req["object"]["metadata"]["generateName"] = json!(strings[4]);
            for (k, n) in extra {
                if req.get(&k).is_none() {
                    req[k] = json!(vec![n; usize::from(n)]);
                }
            }
            let text = v.to_string();
            let r = Request::parse(text.as_bytes()).unwrap();
            let walked = &v["request"];
            proptest::prop_assert_eq!(&*r.uid, walked["uid"].as_str().unwrap());
            proptest::prop_assert_eq!(r.name.as_deref(), walked["name"].as_str());
            proptest::prop_assert_eq!(r.namespace(), walked["namespace"].as_str().unwrap());
            proptest::prop_assert_eq!(r.user(), walked["userInfo"]["username"].as_str().unwrap());
            let meta = r.object.as_ref().and_then(|o| o.metadata.as_ref());
            proptest::prop_assert_eq!(
                meta.and_then(|m| m.generate_name.as_deref()),
                walked["object"]["metadata"]["generateName"].as_str()
            );
        }
    }

    /// What kube-core's response type writes for the same answer.
    fn kube_core_response(uid: &str, denial: Option<String>, parts: &ResponseParts) -> Value {
        let mut resp = AdmissionResponse::invalid("");
        resp.uid = uid.to_string();
        resp.allowed = denial.is_none();
        resp.result = match denial {
            None => Status {
                status: Some(StatusSummary::Success),
                ..Status::default()
            },
            Some(message) => Status {
                status: Some(StatusSummary::Failure),
                code: 403,
                message,
                reason: "Forbidden".into(),
                ..Status::default()
            },
        };
        resp.audit_annotations = parts
            .audit_annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        resp.warnings = (!parts.warnings.is_empty()).then(|| parts.warnings.clone());
        serde_json::to_value(resp.into_review()).unwrap()
    }

    #[test]
    fn responses_are_what_kube_core_writes() {
        let annotations = vec![
            ("decision", "deny".to_string()),
            ("denied-images", "a,\"b\"".to_string()),
        ];
        for denial in [None, Some("image \"x\" denied\n".to_string())] {
            for (annotations, warnings) in [
                (vec![], vec![]),
                (annotations.clone(), vec![]),
                (
                    annotations.clone(),
                    vec!["w1".to_string(), "w\u{1}2".to_string()],
                ),
            ] {
                let parts = ResponseParts {
                    warnings,
                    audit_annotations: annotations,
                    patch: None,
                };
                let expected = kube_core_response("u-1", denial.clone(), &parts);
                let ours: Value =
                    serde_json::from_slice(&respond("u-1", denial.clone(), parts)).unwrap();
                assert_eq!(ours, expected);
            }
        }
    }

    #[test]
    fn the_patch_is_base64_json_patch() {
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/spec/imagePullSecrets", "value": [{"name": "s"}]}
        ]))
        .unwrap();
        let parts = ResponseParts {
            patch: Some(patch.clone()),
            ..ResponseParts::default()
        };
        let v: Value = serde_json::from_slice(&respond("u-1", None, parts)).unwrap();
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert!(v["response"]["patch"].is_string(), "{v}");
        let bytes = crate::admission::testing::patch_bytes(&v["response"]).unwrap();
        assert_eq!(
            serde_json::from_slice::<json_patch::Patch>(&bytes).unwrap(),
            patch
        );
    }

    /// Every member a response can have, byte for byte, and the shortest answer.
    #[test]
    fn a_full_response_is_these_bytes() {
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "add", "path": "/spec/imagePullSecrets", "value": [{"name": "s"}]}
        ]))
        .unwrap();
        let parts = ResponseParts {
            warnings: vec!["w1".into(), "w\u{1}\"2\"".into()],
            audit_annotations: vec![
                ("decision", "deny".into()),
                ("denied-images", "a,\"b\"".into()),
            ],
            patch: Some(patch),
        };
        let body = respond("u-1", Some("image \"x\" denied\n".into()), parts);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"#,
                r#""uid":"u-1","allowed":false,"status":{"status":"Failure","code":403,"#,
                r#""message":"image \"x\" denied\n","reason":"Forbidden"},"#,
                r#""patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvaW1hZ2VQdWxsU2VjcmV0cyIsInZhbHVlIjpbeyJuYW1lIjoicyJ9XX1d","#,
                r#""patchType":"JSONPatch","#,
                r#""auditAnnotations":{"decision":"deny","denied-images":"a,\"b\""},"#,
                r#""warnings":["w1","w\u0001\"2\""]}}"#,
            )
        );
        let allowed = respond("u-2", None, ResponseParts::default());
        assert_eq!(
            String::from_utf8(allowed).unwrap(),
            concat!(
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"#,
                r#""uid":"u-2","allowed":true,"status":{"status":"Success"}}}"#,
            )
        );
    }
}
