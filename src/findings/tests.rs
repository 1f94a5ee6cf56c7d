//! Findings over one small world: judging, folding under controllers, the diff.

use super::*;
use crate::api::{Enforcement, RegistryType::*, Visibility::*};
use crate::index::testing::*;
use crate::index::Objects;

const PRIVATE_A: &str = "harbor.example.com/team-a/api:1";
const PRIVATE_B: &str = "harbor.example.com/team-b/api:1";
const PUBLIC: &str = "harbor.example.com/shared/base:1";
const UNMANAGED: &str = "quay.io/x/y:1";

fn world() -> Objects {
    Objects {
        registries: vec![mk_registry(
            "harbor-prod",
            Harbor,
            "https://harbor.example.com",
            &[],
        )],
        spaces: vec![
            mk_space("hp.team-a", "harbor-prod", "team-a", Private, &["ws-a"]),
            mk_space("hp.team-b", "harbor-prod", "team-b", Private, &["ws-b"]),
            mk_space("hp.shared", "harbor-prod", "shared", Public, &[]),
        ],
        workspaces: vec![
            mk_workspace("ws-a", &["app-1"], None, None),
            mk_workspace("ws-b", &["app-2"], None, Some(Enforcement::Warn)),
        ],
        ..Objects::default()
    }
}

fn snap(objects: &Objects) -> Snapshot {
    Snapshot::build(objects, 1)
}

fn uses(images: &[&str]) -> Vec<Use> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| Use {
            location: Location::Container,
            container: format!("c{i}").into(),
            image: (*image).into(),
        })
        .collect()
}

fn mk(kind: Kind, ns: &str, name: &str, images: &[&str]) -> Workload {
    Workload::new(kind, ns, name, uses(images))
}

fn owned(mut w: Workload, kind: Kind, owner: &str) -> Workload {
    w.owner = Some(Owner {
        kind,
        name: owner.into(),
        uid: None,
    });
    w
}

fn names(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{}/{}/{} {} {}",
                f.kind, f.namespace, f.name, f.container, f.reason
            )
        })
        .collect()
}

#[test]
fn a_workload_is_judged_as_admission_judges_it() {
    let s = snap(&world());
    let p = Policy::default();
    let w = mk(
        Kind::Deployment,
        "app-1",
        "web",
        &[PRIVATE_A, PRIVATE_B, PUBLIC, UNMANAGED],
    );
    let f = judge(&s, &p, &w);
    assert_eq!(
        names(&f),
        [
            "Deployment/app-1/web c1 notBound",
            "Deployment/app-1/web c3 unmanaged"
        ]
    );
    assert_eq!(f[0].image, PRIVATE_B);
    assert_eq!(f[0].registry.as_deref(), Some("harbor-prod"));
    assert_eq!(f[0].space.as_deref(), Some("team-b"));
    assert_eq!(f[0].mode, Enforcement::Enforce);
    assert!(f[0]
        .message
        .contains("not bound to a workspace of namespace \"app-1\""));
    // The unmanaged policy is the admission one.
    let allow = Policy {
        unmanaged: policy::Unmanaged::Allow,
        ..Policy::default()
    };
    assert_eq!(judge(&s, &allow, &w).len(), 1);
}

#[test]
fn the_mode_is_the_namespaces_effective_mode() {
    let s = snap(&world());
    let w = mk(Kind::Pod, "app-2", "p", &[PRIVATE_A]);
    let audit = Policy {
        mode: Enforcement::Audit,
        ..Policy::default()
    };
    // ws-b says Warn, stricter than the global audit.
    assert_eq!(judge(&s, &audit, &w)[0].mode, Enforcement::Warn);
    let outside = mk(Kind::Pod, "nowhere", "p", &[PRIVATE_A]);
    assert_eq!(judge(&s, &audit, &outside)[0].mode, Enforcement::Audit);
}

#[test]
fn exempt_namespaces_and_mirror_pods_have_no_findings() {
    let s = snap(&world());
    let p = Policy::default();
    assert!(judge(&s, &p, &mk(Kind::Pod, "kube-system", "p", &[UNMANAGED])).is_empty());
    let mut mirror = mk(Kind::Pod, "app-1", "etcd-node1", &[UNMANAGED]);
    mirror.mirror = true;
    assert!(judge(&s, &p, &mirror).is_empty());
}

#[test]
fn an_unreadable_object_is_a_finding_of_its_own() {
    let s = snap(&world());
    let w = Workload::unreadable(Kind::Job, "app-1", "broken", "spec: not an object");
    let f = judge(&s, &Policy::default(), &w);
    assert_eq!(names(&f), ["Job/app-1/broken  unreadable"]);
    assert!(
        f[0].message.contains("spec: not an object"),
        "{}",
        f[0].message
    );
    // Even where every image would be allowed: it cannot be known.
    let none = Objects::default();
    assert_eq!(judge(&snap(&none), &Policy::default(), &w).len(), 1);
}

