//! The [`Builder`] against a full rebuild: after any sequence of changes, the table it
//! builds (reusing what unchanged lists gave) equals [`Snapshot::build`] of the same
//! objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use proptest::prelude::*;

use super::testing::*;
use super::*;
use crate::api::RegistryType::{DockerRegistry, Harbor};

/// Everything a snapshot holds, in an order that does not depend on hashing.
fn canonical(s: &Snapshot) -> String {
    let registries: Vec<String> = s
        .registries
        .iter()
        .map(|r| {
            let spaces: BTreeMap<_, _> = r.spaces.iter().collect();
            format!(
                "{} {:?} {:?} {:?} {spaces:?} {:?} {}",
                r.name, r.registry_type, r.url, r.host_keys, r.wildcard, r.max_depth
            )
        })
        .collect();
    let hosts: BTreeMap<_, _> = s.hosts.iter().map(|(k, v)| (k, format!("{v:?}"))).collect();
    let present = s
        .namespaces
        .index
        .keys()
        .map(|n| (n.as_str(), s.member_ids(n)))
        .filter(|(_, ids)| !ids.is_empty());
    let absent = s
        .memberships
        .absent
        .iter()
        .map(|(n, ids)| (n.as_str(), ids.as_slice()));
    let members: BTreeMap<_, _> = present.chain(absent).collect();
    let known: Option<std::collections::BTreeSet<_>> = s
        .namespaces
        .complete
        .then(|| s.namespaces.index.keys().collect());
    format!(
        "revision {}\nregistries {registries:#?}\nspaces {:#?}\nworkspaces {:#?}\nmembers {members:?}\nknown {known:?}\nhosts {hosts:?}\nproblems {:#?}",
        s.revision, s.spaces, s.memberships.workspaces, s.problems
    )
}

