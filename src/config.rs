//! The standalone configuration: the same objects the cluster holds (Registry,
//! RegistrySpace, Workspace, and optionally Namespace and Secret), read from a file, a
//! directory or stdin by the shared [`input`] loader and turned by [`load`]
//! into index [`Objects`]. A field the schema of its kind does not have is an error naming
//! the field and its line, as `kubectl apply` refuses it. Secrets are read through
//! [`Sensitive`], so no error about one shows a value.

use std::collections::HashSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use crate::api;
use crate::index::{NamespaceInfo, Objects};
use crate::input::{self, InputError};
use crate::sensitive::Sensitive;

/// Why a configuration cannot be used. The message names the file and document.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<InputError> for ConfigError {
    fn from(e: InputError) -> ConfigError {
        ConfigError(e.0)
    }
}

/// A loaded configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub objects: Objects,
    /// Credential Secrets referenced by registries and spaces.
    pub secrets: Vec<Secret>,
}

/// The files a configuration was read from: what a reload compares with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content(Vec<input::File>);

/// Reads and parses a configuration (a file, a directory, or `-`).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_bytes(path).map(|(cfg, _)| cfg)
}

/// [`load`], also handing back the content it parsed.
pub fn load_bytes(path: &Path) -> Result<(Config, Content), ConfigError> {
    let content = read_content(path)?;
    Ok((parse_content(&content)?, content))
}

/// Reads the files of a configuration without parsing them.
pub fn read_content(path: &Path) -> Result<Content, ConfigError> {
    Ok(Content(input::read(path)?))
}

/// Parses what [`read_content`] read.
pub fn parse_content(content: &Content) -> Result<Config, ConfigError> {
    let mut objects = Vec::new();
    for file in &content.0 {
        let parsed = input::parse(file)?;
        check_fields(file, &parsed)?;
        objects.extend(parsed);
    }
    from_objects(objects, &content.0)
}

/// Parses configuration text (every object must be of a kind listed above).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let file = input::File {
        name: "config".to_string(),
        bytes: text.as_bytes().to_vec(),
    };
    let objects = input::parse(&file)?;
    check_fields(&file, &objects)?;
    from_objects(objects, std::slice::from_ref(&file))
}

/// Refuses a field that the schema of its object's kind does not have, as the apiserver
/// does: `visiblity: Public` is an error, not a Private space. Each unknown field is named
/// with the line it is written on.
fn check_fields(file: &input::File, objects: &[input::Object]) -> Result<(), ConfigError> {
    for o in objects {
        let unknown = api::unknown_fields(o.api_version(), o.kind(), &o.value).unwrap_or_default();
        if unknown.is_empty() {
            continue;
        }
        let fields: Vec<String> = unknown
            .iter()
            .map(|path| match input::line_of(file, &o.origin, path) {
                Some(line) => format!("{:?} at line {line}", path.to_string()),
                None => format!("{:?}", path.to_string()),
            })
            .collect();
        return Err(o
            .error(format!(
                "{} {:?}: unknown field{} {}",
                o.kind(),
                o.name(),
                if fields.len() == 1 { "" } else { "s" },
                fields.join(", ")
            ))
            .into());
    }
    Ok(())
}

fn from_objects(objects: Vec<input::Object>, files: &[input::File]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut seen = HashSet::new();
    for o in objects {
        let (api_version, kind) = (o.api_version().to_string(), o.kind().to_string());
        let name = match (api_version.as_str(), kind.as_str()) {
            (api::API_VERSION, "Registry") => push(&mut cfg.objects.registries, &o, files),
            (api::API_VERSION, "RegistrySpace") => push(&mut cfg.objects.spaces, &o, files),
            (api::API_VERSION, "Workspace") => push(&mut cfg.objects.workspaces, &o, files),
            ("v1", "Secret") => {
                let secret: Secret = Sensitive::of_value(&o.value)
                    .from_value(&o.value)
                    .map_err(|e| o.error(e))?;
                let name = secret.name_any();
                cfg.secrets.push(secret);
                Ok(name)
            }
            ("v1", "Namespace") => {
                let ns: Namespace = typed(&o, files)?;
                let name = ns.name_any();
                cfg.objects.namespaces.push(NamespaceInfo {
                    name: name.clone(),
                    labels: ns.labels().clone(),
                });
                Ok(name)
            }
            _ => Err(o.error(format!(
                "unsupported object {}/{}; expected pullgate.io/v1alpha1 Registry, RegistrySpace or Workspace, or v1 Namespace or Secret",
                input::escape(&api_version),
                input::escape(&kind)
            ))),
        }?;
        if name.is_empty() {
            return Err(o.error(format!("{kind} has no metadata.name")).into());
        }
        let ns = doc_namespace(&cfg, &kind);
        if !seen.insert((kind.clone(), ns, name.clone())) {
            return Err(o.error(format!("{kind} {name:?} is defined twice")).into());
        }
    }
    Ok(cfg)
}

/// The typed object; an error names the field that does not fit, and its line.
fn typed<T: DeserializeOwned>(o: &input::Object, files: &[input::File]) -> Result<T, InputError> {
    serde_path_to_error::deserialize(o.value.clone()).map_err(|e| {
        let path = api::FieldPath(
            e.path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => {
                        Some(api::Segment::Index(*index))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        Some(api::Segment::Key(key.clone()))
                    }
                    _ => None,
                })
                .collect(),
        );
        let line = files
            .iter()
            .find(|f| f.name == o.origin.file)
            .and_then(|f| input::line_of(f, &o.origin, &path));
        let at = match (path.0.is_empty(), line) {
            (true, _) => String::new(),
            (false, Some(line)) => format!("{:?} at line {line}: ", path.to_string()),
            (false, None) => format!("{:?}: ", path.to_string()),
        };
        o.error(format!("invalid object: {at}{}", e.inner()))
    })
}

fn push<T: DeserializeOwned + ResourceExt>(
    list: &mut Vec<T>,
    o: &input::Object,
    files: &[input::File],
) -> Result<String, InputError> {
    let obj: T = typed(o, files)?;
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
