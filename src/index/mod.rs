//! The binding table: an immutable [`Snapshot`] of registries, spaces, workspaces and
//! namespace memberships, built from the API objects by [`Snapshot::build`] and read by
//! admission without locks. A new snapshot (with a higher revision) replaces the old one
//! on every change; nothing here does IO.

mod build;
#[cfg(test)]
mod builder_tests;
mod host;
mod selector;
mod table;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{
    CrKind, Enforcement, Registry, RegistrySpace, RegistryType, SecretRef, Visibility, Workspace,
};
use crate::reference::ImageRef;

pub use build::with_name_label;
pub use host::{parse_host_port, parse_registry_url, RegistryUrl, DOCKER_HUB_HOSTS};
pub use table::Table;

/// The table's maps, hit a few times per image: foldhash is several times faster than
/// SipHash on short keys. Their keys come from cluster objects; requests only look up.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A namespace as the binding table needs it: its name and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Everything a snapshot is built from.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub registries: Vec<Registry>,
    pub spaces: Vec<RegistrySpace>,
    pub workspaces: Vec<Workspace>,
    pub namespaces: Vec<NamespaceInfo>,
    /// Whether `namespaces` is the complete list of the cluster's namespaces (cluster
    /// mode). Then a namespace missing from it is "not known yet" rather than unlabelled.
    pub namespaces_complete: bool,
}

/// An object that could not be used as written, and why. Skipped objects never stop
/// the rest of the table from being built.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub kind: CrKind,
    pub name: String,
    pub message: String,
}

pub(crate) type RegistryId = u32;
pub(crate) type SpaceId = u32;
pub(crate) type WorkspaceId = u32;

/// An integrated registry with its host spellings and spaces.
#[derive(Debug)]
pub struct RegistryEntry {
    pub name: String,
    pub registry_type: RegistryType,
    pub url: RegistryUrl,
    /// Every `host[:port]` key (lower case) that reaches this registry.
    pub host_keys: Vec<String>,
    spaces: HashMap<String, SpaceId>,
    wildcard: Option<SpaceId>,
    /// Most path components of any of its spaces (bounds the prefix search).
    max_depth: usize,
}

/// A space of a registry, merged from one RegistrySpace object (or several, in conflict).
#[derive(Debug)]
pub struct SpaceEntry {
    pub registry: String,
    pub space: String,
    /// Names of the RegistrySpace objects that declare it (more than one: conflict).
    pub objects: Vec<String>,
    pub visibility: Visibility,
    /// Names of bound workspaces that exist, sorted.
    pub workspaces: Vec<String>,
    workspace_ids: Vec<WorkspaceId>,
    pub pull_secret_ref: Option<SecretRef>,
}

impl SpaceEntry {
    /// Whether pods pulling from this space get pull credentials injected.
    pub fn needs_credentials(&self) -> bool {
        self.visibility == Visibility::Private || self.pull_secret_ref.is_some()
    }

    /// Whether two RegistrySpace objects declare this space.
    pub fn in_conflict(&self) -> bool {
        self.objects.len() > 1
    }
}

/// A workspace after resolution.
#[derive(Debug)]
pub struct WorkspaceEntry {
    pub name: String,
    pub enforcement: Option<Enforcement>,
    /// Resolved member namespaces, sorted.
    pub namespaces: Vec<String>,
}

