//! Admission: from an AdmissionReview body to the response, the patch and the audit
//! record. [`Admission::review`] is the one entry point; it parses once, calls the pure
//! decision and maps the result. `pullgate check` uses [`Admission::judge_object`], the
//! same path without the envelope.

pub mod audit;
mod json_out;
pub mod object;
pub mod patch;
pub mod review;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use audit::AuditRecord;
use object::{Kind, Object};
use review::{BadReview, Operation, Request, ResponseParts};

use crate::index::{Snapshot, Table};
use crate::policy::{self, Decision, Policy, Verdict};

/// Audit annotation keys. The apiserver prefixes them with the webhook's name
/// (`validate.pullgate.io/decision`); a key holding a `/` itself would be dropped.
pub const ANNOTATION_DECISION: &str = "decision";
pub const ANNOTATION_DENIED: &str = "denied-images";

/// Which webhook is being answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
}

/// The answer to one review.
#[derive(Debug)]
pub struct Reviewed {
    /// 200 with a review, or 400 for a body that is not a usable AdmissionReview.
    pub status: u16,
    pub body: Vec<u8>,
    /// The policy verdict (for metrics); `None` for a 400.
    pub verdict: Option<Verdict>,
    /// The audit record (validating webhook only).
    pub audit: Option<AuditRecord>,
}

/// The admission service: policy settings plus the live binding table.
pub struct Admission {
    pub policy: Policy,
    pub pull_secret_name: String,
    pub table: Arc<Table>,
}

/// A decision with what the response needs to know about the request.
struct Judged<'a> {
    decision: Option<Decision>,
    object: Option<Box<Object<'a>>>,
    kind: Option<Kind>,
}

impl Admission {
    /// Answers one AdmissionReview body.
    pub fn review(&self, webhook: Webhook, body: &[u8]) -> Reviewed {
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
            Webhook::Validate => self.validate(&req, judged, &snap, start),
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
        let op = req.op()?;
        let judged = req.judged_kind()?;
        let (Some(kind), Operation::Create | Operation::Update) = (judged, op) else {
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
            images = object::changed(images, &old.images(kind));
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
    ) -> Reviewed {
        let ns = req.namespace();
        let mut parts = ResponseParts::default();
        let mut denial = None;
        let (verdict, mode, images) = match judged.decision {
            Some(d) => {
                let verdict = d.verdict();
                let denied: Vec<&str> = d.denied().map(|v| v.image.as_str()).collect();
                parts
                    .audit_annotations
                    .push((ANNOTATION_DECISION, verdict.as_str().to_string()));
                if !denied.is_empty() {
                    parts
                        .audit_annotations
                        .push((ANNOTATION_DENIED, denied.join(",")));
                }
                match verdict {
                    Verdict::Deny => denial = Some(d.message()),
                    Verdict::Warn => parts.warnings = d.denial_messages(),
                    Verdict::Allow | Verdict::Audit => {}
                }
                (verdict, d.mode, audit::images_of(d.images, ns, false))
            }
            None => (Verdict::Allow, self.policy.mode, Vec::new()),
        };
        let body = review::respond(&req.uid, denial, parts);
        let name = judged
            .object
            .as_ref()
            .map(|o| o.display_name().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| req.name.as_deref().unwrap_or_default().to_string());
        let record = AuditRecord {
            time: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            uid: req.uid.to_string(),
            operation: req.op().map(Operation::as_str).unwrap_or_default(),
            kind: req.kind.kind.to_string(),
            namespace: ns.to_string(),
            name,
            user: req.user().to_string(),
            dry_run: req.dry_run.unwrap_or(false),
            mode: audit::mode_str(mode),
            decision: verdict.as_str(),
            images,
            revision: snap.revision(),
            latency_us: start.elapsed().as_micros() as u64,
        };
        Reviewed {
            status: 200,
            body,
            verdict: Some(verdict),
            audit: Some(record),
        }
    }

    /// Never denies; patches Pod CREATE when an image needs credentials.
    fn mutate(&self, req: &Request<'_>, judged: &Judged<'_>) -> Reviewed {
        let mut parts = ResponseParts::default();
        let is_pod_create = judged.kind == Some(Kind::Pod)
            && req.sub_resource.is_none()
            && req.op().ok() == Some(Operation::Create);
        if let (true, Some(d), Some(spec)) = (
            is_pod_create,
            &judged.decision,
            judged.object.as_ref().and_then(|o| o.spec.as_ref()),
        ) {
            if d.needs_credentials() {
                parts.patch = patch::pull_secret_patch(spec, &self.pull_secret_name);
            }
        }
        Reviewed {
            status: 200,
            body: review::respond(&req.uid, None, parts),
            verdict: Some(Verdict::Allow),
            audit: None,
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

fn bad(e: &BadReview) -> Reviewed {
    Reviewed {
        status: 400,
        body: review::bad_request_body(e),
        verdict: None,
        audit: None,
    }
}
