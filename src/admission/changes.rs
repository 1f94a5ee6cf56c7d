//! Warnings on an admin's change (SPEC §11): an AdmissionReview of a Registry,
//! RegistrySpace or Workspace (CREATE, UPDATE, DELETE) is always allowed, and its
//! `warnings` name the running workloads the change would newly deny. The change is
//! applied to the objects of the current table, both tables are built, and
//! [`findings::newly_denied`] compares them over the running workloads.
//!
//! What it is computed from comes from a [`Running`] the server holds: the objects the
//! current table was built from, and the running workloads. [`Shared`] is the plain
//! one (a cell for each, filled by whoever builds the table and whoever watches the
//! workloads); in standalone mode it holds no workloads, so no change warns. Anything
//! that keeps the check from running (no objects yet, an object that cannot be read)
//! still allows, with a warning saying the check could not run (the webhook entry's
//! `failurePolicy: Ignore` says the same for a timeout).

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::review::Request;
use super::{clip, WARNINGS_BYTES};
use crate::api::{Registry, RegistrySpace, Workspace, GROUP};
use crate::findings::{self, Change, Workload};
use crate::index::{Objects, Snapshot};
use crate::policy::Policy;

/// Workloads named one by one in the warnings; past it they are counted (SPEC §11).
pub const MAX_NAMED: usize = 20;

/// Bytes of one warning naming a workload: 20 of them, the first and the last line fit
/// the apiserver's 4,096 bytes of warnings ([`WARNINGS_BYTES`]).
const NAMED_BYTES: usize = 180;

/// What a change is judged against.
pub struct Current {
    /// The objects the current table was built from.
    pub objects: Arc<Objects>,
    /// The running workloads.
    pub workloads: Arc<Vec<Workload>>,
}

/// Where the server finds the current objects and the running workloads.
pub trait Running: Send + Sync {
    /// Both, or why they cannot be had (the check then warns that it could not run).
    fn current(&self) -> Result<Current, String>;
}

/// A [`Running`] made of two cells: `set_objects` by the table's source on every
/// revision, `set_workloads` by whoever watches the workloads.
#[derive(Default)]
pub struct Shared {
    objects: ArcSwapOption<Objects>,
    workloads: ArcSwap<Vec<Workload>>,
}

impl Shared {
    pub fn set_objects(&self, objects: Arc<Objects>) {
        self.objects.store(Some(objects));
    }

    pub fn set_workloads(&self, workloads: Arc<Vec<Workload>>) {
        self.workloads.store(workloads);
    }
}

impl Running for Shared {
    fn current(&self) -> Result<Current, String> {
        let workloads = self.workloads.load_full();
        if workloads.is_empty() {
            // Nothing runs (or nothing is watched, as in standalone mode): nothing to
            // warn about, whether the objects are known or not.
            return Ok(Current {
                objects: Arc::default(),
                workloads,
            });
        }
        let objects = self
            .objects
            .load_full()
            .ok_or("the current objects are not known yet")?;
        Ok(Current { objects, workloads })
    }
}

/// The fields of the review read here (the rest was read by [`Request`]).
#[derive(Deserialize)]
struct Review {
    request: ReviewRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    object: Option<Value>,
}

/// Which of pullgate's kinds a review is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrKind {
    Registry,
    RegistrySpace,
    Workspace,
}

/// The warnings for a review of one of pullgate's own kinds; empty for any other
/// review, and for a change that newly denies nothing.
pub fn warnings(
    running: Option<&dyn Running>,
    policy: &Policy,
    req: &Request<'_>,
    body: &[u8],
) -> Vec<String> {
    if req.kind.group != GROUP {
        return Vec::new();
    }
    let kind = match &*req.kind.kind {
        "Registry" => CrKind::Registry,
        "RegistrySpace" => CrKind::RegistrySpace,
        "Workspace" => CrKind::Workspace,
        _ => return Vec::new(),
    };
    let Some(running) = running else {
        return Vec::new();
    };
    match check(running, policy, kind, &req.operation, body) {
        Ok(changes) => warn_of(&changes),
        Err(why) => vec![clip(
            &format!(
                "pullgate could not check which running workloads this change would deny: {why}"
            ),
            NAMED_BYTES,
        )
        .into_owned()],
    }
}

