//! The parts of a pod or workload object that pullgate reads, deserialised by serde
//! straight from the raw JSON into borrowed structs (unknown fields skipped, a repeated
//! known key refused by the derive, so every reader sees one interpretation), and the
//! images they use, with the bounds on what one object may hold; and the [`Kind`]s whose
//! pods are judged. Admission, `check`, `findings` and the what-if all read objects
//! through this module, so they see one interpretation too. The JSON itself is read by
//! [`crate::wire`].

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::api::MIRROR_POD_ANNOTATION;
use crate::policy::{ImageUse, Location};
use crate::wire::{from_slice, text};

#[cfg(test)]
mod tests;

/// The kinds whose pods are judged (README, "Decision rules"): the admission reader's
/// kind, and the kind findings, reports and the audit command name (serialised and
/// displayed as the Kubernetes kind name, `Deployment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    PodTemplate,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Job,
        Kind::CronJob,
        Kind::PodTemplate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::PodTemplate => "PodTemplate",
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ReplicationController | Kind::PodTemplate => "",
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::ReplicaSet => "apps",
            Kind::Job | Kind::CronJob => "batch",
        }
    }

    /// The `apiVersion` of the kind's stable version (for object references).
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            "apps" => "apps/v1",
            _ => "batch/v1",
        }
    }

    /// The kind for an API group and kind name, if it is one pullgate judges.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.as_str() == kind)
    }

    /// The kind named by an `apiVersion` (`v1`, `apps/v1`) and a kind name, as owner
    /// references and manifests name it.
    pub fn from_api_version(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::from_group_kind(api_group(api_version)?, kind)
    }
}

