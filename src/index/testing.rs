//! `mk_*` builders of API objects for tests (unit tests, property tests, benchmarks).

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
