//! Building a [`Snapshot`] from objects. Every input list is sorted by name first, so
//! the result never depends on the order objects arrived in. What depends on the
//! namespaces alone ([`NamespacePart`]) and on the workspaces and namespaces
//! ([`WorkspacePart`]) is built apart and shared by `Arc`, so that a [`super::Builder`]
//! can reuse it when only spaces or registries changed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use super::host::{parse_registry_url, RegistryUrl};
use super::{
    parse_host_port, selector, HashMap, HostOwner, NamespaceInfo, Objects, Problem, RegistryEntry,
    Snapshot, SpaceEntry, SpaceId, WorkspaceEntry, WorkspaceId,
};
use crate::api::{
    CrKind, Registry, RegistrySpace, RegistryType, Visibility, Workspace, WorkspaceSpec,
    NAMESPACE_NAME_LABEL,
};
use crate::reference::check_host;

pub(super) fn build(objects: &Objects, revision: u64) -> Snapshot {
    let namespaces = Arc::new(NamespacePart::new(
        sorted_namespaces(&objects.namespaces),
        objects.namespaces_complete,
    ));
    let memberships = Arc::new(WorkspacePart::new(&objects.workspaces, &namespaces, None));
    assemble(
        &objects.registries,
        &objects.spaces,
        namespaces,
        memberships,
        revision,
    )
}

/// The snapshot from its registries and spaces and the parts built before.
pub(super) fn assemble(
    registries: &[Registry],
    spaces: &[RegistrySpace],
    namespaces: Arc<NamespacePart>,
    memberships: Arc<WorkspacePart>,
    revision: u64,
) -> Snapshot {
    let mut problems = memberships.problems.clone();
    let ws_ids: HashMap<&str, WorkspaceId> = memberships
        .workspaces
        .iter()
        .enumerate()
        .map(|(i, w)| (w.name.as_str(), i as WorkspaceId))
        .collect();
    let (mut registries, hosts) = build_registries(registries, &mut problems);
    let spaces = build_spaces(spaces, &mut registries, &ws_ids, &mut problems);
    problems.sort();
    Snapshot {
        revision,
        registries,
        spaces,
        namespaces,
        memberships,
        hosts,
        problems,
    }
}

/// What the table takes from the namespaces alone.
#[derive(Debug, Default)]
pub(super) struct NamespacePart {
    /// Sorted by name, unique, each with the name label (see [`sorted_namespaces`]).
    pub(super) namespaces: Arc<Vec<Arc<NamespaceInfo>>>,
    /// Namespaces (indexes) by the hash of a label pair, so a selector with `matchLabels`
    /// is checked only against the namespaces carrying one of its pairs, not all of them
    /// (500 workspaces times 10,000 namespaces made this quadratic scan most of a
    /// rebuild). Keyed by hash rather than by the pair to copy no label: a collision only
    /// adds candidates, which the selector then refuses. Made when a selector first needs it.
    by_label: OnceLock<HashMap<u64, Vec<u32>>>,
    label_hasher: foldhash::fast::RandomState,
    /// Each namespace's position in `namespaces`.
    pub(super) index: HashMap<String, u32>,
    /// Whether `namespaces` is every namespace of the cluster (cluster mode).
    pub(super) complete: bool,
}

impl NamespacePart {
    fn new(namespaces: Vec<Arc<NamespaceInfo>>, complete: bool) -> NamespacePart {
        NamespacePart::of(Arc::new(namespaces), complete)
    }

    /// From a shared list, kept as it is when it already is in order (as the cluster feed
    /// keeps it: sorted by name, each with [`with_name_label`]), put in order otherwise.
    pub(super) fn shared(input: &Arc<Vec<Arc<NamespaceInfo>>>, complete: bool) -> NamespacePart {
        let in_order = input.windows(2).all(|w| w[0].name < w[1].name)
            && input
                .iter()
                .all(|n| n.labels.get(NAMESPACE_NAME_LABEL) == Some(&n.name));
        if in_order {
            NamespacePart::of(input.clone(), complete)
        } else {
            let plain: Vec<NamespaceInfo> = input.iter().map(|n| (**n).clone()).collect();
            NamespacePart::new(sorted_namespaces(&plain), complete)
        }
    }

