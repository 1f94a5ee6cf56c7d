//! The JSONPatch of the mutating webhook: append the pull Secret to
//! `spec.imagePullSecrets`, computed from the request's own object (no re-serialisation
//! of a typed Pod), touching nothing else.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::json;

use crate::object::Spec;

/// The patch adding `secret` to the pod's pull Secrets, or `None` when it is already
/// there (so applying the webhook to its own output changes nothing).
pub fn pull_secret_patch(spec: &Spec<'_>, secret: &str) -> Option<Patch> {
    let entry = json!({ "name": secret });
    let (path, value) = match &spec.image_pull_secrets {
        Some(list) if list.iter().any(|r| r.name.as_deref() == Some(secret)) => return None,
        Some(_) => ("/spec/imagePullSecrets/-", entry),
        // Absent or null: create the list.
        None => ("/spec/imagePullSecrets", json!([entry])),
    };
    Some(Patch(vec![PatchOperation::Add(AddOperation {
        path: PointerBuf::parse(path).ok()?,
        value,
    })]))
}
