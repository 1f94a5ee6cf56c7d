//! Input files read as kubectl reads them (README, "`pullgate check`"): the one entry point for `check -f`,
//! `--config` and `audit -f`. [`read`] takes a file, a directory (its `.yaml`, `.yml`
//! and `.json` files, sorted by name, not recursive) or `-` for stdin; [`parse`] splits
//! each file into documents (a JSON stream when it starts with `{`, as kubectl decides,
//! else multi-document YAML with merge keys applied), expands every list (any object with
//! an `items` array: `List`, `PodList`, `DeploymentList`, ..., nested lists included) and
//! hands back [`Object`]s that remember where they came from ([`Origin`]).
//!
//! Also here, because every reader of input needs them: [`classify`], which says whether
//! pullgate judges a kind, knows it as one that holds no pod, or does not know it;
//! [`escape`], for printing names and messages taken from input; and [`finish`], how
//! the commands that read input print their outcome.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::DeserializeSeed as _;
use serde::Deserialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::api::{FieldPath, Segment};
use crate::object::{api_group, Kind};

/// How deep lists may nest. kubectl sets no bound; real manifests nest one or two
/// levels, and the bound keeps the expansion's recursion shallow on any input.
pub const MAX_LIST_DEPTH: usize = 16;

/// File extensions read from a directory (kubectl's list, matched case-sensitively).
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// What messages call standard input.
pub const STDIN_NAME: &str = "<stdin>";

/// Why input cannot be used. The message names the file, the document and the item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// One file's name (as messages show it) and content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Where an object came from: file, document (counted from 1, empty documents
/// included) and the path of list items that led to it (`items[2].items[0]`), if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub item: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", escape(&self.file), self.document)?;
        if !self.item.is_empty() {
            write!(f, ", {}", self.item)?;
        }
        Ok(())
    }
}

/// One object of the input, as JSON, with its origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub origin: Origin,
    pub value: Value,
}

impl Object {
    fn str_at(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion")
    }
    pub fn kind(&self) -> &str {
        self.str_at("/kind")
    }
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }
    pub fn namespace(&self) -> &str {
        self.str_at("/metadata/namespace")
    }
    /// An error about this object, prefixed with its origin.
    pub fn error(&self, message: impl fmt::Display) -> InputError {
        InputError(format!("{}: {message}", self.origin))
    }
}

/// Reads then parses every path, in order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Object>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        for file in read(path)? {
            out.extend(parse(&file)?);
        }
    }
    Ok(out)
}

/// The files behind a path: the file itself, a directory's input files, or stdin for
/// `-` (read once per process; a second read sees the same bytes).
pub fn read(path: &Path) -> Result<Vec<File>, InputError> {
    if path.as_os_str() == "-" {
        return Ok(vec![File {
            name: STDIN_NAME.to_string(),
            bytes: stdin()?,
        }]);
    }
    let cannot = |e: std::io::Error| InputError(format!("cannot read {}: {e}", shown(path)));
    if !std::fs::metadata(path).map_err(cannot)?.is_dir() {
        return Ok(vec![File {
            name: path.display().to_string(),
            bytes: std::fs::read(path).map_err(cannot)?,
        }]);
    }
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(path).map_err(cannot)? {
        let p = entry.map_err(cannot)?.path();
        let wanted = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        // Subdirectories are not read (kubectl without -R); a symlink to a file is.
        if wanted && std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            paths.push(p);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p)
                .map_err(|e| InputError(format!("cannot read {}: {e}", shown(&p))))?;
            Ok(File {
                name: p.display().to_string(),
                bytes,
            })
        })
        .collect()
}

