//! The parts of a pod or workload object that pullgate reads, decoded straight from the
//! raw JSON into borrowed structs (unknown fields skipped, duplicate known keys rejected,
//! so every reader sees one interpretation), and the images they use.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::api::MIRROR_POD_ANNOTATION;
use crate::policy::{ImageUse, Location};

/// The kinds whose pod templates are judged (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The kind for an API group and kind name, if it is one pullgate judges.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Some(match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("", "ReplicationController") => Kind::ReplicationController,
            ("", "PodTemplate") => Kind::PodTemplate,
            ("apps", "Deployment") => Kind::Deployment,
            ("apps", "StatefulSet") => Kind::StatefulSet,
            ("apps", "DaemonSet") => Kind::DaemonSet,
            ("apps", "ReplicaSet") => Kind::ReplicaSet,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            _ => return None,
        })
    }

    /// The kind named by a manifest's `apiVersion` and `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::from_group_kind(group, kind)
    }
}

/// A pod, workload or PodTemplate object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<'a> {
    #[serde(borrow, default)]
    pub metadata: Option<Meta<'a>>,
    #[serde(borrow, default)]
    pub spec: Option<Spec<'a>>,
    /// PodTemplate keeps its template at the top level.
    #[serde(borrow, default)]
    pub template: Option<Template<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub generate_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub annotations: Option<BTreeMap<Cow<'a, str>, IgnoredAny>>,
}

/// A pod spec, or a workload spec holding a template (one type serves both, since the
/// kind decides which fields are read).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec<'a> {
    #[serde(borrow, default)]
    pub containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    pub init_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    pub ephemeral_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow, default)]
    pub volumes: Option<Vec<Volume<'a>>>,
    #[serde(borrow, default)]
    pub image_pull_secrets: Option<Vec<NameRef<'a>>>,
    #[serde(borrow, default)]
    pub template: Option<Box<Template<'a>>>,
    #[serde(borrow, default)]
    pub job_template: Option<Box<Template<'a>>>,
}

/// `template` of a workload or `jobTemplate` of a CronJob: only its spec matters.
#[derive(Debug, Default, Deserialize)]
pub struct Template<'a> {
    #[serde(borrow, default)]
    pub spec: Option<Spec<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Container<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub image: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Volume<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub image: Option<ImageVolume<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ImageVolume<'a> {
    #[serde(borrow, default)]
    pub reference: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NameRef<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
}

impl<'a> Object<'a> {
    /// Decodes an object from its JSON text.
    pub fn parse(json: &'a str) -> Result<Object<'a>, serde_json::Error> {
        serde_json::from_str(json)
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
        self.metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
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

/// The images of `new` that are new or changed compared with `old` (same location and
/// name with the same image is unchanged).
pub fn changed<'a>(new: Vec<ImageUse<'a>>, old: &[ImageUse<'_>]) -> Vec<ImageUse<'a>> {
    new.into_iter()
        .filter(|n| {
            !old.iter()
                .any(|o| o.location == n.location && o.name == n.name && o.image == n.image)
        })
        .collect()
}
