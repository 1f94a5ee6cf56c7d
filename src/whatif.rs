//! What an admin's change would newly deny among the running workloads: the warnings of
//! the `changes.pullgate.io` webhook (README, "Background audit and reports"). An
//! AdmissionReview of a Registry, RegistrySpace or Workspace (CREATE, UPDATE, DELETE) is
//! always allowed, and its `warnings` name the running workloads the change would newly
//! deny. The change is applied to the objects of the current table, both tables are
//! built, and [`findings::newly_denied`] compares them over the running workloads of the
//! namespaces the change can reach.
//!
//! What it is judged against comes from a [`Running`] the server holds: the objects the
//! current table was built from, and the running workloads by namespace, each
//! namespace's list shared with whoever keeps it (a review copies no workload).
//! [`Shared`] is the plain one (a cell for each, filled by whoever builds the table and
//! whoever watches the workloads); in standalone mode it holds no workloads, so no
//! change warns. Anything that keeps the check from running (no objects yet, an object
//! that cannot be read) still allows, with a warning saying the check could not run (the
//! webhook entry's `failurePolicy: Ignore` says the same for a timeout).
//!
//! Admission calls it through [`Warnings`], an [`admission::ChangeWarnings`]: admission
//! sits below this module (the workloads are read with its reader, [`findings::workload`]).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::admission::review::{Operation, Request};
use crate::admission::{self, WARNINGS_BYTES};
use crate::api::{CrKind, Registry, RegistrySpace, Workspace, GROUP};
use crate::findings::{self, Change, Content, Workload};
use crate::index::{Objects, Snapshot};
use crate::policy::{ImageRef, Policy};
use crate::wire::out::clip;

/// Workloads named one by one in the warnings; past it they are counted (README, "Background audit and reports").
pub const MAX_NAMED: usize = 20;

/// Bytes of one warning naming a workload: 20 of them, the first and the last line fit
/// the apiserver's 4,096 bytes of warnings ([`WARNINGS_BYTES`]).
const NAMED_BYTES: usize = 180;

/// The running workloads by namespace (only namespaces with some), each in its own list.
pub type ByNamespace = BTreeMap<Arc<str>, Arc<[Workload]>>;

/// What a change is judged against.
pub struct Current {
    /// The objects the current table was built from.
    pub objects: Arc<Objects>,
    /// The running workloads: the keeper's own per-namespace `Arc`s, so handing them
    /// out copies no workload (100,000 pods would be a spike per review).
    pub workloads: ByNamespace,
}

/// Groups `workloads` by namespace, keeping their order within each.
fn by_namespace(workloads: impl IntoIterator<Item = Workload>) -> ByNamespace {
    let mut by: BTreeMap<Arc<str>, Vec<Workload>> = BTreeMap::new();
    for w in workloads {
        by.entry(w.namespace.clone()).or_default().push(w);
    }
    by.into_iter().map(|(ns, ws)| (ns, ws.into())).collect()
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
    workloads: ArcSwap<ByNamespace>,
}

impl Shared {
    pub fn set_objects(&self, objects: Arc<Objects>) {
        self.objects.store(Some(objects));
    }

    /// Replaces the running workloads (grouped here, once).
    pub fn set_workloads(&self, workloads: Vec<Workload>) {
        self.workloads.store(Arc::new(by_namespace(workloads)));
    }
}

