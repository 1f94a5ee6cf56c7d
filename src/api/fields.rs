//! Fields an object has that its schema does not: what the apiserver refuses with
//! `unknown field "spec.visiblity"` (kubectl's strict field validation), found the same
//! way for the standalone `--config`, so a typo there is an error rather than a default
//! (`visiblity: Public` would otherwise leave a Private space). [`unknown_fields`] walks
//! an object along the schema of its kind: the generated CRD schema for pullgate's kinds
//! (with the `metadata` every object has), k8s-openapi's for `v1` Namespace and Secret.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::CustomResourceExt;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

use super::{Registry, RegistrySpace, Workspace};

/// One step of a path into an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where a field is in an object: `spec.aliases[2]`, `metadata.labels["a/b"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) if is_plain(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?
                }
                Segment::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// A key that reads unambiguously after a dot.
fn is_plain(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Schemas by (apiVersion, kind), as JSON with every sub-schema inline.
static SCHEMAS: LazyLock<HashMap<(&'static str, &'static str), Value>> = LazyLock::new(|| {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let meta = ObjectMeta::json_schema(&mut generator).to_value();
    let mut out = HashMap::new();
    for (kind, crd) in [
        ("Registry", Registry::crd()),
        ("RegistrySpace", RegistrySpace::crd()),
        ("Workspace", Workspace::crd()),
    ] {
        let mut schema = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_default();
        // A CRD's schema leaves out what every object has; the apiserver adds it.
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
            props.insert("metadata".into(), meta.clone());
        }
        out.insert((super::API_VERSION, kind), schema);
    }
    out.insert(
        ("v1", "Namespace"),
        Namespace::json_schema(&mut generator).to_value(),
    );
    out.insert(
        ("v1", "Secret"),
        Secret::json_schema(&mut generator).to_value(),
    );
    out
});

/// The fields of `object` that the schema of its kind does not have, in document order
/// of the schema walk; `None` for a kind this module has no schema for.
pub fn unknown_fields(api_version: &str, kind: &str, object: &Value) -> Option<Vec<FieldPath>> {
    let schema = SCHEMAS.get(&(api_version, kind))?;
    let mut out = Vec::new();
    walk(schema, object, &mut Vec::new(), &mut out);
    Some(out)
}

fn walk(schema: &Value, value: &Value, path: &mut Vec<Segment>, out: &mut Vec<FieldPath>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            // A schema that lists no properties and no value schema says nothing about
            // keys (an embedded object, `fieldsV1`): nothing is unknown in it.
            if props.is_none() && extra.is_none() {
                return;
            }
            for (k, v) in map {
                let child = props.and_then(|p| p.get(k)).or(extra);
                path.push(Segment::Key(k.clone()));
                match child {
                    Some(child) => walk(child, v, path, out),
                    None => out.push(FieldPath(path.clone())),
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    walk(item_schema, v, path, out);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}