/// Where an image reference lands in the binding table.
#[derive(Debug)]
pub enum Resolution<'s> {
    /// No integrated registry has this host.
    Unmanaged,
    /// Several Registries claim this host; judged as denied (fail closed).
    HostConflict(&'s [String]),
    /// A Registry whose spec is unusable (a bad URL) claims this host; judged as denied,
    /// never as unmanaged (fail closed).
    Unusable(&'s str),
    /// The registry is integrated but no space matches the path.
    NoSpace(&'s RegistryEntry),
    /// The space that matched.
    Space(&'s RegistryEntry, &'s SpaceEntry),
}

#[derive(Debug)]
enum HostOwner {
    One(RegistryId),
    Many(Vec<String>),
    /// Only a Registry that was skipped as invalid claims the host.
    Unusable(String),
}

/// The immutable binding table.
#[derive(Debug, Default)]
pub struct Snapshot {
    revision: u64,
    registries: Vec<RegistryEntry>,
    spaces: Vec<SpaceEntry>,
    /// What depends on the namespaces alone; shared with the snapshots before and after
    /// while the namespaces do not change.
    namespaces: Arc<build::NamespacePart>,
    /// The workspaces and who belongs to them; shared while neither the workspaces nor the
    /// namespaces change.
    memberships: Arc<build::WorkspacePart>,
    hosts: HashMap<String, HostOwner>,
    problems: Vec<Problem>,
}

/// The inputs of a snapshot with each kind shared by `Arc`, as the cluster feed keeps
/// them: after a change of one kind only that list is replaced, and a [`Builder`]
/// reuses what it derived from the others.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub registries: Arc<Vec<Registry>>,
    pub spaces: Arc<Vec<RegistrySpace>>,
    pub workspaces: Arc<Vec<Workspace>>,
    /// Each namespace shared too: the cluster feed keeps them sorted by name and with
    /// [`with_name_label`], and the table then shares this list rather than copying it.
    pub namespaces: SharedNamespaces,
    /// As [`Objects::namespaces_complete`].
    pub namespaces_complete: bool,
}

impl Inputs {
    /// A copy as plain [`Objects`].
    pub fn to_objects(&self) -> Objects {
        Objects {
            registries: self.registries.to_vec(),
            spaces: self.spaces.to_vec(),
            workspaces: self.workspaces.to_vec(),
            namespaces: self.namespaces.iter().map(|n| (**n).clone()).collect(),
            namespaces_complete: self.namespaces_complete,
        }
    }
}

type SharedNamespaces = Arc<Vec<Arc<NamespaceInfo>>>;

/// Builds snapshots from successive [`Inputs`], reusing the parts derived from input
/// lists that are the same `Arc` as last time: a change of spaces or registries rebuilds
/// only the spaces and hosts, a change of workspaces also the memberships, and a change of
/// namespaces everything. The result is always what [`Snapshot::build`] builds from the
/// same objects.
#[derive(Debug, Default)]
pub struct Builder {
    namespaces: Option<(SharedNamespaces, bool, Arc<build::NamespacePart>)>,
    memberships: Option<(Arc<Vec<Workspace>>, Arc<build::WorkspacePart>)>,
}

impl Builder {
    pub fn build(&mut self, inputs: &Inputs, revision: u64) -> Snapshot {
        let namespaces = match &self.namespaces {
            Some((from, complete, part))
                if Arc::ptr_eq(from, &inputs.namespaces)
                    && *complete == inputs.namespaces_complete =>
            {
                part.clone()
            }
            _ => {
                let part = Arc::new(build::NamespacePart::shared(
                    &inputs.namespaces,
                    inputs.namespaces_complete,
                ));
                self.namespaces = Some((
                    inputs.namespaces.clone(),
                    inputs.namespaces_complete,
                    part.clone(),
                ));
                // Memberships were resolved against the namespaces of before.
                self.memberships = None;
                part
            }
        };
        let memberships = match &self.memberships {
            Some((from, part)) if Arc::ptr_eq(from, &inputs.workspaces) => part.clone(),
            before => {
                // Workspaces whose spec did not change keep their resolution.
                let before = before.as_ref().map(|(_, part)| &**part);
                let part = Arc::new(build::WorkspacePart::new(
                    &inputs.workspaces,
                    &namespaces,
                    before,
                ));
                self.memberships = Some((inputs.workspaces.clone(), part.clone()));
                part
            }
        };
        build::assemble(
            &inputs.registries,
            &inputs.spaces,
            namespaces,
            memberships,
            revision,
        )
    }
}

impl Snapshot {
    /// Builds the table from objects; the result does not depend on their order.
    pub fn build(objects: &Objects, revision: u64) -> Snapshot {
        build::build(objects, revision)
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Objects that were skipped or only partly used, sorted.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn registries(&self) -> &[RegistryEntry] {
        &self.registries
    }

    /// The host keys of Registry `name` that other Registries claim too, each with all
    /// of its claimants (images from them are denied).
    pub fn host_conflicts<'s>(&'s self, name: &str) -> Vec<(&'s str, &'s [String])> {
        let keys = self
            .registries
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.host_keys.as_slice())
            .unwrap_or_default();
        keys.iter()
            .filter_map(|k| match self.hosts.get(k) {
                Some(HostOwner::Many(names)) => Some((k.as_str(), names.as_slice())),
                _ => None,
            })
            .collect()
    }

    pub fn workspaces(&self) -> &[Arc<WorkspaceEntry>] {
        &self.memberships.workspaces
    }

    /// Spaces of a registry, sorted by space.
    pub fn spaces_of<'s>(&'s self, registry: &'s str) -> impl Iterator<Item = &'s SpaceEntry> + 's {
        self.spaces.iter().filter(move |s| s.registry == registry)
    }

    /// Resolves a parsed image reference to its registry and space (README, "Decision rules").
    pub fn resolve(&self, image: &ImageRef) -> Resolution<'_> {
        let registry = match self.hosts.get(image.host_key()) {
            None => return Resolution::Unmanaged,
            Some(HostOwner::Many(names)) => return Resolution::HostConflict(names),
            Some(HostOwner::Unusable(name)) => return Resolution::Unusable(name),
            Some(HostOwner::One(id)) => &self.registries[*id as usize],
        };
        match registry.lookup(image.path()) {
            Some(id) => Resolution::Space(registry, &self.spaces[id as usize]),
            None => Resolution::NoSpace(registry),
        }
    }

    /// Whether namespace `ns` belongs to a workspace bound to `space`.
    pub fn is_bound(&self, space: &SpaceEntry, ns: &str) -> bool {
        let mine = self.member_ids(ns);
        // Both lists are sorted and short: a merge walk.
        let (mut a, mut b) = (
            mine.iter().peekable(),
            space.workspace_ids.iter().peekable(),
        );
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            match x.cmp(y) {
                std::cmp::Ordering::Less => {
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    b.next();
                }
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// The ids of the workspaces namespace `ns` belongs to, sorted.
    fn member_ids(&self, ns: &str) -> &[WorkspaceId] {
        match self.namespaces.index.get(ns) {
            Some(&p) => self.memberships.of_position(p),
            None => self
                .memberships
                .absent
                .get(ns)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        }
    }

    /// The workspaces namespace `ns` belongs to.
    pub fn workspaces_of<'s>(&'s self, ns: &str) -> impl Iterator<Item = &'s WorkspaceEntry> + 's {
        self.member_ids(ns)
            .iter()
            .map(|id| &*self.memberships.workspaces[*id as usize])
    }

    /// The workspace whose credential namespace `ns` gets for `space`: none for a Public
    /// space, else the first of its workspaces bound to the space. Its pull Secret and the
    /// credential provider must agree on it.
    pub fn credential_workspace<'s>(&'s self, ns: &str, space: &SpaceEntry) -> Option<&'s str> {
        match space.visibility {
            Visibility::Public => None,
            Visibility::Private => self
                .workspaces_of(ns)
                .map(|w| w.name.as_str())
                .find(|w| space.workspaces.iter().any(|b| b == w)),
        }
    }

    /// The effective mode of namespace `ns`: each of its workspaces
    /// contributes its `enforcement`, or `global` (the `--mode` flag) when it sets none,
    /// and the strictest wins; a namespace in no workspace gets `global`. A workspace
    /// without `enforcement` therefore keeps the global mode in force, so adding the
    /// namespace to a `Warn` workspace cannot weaken it.
    pub fn mode_of(&self, ns: &str, global: Enforcement) -> Enforcement {
        self.workspaces_of(ns)
            .map(|w| w.enforcement.unwrap_or(global))
            .max()
            .unwrap_or(global)
    }

    /// False only when the table tracks all namespaces and `ns` is not among them yet.
    pub fn namespace_known(&self, ns: &str) -> bool {
        !self.namespaces.complete || self.namespaces.index.contains_key(ns)
    }

    /// Namespaces allowed to pull from a space: every known one when Public.
    pub fn bound_namespaces(&self, space: &SpaceEntry) -> Vec<&str> {
        let mut out: Vec<&str> = match space.visibility {
            Visibility::Public => self
                .namespaces
                .index
                .iter()
                .filter(|(_, &p)| !self.memberships.of_position(p).is_empty())
                .map(|(n, _)| n.as_str())
                .chain(self.memberships.absent.keys().map(String::as_str))
                .collect(),
            Visibility::Private => space
                .workspace_ids
                .iter()
                .flat_map(|id| {
                    self.memberships.workspaces[*id as usize]
                        .namespaces
                        .iter()
                        .map(String::as_str)
                })
                .collect(),
        };
        if space.visibility == Visibility::Public && self.namespaces.complete {
            out.extend(self.namespaces.index.keys().map(String::as_str));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl RegistryEntry {
    /// Longest space on whole path components, then `*`.
    fn lookup(&self, path: &str) -> Option<SpaceId> {
        let depth = path.split('/').count();
        let mut end = path.len();
        let mut components = depth;
        loop {
            let prefix = &path[..end];
            if components <= self.max_depth {
                if let Some(id) = self.spaces.get(prefix) {
                    return Some(*id);
                }
            }
            match prefix.rfind('/') {
                Some(i) => {
                    end = i;
                    components -= 1;
                }
                None => return self.wildcard,
            }
        }
    }
}