/// One object of a small world, or its absence (`None`), at slot `i` of its kind.
#[derive(Clone, Debug)]
enum Edit {
    Registry(usize, Option<(bool, u8)>),
    Space(usize, Option<(u8, u8, bool, Vec<u8>)>),
    Workspace(usize, Option<(Vec<u8>, u8, u8)>),
    Namespace(usize, Option<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ids = || proptest::collection::vec(0u8..6, 0..4);
    prop_oneof![
        (0usize..3, proptest::option::of((any::<bool>(), 0u8..3)))
            .prop_map(|(i, r)| Edit::Registry(i, r)),
        (
            0usize..6,
            proptest::option::of((0u8..3, 0u8..5, any::<bool>(), ids()))
        )
            .prop_map(|(i, s)| Edit::Space(i, s)),
        (0usize..4, proptest::option::of((ids(), 0u8..5, 0u8..4)))
            .prop_map(|(i, w)| Edit::Workspace(i, w)),
        (0usize..6, proptest::option::of(0u8..3)).prop_map(|(i, n)| Edit::Namespace(i, n)),
    ]
}

/// The world the edits make: slots of each kind.
#[derive(Default)]
struct World {
    registries: BTreeMap<usize, Registry>,
    spaces: BTreeMap<usize, RegistrySpace>,
    workspaces: BTreeMap<usize, Workspace>,
    namespaces: BTreeMap<usize, NamespaceInfo>,
}

impl World {
    fn apply(&mut self, e: &Edit) {
        fn put<T>(m: &mut BTreeMap<usize, T>, i: usize, v: Option<T>) {
            match v {
                Some(v) => m.insert(i, v),
                None => m.remove(&i),
            };
        }
        match e.clone() {
            Edit::Registry(i, r) => put(
                &mut self.registries,
                i,
                r.map(|(harbor, host)| {
                    let url = [
                        "https://h0.example.com",
                        "https://h1.example.com",
                        "ftp://bad",
                    ][host as usize];
                    let ty = if harbor { Harbor } else { DockerRegistry };
                    mk_registry(&format!("r{i}"), ty, url, &["h1.example.com"][..i % 2])
                }),
            ),
            Edit::Space(i, s) => put(
                &mut self.spaces,
                i,
                s.map(|(reg, space, public, ws)| {
                    let space = ["a", "b", "a/x", "*", "Bad"][space as usize];
                    let vis = if public {
                        Visibility::Public
                    } else {
                        Visibility::Private
                    };
                    let ws: Vec<String> = ws.iter().map(|w| format!("w{w}")).collect();
                    let ws: Vec<&str> = ws.iter().map(String::as_str).collect();
                    mk_space(&format!("s{i}"), &format!("r{reg}"), space, vis, &ws)
                }),
            ),
            Edit::Workspace(i, w) => put(
                &mut self.workspaces,
                i,
                w.map(|(listed, selector, enforcement)| {
                    let listed: Vec<String> = listed
                        .iter()
                        .map(|n| {
                            if *n == 5 {
                                "Bad_ns".to_string()
                            } else {
                                format!("n{n}")
                            }
                        })
                        .collect();
                    let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
                    let team = format!("t{}", selector % 2);
                    let labels = [("team", team.as_str())];
                    let mut w = mk_workspace(
                        &format!("w{i}"),
                        &listed,
                        (selector < 2).then_some(&labels[..]),
                        [
                            None,
                            Some(Enforcement::Warn),
                            Some(Enforcement::Audit),
                            Some(Enforcement::Enforce),
                        ][enforcement as usize],
                    );
                    if selector == 3 {
                        // On the name label, by matchLabels.
                        w.spec.namespace_selector = Some(LabelSelector {
                            match_labels: Some(
                                [(
                                    crate::api::NAMESPACE_NAME_LABEL.to_string(),
                                    format!("n{}", i + 1),
                                )]
                                .into(),
                            ),
                            match_expressions: None,
                        });
                    }
                    if selector == 2 {
                        // One on the name label, one invalid.
                        w.spec.namespace_selector = Some(LabelSelector {
                            match_labels: None,
                            match_expressions: Some(vec![LabelSelectorRequirement {
                                key: crate::api::NAMESPACE_NAME_LABEL.into(),
                                operator: if i == 3 { "Bogus" } else { "In" }.into(),
                                values: Some(vec!["n1".into(), "n2".into()]),
                            }]),
                        });
                    }
                    w
                }),
            ),
            Edit::Namespace(i, n) => put(
                &mut self.namespaces,
                i,
                n.map(|team| match team {
                    2 => mk_ns(&format!("n{i}"), &[]),
                    t => mk_ns(&format!("n{i}"), &[("team", &format!("t{t}"))]),
                }),
            ),
        }
    }

