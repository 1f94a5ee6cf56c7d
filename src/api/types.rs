//! Rust types of the three CRDs; the CRD YAML is generated from them.

// The field docs are the CRDs' descriptions (`kubectl explain`), plain text with URLs
// and `host[:port]`, not rustdoc links.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;

/// Kind of registry API behind a Registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RegistryType {
    // Harbor, API v2.0: projects are spaces; admin credentials enable management.
    #[default]
    Harbor,
    // A Docker Registry (distribution) v2 API: path prefixes are spaces.
    DockerRegistry,
}

/// A Secret in a given namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// Namespace of the Secret.
    #[schemars(transform = rules::namespace_name)]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(transform = rules::object_name)]
    pub name: String,
}

/// An integrated container registry.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pullgate.io",
    version = "v1alpha1",
    kind = "Registry",
    doc = "An integrated container registry (Harbor or Docker Registry).",
    shortname = "preg",
    category = "pullgate",
    status = "RegistryStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.health"}"#,
    printcolumn = r#"{"name":"Spaces","type":"integer","jsonPath":".status.spaceCount"}"#,
    printcolumn = r#"{"name":"Storage","type":"string","jsonPath":".status.storageUsed"}"#,
    printcolumn = r#"{"name":"Conflict","type":"string","description":"Hosts this Registry shares with another Registry; images from them are denied until an admin fixes the URLs or aliases.","jsonPath":".status.conditions[?(@.type==\"Conflict\")].message"}"#,
    printcolumn = r#"{"name":"Managed","type":"string","jsonPath":".metadata.labels.pullgate\\.io/managed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Registry API type: Harbor or DockerRegistry.
    #[serde(rename = "type")]
    pub registry_type: RegistryType,
    /// Base URL: scheme http or https, host, optional port, no path
    /// (e.g. https://harbor.example.com). Docker Hub is https://docker.io.
    #[schemars(transform = rules::url)]
    pub url: String,
    /// Other host[:port] spellings that reach this registry (DNS aliases, IPs; an IPv6
    /// address in brackets). Image references naming any of them are judged as this
    /// registry's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = rules::aliases)]
    pub aliases: Vec<String>,
    /// API credentials: a Secret with keys `username` and `password`. A Harbor registry
    /// needs admin-level credentials for statistics, project creation and robot accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// PEM bundle of the CAs that sign the registry's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Skip TLS verification of the registry API (testing only).
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_skip_tls_verify: bool,
}

/// Health of a registry as last probed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Health {
    // The registry answered its health check.
    Healthy,
    // The registry did not answer or reported a problem (see message).
    Unhealthy,
    // Not probed yet.
    #[default]
    Unknown,
}

/// Observed state of a Registry, written by the leader.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// Healthy, Unhealthy or Unknown.
    #[serde(default)]
    pub health: Health,
    /// Why the registry is not Healthy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Number of spaces found on the registry (Harbor projects, or first path
    /// components of a Docker Registry's repositories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_count: Option<u64>,
    /// Storage used in bytes; absent when the registry cannot tell (Docker Registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used_bytes: Option<u64>,
    /// storageUsedBytes in human-readable form (for the STORAGE column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used: Option<String>,
    /// When the registry was last probed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    /// Which kind of API credential a Harbor registry is probed and managed with:
    /// AdminUser, SystemRobot (project and robot permissions only) or User (probes
    /// only); absent without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_kind: Option<String>,
    /// Standard conditions: Ready (the last probe), Valid (the spec), Conflict (hosts
    /// another Registry claims too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Who may pull from a space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Visibility {
    // Every namespace may pull.
    Public,
    // Only namespaces of the bound workspaces may pull.
    #[default]
    Private,
}

impl Visibility {
    /// The name in JSON output (the `Serialize` form).
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "Public",
            Visibility::Private => "Private",
        }
    }
}

