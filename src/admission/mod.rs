//! Admission: from an AdmissionReview body to its [`Outcome`]: the HTTP answer, the
//! verdict, the audit record and the Event to write. [`Admission::review`] is the one
//! entry point; it parses once (the object through [`crate::object`]), calls the pure
//! decision and maps the result. `pullgate check` uses [`Admission::judge_object`], the
//! same path without the envelope. The warnings on an admin's change are not judged here:
//! they come from a [`ChangeWarnings`] handed in (`crate::whatif`, which reads this
//! module's review types and so sits above it).

pub mod diff;
pub mod patch;
pub mod review;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;
use std::time::Instant;

use review::{BadReview, Operation, Request, ResponseParts};

use crate::audit_record::{self, AuditRecord, MAX_ECHOED, MAX_LISTED};
use crate::index::{Snapshot, Table};
use crate::object::{Kind, Object};
use crate::policy::{self, decide::explain, Decision, Policy, Verdict};
use crate::wire::out::clip;

/// Audit annotation keys. The apiserver prefixes them with the webhook's name
/// (`validate.pullgate.io/decision`); a key holding a `/` itself would be dropped.
pub const ANNOTATION_DECISION: &str = "decision";
pub const ANNOTATION_DENIED: &str = "denied-images";

/// Warnings: once a response's warnings pass 4,096 characters, the apiserver cuts each
/// to 256 characters and drops those that follow. So each warning is kept within 256
/// bytes and all of them within 4,096, the last one saying how many were left out.
const WARNING_BYTES: usize = 256;
/// The apiserver's bound on all the warnings of one response, in bytes.
pub const WARNINGS_BYTES: usize = 4096;

/// Which webhook is being answered: the two admission routes of the TLS port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Webhook {
    /// `POST /validate`
    Validate,
    /// `POST /mutate`
    Mutate,
}

impl Webhook {
    /// The route's name as used in metric labels: `validate` or `mutate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// Everything one review leads to: what the server sends, what it counts, what is
/// logged and what is reported.
#[derive(Debug)]
pub struct Outcome {
    /// 200 with a review, or 400 for a body that is not a usable AdmissionReview.
    pub status: u16,
    /// JSON, sent as `application/json`.
    pub body: Vec<u8>,
    /// The policy verdict (for metrics); `None` for a 400.
    pub verdict: Option<Verdict>,
    /// The audit record (validating webhook only).
    pub audit: Option<AuditRecord>,
    /// A workload denied for real (not a Pod, not a dry run): the Event to write about it.
    pub event: Option<WorkloadDenied>,
}

/// A denied workload, as its Event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadDenied {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// The sentences about the denied images, joined; the Event writer cuts it to its
    /// limit, so it is built only a little beyond [`MAX_ECHOED`].
    pub message: String,
}

/// The admission service: policy settings plus the live binding table.
pub struct Admission {
    pub policy: Policy,
    /// The pull Secret `/mutate` injects; empty: none (`--pull-credentials provider`).
    pub pull_secret_name: String,
    pub table: Arc<Table>,
    /// The warnings on an admin's change (the `changes.pullgate.io` webhook); `None`
    /// gives no such warnings.
    pub changes: Option<Arc<dyn ChangeWarnings>>,
}

/// Warnings a validating review gets besides those of its own verdict: those naming
/// the running workloads an admin's change would newly deny (`crate::whatif::Warnings`).
pub trait ChangeWarnings: Send + Sync {
    /// The warnings for one review (`body` is the request as received); empty for a
    /// review they are not about.
    fn warnings(&self, policy: &Policy, req: &Request<'_>, body: &[u8]) -> Vec<String>;
}

/// A decision with what the response needs to know about the request.
struct Judged<'a> {
    decision: Option<Decision>,
    object: Option<Box<Object<'a>>>,
    kind: Option<Kind>,
}

impl Admission {
    /// Answers one AdmissionReview body.
    pub fn review(&self, webhook: Webhook, body: &[u8]) -> Outcome {
        let start = Instant::now();
        let snap = self.table.load();
        let mut req = match Request::parse(body) {
            Ok(r) => r,
            Err(e) => return bad(&e),
        };
        let (object, old_object) = (req.object.take(), req.old_object.take());
        let judged = match self.judge(&req, object, old_object, &snap) {
            Ok(j) => j,
            Err(e) => return bad(&e),
        };
        match webhook {
            Webhook::Validate => {
                let change_warnings = match &self.changes {
                    Some(c) => c.warnings(&self.policy, &req, body),
                    None => Vec::new(),
                };
                self.validate(&req, judged, &snap, start, change_warnings)
            }
            Webhook::Mutate => self.mutate(&req, &judged),
        }
    }