#[test]
fn pods_are_reported_once_under_their_controller() {
    let s = snap(&world());
    let p = Policy::default();
    let set = [
        mk(Kind::Deployment, "app-1", "web", &[PRIVATE_B]),
        owned(
            mk(Kind::ReplicaSet, "app-1", "web-5d4f", &[PRIVATE_B]),
            Kind::Deployment,
            "web",
        ),
        owned(
            mk(Kind::Pod, "app-1", "web-5d4f-x1", &[PRIVATE_B]),
            Kind::ReplicaSet,
            "web-5d4f",
        ),
        // The template says the same for c0; c1 was added to this pod only.
        owned(
            mk(Kind::Pod, "app-1", "web-5d4f-x2", &[PRIVATE_B, UNMANAGED]),
            Kind::ReplicaSet,
            "web-5d4f",
        ),
        // Same owner name in another namespace: not its controller.
        owned(
            mk(Kind::Pod, "app-2", "web-5d4f-x3", &[UNMANAGED]),
            Kind::ReplicaSet,
            "web-5d4f",
        ),
        // A Job of a CronJob, and its pod.
        mk(Kind::CronJob, "app-1", "nightly", &[UNMANAGED]),
        owned(
            mk(Kind::Job, "app-1", "nightly-1", &[UNMANAGED]),
            Kind::CronJob,
            "nightly",
        ),
        owned(
            mk(Kind::Pod, "app-1", "nightly-1-abc", &[UNMANAGED]),
            Kind::Job,
            "nightly-1",
        ),
        // A pod whose controller is not in the set is reported under itself.
        owned(
            mk(Kind::Pod, "app-1", "orphan", &[UNMANAGED]),
            Kind::ReplicaSet,
            "gone",
        ),
    ];
    assert_eq!(
        names(&judge_all(&s, &p, &set)),
        [
            "Deployment/app-1/web c0 notBound",
            "Pod/app-1/web-5d4f-x2 c1 unmanaged",
            "Pod/app-2/web-5d4f-x3 c0 unmanaged",
            "CronJob/app-1/nightly c0 unmanaged",
            "Pod/app-1/orphan c0 unmanaged",
        ]
    );
}

#[test]
fn a_controller_that_says_otherwise_folds_nothing() {
    let s = snap(&world());
    let p = Policy::default();
    // The pod still runs an old template: its denial is its own.
    let set = [
        mk(Kind::StatefulSet, "app-1", "db", &[UNMANAGED]),
        owned(
            mk(Kind::Pod, "app-1", "db-0", &[PRIVATE_B]),
            Kind::StatefulSet,
            "db",
        ),
    ];
    assert_eq!(
        names(&judge_all(&s, &p, &set)),
        [
            "StatefulSet/app-1/db c0 unmanaged",
            "Pod/app-1/db-0 c0 notBound"
        ]
    );
}

#[test]
fn an_owner_with_another_uid_is_another_object() {
    let s = snap(&world());
    let p = Policy::default();
    let uid = |s: &str| Uid::parse(s);
    let mut rs = mk(Kind::ReplicaSet, "app-1", "web-1", &[UNMANAGED]);
    rs.uid = uid("11111111-2222-3333-4444-555555555555");
    let mut pod = mk(Kind::Pod, "app-1", "web-1-a", &[UNMANAGED]);
    pod.owner = Some(Owner {
        kind: Kind::ReplicaSet,
        name: "web-1".into(),
        uid: uid("99999999-2222-3333-4444-555555555555"),
    });
    assert_eq!(judge_all(&s, &p, &[rs.clone(), pod.clone()]).len(), 2);
    pod.owner = Some(Owner {
        kind: Kind::ReplicaSet,
        name: "web-1".into(),
        uid: rs.uid,
    });
    assert_eq!(judge_all(&s, &p, &[rs, pod]).len(), 1);
}

#[test]
fn uids_round_trip_and_odd_ones_are_none() {
    let text = "0b8e9c1a-5f7d-4c3e-9a2b-1d2e3f405162";
    assert_eq!(
        Uid::parse(text).map(|u| u.to_string()).as_deref(),
        Some(text)
    );
    for bad in [
        "",
        "x",
        "0b8e9c1a5f7d4c3e9a2b1d2e3f405162",
        "0b8e9c1a-5f7d-4c3e-9a2b-1d2e3f40516g",
        "+b8e9c1a-5f7d-4c3e-9a2b-1d2e3f405162",
    ] {
        assert_eq!(Uid::parse(bad), None, "{bad}");
    }
}

#[test]
fn an_unbind_newly_denies_and_a_bind_newly_allows() {
    let before = world();
    let mut after = world();
    // team-a is unbound from ws-a, and ws-a is bound to team-b.
    after.spaces[0].spec.workspaces.clear();
    after.spaces[1].spec.workspaces.push("ws-a".into());
    let p = Policy::default();
    let set = [
        mk(Kind::Deployment, "app-1", "uses-a", &[PRIVATE_A]),
        mk(Kind::Deployment, "app-1", "uses-b", &[PRIVATE_B]),
        mk(Kind::Deployment, "app-1", "public", &[PUBLIC]),
        // Already denied (unmanaged); the unbind breaks its second image too.
        mk(Kind::Pod, "app-1", "both", &[UNMANAGED, PRIVATE_A]),
        // Its pod folds under it.
        owned(
            mk(Kind::Pod, "app-1", "uses-a-x", &[PRIVATE_A]),
            Kind::Deployment,
            "uses-a",
        ),
    ];
    let changes = diff(&snap(&before), &snap(&after), &p, &set);
    let shown: Vec<(String, usize, usize)> = changes
        .iter()
        .map(|c| {
            (
                c.workload.display(),
                c.newly_denied.len(),
                c.newly_allowed.len(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Deployment/app-1/uses-a".to_string(), 1, 0),
            ("Pod/app-1/both".to_string(), 1, 0),
            ("Deployment/app-1/uses-b".to_string(), 0, 1),
        ]
    );
    let denied: Vec<String> = newly_denied(&snap(&before), &snap(&after), &p, &set)
        .iter()
        .map(|c| c.workload.display())
        .collect();
    assert_eq!(denied, ["Deployment/app-1/uses-a", "Pod/app-1/both"]);
    // Nothing changes when the tables say the same.
    assert!(diff(&snap(&before), &snap(&before), &p, &set).is_empty());
}