/// The group of an `apiVersion`: `""` for `version`, `group` for `group/version`;
/// `None` for any other form (`/v1`, `a/b/v1`).
pub fn api_group(api_version: &str) -> Option<&str> {
    match api_version.split_once('/') {
        None => Some(""),
        Some((group, version)) if !group.is_empty() && !version.contains('/') => Some(group),
        Some(_) => None,
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most image locations (containers, init containers, ephemeral containers and
/// image volumes, counted over the whole object) an object may hold; more is refused.
///
/// The apiserver can never send more. It stores an object in etcd, whose default
/// request limit is 1.5 MiB (`--max-request-bytes` 1,572,864), and before admission it
/// defaults every entry. The cheapest image location stored is an image volume: in the
/// protobuf encoding the list entry (2 bytes), a name of at least one character (3),
/// the volume source (2) and its `image` field (3), a reference of at least one
/// character (3) and the defaulted `pullPolicy` of at least `Always` (8): 21 bytes, so
/// at most 1,572,864 / 21 = 74,898 image locations fit. (A container costs more: it is
/// also defaulted with `terminationMessagePath`, `terminationMessagePolicy`,
/// `imagePullPolicy` and `resources`.) The bound keeps a margin above that; no real
/// pod comes near it (a pod with 100 containers is already rare).
pub const MAX_IMAGE_LOCATIONS: usize = 80_000;

/// The most `imagePullSecrets` entries an object may hold; more is refused. The
/// cheapest stored entry, `{}` (an empty name is only warned about), costs 4 bytes of
/// protobuf, so at most 1,572,864 / 4 = 393,216 fit in etcd's default request limit.
pub const MAX_PULL_SECRETS: usize = 400_000;

/// What is left of the bounds of the object being read. serde's derive cannot pass
/// state down to the lists, so it is kept per thread: one object is read on one thread
/// from start to end (no await inside), and every object starts with the full bounds.
#[derive(Clone, Copy)]
struct Left {
    locations: usize,
    pull_secrets: usize,
}

impl Left {
    const FULL: Left = Left {
        locations: MAX_IMAGE_LOCATIONS,
        pull_secrets: MAX_PULL_SECRETS,
    };
}

thread_local! {
    static LEFT: Cell<Left> = const { Cell::new(Left::FULL) };
}

/// What one entry of a list costs from [`Left`].
#[derive(Clone, Copy)]
enum Bound {
    Location,
    PullSecret,
}

impl Bound {
    /// Takes one entry from the bounds, refusing the object past them (before the entry
    /// is kept, so what an object makes pullgate hold is bounded too).
    fn take<E: serde::de::Error>(self) -> Result<(), E> {
        let mut left = LEFT.get();
        let (n, what) = match self {
            Bound::Location => (
                &mut left.locations,
                format_args!(
                    "more than {MAX_IMAGE_LOCATIONS} image locations (containers, init \
                     containers, ephemeral containers and image volumes), more than the \
                     apiserver can store in one object"
                ),
            ),
            Bound::PullSecret => (
                &mut left.pull_secrets,
                format_args!(
                    "more than {MAX_PULL_SECRETS} imagePullSecrets entries, more than the \
                     apiserver can store in one object"
                ),
            ),
        };
        *n = n.checked_sub(1).ok_or_else(|| E::custom(what))?;
        LEFT.set(left);
        Ok(())
    }
}

/// A pod, workload or PodTemplate object.
#[derive(Debug, Default)]
pub struct Object<'a> {
    pub metadata: Option<Meta<'a>>,
    pub spec: Option<Spec<'a>>,
    /// PodTemplate keeps its template at the top level.
    pub template: Option<Template<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
    /// Reads the object's fields with the full bounds of [`MAX_IMAGE_LOCATIONS`] and
    /// [`MAX_PULL_SECRETS`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object<'a>, D::Error> {
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(borrow)]
            metadata: Option<Meta<'a>>,
            #[serde(borrow)]
            spec: Option<Spec<'a>>,
            #[serde(borrow)]
            template: Option<Template<'a>>,
        }
        LEFT.set(Left::FULL);
        let f = Fields::deserialize(d)?;
        Ok(Object {
            metadata: f.metadata,
            spec: f.spec,
            template: f.template,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub generate_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub namespace: Option<Cow<'a, str>>,
    /// Whether the annotations hold the mirror-pod key (their values are not read).
    #[serde(default, rename = "annotations", deserialize_with = "mirror_key")]
    pub mirror_annotation: bool,
}

/// A pod spec, or a workload spec holding a template (one type serves both, since the
/// kind decides which fields are read).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec<'a> {
    #[serde(default, borrow, deserialize_with = "containers")]
    pub containers: Option<Vec<Container<'a>>>,
    #[serde(default, borrow, deserialize_with = "containers")]
    pub init_containers: Option<Vec<Container<'a>>>,
    #[serde(default, borrow, deserialize_with = "containers")]
    pub ephemeral_containers: Option<Vec<Container<'a>>>,
    /// Only the volumes that have an image are kept.
    #[serde(default, borrow, deserialize_with = "image_volumes")]
    pub volumes: Option<Vec<Volume<'a>>>,
    #[serde(default, borrow, deserialize_with = "pull_secrets")]
    pub image_pull_secrets: Option<Vec<NameRef<'a>>>,
    #[serde(borrow)]
    pub template: Option<Box<Template<'a>>>,
    #[serde(borrow)]
    pub job_template: Option<Box<Template<'a>>>,
}

/// `template` of a workload or `jobTemplate` of a CronJob: only its spec matters.
#[derive(Debug, Default, Deserialize)]
pub struct Template<'a> {
    #[serde(borrow)]
    pub spec: Option<Spec<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Container<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub image: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Volume<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub image: Option<ImageVolume<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ImageVolume<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub reference: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NameRef<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Cow<'a, str>>,
}

fn containers<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Container<'a>>>, D::Error> {
    d.deserialize_option(List::new(Bound::Location, |_| true))
}

fn image_volumes<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Volume<'a>>>, D::Error> {
    d.deserialize_option(List::new(Bound::Location, |v: &Volume| v.image.is_some()))
}

