//! AdmissionReview `admission.k8s.io/v1` in and out. The request is read in one pass by
//! [`json::Reader`] into borrowed structs holding only the fields pullgate needs, objects
//! included. An object that is JSON but not the shape pullgate reads is skipped and
//! remembered: it makes the request invalid only for a kind pullgate judges. The
//! response is kube-core's `AdmissionResponse`.

use std::borrow::Cow;

use kube::core::response::StatusSummary;
use kube::core::Status;

use super::json::{self, ErrorKind, Reader, Seen, MAX_DEPTH};
use super::json_out;
use super::object::{Kind, Object};

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// The longest `request.uid` answered (the apiserver sends UUIDs).
pub const MAX_UID_BYTES: usize = 256;

/// Why a body is not an AdmissionReview pullgate can judge (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// The request fields pullgate reads.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub uid: Cow<'a, str>,
    pub kind: GroupVersionKind<'a>,
    pub sub_resource: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Cow<'a, str>,
    pub user_info: UserInfo<'a>,
    // Boxed: the request is moved several times while it is read.
    pub object: Option<Box<Object<'a>>>,
    pub old_object: Option<Box<Object<'a>>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default)]
pub struct GroupVersionKind<'a> {
    pub group: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Default)]
pub struct UserInfo<'a> {
    pub username: Option<Cow<'a, str>>,
}

/// The operations of an admission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
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

/// An object field as read: absent or null, read, or JSON of another shape (the error
/// says why, and matters only for a judged kind).
type ObjectField<'a> = Result<Option<Box<Object<'a>>>, json::Error>;

impl<'a> Request<'a> {
    /// Reads and checks an AdmissionReview.
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, BadReview> {
        let mut r = Reader::new(body);
        let envelope = read_envelope(&mut r)
            .and_then(|envelope| r.end().map(|_| envelope))
            .map_err(|e| match e.kind() {
                ErrorKind::TooDeep => {
                    BadReview(format!("body nests deeper than {MAX_DEPTH} levels"))
                }
                _ => BadReview(format!("body is not a valid AdmissionReview: {e}")),
            })?;
        let (mut req, object, old_object) = envelope.check()?;
        let judged = req.judged_kind()?.is_some()
            && matches!(req.op()?, Operation::Create | Operation::Update);
        let take = |field: ObjectField<'a>, name: &str| match field {
            Ok(o) => Ok(o),
            Err(e) if judged => Err(BadReview(format!(
                "request.{name} is not a valid {}: {e}",
                req.kind.kind
            ))),
            Err(_) => Ok(None),
        };
        let object = take(object, "object")?;
        let old_object = take(old_object, "oldObject")?;
        req.object = object;
        req.old_object = old_object;
        Ok(req)
    }
}

/// The request with its two objects as read.
type RequestParts<'a> = (Request<'a>, ObjectField<'a>, ObjectField<'a>);

struct Envelope<'a> {
    api_version: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    request: Option<RequestParts<'a>>,
}

impl<'a> Envelope<'a> {
    /// The request, when the envelope is an `admission.k8s.io/v1` AdmissionReview.
    fn check(self) -> Result<RequestParts<'a>, BadReview> {
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
        let parts = self
            .request
            .ok_or_else(|| BadReview("AdmissionReview has no request".into()))?;
        if parts.0.uid.is_empty() {
            return Err(BadReview("request.uid is empty".into()));
        }
        // The answer echoes the uid; the apiserver's are UUIDs (36 characters).
        if parts.0.uid.len() > MAX_UID_BYTES {
            return Err(BadReview(format!(
                "request.uid is longer than {MAX_UID_BYTES} bytes"
            )));
        }
        parts.0.op()?;
        Ok(parts)
    }
}

fn read_envelope<'a>(r: &mut Reader<'a>) -> json::Result<Envelope<'a>> {
    let mut e = Envelope {
        api_version: None,
        kind: None,
        request: None,
    };
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            b"apiVersion" => e.api_version = seen.field(r, "apiVersion", Reader::string)?,
            b"kind" => e.kind = seen.field(r, "kind", Reader::string)?,
            b"request" => e.request = seen.field(r, "request", read_request)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(e)
}

fn read_request<'a>(r: &mut Reader<'a>) -> json::Result<RequestParts<'a>> {
    let mut q = Request::default();
    let (mut object, mut old_object) = (Ok(None), Ok(None));
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            b"uid" => q.uid = seen.value(r, "uid", Reader::string)?,
            b"kind" => q.kind = seen.value(r, "kind", read_gvk)?,
            b"subResource" => q.sub_resource = seen.field(r, "subResource", Reader::string)?,
            b"name" => q.name = seen.field(r, "name", Reader::string)?,
            b"namespace" => q.namespace = seen.field(r, "namespace", Reader::string)?,
            b"operation" => q.operation = seen.value(r, "operation", Reader::string)?,
            b"userInfo" => q.user_info = seen.value(r, "userInfo", read_user)?,
            b"object" => object = seen.field(r, "object", read_object)?.unwrap_or(Ok(None)),
            b"oldObject" => {
                old_object = seen.field(r, "oldObject", read_object)?.unwrap_or(Ok(None))
            }
            b"dryRun" => q.dry_run = seen.field(r, "dryRun", Reader::bool)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    for required in ["uid", "kind", "operation"] {
        if !seen.has(required) {
            return Err(r.shape_error(format!("missing field `{required}`")));
        }
    }
    Ok((q, object, old_object))
}

fn read_gvk<'a>(r: &mut Reader<'a>) -> json::Result<GroupVersionKind<'a>> {
    let mut k = GroupVersionKind::default();
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            b"group" => k.group = seen.value(r, "group", Reader::string)?,
            b"version" => k.version = seen.value(r, "version", Reader::string)?,
            b"kind" => k.kind = seen.value(r, "kind", Reader::string)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    if !seen.has("kind") {
        return Err(r.shape_error("missing field `kind`"));
    }
    Ok(k)
}

fn read_user<'a>(r: &mut Reader<'a>) -> json::Result<UserInfo<'a>> {
    let mut u = UserInfo::default();
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            b"username" => u.username = seen.field(r, "username", Reader::string)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(u)
}

/// An object, or, when it is JSON of another shape, the reason, with the value skipped.
fn read_object<'a>(r: &mut Reader<'a>) -> json::Result<ObjectField<'a>> {
    let mark = r.mark();
    match Object::read(r) {
        Ok(o) => Ok(Ok(Some(Box::new(o)))),
        Err(e) if e.kind() == ErrorKind::Shape => {
            r.rewind(mark);
            r.skip()?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

impl Request<'_> {
    /// The kind whose pods are judged, if this request is one pullgate judges (a
    /// covered kind, or the `ephemeralcontainers` subresource of a Pod).
    pub fn judged_kind(&self) -> Result<Option<Kind>, BadReview> {
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

    pub fn op(&self) -> Result<Operation, BadReview> {
        Ok(match &*self.operation {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            other => return Err(BadReview(format!("unknown operation {other:?}"))),
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
    let mut review = json_out::Object::new(&mut out);
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
    use serde_json::Value;

    use super::*;

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
}