    fn of(namespaces: Arc<Vec<Arc<NamespaceInfo>>>, complete: bool) -> NamespacePart {
        NamespacePart {
            index: namespaces
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.clone(), i as u32))
                .collect(),
            complete,
            namespaces,
            by_label: OnceLock::new(),
            label_hasher: Default::default(),
        }
    }

    /// Without the name label: one list per namespace would double the index, and
    /// [`NamespacePart::candidates`] finds a name in `index`.
    fn by_label(&self) -> &HashMap<u64, Vec<u32>> {
        self.by_label.get_or_init(|| {
            let mut by_label: HashMap<u64, Vec<u32>> = HashMap::default();
            for (i, n) in self.namespaces.iter().enumerate() {
                for pair in n.labels.iter().filter(|(k, _)| *k != NAMESPACE_NAME_LABEL) {
                    by_label
                        .entry(self.label_hasher.hash_one(pair))
                        .or_default()
                        .push(i as u32);
                }
            }
            by_label
        })
    }

    /// The positions of the namespaces that may match a valid selector, ascending: all
    /// of them, or when it has `matchLabels`, those carrying its rarest pair.
    fn candidates(&self, sel: &LabelSelector) -> Vec<u32> {
        let narrowest = sel.match_labels.iter().flatten().map(|pair| {
            if pair.0 == NAMESPACE_NAME_LABEL {
                // Every namespace carries its own name, and only it.
                return Cow::Owned(self.index.get(pair.1).copied().into_iter().collect());
            }
            Cow::Borrowed(
                self.by_label()
                    .get(&self.label_hasher.hash_one(pair))
                    .map_or(&[][..], Vec::as_slice),
            )
        });
        match narrowest.min_by_key(|l| l.len()) {
            Some(list) => list.into_owned(),
            None => (0..self.namespaces.len() as u32).collect(),
        }
    }
}

/// A namespace with the `kubernetes.io/metadata.name` label the apiserver always sets,
/// so selectors on it behave as in the cluster.
pub fn with_name_label(mut ns: NamespaceInfo) -> NamespaceInfo {
    ns.labels
        .insert(NAMESPACE_NAME_LABEL.to_string(), ns.name.clone());
    ns
}

/// Namespaces by name, each with the `kubernetes.io/metadata.name` label the apiserver
/// always sets, so selectors on it behave as in the cluster.
fn sorted_namespaces(input: &[NamespaceInfo]) -> Vec<Arc<NamespaceInfo>> {
    let mut out: Vec<NamespaceInfo> = input.iter().cloned().map(with_name_label).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out.into_iter().map(Arc::new).collect()
}

/// The workspaces, resolved against the namespaces, and who belongs to which.
#[derive(Debug, Default)]
pub(super) struct WorkspacePart {
    /// Sorted by name; a [`WorkspaceId`] is an index here.
    resolved: Vec<Arc<Resolved>>,
    pub(super) workspaces: Vec<Arc<WorkspaceEntry>>,
    /// The workspaces of the namespace at position `p` of the [`NamespacePart`] are
    /// `ids[offsets[p]..offsets[p + 1]]`, sorted: no copy of 100,000 names per rebuild.
    offsets: Vec<u32>,
    ids: Vec<WorkspaceId>,
    /// The workspaces of the names listed in workspaces that are no namespace (yet).
    pub(super) absent: HashMap<String, Vec<WorkspaceId>>,
    /// Problems of the workspaces.
    problems: Vec<Problem>,
}

/// One workspace resolved against the namespaces; kept for the next rebuild while its
/// spec and the namespaces do not change.
#[derive(Debug)]
struct Resolved {
    spec: WorkspaceSpec,
    entry: Arc<WorkspaceEntry>,
    /// Positions of its member namespaces in the [`NamespacePart`], ascending.
    present: Vec<u32>,
    /// Its listed members that are not namespaces, sorted.
    absent: Vec<String>,
    problems: Vec<Problem>,
}