fn pull_secrets<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<NameRef<'a>>>, D::Error> {
    d.deserialize_option(List::new(Bound::PullSecret, |_| true))
}

/// An optional list whose kept entries are counted against the object's bounds.
struct List<T> {
    bound: Bound,
    keep: fn(&T) -> bool,
}

impl<T> List<T> {
    fn new(bound: Bound, keep: fn(&T) -> bool) -> List<T> {
        List { bound, keep }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
    type Value = Option<Vec<T>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element::<T>()? {
            if (self.keep)(&entry) {
                self.bound.take()?;
                out.push(entry);
            }
        }
        Ok(Some(out))
    }
}

/// Whether an annotations object (or null) holds the mirror-pod key; values are skipped.
fn mirror_key<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an annotations object")
        }
        fn visit_none<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(Keys)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut mirror = false;
            while let Some(key) = map.next_key::<Key>()? {
                mirror |= key.0;
                map.next_value::<IgnoredAny>()?;
            }
            Ok(mirror)
        }
    }
    /// A key compared with the mirror-pod annotation, escapes decoded, never copied.
    struct Key(bool);
    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct Is;
            impl Visitor<'_> for Is {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an annotation key")
                }
                fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                    Ok(Key(key == MIRROR_POD_ANNOTATION))
                }
            }
            d.deserialize_str(Is)
        }
    }
    d.deserialize_option(Keys)
}

impl<'a> Object<'a> {
    /// Reads an object from its JSON text.
    pub fn parse(text: &'a str) -> serde_json::Result<Object<'a>> {
        from_slice(text.as_bytes())
    }

    /// The pod spec judged for this kind.
    pub fn pod_spec(&self, kind: Kind) -> Option<&Spec<'a>> {
        match kind {
            Kind::Pod => self.spec.as_ref(),
            Kind::PodTemplate => self.template.as_ref().and_then(|t| t.spec.as_ref()),
            Kind::CronJob => self
                .spec
                .as_ref()
                .and_then(|s| s.job_template.as_ref())
                .and_then(|j| j.spec.as_ref())
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref()),
            _ => self
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref()),
        }
    }

    /// Every image the object's pods would use, in field order.
    pub fn images(&self, kind: Kind) -> Vec<ImageUse<'_>> {
        self.pod_spec(kind).map(Spec::images).unwrap_or_default()
    }

    /// Name, or generateName when the name is not set yet.
    pub fn display_name(&self) -> &str {
        let m = self.metadata.as_ref();
        m.and_then(|m| m.name.as_deref())
            .or_else(|| m.and_then(|m| m.generate_name.as_deref()))
            .unwrap_or_default()
    }

    pub fn has_mirror_annotation(&self) -> bool {
        self.metadata.as_ref().is_some_and(|m| m.mirror_annotation)
    }
}

impl Spec<'_> {
    /// Images of containers, init containers (sidecars included), ephemeral containers
    /// and image volumes. A missing image is judged as the empty reference (invalid).
    pub fn images(&self) -> Vec<ImageUse<'_>> {
        let mut out = Vec::new();
        let lists = [
            (&self.containers, Location::Container),
            (&self.init_containers, Location::InitContainer),
            (&self.ephemeral_containers, Location::EphemeralContainer),
        ];
        for (list, location) in lists {
            for c in list.iter().flatten() {
                out.push(ImageUse {
                    image: c.image.as_deref().unwrap_or_default(),
                    location,
                    name: c.name.as_deref().unwrap_or_default(),
                });
            }
        }
        for v in self.volumes.iter().flatten() {
            if let Some(img) = &v.image {
                out.push(ImageUse {
                    image: img.reference.as_deref().unwrap_or_default(),
                    location: Location::ImageVolume,
                    name: v.name.as_deref().unwrap_or_default(),
                });
            }
        }
        out
    }
}
