//! Decision tests (README, "Decision rules") against one small world of registries, spaces and workspaces.

use proptest::prelude::*;

use super::*;
use crate::api::{Enforcement, RegistryType::*, Visibility::*};
use crate::index::testing::*;
use crate::index::{Objects, Snapshot};

fn world() -> Objects {
    Objects {
        registries: vec![
            mk_registry(
                "harbor-prod",
                Harbor,
                "https://harbor.example.com",
                &["harbor.internal:8443", "10.0.0.5"],
            ),
            mk_registry("local", DockerRegistry, "http://127.0.0.1:5000", &[]),
            mk_registry("hub", DockerRegistry, "https://docker.io", &[]),
        ],
        spaces: vec![
            mk_space("hp.team-a", "harbor-prod", "team-a", Private, &["ws-a"]),
            mk_space("hp.team-b", "harbor-prod", "team-b", Private, &["ws-b"]),
            mk_space("hp.shared", "harbor-prod", "shared", Public, &[]),
            mk_space("local.teams-a", "local", "teams/a", Private, &["ws-a"]),
            mk_space("local.teams", "local", "teams", Public, &[]),
            mk_space("local.rest", "local", "*", Private, &["ws-c"]),
            mk_space("hub.library", "hub", "library", Public, &[]),
        ],
        workspaces: vec![
            mk_workspace("ws-a", &["app-1"], Some(&[("team", "a")]), None),
            mk_workspace("ws-b", &["app-2", "both"], None, None),
            mk_workspace("ws-c", &["both"], None, None),
        ],
        namespaces: vec![
            mk_ns("app-3", &[("team", "a")]),
            mk_ns("other", &[("team", "b")]),
        ],
        namespaces_complete: false,
    }
}

fn decide_in(objects: &Objects, policy: &Policy, ns: &str, images: &[&str]) -> Decision {
    let uses: Vec<ImageUse> = images
        .iter()
        .enumerate()
        .map(|(i, image)| ImageUse {
            image,
            location: Location::Container,
            name: ["c0", "c1", "c2", "c3", "c4", "c5"][i % 6],
        })
        .collect();
    let snap = Snapshot::build(objects, 1);
    decide(
        &Request {
            namespace: ns,
            images: &uses,
            mirror_pod_by_node: false,
            stale: false,
        },
        &snap,
        policy,
    )
}

fn verdict(ns: &str, image: &str) -> (bool, &'static str) {
    let d = decide_in(&world(), &Policy::default(), ns, &[image]);
    let v = &d.images[0];
    (v.allowed, v.reason.code())
}