    fn judge<'a>(
        &self,
        req: &Request<'a>,
        object: Option<Box<Object<'a>>>,
        old_object: Option<Box<Object<'a>>>,
        snap: &Snapshot,
    ) -> Result<Judged<'a>, BadReview> {
        let op = req.operation;
        let (Some(kind), Operation::Create | Operation::Update) = (req.judged, op) else {
            return Ok(Judged {
                decision: None,
                object: None,
                kind: Kind::from_group_kind(&req.kind.group, &req.kind.kind),
            });
        };
        let object =
            object.ok_or_else(|| BadReview(format!("{} request has no object", op.as_str())))?;
        let mut images = object.images(kind);
        // On UPDATE only new or changed images are judged; without an old object, all are.
        let old_object = old_object.filter(|_| op == Operation::Update);
        if let Some(old) = &old_object {
            images = diff::changed(images, &old.images(kind));
        }
        let decision = policy::decide(
            &policy::Request {
                namespace: req.namespace(),
                images: &images,
                mirror_pod_by_node: kind == Kind::Pod
                    && object.has_mirror_annotation()
                    && req.user().starts_with("system:node:"),
                stale: self.table.is_stale(),
            },
            snap,
            &self.policy,
        );
        Ok(Judged {
            decision: Some(decision),
            object: Some(object),
            kind: Some(kind),
        })
    }

    fn validate(
        &self,
        req: &Request<'_>,
        judged: Judged<'_>,
        snap: &Snapshot,
        start: Instant,
        change_warnings: Vec<String>,
    ) -> Outcome {
        let ns = req.namespace();
        let mut parts = ResponseParts {
            warnings: change_warnings,
            ..ResponseParts::default()
        };
        let mut denial = None;
        let mut event_message = None;
        let (verdict, mode, images) = match judged.decision {
            Some(d) => {
                let verdict = d.verdict();
                let denied = d.denied().count();
                parts
                    .audit_annotations
                    .push((ANNOTATION_DECISION, verdict.as_str().to_string()));
                if denied > 0 {
                    parts
                        .audit_annotations
                        .push((ANNOTATION_DENIED, denied_images(&d, denied)));
                }
                match verdict {
                    Verdict::Deny => {
                        denial = Some(denial_message(&d, ns, denied));
                        event_message = Some(event_message_of(&d, ns));
                    }
                    Verdict::Warn => parts.warnings = warnings(&d, ns, denied),
                    Verdict::Allow | Verdict::Audit => {}
                }
                let images = audit_record::bounded_images_of(d.images, ns, denied);
                (verdict, d.mode, images)
            }
            None => (
                Verdict::Allow,
                self.policy.mode,
                audit_record::Listed::default(),
            ),
        };
        let body = review::respond(&req.uid, denial, parts);
        let name = judged
            .object
            .as_ref()
            .map(|o| o.display_name())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| req.name.as_deref().unwrap_or_default());
        let record = AuditRecord {
            time: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            uid: clip(&req.uid, MAX_ECHOED).into_owned(),
            operation: req.operation.as_str(),
            kind: clip(&req.kind.kind, MAX_ECHOED).into_owned(),
            namespace: clip(ns, MAX_ECHOED).into_owned(),
            name: clip(name, MAX_ECHOED).into_owned(),
            user: clip(req.user(), MAX_ECHOED).into_owned(),
            dry_run: req.dry_run.unwrap_or(false),
            mode: mode.flag_name(),
            decision: verdict.as_str(),
            images: images.images,
            omitted_images: images.omitted,
            omitted_denied: images.omitted_denied,
            revision: snap.revision(),
            latency_us: start.elapsed().as_micros() as u64,
        };
        let event = match (event_message, judged.kind) {
            (Some(message), Some(kind)) if kind != Kind::Pod && !record.dry_run => {
                Some(WorkloadDenied {
                    kind,
                    namespace: record.namespace.clone(),
                    name: record.name.clone(),
                    message,
                })
            }
            _ => None,
        };
        Outcome {
            status: 200,
            body,
            verdict: Some(verdict),
            audit: Some(record),
            event,
        }
    }

    /// Never denies; patches Pod CREATE when an image needs credentials.
    fn mutate(&self, req: &Request<'_>, judged: &Judged<'_>) -> Outcome {
        let mut parts = ResponseParts::default();
        let is_pod_create = judged.kind == Some(Kind::Pod)
            && req.sub_resource.is_none()
            && req.operation == Operation::Create;
        if let (true, Some(d), Some(spec)) = (
            is_pod_create,
            &judged.decision,
            judged.object.as_ref().and_then(|o| o.spec.as_ref()),
        ) {
            if d.needs_credentials() && !self.pull_secret_name.is_empty() {
                parts.patch = patch::pull_secret_patch(spec, &self.pull_secret_name);
            }
        }
        Outcome {
            status: 200,
            body: review::respond(&req.uid, None, parts),
            verdict: Some(Verdict::Allow),
            audit: None,
            event: None,
        }
    }

    /// Judges one object as a CREATE in `namespace` (the `check` command's path).
    pub fn judge_object(&self, kind: Kind, object: &Object<'_>, namespace: &str) -> Decision {
        let images = object.images(kind);
        policy::decide(
            &policy::Request {
                namespace,
                images: &images,
                mirror_pod_by_node: false,
                stale: self.table.is_stale(),
            },
            &self.table.load(),
            &self.policy,
        )
    }
}

