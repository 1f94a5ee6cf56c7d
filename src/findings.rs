//! Findings on running workloads (README, "Background audit and reports"): which images of the Pods and workload
//! templates already in the cluster the current binding table would deny, judged with
//! the admission decision itself ([`policy::decide()`](crate::policy::decide()) over an
//! [`Snapshot`]). Pure:
//! no IO, no async, no Kubernetes client. It keeps nothing between calls; the caller
//! keeps the [`Workload`]s (read from watched objects or files by [`workload`]) and the
//! snapshots.
//!
//! How to use it:
//!
//! - Keep one [`Workload`] per watched Pod, Deployment, StatefulSet, DaemonSet,
//!   ReplicaSet, ReplicationController, Job, CronJob and PodTemplate: kind, namespace,
//!   name, uid, controller owner and the image of each container/volume, nothing else
//!   ([`workload::from_value`] builds one from an object's JSON; an object
//!   that cannot be read becomes a workload whose [`Content`] is `Unreadable`, judged as
//!   a finding of its own with reason [`UNREADABLE`]).
//! - [`judge_all`] judges a set of workloads and reports a Pod's finding once, under
//!   its controller, when the controller's template says the same (same image at the
//!   same container, denied for the same reason); ReplicaSets fold under their
//!   Deployment and Jobs under their CronJob the same way. Owners always live in the
//!   namespace of what they own, so judging one namespace's workloads at a time gives
//!   the same findings as judging all of them (what an incremental re-judge needs).
//!   [`judge`] judges one workload without folding.
//! - [`diff`] compares two tables over the same workloads (`pullgate audit --what-if`,
//!   and the warnings on an admin's change in [`crate::whatif`]); [`newly_denied`] keeps
//!   only the workloads the second table denies more images of.
//!
//! A finding exists whatever the mode: it says what admission would deny, and its
//! `mode` says what admission does about it (`Enforce` denies, `Warn` warns, `Audit`
//! only records). Exempt namespaces and mirror pods have no findings (admission allows
//! them untouched). The table is taken as current: a stale table is the caller's to
//! report.

#[cfg(test)]
mod tests;
pub mod workload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::api::Enforcement;
use crate::index::Snapshot;
use crate::object::Kind;
use crate::policy::{self, decide::explain, ImageUse, Location, Policy};

/// The reason code of a finding about an object that could not be read.
pub const UNREADABLE: &str = "unreadable";

/// An object's `metadata.uid`, kept as 16 bytes rather than a 36-character string
/// (100,000 pods hold two each: their own and their owner's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Uid(u128);

impl Uid {
    /// A UUID in its usual text form (the only form the apiserver writes); `None` for
    /// anything else, which then matches by name alone.
    pub fn parse(text: &str) -> Option<Uid> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let dashes_ok = text.len() == 36
            && [8, 13, 18, 23]
                .iter()
                .all(|i| text.as_bytes().get(*i) == Some(&b'-'));
        if !dashes_ok || hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(Uid)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

/// The controller of a workload (its `ownerReferences` entry with `controller: true`),
/// when that is a kind pullgate judges; the others cannot fold anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: Kind,
    pub name: Box<str>,
    pub uid: Option<Uid>,
}

/// One image location of a workload: a container, init container, ephemeral container
/// or image volume, with its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    pub location: Location,
    pub container: Box<str>,
    pub image: Arc<str>,
}

/// What a workload holds for judging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// The images of its pods (the pod's own, or its template's), in field order.
    Images(Box<[Use]>),
    /// It could not be read; why (already bounded and free of secrets).
    Unreadable(Box<str>),
}

/// A running Pod or workload, reduced to what judging needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: Kind,
    /// Shared by every workload of the namespace when the caller interns it.
    pub namespace: Arc<str>,
    pub name: Box<str>,
    pub uid: Option<Uid>,
    pub owner: Option<Owner>,
    /// A mirror pod (annotation `kubernetes.io/config.mirror`): the kubelet runs it from
    /// a static manifest, admission lets the node create it untouched, so it has no
    /// findings.
    pub mirror: bool,
    pub content: Content,
}

impl Workload {
    /// A readable workload with these images.
    pub fn new(
        kind: Kind,
        namespace: impl Into<Arc<str>>,
        name: impl Into<Box<str>>,
        images: impl IntoIterator<Item = Use>,
    ) -> Workload {
        Workload {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            uid: None,
            owner: None,
            mirror: false,
            content: Content::Images(images.into_iter().collect()),
        }
    }

