//! The standalone configuration: a multi-document YAML file of the same objects the
//! cluster holds (Registry, RegistrySpace, Workspace, and optionally Namespace and
//! Secret), loaded by [`load`] into index [`Objects`].

use std::collections::HashSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::index::{NamespaceInfo, Objects};

/// Why a configuration file cannot be used. The message names the file and document.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A loaded configuration file.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub objects: Objects,
    /// Credential Secrets referenced by registries and spaces.
    pub secrets: Vec<Secret>,
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_bytes(path).map(|(cfg, _)| cfg)
}

/// [`load`], also handing back the bytes it parsed (what a reload compares with).
pub fn load_bytes(path: &Path) -> Result<(Config, Vec<u8>), ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let cfg =
        parse_bytes(&bytes).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
    Ok((cfg, bytes))
}

/// Parses the bytes of a configuration file.
pub fn parse_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError(format!("not UTF-8: {e}")))?;
    parse(text)
}

/// Parses configuration text (every document must be a known kind).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut seen = HashSet::new();
    for (i, doc) in documents(text)?.into_iter().enumerate() {
        let at = |e: String| ConfigError(format!("document {}: {e}", i + 1));
        let (api_version, kind) = type_of(&doc).map_err(at)?;
        let name = match (api_version.as_str(), kind.as_str()) {
            ("pullgate.io/v1alpha1", "Registry") => push(&mut cfg.objects.registries, doc),
            ("pullgate.io/v1alpha1", "RegistrySpace") => push(&mut cfg.objects.spaces, doc),
            ("pullgate.io/v1alpha1", "Workspace") => push(&mut cfg.objects.workspaces, doc),
            ("v1", "Secret") => push(&mut cfg.secrets, doc),
            ("v1", "Namespace") => {
                let ns: Namespace = typed(doc)?;
                let name = ns.name_any();
                cfg.objects.namespaces.push(NamespaceInfo {
                    name: name.clone(),
                    labels: ns.labels().clone(),
                });
                Ok(name)
            }
            _ => Err(ConfigError(format!(
                "unsupported object {api_version}/{kind}; expected pullgate.io/v1alpha1 Registry, RegistrySpace or Workspace, or v1 Namespace or Secret"
            ))),
        }
        .map_err(|e| at(e.0))?;
        if name.is_empty() {
            return Err(at(format!("{kind} has no metadata.name")));
        }
        let ns = doc_namespace(&cfg, &kind);
        if !seen.insert((kind.clone(), ns, name.clone())) {
            return Err(at(format!("{kind} {name:?} is defined twice")));
        }
    }
    Ok(cfg)
}

/// Splits multi-document YAML into JSON values, skipping empty documents.
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>, ConfigError> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(de)
            .map_err(|e| ConfigError(format!("document {}: invalid YAML: {e}", i + 1)))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// `apiVersion` and `kind` of a document.
pub fn type_of(doc: &serde_json::Value) -> Result<(String, String), String> {
    let field = |f: &str| doc.get(f).and_then(|v| v.as_str()).map(str::to_string);
    match (field("apiVersion"), field("kind")) {
        (Some(a), Some(k)) => Ok((a, k)),
        _ => Err("object has no apiVersion or kind".into()),
    }
}

fn typed<T: DeserializeOwned>(doc: serde_json::Value) -> Result<T, ConfigError> {
    serde_json::from_value(doc).map_err(|e| ConfigError(format!("invalid object: {e}")))
}

fn push<T: DeserializeOwned + ResourceExt>(
    list: &mut Vec<T>,
    doc: serde_json::Value,
) -> Result<String, ConfigError> {
    let obj: T = typed(doc)?;
    let name = obj.name_any();
    list.push(obj);
    Ok(name)
}

/// Secrets are namespaced; every other kind here is cluster-scoped.
fn doc_namespace(cfg: &Config, kind: &str) -> String {
    match kind {
        "Secret" => cfg
            .secrets
            .last()
            .and_then(|s| s.namespace())
            .unwrap_or_default(),
        _ => String::new(),
    }
}