impl WorkspacePart {
    /// Resolves `workspaces` against `namespaces`; a workspace whose name and spec are
    /// as in `before` (resolved against the same namespaces) keeps its resolution.
    pub(super) fn new(
        workspaces: &[Workspace],
        namespaces: &NamespacePart,
        before: Option<&WorkspacePart>,
    ) -> WorkspacePart {
        let before: HashMap<&str, &Arc<Resolved>> = before
            .map(|b| {
                b.resolved
                    .iter()
                    .map(|r| (r.entry.name.as_str(), r))
                    .collect()
            })
            .unwrap_or_default();
        let mut sorted: Vec<_> = workspaces.iter().collect();
        sorted.sort_by_key(|w| w.name_any());
        let resolved: Vec<Arc<Resolved>> = sorted
            .iter()
            .map(|ws| {
                let name = ws.name_any();
                match before.get(name.as_str()) {
                    Some(r) if r.spec == ws.spec => Arc::clone(r),
                    _ => Arc::new(resolve(name, ws, namespaces)),
                }
            })
            .collect();
        let mut offsets = vec![0u32; namespaces.namespaces.len() + 1];
        for r in &resolved {
            for &p in &r.present {
                offsets[p as usize + 1] += 1;
            }
        }
        for p in 1..offsets.len() {
            offsets[p] += offsets[p - 1];
        }
        let mut ids = vec![0; offsets.last().copied().unwrap_or(0) as usize];
        let mut next = offsets.clone();
        let mut absent: HashMap<String, Vec<WorkspaceId>> = HashMap::default();
        let mut problems = Vec::new();
        // In ascending id order, so each namespace's list comes sorted.
        for (id, r) in resolved.iter().enumerate() {
            for &p in &r.present {
                ids[next[p as usize] as usize] = id as WorkspaceId;
                next[p as usize] += 1;
            }
            for name in &r.absent {
                absent
                    .entry(name.clone())
                    .or_default()
                    .push(id as WorkspaceId);
            }
            problems.extend(r.problems.iter().cloned());
        }
        WorkspacePart {
            workspaces: resolved.iter().map(|r| r.entry.clone()).collect(),
            resolved,
            offsets,
            ids,
            absent,
            problems,
        }
    }

    /// The workspaces of the namespace at position `p` of the [`NamespacePart`].
    pub(super) fn of_position(&self, p: u32) -> &[WorkspaceId] {
        let (from, to) = (self.offsets[p as usize], self.offsets[p as usize + 1]);
        &self.ids[from as usize..to as usize]
    }
}

fn resolve(name: String, ws: &Workspace, namespaces: &NamespacePart) -> Resolved {
    let mut problems = Vec::new();
    let mut present: Vec<u32> = Vec::new();
    let mut absent: Vec<String> = Vec::new();
    for ns in &ws.spec.namespaces {
        if !is_dns_label(ns) {
            problems.push(problem(
                CrKind::Workspace,
                &name,
                format!("namespace {ns:?} is not a valid namespace name; ignored"),
            ));
        } else if let Some(&p) = namespaces.index.get(ns) {
            present.push(p);
        } else {
            absent.push(ns.clone());
        }
    }
    if let Some(sel) = &ws.spec.namespace_selector {
        match selector::validate(sel) {
            Ok(()) => present.extend(
                namespaces
                    .candidates(sel)
                    .into_iter()
                    .filter(|&p| selector::matches(sel, &namespaces.namespaces[p as usize].labels)),
            ),
            Err(e) => problems.push(problem(
                CrKind::Workspace,
                &name,
                format!("namespaceSelector is invalid and matches nothing: {e}"),
            )),
        }
    }
    present.sort_unstable();
    present.dedup();
    absent.sort();
    absent.dedup();
    let mut names: Vec<String> = present
        .iter()
        .map(|&p| namespaces.namespaces[p as usize].name.clone())
        .chain(absent.iter().cloned())
        .collect();
    names.sort();
    Resolved {
        spec: ws.spec.clone(),
        entry: Arc::new(WorkspaceEntry {
            name,
            enforcement: ws.spec.enforcement,
            namespaces: names,
        }),
        present,
        absent,
        problems,
    }
}