    /// A workload that could not be read.
    pub fn unreadable(
        kind: Kind,
        namespace: impl Into<Arc<str>>,
        name: impl Into<Box<str>>,
        why: impl Into<Box<str>>,
    ) -> Workload {
        Workload {
            content: Content::Unreadable(why.into()),
            ..Workload::new(kind, namespace, name, [])
        }
    }

    /// `Kind/namespace/name`, as warnings and text output name it.
    pub fn display(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// Whether `owner` names this workload (same namespace assumed): same kind and
    /// name, and the same uid when both are known (a controller deleted and created
    /// again under the same name is another object).
    fn is(&self, owner: &Owner) -> bool {
        self.kind == owner.kind
            && self.name == owner.name
            && match (self.uid, owner.uid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// One image of a workload the table denies (or a workload that could not be read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// Where the image is used; `None` for an unreadable object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The container (or image volume) name; empty for an unreadable object.
    pub container: String,
    /// The image reference as written; empty for an unreadable object.
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// A stable code: a [`policy::Reason::code`] of a denial (`notBound`, `unmanaged`,
    /// `noSpace`, …) or [`UNREADABLE`].
    pub reason: &'static str,
    /// The sentence admission would answer (names only this namespace).
    pub message: String,
    /// The namespace's effective mode: what admission does about it.
    pub mode: Enforcement,
}

impl Finding {
    /// What identifies a finding within its workload across two tables: the image
    /// use, whatever the reason.
    fn key(&self) -> (Option<Location>, &str, &str) {
        (self.location, &self.container, &self.image)
    }

    /// The same denial: the same use denied for the same reason.
    fn same_as(&self, other: &Finding) -> bool {
        self.key() == other.key() && self.reason == other.reason
    }
}

/// Judges one workload against a table (no folding): one finding per denied image use,
/// in field order, or one [`UNREADABLE`] finding.
pub fn judge(snap: &Snapshot, policy: &Policy, w: &Workload) -> Vec<Finding> {
    if w.mirror || policy.exempt_namespaces.iter().any(|n| **n == *w.namespace) {
        return Vec::new();
    }
    let mode = snap.mode_of(&w.namespace, policy.mode);
    let finding = |location, container: &str, image: &str| Finding {
        kind: w.kind,
        namespace: w.namespace.to_string(),
        name: w.name.to_string(),
        location,
        container: container.to_string(),
        image: image.to_string(),
        registry: None,
        space: None,
        reason: UNREADABLE,
        message: String::new(),
        mode,
    };
    let uses = match &w.content {
        Content::Images(uses) => uses,
        Content::Unreadable(why) => {
            let mut f = finding(None, "", "");
            f.message = format!(
                "{} {:?} cannot be read, so its images cannot be judged: {why}",
                w.kind, w.name
            );
            return vec![f];
        }
    };
    let images: Vec<ImageUse<'_>> = uses
        .iter()
        .map(|u| ImageUse {
            image: &u.image,
            location: u.location,
            name: &u.container,
        })
        .collect();
    let decision = policy::decide(
        &policy::Request {
            namespace: &w.namespace,
            images: &images,
            mirror_pod_by_node: false,
            stale: false,
        },
        snap,
        policy,
    );
    decision
        .denied()
        .map(|v| Finding {
            registry: v.registry.clone(),
            space: v.space.clone(),
            reason: v.reason.code(),
            message: explain(v, &w.namespace),
            ..finding(Some(v.location), &v.container, &v.image)
        })
        .collect()
}

/// Judges a set of workloads, each finding reported once: a finding of a workload
/// whose controller is in the set and has the same finding is left to the controller
/// (Pod under ReplicaSet under Deployment, Pod under Job under CronJob, …). Findings
/// come in the order of `workloads`.
pub fn judge_all(snap: &Snapshot, policy: &Policy, workloads: &[Workload]) -> Vec<Finding> {
    judge_each(snap, policy, workloads)
        .into_iter()
        .flatten()
        .collect()
}

/// [`judge_all`], per workload (index for index).
pub fn judge_each(snap: &Snapshot, policy: &Policy, workloads: &[Workload]) -> Vec<Vec<Finding>> {
    let raw: Vec<Vec<Finding>> = workloads.iter().map(|w| judge(snap, policy, w)).collect();
    fold(workloads, raw)
}

/// Drops the findings each workload's controller reports too. Compared with the
/// controller's own findings before its folding, so a chain folds to its top.
fn fold(workloads: &[Workload], raw: Vec<Vec<Finding>>) -> Vec<Vec<Finding>> {
    let controllers = Controllers::of(workloads);
    // Which findings the controller reports too, decided before any is moved.
    let covered: Vec<Vec<bool>> = raw
        .iter()
        .enumerate()
        .map(
            |(i, findings)| match controllers.of_workload(workloads, i) {
                Some(p) => findings
                    .iter()
                    .map(|f| raw[p].iter().any(|c| c.same_as(f)))
                    .collect(),
                None => Vec::new(),
            },
        )
        .collect();
    raw.into_iter()
        .zip(covered)
        .map(|(findings, covered)| {
            findings
                .into_iter()
                .enumerate()
                .filter(|(j, _)| !covered.get(*j).copied().unwrap_or(false))
                .map(|(_, f)| f)
                .collect()
        })
        .collect()
}

/// Where each workload that may control others sits in the set.
struct Controllers<'w> {
    by_name: HashMap<(&'w str, Kind, &'w str), usize>,
}

impl<'w> Controllers<'w> {
    fn of(workloads: &'w [Workload]) -> Controllers<'w> {
        let owners: HashSet<Kind> = workloads
            .iter()
            .filter_map(|w| w.owner.as_ref().map(|o| o.kind))
            .collect();
        let by_name = workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| owners.contains(&w.kind))
            .map(|(i, w)| ((&*w.namespace, w.kind, &*w.name), i))
            .collect();
        Controllers { by_name }
    }

    /// The index of workload `i`'s controller, when it is in the set.
    fn of_workload(&self, workloads: &[Workload], i: usize) -> Option<usize> {
        let w = &workloads[i];
        let owner = w.owner.as_ref()?;
        let p = *self
            .by_name
            .get(&(&*w.namespace, owner.kind, &*owner.name))?;
        (p != i && workloads[p].is(owner)).then_some(p)
    }
}

/// How one workload's findings differ between two tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<'w> {
    pub workload: &'w Workload,
    /// Findings under the second table whose image use the first allowed.
    pub newly_denied: Vec<Finding>,
    /// Findings under the first table whose image use the second allows (as the first
    /// table judged them).
    pub newly_allowed: Vec<Finding>,
}

impl Change<'_> {
    /// At least one image use of the workload is newly denied.
    pub fn is_newly_denied(&self) -> bool {
        !self.newly_denied.is_empty()
    }
}

