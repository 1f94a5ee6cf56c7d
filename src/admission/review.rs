//! AdmissionReview `admission.k8s.io/v1` in and out. The request is decoded in one pass
//! into borrowed structs holding only the fields pullgate needs, objects included; when
//! that fails, a second pass keeps the objects raw and decodes them only for judged
//! kinds, so an object pullgate does not judge never makes a request invalid. The
//! response is kube-core's `AdmissionResponse`.

use std::borrow::Cow;

use kube::core::admission::AdmissionResponse;
use kube::core::response::StatusSummary;
use kube::core::Status;
use serde::Deserialize;

use super::object::{Kind, Object};
use serde_json::value::RawValue;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// Deepest JSON nesting accepted anywhere in a body (serde_json's own limit for the
/// fields it decodes; this extends it to the fields it skips). Real objects stay near 20.
const MAX_DEPTH: usize = 128;

/// Whether JSON text nests deeper than `limit` (strings skipped, escapes honoured).
/// Malformed text is left to the parser. Strings, where most of a pod's bytes are, are
/// skipped with `memchr2` rather than byte by byte.
fn too_deep(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                loop {
                    let Some(j) = body
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        // Unterminated string: malformed, and no deeper than seen so far.
                        return false;
                    };
                    i += j;
                    if body[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// Why a body is not an AdmissionReview pullgate can judge (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "O: Deserialize<'de>"))]
struct Envelope<'a, O> {
    #[serde(borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<Request<'a, O>>,
}

/// The request fields pullgate reads; `O` is how the objects are held (decoded, or raw
/// JSON in the fallback pass).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "O: Deserialize<'de>"))]
pub struct Request<'a, O = Object<'a>> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub operation: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
    #[serde(default)]
    pub object: Option<O>,
    #[serde(default)]
    pub old_object: Option<O>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
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

impl<'a> Request<'a> {
    /// Decodes and checks an AdmissionReview.
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, BadReview> {
        if too_deep(body, MAX_DEPTH) {
            return Err(BadReview(format!(
                "body nests deeper than {MAX_DEPTH} levels"
            )));
        }
        if let Ok(env) = serde_json::from_slice::<Envelope<'a, Object<'a>>>(body) {
            return env.check();
        }
        let raw = serde_json::from_slice::<Envelope<'a, &'a RawValue>>(body)
            .map_err(|e| BadReview(format!("body is not a valid AdmissionReview: {e}")))?
            .check()?;
        let judged = raw.judged_kind()?.is_some()
            && matches!(raw.op()?, Operation::Create | Operation::Update);
        let decode = |o: Option<&'a RawValue>, field: &str| match o {
            Some(o) if judged => Object::parse(o.get()).map(Some).map_err(|e| {
                BadReview(format!(
                    "request.{field} is not a valid {}: {e}",
                    raw.kind.kind
                ))
            }),
            _ => Ok(None),
        };
        let object = decode(raw.object, "object")?;
        let old_object = decode(raw.old_object, "oldObject")?;
        Ok(Request {
            object,
            old_object,
            uid: raw.uid,
            kind: raw.kind,
            sub_resource: raw.sub_resource,
            name: raw.name,
            namespace: raw.namespace,
            operation: raw.operation,
            user_info: raw.user_info,
            dry_run: raw.dry_run,
        })
    }
}

impl<'a, O> Envelope<'a, O> {
    /// The request, when the envelope is an `admission.k8s.io/v1` AdmissionReview.
    fn check(self) -> Result<Request<'a, O>, BadReview> {
        if self.api_version.as_deref() != Some(API_VERSION) {
            return Err(BadReview(format!(
                "apiVersion must be {API_VERSION:?}, got {:?}",
                self.api_version.as_deref().unwrap_or_default()
            )));
        }
        if self.kind.as_deref() != Some(KIND) {
            return Err(BadReview(format!(
                "kind must be {KIND:?}, got {:?}",
                self.kind.as_deref().unwrap_or_default()
            )));
        }
        let req = self
            .request
            .ok_or_else(|| BadReview("AdmissionReview has no request".into()))?;
        if req.uid.is_empty() {
            return Err(BadReview("request.uid is empty".into()));
        }
        req.op()?;
        Ok(req)
    }
}

impl<O> Request<'_, O> {
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

/// Serialises the AdmissionReview response for `uid`.
pub fn respond(uid: &str, denial: Option<String>, parts: ResponseParts) -> Vec<u8> {
    // `invalid` is the only constructor that needs no parsed request; every field it
    // sets is overwritten here.
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
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if !parts.warnings.is_empty() {
        resp.warnings = Some(parts.warnings);
    }
    if let Some(patch) = parts.patch {
        // Serialising a patch of plain JSON values cannot fail; without it, no patch.
        resp = match resp.clone().with_patch(patch) {
            Ok(r) => r,
            Err(_) => resp,
        };
    }
    serde_json::to_vec(&resp.into_review()).unwrap_or_default()
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
    use super::too_deep;
    use proptest::prelude::*;

    /// The plain byte-by-byte scan that `too_deep` must agree with.
    fn too_deep_reference(body: &[u8], limit: usize) -> bool {
        let mut depth = 0usize;
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'"' => {
                    i += 1;
                    while i < body.len() && body[i] != b'"' {
                        i += if body[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        false
    }

    #[test]
    fn strings_and_escapes_are_skipped() {
        assert!(!too_deep(br#"{"a":"[[[[\"[[[["}"#, 2));
        assert!(too_deep(br#"{"a":"\\",[[1]]}"#, 2));
        assert!(!too_deep(br#"{"a":"unterminated [[[[["#, 2));
        assert!(!too_deep(br#"{"a":"ends in a backslash \"#, 2));
    }

    proptest! {
        #[test]
        fn agrees_with_the_byte_scan(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(&b"{"[..]), Just(&b"}"[..]), Just(&b"["[..]), Just(&b"]"[..]),
                    Just(&b"\""[..]), Just(&b"\\"[..]), Just(&b"a"[..]), Just(&b","[..]),
                ],
                0..64,
            ),
            limit in 0usize..6,
        ) {
            let body: Vec<u8> = parts.concat();
            prop_assert_eq!(too_deep(&body, limit), too_deep_reference(&body, limit));
        }
    }
}