/// The `denied-images` annotation: the first [`MAX_LISTED`] denied images, then the
/// count of the others.
fn denied_images(d: &Decision, denied: usize) -> String {
    let mut value = String::new();
    for (i, v) in d.denied().take(MAX_LISTED).enumerate() {
        if i > 0 {
            value.push(',');
        }
        value.push_str(&clip(&v.image, MAX_ECHOED));
    }
    if denied > MAX_LISTED {
        value.push_str(&format!(",(and {} more)", denied - MAX_LISTED));
    }
    value
}

/// The denial message: one sentence per denied image for the first [`MAX_LISTED`],
/// then the count of the others.
fn denial_message(d: &Decision, namespace: &str, denied: usize) -> String {
    let mut sentences = d
        .denied()
        .take(MAX_LISTED)
        .map(|v| clip(&explain(v, namespace), MAX_ECHOED).into_owned());
    if denied == 1 {
        return sentences.next().unwrap_or_default();
    }
    let mut message = format!(
        "{denied} images are not allowed: {}",
        sentences.collect::<Vec<_>>().join("; ")
    );
    if denied > MAX_LISTED {
        message.push_str(&format!("; and {} more", denied - MAX_LISTED));
    }
    message
}

/// The message of a denied workload's Event: the sentences about its denied images
/// joined with `; `, stopping once past [`MAX_ECHOED`] bytes (so a workload with
/// thousands of denied containers costs no more than that).
fn event_message_of(d: &Decision, namespace: &str) -> String {
    let mut out = String::new();
    for v in d.denied() {
        if out.len() > MAX_ECHOED {
            break;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&clip(&explain(v, namespace), MAX_ECHOED));
    }
    out
}

/// The warnings of `warn` mode: one per denied image while they fit the apiserver's
/// limits ([`WARNING_BYTES`] each, [`WARNINGS_BYTES`] in all), then the count of the
/// others.
fn warnings(d: &Decision, namespace: &str, denied: usize) -> Vec<String> {
    // Room for the last warning, "and N more images are not allowed".
    const TRAILER: usize = 64;
    let mut out = Vec::new();
    let mut total = 0;
    for v in d.denied() {
        let sentence = clip(&explain(v, namespace), WARNING_BYTES).into_owned();
        let room = if out.len() + 1 == denied {
            WARNINGS_BYTES
        } else {
            WARNINGS_BYTES - TRAILER
        };
        if total + sentence.len() > room {
            break;
        }
        total += sentence.len();
        out.push(sentence);
    }
    if out.len() < denied {
        out.push(format!(
            "and {} more images are not allowed",
            denied - out.len()
        ));
    }
    out
}

fn bad(e: &BadReview) -> Outcome {
    Outcome {
        status: 400,
        body: review::bad_request_body(e),
        verdict: None,
        audit: None,
        event: None,
    }
}