#[test]
fn table_of_decisions() {
    let rows: &[(&str, &str, bool, &str)] = &[
        // public spaces, from any namespace
        ("other", "harbor.example.com/shared/tool:1", true, "public"),
        ("other", "nginx", true, "public"),
        ("other", "docker.io/library/nginx:1.27", true, "public"),
        ("other", "index.docker.io/library/nginx", true, "public"),
        (
            "other",
            "registry-1.docker.io/library/nginx",
            true,
            "public",
        ),
        // bound private: explicit member, selector member
        ("app-1", "harbor.example.com/team-a/app:1", true, "bound"),
        ("app-3", "harbor.example.com/team-a/app:1", true, "bound"),
        (
            "app-1",
            "harbor.example.com/team-a/sub/dir/app:1",
            true,
            "bound",
        ),
        // unbound private
        (
            "app-1",
            "harbor.example.com/team-b/app:1",
            false,
            "notBound",
        ),
        (
            "other",
            "harbor.example.com/team-a/app:1",
            false,
            "notBound",
        ),
        // look-alikes on component boundaries
        (
            "app-1",
            "harbor.example.com/team-ab/app:1",
            false,
            "noSpace",
        ),
        (
            "app-1",
            "harbor.example.com/team-a-evil/app:1",
            false,
            "noSpace",
        ),
        (
            "app-1",
            "harbor.example.com/team-a.evil/app:1",
            false,
            "noSpace",
        ),
        ("app-1", "harbor.example.com/team-a", true, "bound"),
        // no space in a registry without `*`
        ("app-1", "harbor.example.com/unknown/app", false, "noSpace"),
        ("app-1", "docker.io/someone/app", false, "noSpace"),
        // host spellings: case, default port, aliases
        ("app-1", "HARBOR.EXAMPLE.COM/team-a/app", true, "bound"),
        ("app-1", "harbor.example.com:443/team-a/app", true, "bound"),
        ("app-1", "harbor.internal:8443/team-a/app", true, "bound"),
        ("app-1", "10.0.0.5/team-a/app", true, "bound"),
        ("app-1", "10.0.0.5:443/team-a/app", true, "bound"),
        ("app-1", "harbor.internal/team-a/app", false, "unmanaged"),
        (
            "app-1",
            "harbor.example.com:8443/team-a/app",
            false,
            "unmanaged",
        ),
        ("app-1", "127.0.0.1:5000/teams/a/app", true, "bound"),
        ("app-1", "127.0.0.1/teams/a/app", false, "unmanaged"),
        // longest match wins, then `*`
        ("other", "127.0.0.1:5000/teams/a/app", false, "notBound"),
        ("other", "127.0.0.1:5000/teams/b/app", true, "public"),
        ("other", "127.0.0.1:5000/teams/ab/app", true, "public"),
        ("both", "127.0.0.1:5000/misc/app", true, "bound"),
        ("app-1", "127.0.0.1:5000/misc/app", false, "notBound"),
        // unmanaged (default deny), Docker Hub look-alike hosts
        ("app-1", "quay.io/x/y", false, "unmanaged"),
        (
            "app-1",
            "docker.io.evil.com/library/nginx",
            false,
            "unmanaged",
        ),
        (
            "app-1",
            "harbor.example.com.evil.com/team-a/app",
            false,
            "unmanaged",
        ),
        // `harbor/...` without a dot is Docker Hub, not a host
        ("app-1", "harbor/team-a/app", false, "noSpace"),
        // invalid references are denied, never skipped
        ("app-1", "harbor.example.com/Team-A/app", false, "invalid"),
        (
            "app-1",
            "harbor.example.com/team-a/../team-b/app",
            false,
            "invalid",
        ),
        ("app-1", "", false, "invalid"),
        // a namespace in two workspaces may use the spaces of both
        ("both", "harbor.example.com/team-b/app", true, "bound"),
    ];
    for (ns, image, allowed, reason) in rows {
        assert_eq!(verdict(ns, image), (*allowed, *reason), "{image} in {ns}");
    }
}

#[test]
fn unmanaged_policy_allow() {
    let policy = Policy {
        unmanaged: Unmanaged::Allow,
        ..Policy::default()
    };
    let d = decide_in(
        &world(),
        &policy,
        "app-1",
        &["quay.io/x/y", "harbor.example.com/team-b/x"],
    );
    assert!(d.images[0].allowed);
    assert_eq!(d.images[0].reason.code(), "unmanaged");
    // unmanaged=allow never opens integrated registries
    assert!(!d.images[1].allowed);
    assert!(!d.allowed());
}

#[test]
fn unmanaged_allow_never_opens_the_hosts_of_an_invalid_registry() {
    let policy = Policy {
        unmanaged: Unmanaged::Allow,
        ..Policy::default()
    };
    let mut objects = world();
    // a typo in the URL (a path) makes the Registry unusable; its hosts stay claimed
    objects.registries[0].spec.url = "https://harbor.example.com/api".into();
    let d = decide_in(
        &objects,
        &policy,
        "app-1",
        &[
            "harbor.example.com/team-a/x",
            "10.0.0.5/team-a/x",
            "quay.io/x/y",
        ],
    );
    let codes: Vec<_> = d
        .images
        .iter()
        .map(|v| (v.allowed, v.reason.code()))
        .collect();
    assert_eq!(
        codes,
        [
            (false, "unusableRegistry"),
            (false, "unusableRegistry"),
            (true, "unmanaged")
        ]
    );
    let msg = d.message();
    assert!(
        msg.contains("is from registry \"harbor-prod\", whose spec is invalid (see its status); ask a cluster admin to fix it"),
        "{msg}"
    );
}