fn shown(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

fn stdin() -> Result<Vec<u8>, InputError> {
    static STDIN: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    STDIN
        .get_or_init(|| {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map(|_| bytes)
                .map_err(|e| format!("cannot read stdin: {e}"))
        })
        .clone()
        .map_err(InputError)
}

/// The objects of one file, lists expanded, in document and item order.
pub fn parse(file: &File) -> Result<Vec<Object>, InputError> {
    let text = std::str::from_utf8(&file.bytes)
        .map_err(|e| InputError(format!("{}: not UTF-8: {e}", escape(&file.name))))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (document, value) in documents(&file.name, text)? {
        let origin = Origin {
            file: file.name.clone(),
            document,
            item: String::new(),
        };
        expand(origin, value, 0, &mut out)?;
    }
    Ok(out)
}

/// Parses text as one file named `name`.
pub fn parse_text(name: &str, text: &str) -> Result<Vec<Object>, InputError> {
    parse(&File {
        name: name.to_string(),
        bytes: text.as_bytes().to_vec(),
    })
}

/// The non-empty documents of a file with their numbers. Like kubectl, a file that
/// starts with `{` is read as a stream of JSON values (where `<<` is a plain key) when
/// it is one; anything else, flow-style YAML included, as YAML.
fn documents(name: &str, text: &str) -> Result<Vec<(usize, Value)>, InputError> {
    let at = |n: usize, e: String| InputError(format!("{}, document {n}: {e}", escape(name)));
    if text.trim_start().starts_with('{') {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        if let Ok(values) = stream.collect::<Result<Vec<Value>, _>>() {
            return Ok((1..).zip(values).collect());
        }
    }
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        // serde_yaml's syntax errors (libyaml's) give a position and never the text
        // there; a Value accepts every node, so no type error can quote a value.
        let mut yaml =
            Yaml::deserialize(de).map_err(|e| at(i + 1, format!("invalid YAML: {e}")))?;
        if yaml.is_null() {
            continue;
        }
        apply_merges(&mut yaml, "").map_err(|e| at(i + 1, e))?;
        out.push((i + 1, to_json(yaml, "").map_err(|e| at(i + 1, e))?));
    }
    Ok(out)
}

/// Expands lists: an object with an `items` key is a list (kubectl's rule, whatever
/// its kind), `items: null` an empty one.
fn expand(
    origin: Origin,
    value: Value,
    depth: usize,
    out: &mut Vec<Object>,
) -> Result<(), InputError> {
    let at = |e: &str| InputError(format!("{origin}: {e}"));
    let Value::Object(mut map) = value else {
        return Err(at(
            "not an object (expected a mapping with apiVersion and kind)",
        ));
    };
    match map.remove("items") {
        None => {
            let object = Object {
                origin,
                value: Value::Object(map),
            };
            if object.api_version().is_empty() || object.kind().is_empty() {
                return Err(object.error("object has no apiVersion or kind"));
            }
            out.push(object);
        }
        Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if depth >= MAX_LIST_DEPTH {
                return Err(at(&format!(
                    "lists nest deeper than {MAX_LIST_DEPTH} levels"
                )));
            }
            for (i, item) in items.into_iter().enumerate() {
                let origin = Origin {
                    item: join_path(&origin.item, &format!("items[{i}]")),
                    ..origin.clone()
                };
                expand(origin, item, depth + 1, out)?;
            }
        }
        Some(_) => return Err(at("items is not a list")),
    }
    Ok(())
}

/// Applies YAML merge keys (`<<`) everywhere in a document: a mapping or a list of
/// mappings merged in, earlier ones winning, merges inside merged mappings applied too.
/// A key written before `<<` and also merged is refused: the YAML spec lets the written
/// key win, kubectl's YAML reader the merged one, and a check must not guess.
/// (serde_yaml's `Value::apply_merge` is not used: it leaves the `<<` of a merged
/// mapping in place, so a merge of a merge would be lost.)
fn apply_merges(v: &mut Yaml, path: &str) -> Result<(), String> {
    match v {
        Yaml::Mapping(m) => {
            merge_into(m, path)?;
            for (k, child) in m.iter_mut() {
                apply_merges(child, &join_path(path, &yaml_key_segment(k)))?;
            }
        }
        Yaml::Sequence(s) => {
            for (i, child) in s.iter_mut().enumerate() {
                apply_merges(child, &format!("{path}[{i}]"))?;
            }
        }
        Yaml::Tagged(t) => apply_merges(&mut t.value, path)?,
        _ => {}
    }
    Ok(())
}