impl Running for Shared {
    fn current(&self) -> Result<Current, String> {
        // A copy of the map of `Arc`s, not of the workloads.
        let workloads = ByNamespace::clone(&self.workloads.load());
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

/// The warnings on an admin's change, judged against a [`Running`]: what admission is
/// handed (`Admission::changes`).
pub struct Warnings(pub Arc<dyn Running>);

impl admission::ChangeWarnings for Warnings {
    fn warnings(&self, policy: &Policy, req: &Request<'_>, body: &[u8]) -> Vec<String> {
        warnings(&*self.0, policy, req, body)
    }
}

/// The warnings for a review of one of pullgate's own kinds; empty for any other
/// review, and for a change that newly denies nothing.
fn warnings(running: &dyn Running, policy: &Policy, req: &Request<'_>, body: &[u8]) -> Vec<String> {
    if req.kind.group != GROUP {
        return Vec::new();
    }
    let Some(kind) = CrKind::from_kind(&req.kind.kind) else {
        return Vec::new();
    };
    match check(running, policy, kind, req.operation, body) {
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
    operation: Operation,
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
    let name = match operation {
        Operation::Create | Operation::Update => {
            let object = req.object.ok_or("the review has no object")?;
            match kind {
                CrKind::Registry => put(&mut after.registries, typed::<Registry>(object)?),
                CrKind::RegistrySpace => put(&mut after.spaces, typed::<RegistrySpace>(object)?),
                CrKind::Workspace => put(&mut after.workspaces, typed::<Workspace>(object)?),
            }
        }
        Operation::Delete => {
            let name = req.name.unwrap_or_default();
            match kind {
                CrKind::Registry => remove(&mut after.registries, &name),
                CrKind::RegistrySpace => remove(&mut after.spaces, &name),
                CrKind::Workspace => remove(&mut after.workspaces, &name),
            }
            name
        }
        _ => return Ok(Vec::new()),
    };
    // At scale this judges every affected workload twice (hundreds of milliseconds at
    // 100,000 pods): off the runtime's worker, so the reviews it serves go on.
    Ok(off_the_worker(|| {
        newly_denied(&current, &after, kind, &name, policy, true)
    }))
}

/// The workloads newly denied when `current.objects` become `after` by a change of the
/// `kind` object `name`, in namespace order; only the namespaces the change can affect
/// are judged when `scoped` (the tests compare both ways). Each namespace is judged on
/// its own: owners live in the namespace of what they own, so the findings are those of
/// judging all of them at once, without gathering them into one list.
fn newly_denied(
    current: &Current,
    after: &Objects,
    kind: CrKind,
    name: &str,
    policy: &Policy,
    scoped: bool,
) -> Vec<Named> {
    let before = Snapshot::build(&current.objects, 1);
    let after_snap = Snapshot::build(after, 2);
    let scope = match scoped {
        true => Scope::of(
            kind,
            name,
            (&current.objects, &before),
            (after, &after_snap),
        ),
        false => Scope::Everything,
    };
    scope
        .select(&current.workloads)
        .into_iter()
        .flat_map(|ws| findings::newly_denied(&before, &after_snap, policy, ws))
        .map(|c| Named::of(&c))
        .collect()
}

/// Runs `f` where a long computation does not hold up the runtime: through
/// `block_in_place` on a multi-thread runtime's worker, directly anywhere else.
fn off_the_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Which workloads a change can affect, as whole namespaces (so every workload keeps its
/// controller beside it): those of a Workspace's members, before and after; or those
/// using an image of a host the changed Registry (or the Registry of the changed
/// RegistrySpace) claims, before or after. `Everything` when that cannot be told (a
/// Registry skipped as invalid claims its hosts without being listed).
enum Scope {
    Namespaces(HashSet<String>),
    Hosts(HashSet<String>),
    Everything,
}

impl Scope {
    fn of(
        kind: CrKind,
        name: &str,
        before: (&Objects, &Snapshot),
        after: (&Objects, &Snapshot),
    ) -> Scope {
        let sides = [before, after];
        match kind {
            CrKind::Workspace => Scope::Namespaces(
                sides
                    .iter()
                    .flat_map(|(_, snap)| snap.workspaces().iter().filter(|w| w.name == name))
                    .flat_map(|w| w.namespaces.iter().cloned())
                    .collect(),
            ),
            CrKind::Registry | CrKind::RegistrySpace => {
                let registries: HashSet<&str> = match kind {
                    CrKind::Registry => HashSet::from([name]),
                    _ => sides
                        .iter()
                        .flat_map(|(objects, _)| objects.spaces.iter())
                        .filter(|s| s.name_any() == name)
                        .map(|s| s.spec.registry.as_str())
                        .collect(),
                };
                let mut hosts = HashSet::new();
                for (objects, snap) in sides {
                    for r in &registries {
                        let declared = objects.registries.iter().any(|o| o.name_any() == *r);
                        match snap.registries().iter().find(|e| e.name == *r) {
                            Some(e) => hosts.extend(e.host_keys.iter().cloned()),
                            None if declared => return Scope::Everything,
                            None => {}
                        }
                    }
                }
                Scope::Hosts(hosts)
            }
        }
    }

    /// The workload lists of the affected namespaces, in namespace order (borrowed, not
    /// copied).
    fn select<'w>(&self, workloads: &'w ByNamespace) -> Vec<&'w [Workload]> {
        workloads
            .iter()
            .filter(|(namespace, list)| match self {
                Scope::Everything => true,
                Scope::Namespaces(names) => names.contains(&***namespace),
                Scope::Hosts(hosts) => list.iter().any(|w| match &w.content {
                    Content::Images(uses) => uses.iter().any(|u| {
                        ImageRef::parse(&u.image).is_ok_and(|i| hosts.contains(i.host_key()))
                    }),
                    Content::Unreadable(_) => false,
                }),
            })
            .map(|(_, list)| &**list)
            .collect()
    }
}

fn typed<T: DeserializeOwned>(object: Value) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| format!("the object cannot be read: {e}"))
}

/// Inserts `object`, replacing the one of the same name; returns the name.
fn put<T: ResourceExt>(list: &mut Vec<T>, object: T) -> String {
    let name = object.name_any();
    list.retain(|o| o.name_any() != name);
    list.push(object);
    name
}

fn remove<T: ResourceExt>(list: &mut Vec<T>, name: &str) {
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
