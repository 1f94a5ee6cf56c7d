//! Binding-table construction: host keys, problems, memberships.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::testing::*;
use super::*;
use crate::api::{RegistryType::*, Visibility::*};

fn problems_of(objects: &Objects) -> Vec<String> {
    Snapshot::build(objects, 1)
        .problems()
        .iter()
        .map(|p| format!("{} {}: {}", p.kind, p.name, p.message))
        .collect()
}

#[test]
fn registry_urls() {
    let ok = [
        (
            "https://harbor.example.com",
            true,
            "harbor.example.com",
            None,
        ),
        (
            "https://Harbor.Example.com/",
            true,
            "harbor.example.com",
            None,
        ),
        ("http://127.0.0.1:5000", false, "127.0.0.1", Some(5000)),
        ("https://[fc00::1]:5000", true, "[fc00::1]", Some(5000)),
    ];
    for (url, https, host, port) in ok {
        let u = parse_registry_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (https, host, port),
            "{url}"
        );
    }
    for bad in [
        "harbor.example.com",
        "ftp://h",
        "https://h/path",
        "https://h:0",
        "https://h:99999",
        "https://h:+80",
        "https://h.",
        "https://-h",
        "https://u@h",
        "https://h?x",
    ] {
        assert!(parse_registry_url(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn host_keys_include_default_port_and_docker_hub_spellings() {
    let u = parse_registry_url("https://harbor.example.com").unwrap();
    let aliases = [
        ("h2.internal".to_string(), Some(8443)),
        ("10.0.0.5".to_string(), Some(443)),
    ];
    assert_eq!(
        u.all_keys(&aliases),
        [
            "10.0.0.5",
            "10.0.0.5:443",
            "h2.internal:8443",
            "harbor.example.com",
            "harbor.example.com:443"
        ]
    );
    let hub = parse_registry_url("https://docker.io").unwrap();
    assert_eq!(
        hub.all_keys(&[]),
        [
            "docker.io",
            "docker.io:443",
            "index.docker.io",
            "index.docker.io:443",
            "registry-1.docker.io",
            "registry-1.docker.io:443"
        ]
    );
    let http = parse_registry_url("http://reg.local").unwrap();
    assert_eq!(http.all_keys(&[]), ["reg.local", "reg.local:80"]);
}

#[test]
fn bad_objects_are_skipped_and_reported() {
    let mut ws = mk_workspace("ws-bad-selector", &["ok-ns", "Not_A_Namespace"], None, None);
    ws.spec.namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "team".into(),
            operator: "Near".into(),
            values: None,
        }]),
    });
    let objects = Objects {
        registries: vec![
            mk_registry("bad-url", DockerRegistry, "harbor.example.com", &[]),
            mk_registry(
                "harbor",
                Harbor,
                "https://harbor.example.com",
                &["bad alias"],
            ),
            mk_registry(
                "twin",
                DockerRegistry,
                "https://harbor.example.com:443",
                &[],
            ),
        ],
        spaces: vec![
            mk_space("orphan", "nope", "x", Private, &[]),
            mk_space("upper", "harbor", "Team", Private, &[]),
            mk_space("nested", "harbor", "a/b", Private, &[]),
            mk_space("ghost-ws", "harbor", "ok", Private, &["ws-missing"]),
        ],
        workspaces: vec![ws],
        namespaces: vec![mk_ns("x", &[("team", "a")])],
        namespaces_complete: false,
    };
    let p = problems_of(&objects).join("\n");
    for expected in [
        "Registry bad-url: url \"harbor.example.com\" must start with https:// or http://; registry skipped",
        "Registry harbor: alias \"bad alias\" is not a valid host[:port]; alias ignored",
        "Registry harbor: Conflict: host \"harbor.example.com\" is claimed by registries harbor, twin",
        "RegistrySpace orphan: registry \"nope\" does not exist",
        "RegistrySpace upper: space \"Team\" is not \"*\" or a path of lower-case components; space skipped",
        "RegistrySpace nested: space \"a/b\" of a Harbor registry must be one project name; space skipped",
        "RegistrySpace ghost-ws: workspace \"ws-missing\" does not exist",
        "Workspace ws-bad-selector: namespace \"Not_A_Namespace\" is not a valid namespace name; ignored",
        "Workspace ws-bad-selector: namespaceSelector is invalid and matches nothing: unknown selector operator \"Near\"",
    ] {
        assert!(p.contains(expected), "missing {expected:?} in\n{p}");
    }
    let snap = Snapshot::build(&objects, 7);
    assert_eq!(snap.revision(), 7);
    assert_eq!(snap.workspaces()[0].namespaces, ["ok-ns"]);
    let img = crate::reference::ImageRef::parse("harbor.example.com/ok/x").unwrap();
    assert!(
        matches!(snap.resolve(&img), Resolution::HostConflict(names) if names == ["harbor", "twin"])
    );
}