/// A space of a registry: a Harbor project, or a path prefix of a Docker Registry.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pullgate.io",
    version = "v1alpha1",
    kind = "RegistrySpace",
    doc = "A space of an integrated registry, Public or Private, bound to workspaces.",
    shortname = "rspace",
    category = "pullgate",
    status = "RegistrySpaceStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"Registry","type":"string","jsonPath":".spec.registry"}"#,
    printcolumn = r#"{"name":"Space","type":"string","jsonPath":".spec.space"}"#,
    printcolumn = r#"{"name":"Visibility","type":"string","jsonPath":".spec.visibility"}"#,
    printcolumn = r#"{"name":"Workspaces","type":"string","jsonPath":".spec.workspaces"}"#,
    printcolumn = r#"{"name":"Namespaces","type":"integer","jsonPath":".status.boundNamespaces"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Findings","type":"integer","jsonPath":".status.findings"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpaceSpec {
    /// Name of the Registry this space belongs to.
    #[schemars(transform = rules::object_name)]
    pub registry: String,
    /// The Harbor project, or a Docker Registry path prefix of one or more whole path
    /// components ("teams/a"). "*" matches every repository of the registry that no
    /// other space matches.
    #[schemars(transform = rules::space)]
    pub space: String,
    /// Public (every namespace may pull) or Private (only bound workspaces). Default Private.
    #[serde(default)]
    pub visibility: Visibility,
    /// Workspaces whose namespaces may pull from this space when it is Private.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = rules::object_names)]
    pub workspaces: Vec<String>,
    /// Pull credentials for this space: a Secret of type kubernetes.io/dockerconfigjson
    /// (the entry for the registry's host is used) or kubernetes.io/basic-auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret_ref: Option<SecretRef>,
}

/// Observed state of a RegistrySpace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpaceStatus {
    /// Whether the space exists on the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists_on_registry: Option<bool>,
    /// Number of repositories in the space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_count: Option<u64>,
    /// Storage used by the space in bytes, when the registry can tell (Harbor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_used_bytes: Option<u64>,
    /// Namespaces currently allowed to pull (all known namespaces when Public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_namespaces: Option<u64>,
    /// Images of running workloads in this space that the current bindings deny (the
    /// background audit's findings; see the namespaces' Reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<u64>,
    /// Standard conditions (types Ready, Conflict, Audited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// How a workspace's namespaces are held to the policy; also the global `--mode` (written
/// `enforce`, `warn`, `audit` there), ordered from the least strict.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
pub enum Enforcement {
    // Record only; the request is allowed silently.
    Audit,
    // Allow, returning the denial text as a warning.
    Warn,
    // Deny requests with images the namespace may not pull.
    Enforce,
}

impl Enforcement {
    /// The name in the CRDs and reports (the `Serialize` form).
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Audit => "Audit",
            Enforcement::Warn => "Warn",
            Enforcement::Enforce => "Enforce",
        }
    }

    /// The name on the command line (`--mode`) and in the audit log.
    pub fn flag_name(self) -> &'static str {
        match self {
            Enforcement::Audit => "audit",
            Enforcement::Warn => "warn",
            Enforcement::Enforce => "enforce",
        }
    }
}

/// A named group of namespaces to which private spaces are bound.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pullgate.io",
    version = "v1alpha1",
    kind = "Workspace",
    doc = "A named group of namespaces to which private registry spaces are bound.",
    shortname = "ws",
    category = "pullgate",
    status = "WorkspaceStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn = r#"{"name":"Namespaces","type":"string","jsonPath":".status.namespaces"}"#,
    printcolumn = r#"{"name":"Enforcement","type":"string","jsonPath":".spec.enforcement"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Findings","type":"integer","jsonPath":".status.findings"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// Explicit member namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = rules::namespace_names)]
    pub namespaces: Vec<String>,
    /// Additional members: namespaces whose labels match. Only as safe as whoever may
    /// label namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::label_selector)]
    pub namespace_selector: Option<LabelSelector>,
    /// Overrides the global mode for this workspace's namespaces: Enforce, Warn or Audit.
    /// With several workspaces, the strictest applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
}

/// Observed state of a Workspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// Resolved member namespaces (explicit and selected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Images of running workloads in the member namespaces that the current bindings
    /// deny (the background audit's findings; see the namespaces' Reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<u64>,
    /// Standard conditions (types Ready, Audited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