    fn list<T: Clone>(m: &BTreeMap<usize, T>) -> Arc<Vec<T>> {
        Arc::new(m.values().cloned().collect())
    }
}

proptest! {
    #[test]
    fn the_builder_builds_what_a_full_rebuild_builds(
        start in proptest::collection::vec(edit(), 0..20),
        changes in proptest::collection::vec(proptest::collection::vec(edit(), 1..3), 1..12),
        normalized in any::<bool>(),
    ) {
        let mut world = World::default();
        for e in &start {
            world.apply(e);
        }
        // The namespaces as the cluster feed lists them, or in another order.
        let namespaces = |world: &World| {
            let mut list: Vec<Arc<NamespaceInfo>> = world
                .namespaces
                .values()
                .map(|n| Arc::new(if normalized { with_name_label(n.clone()) } else { n.clone() }))
                .collect();
            // Sorted by slot, which is also by name, unless the order is to be wrong too.
            if !normalized {
                list.reverse();
            }
            Arc::new(list)
        };
        let mut inputs = Inputs {
            registries: World::list(&world.registries),
            spaces: World::list(&world.spaces),
            workspaces: World::list(&world.workspaces),
            namespaces: namespaces(&world),
            namespaces_complete: true,
        };
        let mut builder = Builder::default();
        for (revision, burst) in changes.iter().enumerate() {
            let revision = revision as u64 + 1;
            for e in burst {
                world.apply(e);
                // Only the list of the kind that changed is renewed, as the feed does.
                match e {
                    Edit::Registry(..) => inputs.registries = World::list(&world.registries),
                    Edit::Space(..) => inputs.spaces = World::list(&world.spaces),
                    Edit::Workspace(..) => inputs.workspaces = World::list(&world.workspaces),
                    Edit::Namespace(..) => inputs.namespaces = namespaces(&world),
                }
            }
            let incremental = builder.build(&inputs, revision);
            let full = Snapshot::build(&inputs.to_objects(), revision);
            prop_assert_eq!(canonical(&incremental), canonical(&full));
        }
    }
}

/// The parts of the unchanged lists are the same `Arc`s after a change of spaces, and
/// new ones after a change of workspaces or namespaces.
#[test]
fn the_builder_reuses_the_parts_of_unchanged_lists() {
    let objects = mk_scaled(200, 20, 10);
    let in_order = |namespaces: &[NamespaceInfo]| -> Arc<Vec<Arc<NamespaceInfo>>> {
        let by_name: BTreeMap<_, _> = namespaces
            .iter()
            .map(|n| (n.name.clone(), Arc::new(with_name_label(n.clone()))))
            .collect();
        Arc::new(by_name.into_values().collect())
    };
    let mut inputs = Inputs {
        registries: Arc::new(objects.registries.clone()),
        spaces: Arc::new(objects.spaces.clone()),
        workspaces: Arc::new(objects.workspaces.clone()),
        namespaces: in_order(&objects.namespaces),
        namespaces_complete: true,
    };
    let mut builder = Builder::default();
    let first = builder.build(&inputs, 1);
    assert!(
        Arc::ptr_eq(&first.namespaces.namespaces, &inputs.namespaces),
        "a list in order is not copied"
    );
    let mut spaces = objects.spaces.clone();
    spaces[3].spec.workspaces.push("ws-9".into());
    inputs.spaces = Arc::new(spaces);
    let second = builder.build(&inputs, 2);
    assert!(Arc::ptr_eq(&first.namespaces, &second.namespaces));
    assert!(Arc::ptr_eq(&first.memberships, &second.memberships));
    assert_ne!(
        canonical(&first),
        canonical(&second).replace("revision 2", "revision 1")
    );

    inputs.workspaces = Arc::new(objects.workspaces[1..].to_vec());
    let third = builder.build(&inputs, 3);
    assert!(Arc::ptr_eq(&second.namespaces, &third.namespaces));
    assert!(!Arc::ptr_eq(&second.memberships, &third.memberships));

    inputs.namespaces = in_order(&objects.namespaces[1..]);
    let fourth = builder.build(&inputs, 4);
    assert!(!Arc::ptr_eq(&third.namespaces, &fourth.namespaces));
    assert!(!Arc::ptr_eq(&third.memberships, &fourth.memberships));
    assert_eq!(
        canonical(&fourth),
        canonical(&Snapshot::build(&inputs.to_objects(), 4))
    );
}

/// A `matchLabels` selector on the name label (found by name, not in the label index)
/// selects that namespace, and with another pair only if it carries that pair too.
#[test]
fn match_labels_on_the_name_label_select_that_namespace() {
    let name = crate::api::NAMESPACE_NAME_LABEL;
    let objects = Objects {
        workspaces: vec![
            mk_workspace("by-name", &[], Some(&[(name, "app-2")]), None),
            mk_workspace(
                "and-team",
                &[],
                Some(&[(name, "app-2"), ("team", "a")]),
                None,
            ),
            mk_workspace(
                "wrong-team",
                &[],
                Some(&[(name, "app-2"), ("team", "b")]),
                None,
            ),
            mk_workspace("absent", &[], Some(&[(name, "app-9")]), None),
        ],
        namespaces: vec![
            mk_ns("app-1", &[("team", "a")]),
            mk_ns("app-2", &[("team", "a")]),
            mk_ns("app-3", &[("team", "b")]),
        ],
        namespaces_complete: true,
        ..Objects::default()
    };
    let snap = Snapshot::build(&objects, 1);
    let members: Vec<(&str, &[String])> = snap
        .workspaces()
        .iter()
        .map(|w| (w.name.as_str(), w.namespaces.as_slice()))
        .collect();
    let app2 = ["app-2".to_string()];
    assert_eq!(
        members,
        [
            ("absent", &[][..]),
            ("and-team", &app2[..]),
            ("by-name", &app2[..]),
            ("wrong-team", &[][..]),
        ]
    );
}