#[test]
fn membership_by_list_and_selector_expressions() {
    let mut ws = mk_workspace("ws", &["listed"], None, None);
    ws.spec.namespace_selector = Some(LabelSelector {
        match_labels: Some([("tier".to_string(), "prod".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            },
            LabelSelectorRequirement {
                key: "frozen".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    });
    let by_name = mk_workspace(
        "by-name",
        &[],
        Some(&[("kubernetes.io/metadata.name", "n4")]),
        None,
    );
    let objects = Objects {
        workspaces: vec![ws, by_name],
        namespaces: vec![
            mk_ns("n1", &[("tier", "prod"), ("team", "a")]),
            mk_ns("n2", &[("tier", "prod"), ("team", "c")]),
            mk_ns("n3", &[("tier", "prod"), ("team", "b"), ("frozen", "")]),
            mk_ns("n4", &[]),
        ],
        ..Objects::default()
    };
    let snap = Snapshot::build(&objects, 1);
    let members = |name: &str| {
        snap.workspaces()
            .iter()
            .find(|w| w.name == name)
            .unwrap()
            .namespaces
            .clone()
    };
    assert_eq!(members("ws"), ["listed", "n1"]);
    assert_eq!(members("by-name"), ["n4"]);
    assert!(
        snap.namespace_known("anything"),
        "standalone tables know every namespace name"
    );
}

#[test]
fn bound_namespaces_counts() {
    let objects = Objects {
        registries: vec![mk_registry("r", DockerRegistry, "https://r.example", &[])],
        spaces: vec![
            mk_space("priv", "r", "p", Private, &["w1", "w2"]),
            mk_space("pub", "r", "q", Public, &[]),
        ],
        workspaces: vec![
            mk_workspace("w1", &["a", "b"], None, None),
            mk_workspace("w2", &["b", "c"], None, None),
        ],
        namespaces: vec![mk_ns("d", &[])],
        namespaces_complete: true,
    };
    let snap = Snapshot::build(&objects, 1);
    let spaces: Vec<&SpaceEntry> = snap.spaces_of("r").collect();
    assert_eq!(snap.bound_namespaces(spaces[0]), ["a", "b", "c"]);
    assert_eq!(snap.bound_namespaces(spaces[1]), ["a", "b", "c", "d"]);
}

#[test]
fn selector_memberships_need_every_label_pair() {
    let selector = |labels: &[(&str, &str)], exprs: Option<Vec<LabelSelectorRequirement>>| {
        let mut ws = mk_workspace("ws", &[], None, None);
        ws.spec.namespace_selector = Some(LabelSelector {
            match_labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: exprs,
        });
        let objects = Objects {
            workspaces: vec![ws],
            namespaces: vec![
                mk_ns("n1", &[("tier", "prod"), ("team", "a")]),
                mk_ns("n2", &[("tier", "prod"), ("team", "b")]),
                mk_ns("n3", &[("tier", "dev"), ("team", "a")]),
            ],
            ..Objects::default()
        };
        Snapshot::build(&objects, 1).workspaces()[0]
            .namespaces
            .clone()
    };
    assert_eq!(selector(&[("tier", "prod"), ("team", "a")], None), ["n1"]);
    assert_eq!(selector(&[("tier", "prod")], None), ["n1", "n2"]);
    assert!(selector(&[("tier", "prod"), ("team", "z")], None).is_empty());
    let exists = vec![LabelSelectorRequirement {
        key: "team".into(),
        operator: "Exists".into(),
        values: None,
    }];
    // No matchLabels pairs: every namespace is a candidate.
    assert_eq!(selector(&[], Some(exists)), ["n1", "n2", "n3"]);
    assert_eq!(selector(&[], None), ["n1", "n2", "n3"]);
}

/// A registry spelling that no valid image reference can have (an IPv4 address
/// other than its dotted quad, an IPv6 address not in its shortest form) would never
/// match: it is refused as a problem instead of silently matching nothing.
#[test]
fn hosts_no_reference_can_spell_are_refused_as_aliases_and_urls() {
    let objects = Objects {
        registries: vec![
            mk_registry(
                "harbor",
                Harbor,
                "https://harbor.example.com",
                &[
                    "0xa.0.0.5",
                    "0XA.0.0.5:8443",
                    "167772165",
                    "10.0.0.05",
                    "127.1:5000",
                    "10.0.0.256",
                    "[fd00:0::5]",
                    "10.0.0.5",
                    "[fd00::5]:8443",
                ],
            ),
            mk_registry("hex-url", DockerRegistry, "https://0x7f000001:5000", &[]),
            mk_registry("short-url", DockerRegistry, "http://10.1.5", &["r.example"]),
            mk_registry("quad-url", DockerRegistry, "http://10.1.0.5", &[]),
        ],
        ..Objects::default()
    };
    let p = problems_of(&objects).join("\n");
    for expected in [
        "Registry harbor: alias \"0xa.0.0.5\" can never match an image reference: host \"0xa.0.0.5\" is IPv4 address 10.0.0.5 in another spelling; only \"10.0.0.5\" is valid; alias ignored",
        "Registry harbor: alias \"0XA.0.0.5:8443\" can never match an image reference: host \"0xa.0.0.5\" is IPv4 address 10.0.0.5",
        "Registry harbor: alias \"167772165\" can never match an image reference: host \"167772165\" is IPv4 address 10.0.0.5",
        "Registry harbor: alias \"10.0.0.05\" can never match an image reference",
        "Registry harbor: alias \"127.1:5000\" can never match an image reference: host \"127.1\" is IPv4 address 127.0.0.1",
        "Registry harbor: alias \"10.0.0.256\" can never match an image reference: host \"10.0.0.256\" is all numbers but no IPv4 address",
        "Registry harbor: alias \"[fd00:0::5]\" can never match an image reference: host \"[fd00:0::5]\" is not in the shortest form",
        "Registry hex-url: url \"https://0x7f000001:5000\" names a host no image reference can match: host \"0x7f000001\" is IPv4 address 127.0.0.1 in another spelling; only \"127.0.0.1\" is valid; registry skipped",
        "Registry short-url: url \"http://10.1.5\" names a host no image reference can match",
    ] {
        assert!(p.contains(expected), "missing {expected:?} in\n{p}");
    }
    assert_eq!(p.lines().count(), 9, "{p}");
    let snap = Snapshot::build(&objects, 1);
    let names: Vec<&str> = snap.registries().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["harbor", "quad-url"]);
    assert_eq!(
        snap.registries()[0].host_keys,
        [
            "10.0.0.5",
            "10.0.0.5:443",
            "[fd00::5]:8443",
            "harbor.example.com",
            "harbor.example.com:443"
        ]
    );
}

#[test]
fn an_invalid_registry_still_claims_its_hosts_so_they_are_never_unmanaged() {
    let objects = Objects {
        registries: vec![
            // a URL with a path: skipped, but its host and aliases stay claimed
            mk_registry(
                "typo",
                Harbor,
                "https://harbor.example.com/v2",
                &["harbor.internal:8443"],
            ),
            // no scheme at all
            mk_registry("bare", DockerRegistry, "registry.example.com:5000", &[]),
            // an invalid registry never takes a host from a valid one
            mk_registry(
                "broken-twin",
                Harbor,
                "ftp://ok.example.com",
                &["ok.example.com"],
            ),
            mk_registry("ok", Harbor, "https://ok.example.com", &[]),
        ],
        ..Objects::default()
    };
    let snap = Snapshot::build(&objects, 1);
    let resolve = |r: &str| {
        let img = crate::reference::ImageRef::parse(r).unwrap();
        match snap.resolve(&img) {
            Resolution::Unusable(name) => format!("unusable {name}"),
            Resolution::Unmanaged => "unmanaged".into(),
            Resolution::NoSpace(reg) => format!("registry {}", reg.name),
            other => format!("{other:?}"),
        }
    };
    assert_eq!(resolve("harbor.example.com/team-a/app"), "unusable typo");
    assert_eq!(
        resolve("HARBOR.example.com:443/team-a/app"),
        "unusable typo"
    );
    assert_eq!(resolve("harbor.internal:8443/team-a/app"), "unusable typo");
    assert_eq!(resolve("registry.example.com:5000/x"), "unusable bare");
    assert_eq!(resolve("ok.example.com/x"), "registry ok");
    assert_eq!(resolve("elsewhere.example.com/x"), "unmanaged");
    let p = problems_of(&objects).join("\n");
    assert!(
        p.contains("Registry typo: url \"https://harbor.example.com/v2\" must be scheme://host[:port] with no path, query or user; registry skipped, images from its hosts are denied"),
        "{p}"
    );
}
