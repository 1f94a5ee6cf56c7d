//! `mk_*` builders of API objects for tests (unit tests, property tests, benchmarks).
//! Not part of the supported API.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::NamespaceInfo;
use crate::api::{
    Enforcement, Registry, RegistrySpace, RegistrySpaceSpec, RegistrySpec, RegistryType,
    Visibility, Workspace, WorkspaceSpec,
};

pub fn mk_registry(name: &str, ty: RegistryType, url: &str, aliases: &[&str]) -> Registry {
    Registry::new(
        name,
        RegistrySpec {
            registry_type: ty,
            url: url.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..RegistrySpec::default()
        },
    )
}

pub fn mk_space(
    name: &str,
    registry: &str,
    space: &str,
    vis: Visibility,
    ws: &[&str],
) -> RegistrySpace {
    RegistrySpace::new(
        name,
        RegistrySpaceSpec {
            registry: registry.into(),
            space: space.into(),
            visibility: vis,
            workspaces: ws.iter().map(|w| w.to_string()).collect(),
            pull_secret_ref: None,
        },
    )
}

pub fn mk_workspace(
    name: &str,
    namespaces: &[&str],
    selector: Option<&[(&str, &str)]>,
    enforcement: Option<Enforcement>,
) -> Workspace {
    Workspace::new(
        name,
        WorkspaceSpec {
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            namespace_selector: selector.map(|labels| LabelSelector {
                match_labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                match_expressions: None,
            }),
            enforcement,
        },
    )
}

pub fn mk_ns(name: &str, labels: &[(&str, &str)]) -> NamespaceInfo {
    NamespaceInfo {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A cluster at benchmark scale: `spaces` spaces over two registries (a Harbor and a
/// Docker Registry), `workspaces` workspaces of `namespaces / workspaces` namespaces each
/// (half by list, half by label), every space Private and bound to two workspaces,
/// except every tenth which is Public.
pub fn mk_scaled(namespaces: usize, spaces: usize, workspaces: usize) -> super::Objects {
    let per_ws = namespaces / workspaces.max(1);
    let mut objects = super::Objects {
        registries: vec![
            mk_registry(
                "harbor",
                RegistryType::Harbor,
                "https://harbor.example.com",
                &["harbor.internal:8443"],
            ),
            mk_registry(
                "local",
                RegistryType::DockerRegistry,
                "http://registry.example.com:5000",
                &[],
            ),
            mk_registry(
                "hub",
                RegistryType::DockerRegistry,
                "https://docker.io",
                &[],
            ),
        ],
        namespaces_complete: true,
        ..super::Objects::default()
    };
    objects.spaces.push(mk_space(
        "hub.library",
        "hub",
        "library",
        Visibility::Public,
        &[],
    ));
    for w in 0..workspaces {
        let listed: Vec<String> = (0..per_ws / 2).map(|i| format!("ns-{w}-{i}")).collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        let ws = format!("ws-{w}");
        let team = format!("team-{w}");
        objects.workspaces.push(mk_workspace(
            &ws,
            &listed,
            Some(&[("team", team.as_str())]),
            None,
        ));
        for i in 0..per_ws {
            let labels: &[(&str, &str)] = if i >= per_ws / 2 {
                &[("team", team.as_str())]
            } else {
                &[]
            };
            objects
                .namespaces
                .push(mk_ns(&format!("ns-{w}-{i}"), labels));
        }
    }
    for s in 0..spaces {
        let (registry, space) = if s % 2 == 0 {
            ("harbor", format!("project-{s}"))
        } else {
            ("local", format!("teams/group-{}/space-{s}", s % 7))
        };
        let vis = if s % 10 == 0 {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let a = format!("ws-{}", s % workspaces.max(1));
        let b = format!("ws-{}", (s * 7 + 3) % workspaces.max(1));
        objects.spaces.push(mk_space(
            &format!("{registry}.{s}"),
            registry,
            &space,
            vis,
            &[&a, &b],
        ));
    }
    objects
}
