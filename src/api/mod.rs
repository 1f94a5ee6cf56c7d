//! The `pullgate.io/v1alpha1` API: the three cluster-scoped custom resources an admin
//! writes (Registry, RegistrySpace, Workspace) and the constants shared by every part of
//! pullgate. `crds()` renders their CustomResourceDefinitions.

mod fields;
mod rules;
mod types;

pub use fields::{unknown_fields, FieldPath, Segment};
pub use types::*;

use kube::core::CustomResourceExt;

/// API group of every pullgate resource.
pub const GROUP: &str = "pullgate.io";
/// `apiVersion` of every pullgate resource.
pub const API_VERSION: &str = "pullgate.io/v1alpha1";
/// Label on objects pullgate creates and owns (pull Secrets).
pub const MANAGED_BY_LABEL: &str = "pullgate.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "pullgate";
/// Secret type of a Docker config JSON Secret.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Data key of a Docker config JSON Secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// Label on Registries created for managed Harbor instances.
pub const MANAGED_LABEL: &str = "pullgate.io/managed";
/// Default name of the pull Secret kept in each namespace.
pub const DEFAULT_PULL_SECRET_NAME: &str = "pullgate-pull";
/// Default namespace pullgate runs in (always exempt from admission).
pub const DEFAULT_NAMESPACE: &str = "pullgate-system";
/// Default `--kube-api-qps`: cluster mode's writes per second (`cluster::pace` says why).
pub const DEFAULT_KUBE_API_QPS: f64 = 50.0;
/// Default `--kube-api-burst`: writes at once before the rate applies.
pub const DEFAULT_KUBE_API_BURST: u32 = 100;
/// The lowest `--kube-api-qps` other than 0 (no limit).
pub const MIN_KUBE_API_QPS: f64 = 0.001;

/// Whether `qps` is a `--kube-api-qps`: 0 (no limit) or a finite rate of at least
/// [`MIN_KUBE_API_QPS`]. The one rule of the flag and of a rate built in code.
pub fn is_kube_api_qps(qps: f64) -> bool {
    qps == 0.0 || (qps.is_finite() && qps >= MIN_KUBE_API_QPS)
}
/// Annotation the kubelet puts on mirror pods of static pods.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Label the apiserver sets on every namespace (used by the webhook namespaceSelector).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The kinds of pullgate's own custom resources (all in [`GROUP`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrKind {
    Registry,
    RegistrySpace,
    Workspace,
}

impl CrKind {
    pub const ALL: [CrKind; 3] = [CrKind::Registry, CrKind::RegistrySpace, CrKind::Workspace];

    pub fn as_str(self) -> &'static str {
        match self {
            CrKind::Registry => "Registry",
            CrKind::RegistrySpace => "RegistrySpace",
            CrKind::Workspace => "Workspace",
        }
    }

    /// The kind named `kind` in [`GROUP`], if it is one of pullgate's.
    pub fn from_kind(kind: &str) -> Option<CrKind> {
        CrKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for CrKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The report APIs of other projects pullgate writes its audit findings to (README, "Background audit and reports").
/// Which kind of report the background audit writes (`--reports`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ReportFormat {
    /// OpenReports `openreports.io/v1alpha1` `Report`.
    #[value(name = "openreports")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport`.
    #[value(name = "wgpolicy")]
    WgPolicy,
    /// No report objects: metrics and log lines only.
    #[value(name = "none")]
    None,
}

impl ReportFormat {
    /// (group, version, kind, plural) of the report objects, `None` for [`ReportFormat::None`].
    pub fn resource(self) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
        match self {
            ReportFormat::OpenReports => Some(("openreports.io", "v1alpha1", "Report", "reports")),
            ReportFormat::WgPolicy => Some((
                "wgpolicyk8s.io",
                "v1alpha2",
                "PolicyReport",
                "policyreports",
            )),
            ReportFormat::None => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::OpenReports => "openreports",
            ReportFormat::WgPolicy => "wgpolicy",
            ReportFormat::None => "none",
        }
    }
}

/// The CRDs of the API, in a stable order, as one multi-document YAML string.
pub fn crds_yaml() -> String {
    let crds = [Registry::crd(), RegistrySpace::crd(), Workspace::crd()];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        // Serialising a CRD built from our own types cannot fail.
        out.push_str(&serde_yaml::to_string(&crd).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests;
