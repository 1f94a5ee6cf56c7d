//! The audit record of SPEC §5: one JSON line per decision, on tracing target
//! `pullgate::audit`. It holds image names and verdicts, never credentials.

use serde::Serialize;

use crate::api::{Enforcement, Visibility};
use crate::policy::{decide::explain, Decision, ImageVerdict, Location};

/// Tracing target of audit lines.
pub const TARGET: &str = "pullgate::audit";

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: String,
    pub uid: String,
    pub operation: &'static str,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub user: String,
    pub dry_run: bool,
    pub mode: &'static str,
    pub decision: &'static str,
    pub images: Vec<AuditImage>,
    pub revision: u64,
    pub latency_us: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditImage {
    pub image: String,
    pub container: String,
    pub location: Location,
    pub registry: Option<String>,
    pub space: Option<String>,
    pub visibility: Option<Visibility>,
    pub verdict: &'static str,
    pub reason: &'static str,
    /// The sentence the developer sees, for an image that is not allowed (building it
    /// for every allowed image was a tenth of a review's cost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AuditImage {
    /// `explain_allowed`: the sentence also for an allowed image (`check` prints one per
    /// image; the audit log keeps them for images not allowed).
    pub fn from_verdict(v: &ImageVerdict, namespace: &str, explain_allowed: bool) -> AuditImage {
        AuditImage {
            image: v.image.clone(),
            container: v.container.clone(),
            location: v.location,
            registry: v.registry.clone(),
            space: v.space.clone(),
            visibility: v.visibility,
            verdict: if v.allowed { "allow" } else { "deny" },
            reason: v.reason.code(),
            message: (explain_allowed || !v.allowed).then(|| explain(v, namespace)),
        }
    }
}

pub fn mode_str(mode: Enforcement) -> &'static str {
    match mode {
        Enforcement::Enforce => "enforce",
        Enforcement::Warn => "warn",
        Enforcement::Audit => "audit",
    }
}

pub fn images_of(decision: &Decision, namespace: &str, explain_allowed: bool) -> Vec<AuditImage> {
    decision
        .images
        .iter()
        .map(|v| AuditImage::from_verdict(v, namespace, explain_allowed))
        .collect()
}

impl AuditRecord {
    /// Writes the record as one JSON line: straight to the audit writer when logging
    /// is set up (`logging::init`), otherwise as an event on the audit target.
    pub fn emit(&self) {
        let mut line = Vec::with_capacity(256 + 512 * self.images.len());
        if serde_json::to_writer(&mut line, self).is_err() {
            return;
        }
        line.push(b'\n');
        if crate::logging::write_audit_line(&line) {
            return;
        }
        line.pop();
        if let Ok(line) = std::str::from_utf8(&line) {
            tracing::info!(target: TARGET, "{line}");
        }
    }
}