fn merge_into(m: &mut serde_yaml::Mapping, path: &str) -> Result<(), String> {
    let merge_key = Yaml::String("<<".into());
    let Some(position) = m.keys().position(|k| *k == merge_key) else {
        return Ok(());
    };
    let before: Vec<Yaml> = m.keys().take(position).cloned().collect();
    let here = if path.is_empty() {
        "the top level"
    } else {
        path
    };
    let not_mappings =
        || format!("the merge key `<<` at {here} must be a mapping or a list of mappings");
    let sources = match m.remove(&merge_key) {
        Some(Yaml::Mapping(s)) => vec![s],
        Some(Yaml::Sequence(list)) => list
            .into_iter()
            .map(|s| match s {
                Yaml::Mapping(s) => Ok(s),
                _ => Err(not_mappings()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(not_mappings()),
    };
    for mut source in sources {
        merge_into(&mut source, path)?;
        for (k, v) in source {
            if before.contains(&k) {
                return Err(format!(
                    "{} is written before the merge key `<<` and also merged in; YAML readers disagree on which wins (kubectl takes the merged one): write it after `<<`, or once",
                    join_path(path, &yaml_key_segment(&k)).trim_start_matches('.')
                ));
            }
            if !m.contains_key(&k) {
                m.insert(k, v);
            }
        }
    }
    Ok(())
}

/// YAML to JSON as kubectl converts it: integer and boolean keys become strings; tags
/// other than the core ones (which serde_yaml resolves), keys of other kinds, and
/// numbers JSON cannot hold (`.inf`, `.nan`) are refused. Errors name the path only.
fn to_json(v: Yaml, path: &str) -> Result<Value, String> {
    let here = || {
        if path.is_empty() {
            "the top level".to_string()
        } else {
            path.trim_start_matches('.').to_string()
        }
    };
    Ok(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{}: a number that JSON cannot hold", here()))?
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(s) => Value::Array(
            s.into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    _ => return Err(format!("{}: a mapping key that is not a string", here())),
                };
                let child = join_path(path, &key_segment(&key));
                out.insert(key, to_json(v, &child)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            return Err(format!(
                "{}: the YAML tag {} is not supported",
                here(),
                escape(&t.tag.to_string())
            ))
        }
    })
}

/// Joins a field path and a segment (`.name`, `["key"]`, `[3]`, or `items[3]`).
pub(crate) fn join_path(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.strip_prefix('.').unwrap_or(segment).to_string()
    } else if segment.starts_with('.') || segment.starts_with('[') {
        format!("{path}{segment}")
    } else {
        format!("{path}.{segment}")
    }
}

/// `.name` for a key that reads as a plain name, `["key"]` (escaped) otherwise.
pub(crate) fn key_segment(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

fn yaml_key_segment(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => key_segment(s),
        Yaml::Bool(b) => key_segment(&b.to_string()),
        Yaml::Number(n) => key_segment(&n.to_string()),
        _ => "[?]".to_string(),
    }
}

/// The line (counted from 1) where the field at `path` of the object from `origin` is
/// written in `file`: the line of its key. `None` when it cannot be found (a path that
/// ends at a list item, or one the file does not have). Positions come
/// from the parsers themselves: a search that stops with an error at the field, whose
/// position the error carries.
pub fn line_of(file: &File, origin: &Origin, path: &FieldPath) -> Option<usize> {
    let text = std::str::from_utf8(&file.bytes).ok()?;
    let mut full: Vec<Segment> = Vec::new();
    for part in origin.item.split('.').filter(|p| !p.is_empty()) {
        let (key, index) = part.strip_suffix(']')?.split_once('[')?;
        full.push(Segment::Key(key.to_string()));
        full.push(Segment::Index(index.parse().ok()?));
    }
    full.extend(path.0.iter().cloned());
    let n = origin.document.checked_sub(1)?;
    if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        for _ in 0..n {
            serde::de::IgnoredAny::deserialize(&mut de).ok()?;
        }
        if let Err(e) = find::Find::new(&full).deserialize(&mut de) {
            if e.to_string().contains(find::FOUND) {
                return Some(e.line());
            }
        }
    }
    let doc = serde_yaml::Deserializer::from_str(text).nth(n)?;
    match find::Find::new(&full).deserialize(doc) {
        Err(e) if e.to_string().contains(find::FOUND) => e.location().map(|l| l.line()),
        _ => None,
    }
}