/// The workloads the change newly denies (only their names are kept).
fn check(
    running: &dyn Running,
    policy: &Policy,
    kind: CrKind,
    operation: &str,
    body: &[u8],
) -> Result<Vec<Named>, String> {
    let current = running.current()?;
    if current.workloads.is_empty() {
        return Ok(Vec::new());
    }
    let review: Review =
        serde_json::from_slice(body).map_err(|e| format!("the review cannot be read: {e}"))?;
    let req = review.request;
    let mut after = (*current.objects).clone();
    match operation {
        "CREATE" | "UPDATE" => {
            let object = req.object.ok_or("the review has no object")?;
            match kind {
                CrKind::Registry => put(&mut after.registries, typed::<Registry>(object)?),
                CrKind::RegistrySpace => put(&mut after.spaces, typed::<RegistrySpace>(object)?),
                CrKind::Workspace => put(&mut after.workspaces, typed::<Workspace>(object)?),
            }
        }
        "DELETE" => {
            let name = req.name.unwrap_or_default();
            match kind {
                CrKind::Registry => remove(&mut after.registries, &name),
                CrKind::RegistrySpace => remove(&mut after.spaces, &name),
                CrKind::Workspace => remove(&mut after.workspaces, &name),
            }
        }
        _ => return Ok(Vec::new()),
    }
    let before = Snapshot::build(&current.objects, 1);
    let after = Snapshot::build(&after, 2);
    let changes = findings::newly_denied(&before, &after, policy, &current.workloads);
    Ok(changes.iter().map(Named::of).collect())
}

fn typed<T: DeserializeOwned>(object: Value) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| format!("the object cannot be read: {e}"))
}

/// Inserts `object`, replacing the one of the same name.
fn put<T: kube::ResourceExt>(list: &mut Vec<T>, object: T) {
    let name = object.name_any();
    list.retain(|o| o.name_any() != name);
    list.push(object);
}

fn remove<T: kube::ResourceExt>(list: &mut Vec<T>, name: &str) {
    list.retain(|o| o.name_any() != name);
}

/// A newly denied workload as a warning names it.
struct Named {
    workload: String,
    image: String,
    reason: &'static str,
    more: usize,
}

impl Named {
    fn of(c: &Change<'_>) -> Named {
        let first = &c.newly_denied[0];
        Named {
            workload: format!(
                "{} {}/{}",
                c.workload.kind, c.workload.namespace, c.workload.name
            ),
            image: first.image.clone(),
            reason: first.reason,
            more: c.newly_denied.len() - 1,
        }
    }
}

/// One warning saying how many, one per workload for the first [`MAX_NAMED`], then
/// the count of the others.
fn warn_of(named: &[Named]) -> Vec<String> {
    if named.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "this change would newly deny {} running workload{} (pullgate audit --what-if shows each image):",
        named.len(),
        if named.len() == 1 { "" } else { "s" }
    )];
    for n in named.iter().take(MAX_NAMED) {
        let more = match n.more {
            0 => String::new(),
            m => format!(" and {m} more"),
        };
        let line = format!("{}: image {:?} ({}){more}", n.workload, n.image, n.reason);
        out.push(clip(&line, NAMED_BYTES).into_owned());
    }
    if named.len() > MAX_NAMED {
        out.push(format!("and {} more", named.len() - MAX_NAMED));
    }
    debug_assert!(out.iter().map(String::len).sum::<usize>() <= WARNINGS_BYTES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(i: usize) -> Named {
        Named {
            workload: format!("Deployment ns-{i}/{}", "x".repeat(300)),
            image: "i".repeat(300),
            reason: "notBound",
            more: 0,
        }
    }

    #[test]
    fn twenty_are_named_then_counted_within_the_apiservers_limits() {
        let all: Vec<Named> = (0..25).map(named).collect();
        let w = warn_of(&all);
        assert_eq!(w.len(), 1 + MAX_NAMED + 1);
        assert!(w[0].contains("newly deny 25 running workloads"), "{}", w[0]);
        assert_eq!(w[MAX_NAMED + 1], "and 5 more");
        assert!(w.iter().all(|l| l.len() <= 256));
        assert!(w.iter().map(String::len).sum::<usize>() <= WARNINGS_BYTES);
        let w = warn_of(&all[..MAX_NAMED]);
        assert_eq!(w.len(), 1 + MAX_NAMED);
        assert!(warn_of(&[]).is_empty());
    }
}