/// The workloads whose findings differ between `before` and `after` (each folded as
/// [`judge_all`] folds). A workload with an image use denied under `after` and allowed
/// under `before` is newly denied, even if another of its images was denied already:
/// the change breaks that image. The reason of a use denied under both may change
/// without a change here. Newly denied workloads come first, each group sorted by
/// namespace, kind and name.
pub fn diff<'w>(
    before: &Snapshot,
    after: &Snapshot,
    policy: &Policy,
    workloads: &'w [Workload],
) -> Vec<Change<'w>> {
    let old = judge_each(before, policy, workloads);
    let new = judge_each(after, policy, workloads);
    let mut changes: Vec<Change<'w>> = workloads
        .iter()
        .zip(old.into_iter().zip(new))
        .filter_map(|(w, (old, new))| {
            let newly_denied: Vec<Finding> = new
                .iter()
                .filter(|f| !old.iter().any(|o| o.key() == f.key()))
                .cloned()
                .collect();
            let newly_allowed: Vec<Finding> = old
                .into_iter()
                .filter(|o| !new.iter().any(|f| o.key() == f.key()))
                .collect();
            (!newly_denied.is_empty() || !newly_allowed.is_empty()).then_some(Change {
                workload: w,
                newly_denied,
                newly_allowed,
            })
        })
        .collect();
    let order = |c: &Change<'w>| {
        let w = c.workload;
        (
            !c.is_newly_denied(),
            w.namespace.clone(),
            w.kind.as_str(),
            &*w.name,
        )
    };
    changes.sort_by(|a, b| order(a).cmp(&order(b)));
    changes
}

/// The workloads `after` newly denies compared with `before` (see [`diff`]), sorted by
/// namespace, kind and name.
pub fn newly_denied<'w>(
    before: &Snapshot,
    after: &Snapshot,
    policy: &Policy,
    workloads: &'w [Workload],
) -> Vec<Change<'w>> {
    let mut changes = diff(before, after, policy, workloads);
    changes.retain(Change::is_newly_denied);
    changes
}