/// A search along a path through any serde input, ending in an error at the field.
mod find {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    use crate::api::Segment;

    /// The message of the error that marks the field.
    pub const FOUND: &str = "field found";

    pub struct Find<'a> {
        path: &'a [Segment],
        /// Inside a YAML merge (`<<`): a list is several mappings to search, not items.
        merge: bool,
    }

    impl<'a> Find<'a> {
        pub fn new(path: &'a [Segment]) -> Self {
            Find { path, merge: false }
        }
    }

    impl<'de> DeserializeSeed<'de> for Find<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    /// Reads a key; errors with [`FOUND`] when it is the last one looked for.
    struct Key<'a> {
        want: Option<&'a str>,
        last: bool,
    }

    /// Whether the key read is the one wanted, or the merge key.
    enum Read {
        Wanted,
        Merge,
        Other,
    }

    impl<'de> DeserializeSeed<'de> for Key<'_> {
        type Value = Read;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Key<'_> {
        type Value = Read;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping key")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Read, E> {
            if Some(s) == self.want {
                if self.last {
                    return Err(E::custom(FOUND));
                }
                return Ok(Read::Wanted);
            }
            Ok(if s == "<<" { Read::Merge } else { Read::Other })
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Read, E> {
            self.visit_str(&b.to_string())
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Read, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Read, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Read, E> {
            Ok(Read::Other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Read, E> {
            Ok(Read::Other)
        }
    }

    impl<'de> Visitor<'de> for Find<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let (want, rest) = match self.path.split_first() {
                Some((Segment::Key(k), rest)) => (Some(k.as_str()), rest),
                _ => (None, &[][..]),
            };
            let last = rest.is_empty();
            while let Some(read) = map.next_key_seed(Key { want, last })? {
                match read {
                    Read::Wanted => map.next_value_seed(Find::new(rest))?,
                    Read::Merge if want.is_some() => map.next_value_seed(Find {
                        path: self.path,
                        merge: true,
                    })?,
                    _ => map.next_value::<IgnoredAny>().map(drop)?,
                }
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if self.merge {
                while seq
                    .next_element_seed(Find {
                        path: self.path,
                        merge: false,
                    })?
                    .is_some()
                {}
                return Ok(());
            }
            let (want, rest) = match self.path.split_first() {
                Some((Segment::Index(i), rest)) => (Some(*i), rest),
                _ => (None, &[][..]),
            };
            let mut i = 0;
            loop {
                let more = if Some(i) == want {
                    seq.next_element_seed(Find::new(rest))?.is_some()
                } else {
                    seq.next_element::<IgnoredAny>()?.is_some()
                };
                if !more {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }
}

/// What pullgate makes of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A kind whose pods are judged (README, "Decision rules").
    Judged(Kind),
    /// A built-in Kubernetes kind that holds no pod: nothing for the webhook to judge.
    BuiltIn,
    /// A kind of a custom API group (a group with a dot that is not built in): the
    /// webhook judges the pods its controller makes, not the resource.
    Custom,
    /// Neither: a typo (`Deploymnet`), a removed API (`extensions`), or a group name
    /// without a dot that Kubernetes does not have. Bad input.
    Unknown,
}

/// Built-in kinds by API group (Kubernetes 1.33), judged kinds included. A group that is
/// listed here is built in; a kind missing from its list is unknown.
const BUILT_IN: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "Binding",
            "ComponentStatus",
            "ConfigMap",
            "Endpoints",
            "Event",
            "LimitRange",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "ResourceQuota",
            "Secret",
            "Service",
            "ServiceAccount",
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingWebhookConfiguration",
        ],
    ),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "apps",
        &[
            "ControllerRevision",
            "DaemonSet",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
        ],
    ),
    (
        "authentication.k8s.io",
        &["SelfSubjectReview", "TokenRequest", "TokenReview"],
    ),
    (
        "authorization.k8s.io",
        &[
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ],
    ),
    ("autoscaling", &["HorizontalPodAutoscaler", "Scale"]),
    ("batch", &["CronJob", "Job"]),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest", "ClusterTrustBundle"],
    ),
    ("coordination.k8s.io", &["Lease", "LeaseCandidate"]),
    ("discovery.k8s.io", &["EndpointSlice"]),
    ("events.k8s.io", &["Event"]),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    ("internal.apiserver.k8s.io", &["StorageVersion"]),
    (
        "networking.k8s.io",
        &[
            "IPAddress",
            "Ingress",
            "IngressClass",
            "NetworkPolicy",
            "ServiceCIDR",
        ],
    ),
    ("node.k8s.io", &["RuntimeClass"]),
    ("policy", &["Eviction", "PodDisruptionBudget"]),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
    ),
    (
        "resource.k8s.io",
        &[
            "DeviceClass",
            "ResourceClaim",
            "ResourceClaimTemplate",
            "ResourceSlice",
        ],
    ),
    ("scheduling.k8s.io", &["PriorityClass"]),
    (
        "storage.k8s.io",
        &[
            "CSIDriver",
            "CSINode",
            "CSIStorageCapacity",
            "StorageClass",
            "VolumeAttachment",
            "VolumeAttributesClass",
        ],
    ),
    ("storagemigration.k8s.io", &["StorageVersionMigration"]),
];