fn build_registries(
    registries: &[Registry],
    problems: &mut Vec<Problem>,
) -> (Vec<RegistryEntry>, HashMap<String, HostOwner>) {
    let mut sorted: Vec<_> = registries.iter().collect();
    sorted.sort_by_key(|r| r.name_any());
    let mut entries = Vec::new();
    // Whether each entry is a managed Harbor's (README, "Several clusters, one Harbor": it never takes a host over).
    let mut managed: Vec<bool> = Vec::new();
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    // Hosts of Registries skipped as invalid: denied rather than unmanaged, so that a typo
    // in a URL never opens its aliases under `--unmanaged allow`.
    let mut unusable: BTreeMap<String, String> = BTreeMap::new();
    for reg in sorted {
        let name = reg.name_any();
        let aliases = usable_aliases(reg, &name, problems);
        let url = match parse_registry_url(&reg.spec.url) {
            Ok(u) => match check_host(&u.host) {
                Ok(()) => Ok(u),
                Err(e) => Err(format!(
                    "url {:?} names a host no image reference can match: {e}",
                    reg.spec.url
                )),
            },
            Err(e) => Err(e),
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => {
                problems.push(problem(
                    CrKind::Registry,
                    &name,
                    format!("{e}; registry skipped, images from its hosts are denied"),
                ));
                for key in claimed_by_unusable(&reg.spec.url, &aliases) {
                    unusable.entry(key).or_insert_with(|| name.clone());
                }
                continue;
            }
        };
        let host_keys = url.all_keys(&aliases);
        for key in &host_keys {
            owners.entry(key.clone()).or_default().push(entries.len());
        }
        managed.push(
            reg.labels()
                .get(crate::api::MANAGED_LABEL)
                .map(String::as_str)
                == Some("true"),
        );
        entries.push(RegistryEntry {
            name,
            registry_type: reg.spec.registry_type,
            url,
            host_keys,
            spaces: HashMap::default(),
            wildcard: None,
            max_depth: 0,
        });
    }
    let mut hosts = HashMap::default();
    for (key, name) in unusable {
        if !owners.contains_key(&key) {
            hosts.insert(key, HostOwner::Unusable(name));
        }
    }
    for (key, ids) in owners {
        let by_hand: Vec<usize> = ids.iter().copied().filter(|i| !managed[*i]).collect();
        let owner = if let [id] = ids[..] {
            HostOwner::One(id as u32)
        } else if let [keeper] = by_hand[..] {
            // A managed Harbor's Registry on a host a Registry integrated by hand claims:
            // the existing one keeps it, the managed one says so.
            for i in ids.iter().filter(|i| managed[**i]) {
                problems.push(problem(
                    CrKind::Registry,
                    &entries[*i].name,
                    format!(
                        "Conflict: host {key:?} is already claimed by Registry {:?}, which keeps it; this managed Registry is not used for it",
                        entries[keeper].name
                    ),
                ));
            }
            HostOwner::One(keeper as u32)
        } else {
            let names: Vec<String> = ids.iter().map(|i| entries[*i].name.clone()).collect();
            for n in &names {
                problems.push(problem(
                    CrKind::Registry,
                    n,
                    format!(
                        "Conflict: host {key:?} is claimed by registries {}; images from it are denied",
                        names.join(", ")
                    ),
                ));
            }
            HostOwner::Many(names)
        };
        hosts.insert(key, owner);
    }
    (entries, hosts)
}

/// The aliases of a Registry that an image reference can spell; the others are reported.
fn usable_aliases(
    reg: &Registry,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Option<u16>)> {
    let mut aliases = Vec::new();
    for alias in &reg.spec.aliases {
        match parse_host_port(alias) {
            Ok(a) => match check_host(&a.0) {
                Ok(()) => aliases.push(a),
                Err(e) => problems.push(problem(
                    CrKind::Registry,
                    name,
                    format!(
                        "alias {alias:?} can never match an image reference: {e}; alias ignored"
                    ),
                )),
            },
            Err(e) => problems.push(problem(
                CrKind::Registry,
                name,
                format!("alias {e}; alias ignored"),
            )),
        }
    }
    aliases
}