#[test]
fn message_lists_every_denied_image_and_no_other_tenant() {
    let d = decide_in(
        &world(),
        &Policy::default(),
        "app-1",
        &[
            "harbor.example.com/team-b/api:1.2",
            "nginx",
            "quay.io/x/y",
            "harbor.example.com/Bad/x",
            "harbor.example.com/team-ab/z",
        ],
    );
    assert_eq!(d.verdict(), Verdict::Deny);
    let msg = d.message();
    assert!(msg.starts_with("4 images are not allowed: "), "{msg}");
    assert!(msg.contains(r#"image "harbor.example.com/team-b/api:1.2" (container "c0") is in private registry space "team-b" of registry "harbor-prod", which is not bound to a workspace of namespace "app-1""#), "{msg}");
    assert!(msg.contains(r#"image "quay.io/x/y" (container "c2") is from "quay.io", which is not an integrated registry"#), "{msg}");
    assert!(
        msg.contains(
            r#"image "harbor.example.com/Bad/x" (container "c3") is not a valid image reference"#
        ),
        "{msg}"
    );
    assert!(msg.contains(r#"image "harbor.example.com/team-ab/z" (container "c4") is not in any registry space of registry "harbor-prod""#), "{msg}");
    assert!(
        !msg.contains("nginx"),
        "allowed images are not listed: {msg}"
    );
    for other_tenant in ["ws-a", "ws-b", "ws-c", "app-2", "both", "app-3"] {
        assert!(
            !msg.contains(other_tenant),
            "message names {other_tenant}: {msg}"
        );
    }
}

#[test]
fn exempt_namespaces_and_mirror_pods_are_untouched() {
    let snap = Snapshot::build(&world(), 1);
    let uses = [ImageUse {
        image: "quay.io/x/y",
        location: Location::Container,
        name: "c",
    }];
    for ns in ["kube-system", "pullgate-system"] {
        let d = decide(
            &Request {
                namespace: ns,
                images: &uses,
                mirror_pod_by_node: false,
                stale: false,
            },
            &snap,
            &Policy::default(),
        );
        assert!(d.exempt && d.allowed() && d.images.is_empty(), "{ns}");
    }
    let d = decide(
        &Request {
            namespace: "app-1",
            images: &uses,
            mirror_pod_by_node: true,
            stale: false,
        },
        &snap,
        &Policy::default(),
    );
    assert!(d.exempt && d.allowed());
    let d = decide(
        &Request {
            namespace: "app-1",
            images: &uses,
            mirror_pod_by_node: false,
            stale: false,
        },
        &snap,
        &Policy::default(),
    );
    assert!(!d.exempt && !d.allowed());
}

#[test]
fn every_location_is_judged() {
    let snap = Snapshot::build(&world(), 1);
    for location in [
        Location::Container,
        Location::InitContainer,
        Location::EphemeralContainer,
        Location::ImageVolume,
    ] {
        let uses = [ImageUse {
            image: "harbor.example.com/team-b/x",
            location,
            name: "n",
        }];
        let d = decide(
            &Request {
                namespace: "app-1",
                images: &uses,
                mirror_pod_by_node: false,
                stale: false,
            },
            &snap,
            &Policy::default(),
        );
        assert!(!d.allowed(), "{location:?}");
        assert!(
            d.message().contains(&format!("({location} \"n\")")),
            "{}",
            d.message()
        );
    }
}

#[test]
fn modes_global_and_per_workspace() {
    let bad = "harbor.example.com/team-b/x";
    for (mode, verdict) in [
        (Enforcement::Enforce, Verdict::Deny),
        (Enforcement::Warn, Verdict::Warn),
        (Enforcement::Audit, Verdict::Audit),
    ] {
        let policy = Policy {
            mode,
            ..Policy::default()
        };
        let d = decide_in(&world(), &policy, "app-1", &[bad]);
        assert_eq!(d.verdict(), verdict);
        assert_eq!(d.allowed(), verdict != Verdict::Deny);
        // an allowed request is "allow" in every mode
        assert_eq!(
            decide_in(&world(), &policy, "app-1", &["nginx"]).verdict(),
            Verdict::Allow
        );
    }
    // a workspace's enforcement overrides the global mode; the strictest of several wins
    let mut objects = world();
    objects.workspaces[1].spec.enforcement = Some(Enforcement::Audit); // ws-b
    objects.workspaces[2].spec.enforcement = Some(Enforcement::Warn); // ws-c
    let d = decide_in(&objects, &Policy::default(), "both", &["quay.io/x"]);
    assert_eq!(d.verdict(), Verdict::Warn);
    let d = decide_in(&objects, &Policy::default(), "app-2", &["quay.io/x"]);
    assert_eq!(d.verdict(), Verdict::Audit);
    let warn_global = Policy {
        mode: Enforcement::Warn,
        ..Policy::default()
    };
    objects.workspaces[0].spec.enforcement = Some(Enforcement::Enforce); // ws-a
    assert_eq!(
        decide_in(&objects, &warn_global, "app-1", &["quay.io/x"]).verdict(),
        Verdict::Deny
    );
    assert_eq!(
        decide_in(&objects, &warn_global, "other", &["quay.io/x"]).verdict(),
        Verdict::Warn
    );
}

/// The mode rule: each workspace of the namespace contributes its `enforcement`, or the global
/// mode when it sets none; the strictest wins; no workspace means the global mode. Each
/// row: global mode, the `enforcement` of each workspace the namespace is in, and the
/// effective mode (the verdict on an unbound private image follows from it).
#[test]
fn effective_mode_is_the_strictest_contribution() {
    use Enforcement::{Audit as A, Enforce as E, Warn as W};
    let rows: &[(Enforcement, &[Option<Enforcement>], Enforcement)] = &[
        // in no workspace: the global mode
        (E, &[], E),
        (W, &[], W),
        (A, &[], A),
        // one workspace without enforcement: the global mode
        (E, &[None], E),
        (W, &[None], W),
        (A, &[None], A),
        // one workspace with enforcement: it overrides the global mode either way
        (E, &[Some(W)], W),
        (E, &[Some(A)], A),
        (W, &[Some(E)], E),
        (A, &[Some(W)], W),
        (A, &[Some(E)], E),
        // Warn + unset: the unset one brings the global mode (the regression: Warn
        // under global enforce)
        (E, &[Some(W), None], E),
        (W, &[Some(W), None], W),
        (A, &[Some(W), None], W),
        (E, &[None, Some(W)], E),
        // Audit + unset
        (E, &[Some(A), None], E),
        (W, &[Some(A), None], W),
        (A, &[Some(A), None], A),
        // Enforce + unset: never weaker than Enforce
        (A, &[Some(E), None], E),
        (W, &[None, Some(E)], E),
        // both set: the global mode plays no part
        (E, &[Some(A), Some(W)], W),
        (A, &[Some(A), Some(W)], W),
        (E, &[Some(A), Some(E)], E),
        (A, &[Some(A), Some(E)], E),
        (W, &[Some(W), Some(E)], E),
        (E, &[Some(A), Some(A)], A),
        (E, &[Some(W), Some(W)], W),
        // both unset
        (E, &[None, None], E),
        (W, &[None, None], W),
        (A, &[None, None], A),
        // three workspaces
        (E, &[Some(A), Some(W), None], E),
        (W, &[Some(A), Some(A), None], W),
        (A, &[Some(A), Some(W), Some(A)], W),
        (A, &[None, None, Some(A)], A),
    ];
    let bad = "harbor.example.com/team-b/x";
    let mut failures = Vec::new();
    for (global, enforcements, want) in rows {
        let mut objects = world();
        // "mixed" is in one new workspace per row entry, none of them bound to team-b.
        for (i, e) in enforcements.iter().enumerate() {
            objects
                .workspaces
                .push(mk_workspace(&format!("ws-mode-{i}"), &["mixed"], None, *e));
        }
        let policy = Policy {
            mode: *global,
            ..Policy::default()
        };
        let d = decide_in(&objects, &policy, "mixed", &[bad]);
        let verdict = match want {
            E => Verdict::Deny,
            W => Verdict::Warn,
            A => Verdict::Audit,
        };
        if d.mode != *want || d.verdict() != verdict {
            failures.push(format!(
                "global {global:?}, workspaces {enforcements:?}: mode {:?}, verdict {:?}; want {want:?}, {verdict:?}",
                d.mode,
                d.verdict()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn conflicting_spaces_are_private_with_the_intersection() {
    let mut objects = world();
    objects.spaces.push(mk_space(
        "hp.team-a-again",
        "harbor-prod",
        "team-a",
        Public,
        &["ws-a", "ws-b"],
    ));
    objects.spaces[0].spec.workspaces.push("ws-c".into());
    let snap = Snapshot::build(&objects, 1);
    assert!(snap
        .problems()
        .iter()
        .any(|p| p.name == "hp.team-a-again" && p.message.starts_with("Conflict")));
    // Public in one declaration does not make it public; only ws-a is in both lists
    let image = "harbor.example.com/team-a/app";
    assert_eq!(
        decide_in(&objects, &Policy::default(), "other", &[image]).images[0]
            .reason
            .code(),
        "notBound"
    );
    assert!(decide_in(&objects, &Policy::default(), "app-1", &[image]).allowed());
    assert!(!decide_in(&objects, &Policy::default(), "both", &[image]).allowed());
}

#[test]
fn stale_table_refuses_private_grants_only() {
    let snap = Snapshot::build(&world(), 1);
    let uses = [
        ImageUse {
            image: "harbor.example.com/team-a/x",
            location: Location::Container,
            name: "private",
        },
        ImageUse {
            image: "nginx",
            location: Location::Container,
            name: "public",
        },
    ];
    let d = decide(
        &Request {
            namespace: "app-1",
            images: &uses,
            mirror_pod_by_node: false,
            stale: true,
        },
        &snap,
        &Policy::default(),
    );
    assert_eq!(d.images[0].reason.code(), "stale");
    assert!(d.images[1].allowed);
    assert!(d.message().contains("retry later"), "{}", d.message());
}

#[test]
fn unknown_namespace_in_complete_table_gets_retryable_denial() {
    let mut objects = world();
    objects.namespaces_complete = true;
    let d = decide_in(
        &objects,
        &Policy::default(),
        "brand-new",
        &["harbor.example.com/team-a/x", "nginx"],
    );
    assert_eq!(d.images[0].reason.code(), "namespaceUnknown");
    assert!(d.message().contains("retry"), "{}", d.message());
    assert!(d.images[1].allowed);
    // an explicit member is granted even before the namespace is seen
    let d = decide_in(
        &objects,
        &Policy::default(),
        "app-1",
        &["harbor.example.com/team-a/x"],
    );
    assert!(d.allowed());
}

#[test]
fn credentials_needed_for_private_or_pull_secret_spaces() {
    let d = decide_in(
        &world(),
        &Policy::default(),
        "app-1",
        &["nginx", "harbor.example.com/shared/x"],
    );
    assert!(!d.needs_credentials());
    let d = decide_in(
        &world(),
        &Policy::default(),
        "app-1",
        &["nginx", "harbor.example.com/team-a/x"],
    );
    assert!(d.needs_credentials());
    let mut objects = world();
    objects.spaces[2].spec.pull_secret_ref = Some(crate::api::SecretRef {
        namespace: "pullgate-system".into(),
        name: "s".into(),
    });
    assert!(decide_in(
        &objects,
        &Policy::default(),
        "app-1",
        &["harbor.example.com/shared/x"]
    )
    .needs_credentials());
}

fn alias_world(spelling: &str) -> Objects {
    let mut objects = world();
    objects.registries[0]
        .spec
        .aliases
        .push(spelling.to_string());
    objects
}

proptest! {
    /// Every spelling of a registry host (case, default port, alias) yields the same decision.
    #[test]
    fn alias_spellings_decide_alike(
        ns in prop::sample::select(vec!["app-1", "app-2", "app-3", "both", "other", "app-9"]),
        space in prop::sample::select(vec!["team-a", "team-b", "shared", "team-ab", "none"]),
        upper in proptest::collection::vec(any::<bool>(), 20),
        port in any::<bool>(),
    ) {
        let objects = alias_world("mirror.corp.example:5443");
        let cased = |h: &str| h.chars().zip(upper.iter().cycle()).map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c }).collect::<String>();
        let spellings = [
            "harbor.example.com".to_string(),
            cased("harbor.example.com"),
            format!("{}{}", cased("harbor.example.com"), if port { ":443" } else { "" }),
            "harbor.internal:8443".to_string(),
            cased("harbor.internal:8443"),
            "10.0.0.5".to_string(),
            "mirror.corp.example:5443".to_string(),
            cased("mirror.corp.example:5443"),
        ];
        let expected = decide_in(&objects, &Policy::default(), ns, &[&format!("harbor.example.com/{space}/app:1")]);
        for host in &spellings {
            let image = format!("{host}/{space}/app:1");
            let d = decide_in(&objects, &Policy::default(), ns, &[&image]);
            prop_assert_eq!(d.verdict(), expected.verdict(), "{}", image);
            prop_assert_eq!(&d.images[0].reason, &expected.images[0].reason, "{}", image);
            prop_assert_eq!(&d.images[0].space, &expected.images[0].space, "{}", image);
        }
    }

    /// Decisions never depend on the order of objects.
    #[test]
    fn decisions_do_not_depend_on_object_order(seed in any::<u64>(), extra_conflict in any::<bool>()) {
        let mut objects = world();
        if extra_conflict {
            objects.spaces.push(mk_space("hp.team-b-2", "harbor-prod", "team-b", Public, &["ws-b", "ws-c"]));
            objects.registries.push(mk_registry("dup", DockerRegistry, "https://10.0.0.5", &[]));
        }
        let mut shuffled = objects.clone();
        let mut rng = seed;
        let mut shuffle = |n: usize| -> Vec<usize> {
            let mut idx: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                idx.swap(i, (rng >> 33) as usize % (i + 1));
            }
            idx
        };
        let order = shuffle(objects.registries.len());
        shuffled.registries = order.iter().map(|i| objects.registries[*i].clone()).collect();
        let order = shuffle(objects.spaces.len());
        shuffled.spaces = order.iter().map(|i| objects.spaces[*i].clone()).collect();
        let order = shuffle(objects.workspaces.len());
        shuffled.workspaces = order.iter().map(|i| objects.workspaces[*i].clone()).collect();
        shuffled.namespaces.reverse();
        let images = ["harbor.example.com/team-a/x", "harbor.example.com/team-b/x", "10.0.0.5/team-a/x", "127.0.0.1:5000/misc/x", "127.0.0.1:5000/teams/a/x", "nginx", "quay.io/x"];
        for ns in ["app-1", "app-2", "app-3", "both", "other"] {
            let a = decide_in(&objects, &Policy::default(), ns, &images);
            let b = decide_in(&shuffled, &Policy::default(), ns, &images);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.message(), b.message());
        }
        prop_assert_eq!(Snapshot::build(&objects, 1).problems().to_vec(), Snapshot::build(&shuffled, 1).problems().to_vec());
    }
}