/// The class of an `apiVersion` (`version` or `group/version`) and `kind`. The version
/// is not checked: a judged kind is judged whatever version it names.
pub fn classify(api_version: &str, kind: &str) -> Class {
    let Some(group) = api_group(api_version) else {
        return Class::Unknown;
    };
    if let Some(k) = Kind::from_group_kind(group, kind) {
        return Class::Judged(k);
    }
    match BUILT_IN.iter().find(|(g, _)| *g == group) {
        Some((_, kinds)) if kinds.contains(&kind) => Class::BuiltIn,
        Some(_) => Class::Unknown,
        None if group.contains('.') => Class::Custom,
        None => Class::Unknown,
    }
}

/// The exit code of `check`, `audit` and `overview` when their input (files, cluster
/// objects, flags) cannot be read: one code for all three, so scripts test one number.
pub const EXIT_BAD_INPUT: i32 = 2;

/// The end of a command that reads input (`check`, `audit`): prints its report and
/// returns its exit code, or prints each input error (escaped) and returns
/// [`EXIT_BAD_INPUT`].
pub fn finish(outcome: Result<(String, i32), Vec<String>>) -> i32 {
    match outcome {
        Ok((out, code)) => {
            print!("{out}");
            code
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {}", escape(&e));
            }
            EXIT_BAD_INPUT
        }
    }
}

/// Text taken from input, safe to print on a terminal: control characters (C0, DEL,
/// C1, so no ANSI escape sequence) and bidirectional overrides are written as escapes
/// (`\r`, `\u{1b}`).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests;