/// The host keys an invalid Registry still claims: its aliases, and the host of its URL
/// when one can be read from it (scheme, then host[:port] up to a path; https assumed
/// without a scheme).
fn claimed_by_unusable(url: &str, aliases: &[(String, Option<u16>)]) -> Vec<String> {
    let (https, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (!scheme.eq_ignore_ascii_case("http"), rest),
        None => (true, url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let mut spellings = aliases.to_vec();
    if let Ok((host, port)) = parse_host_port(authority) {
        if check_host(&host).is_ok() {
            spellings.push((host, port));
        }
    }
    let Some((host, port)) = spellings.pop() else {
        return Vec::new();
    };
    RegistryUrl { https, host, port }.all_keys(&spellings)
}

fn build_spaces(
    spaces: &[RegistrySpace],
    registries: &mut [RegistryEntry],
    ws_ids: &HashMap<&str, WorkspaceId>,
    problems: &mut Vec<Problem>,
) -> Vec<SpaceEntry> {
    let reg_ids: HashMap<String, usize> = registries
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    // (registry, space) → declaring objects, in name order.
    let mut groups: BTreeMap<(String, String), Vec<&RegistrySpace>> = BTreeMap::new();
    let mut sorted: Vec<_> = spaces.iter().collect();
    sorted.sort_by_key(|s| s.name_any());
    for rs in sorted {
        let name = rs.name_any();
        let Some(&reg) = reg_ids.get(&rs.spec.registry) else {
            problems.push(problem(
                CrKind::RegistrySpace,
                &name,
                format!(
                    "registry {:?} does not exist (or is invalid); space skipped",
                    rs.spec.registry
                ),
            ));
            continue;
        };
        if let Err(e) = check_space(&rs.spec.space, registries[reg].registry_type) {
            problems.push(problem(
                CrKind::RegistrySpace,
                &name,
                format!("{e}; space skipped"),
            ));
            continue;
        }
        for ws in &rs.spec.workspaces {
            if !ws_ids.contains_key(ws.as_str()) {
                problems.push(problem(
                    CrKind::RegistrySpace,
                    &name,
                    format!("workspace {ws:?} does not exist"),
                ));
            }
        }
        groups
            .entry((rs.spec.registry.clone(), rs.spec.space.clone()))
            .or_default()
            .push(rs);
    }
    let mut spaces = Vec::with_capacity(groups.len());
    for ((registry, space), decls) in groups {
        let entry = merge(registry, space, &decls, ws_ids, problems);
        let reg = &mut registries[reg_ids[&entry.registry]];
        let id = spaces.len() as SpaceId;
        if entry.space == "*" {
            reg.wildcard = Some(id);
        } else {
            reg.max_depth = reg.max_depth.max(entry.space.split('/').count());
            reg.spaces.insert(entry.space.clone(), id);
        }
        spaces.push(entry);
    }
    spaces
}

/// One space from its declarations. Two or more declarations are a conflict: the space
/// is Private with the intersection of their bindings (fail closed).
fn merge(
    registry: String,
    space: String,
    decls: &[&RegistrySpace],
    ws_ids: &HashMap<&str, WorkspaceId>,
    problems: &mut Vec<Problem>,
) -> SpaceEntry {
    let objects: Vec<String> = decls.iter().map(|d| d.name_any()).collect();
    let mut workspaces: Vec<String> = decls[0].spec.workspaces.clone();
    for d in &decls[1..] {
        workspaces.retain(|w| d.spec.workspaces.contains(w));
    }
    workspaces.retain(|w| ws_ids.contains_key(w.as_str()));
    workspaces.sort();
    workspaces.dedup();
    let conflict = decls.len() > 1;
    if conflict {
        for o in &objects {
            problems.push(problem(CrKind::RegistrySpace, o, format!("Conflict: space {space:?} of registry {registry:?} is declared by {}; treated as Private with the workspaces they all list", objects.join(", "))));
        }
    }
    let visibility = if conflict {
        Visibility::Private
    } else {
        decls[0].spec.visibility
    };
    let first_ref = decls[0].spec.pull_secret_ref.clone();
    let pull_secret_ref = first_ref.filter(|r| {
        decls
            .iter()
            .all(|d| d.spec.pull_secret_ref.as_ref() == Some(r))
    });
    let mut workspace_ids: Vec<WorkspaceId> =
        workspaces.iter().map(|w| ws_ids[w.as_str()]).collect();
    workspace_ids.sort_unstable();
    SpaceEntry {
        registry,
        space,
        objects,
        visibility,
        workspaces,
        workspace_ids,
        pull_secret_ref,
    }
}

/// A space is `*` or whole path components; a Harbor project is one component.
fn check_space(space: &str, ty: RegistryType) -> Result<(), String> {
    if space == "*" {
        return Ok(());
    }
    if !space.split('/').all(is_path_component) {
        return Err(format!(
            "space {space:?} is not \"*\" or a path of lower-case components"
        ));
    }
    if ty == RegistryType::Harbor && space.contains('/') {
        return Err(format!(
            "space {space:?} of a Harbor registry must be one project name"
        ));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
pub(crate) fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// RFC 1123 label, as namespace names are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn problem(kind: CrKind, name: &str, message: String) -> Problem {
    Problem {
        kind,
        name: name.to_string(),
        message,
    }
}
