//! The parts of a pod or workload object that pullgate reads, read straight from the
//! raw JSON into borrowed structs (unknown fields skipped, repeated known keys refused,
//! so every reader sees one interpretation), and the images they use.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::json::{self, Reader, Seen};
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

/// What is left of an object's bounds while it is read.
struct Budget {
    locations: usize,
    pull_secrets: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            locations: MAX_IMAGE_LOCATIONS,
            pull_secrets: MAX_PULL_SECRETS,
        }
    }
}

impl Budget {
    /// Counts one image location, refusing the object past the bound (before the
    /// entry is kept, so what an object makes pullgate hold is bounded too).
    fn location(&mut self, r: &Reader<'_>) -> json::Result<()> {
        self.locations = self.locations.checked_sub(1).ok_or_else(|| {
            r.shape_error(format!(
                "more than {MAX_IMAGE_LOCATIONS} image locations (containers, init containers, \
                 ephemeral containers and image volumes), more than the apiserver can store \
                 in one object"
            ))
        })?;
        Ok(())
    }

    fn pull_secret(&mut self, r: &Reader<'_>) -> json::Result<()> {
        self.pull_secrets = self.pull_secrets.checked_sub(1).ok_or_else(|| {
            r.shape_error(format!(
                "more than {MAX_PULL_SECRETS} imagePullSecrets entries, more than the \
                 apiserver can store in one object"
            ))
        })?;
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

#[derive(Debug, Default)]
pub struct Meta<'a> {
    pub name: Option<Cow<'a, str>>,
    pub generate_name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    /// Whether the annotations hold the mirror-pod key (their values are not read).
    pub mirror_annotation: bool,
}

/// A pod spec, or a workload spec holding a template (one type serves both, since the
/// kind decides which fields are read).
#[derive(Debug, Default)]
pub struct Spec<'a> {
    pub containers: Option<Vec<Container<'a>>>,
    pub init_containers: Option<Vec<Container<'a>>>,
    pub ephemeral_containers: Option<Vec<Container<'a>>>,
    pub volumes: Option<Vec<Volume<'a>>>,
    pub image_pull_secrets: Option<Vec<NameRef<'a>>>,
    pub template: Option<Box<Template<'a>>>,
    pub job_template: Option<Box<Template<'a>>>,
}

/// `template` of a workload or `jobTemplate` of a CronJob: only its spec matters.
#[derive(Debug, Default)]
pub struct Template<'a> {
    pub spec: Option<Spec<'a>>,
}

#[derive(Debug, Default)]
pub struct Container<'a> {
    pub name: Option<Cow<'a, str>>,
    pub image: Option<Cow<'a, str>>,
}

#[derive(Debug, Default)]
pub struct Volume<'a> {
    pub name: Option<Cow<'a, str>>,
    pub image: Option<ImageVolume<'a>>,
}

#[derive(Debug, Default)]
pub struct ImageVolume<'a> {
    pub reference: Option<Cow<'a, str>>,
}

#[derive(Debug, Default)]
pub struct NameRef<'a> {
    pub name: Option<Cow<'a, str>>,
}

impl<'a> Object<'a> {
    /// Reads an object from its JSON text.
    pub fn parse(text: &'a str) -> json::Result<Object<'a>> {
        let mut r = Reader::new(text.as_bytes());
        let o = Object::read(&mut r)?;
        r.end()?;
        Ok(o)
    }

    /// Reads an object, refusing one beyond [`MAX_IMAGE_LOCATIONS`] or
    /// [`MAX_PULL_SECRETS`].
    pub(super) fn read(r: &mut Reader<'a>) -> json::Result<Object<'a>> {
        let mut o = Object::default();
        let mut seen = Seen::default();
        let mut budget = Budget::default();
        let b = &mut budget;
        r.object(|r, key| {
            match &*key {
                b"metadata" => o.metadata = seen.field(r, "metadata", Meta::read)?,
                b"spec" => o.spec = seen.field(r, "spec", |r| Spec::read(r, b))?,
                b"template" => o.template = seen.field(r, "template", |r| Template::read(r, b))?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(o)
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

impl<'a> Meta<'a> {
    fn read(r: &mut Reader<'a>) -> json::Result<Meta<'a>> {
        let mut m = Meta::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"name" => m.name = seen.field(r, "name", Reader::string)?,
                b"generateName" => {
                    m.generate_name = seen.field(r, "generateName", Reader::string)?
                }
                b"namespace" => m.namespace = seen.field(r, "namespace", Reader::string)?,
                b"annotations" => {
                    let mut mirror = false;
                    seen.field(r, "annotations", |r| {
                        r.object(|r, key| {
                            mirror |= *key == *MIRROR_POD_ANNOTATION.as_bytes();
                            r.skip()
                        })
                    })?;
                    m.mirror_annotation = mirror;
                }
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(m)
    }
}

impl<'a> Spec<'a> {
    fn read(r: &mut Reader<'a>, b: &mut Budget) -> json::Result<Spec<'a>> {
        let mut s = Spec::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"containers" => {
                    s.containers = seen.list(r, "containers", |r| Container::read_counted(r, b))?
                }
                b"initContainers" => {
                    s.init_containers =
                        seen.list(r, "initContainers", |r| Container::read_counted(r, b))?
                }
                b"ephemeralContainers" => {
                    s.ephemeral_containers =
                        seen.list(r, "ephemeralContainers", |r| Container::read_counted(r, b))?
                }
                b"volumes" => {
                    s.volumes = seen.field(r, "volumes", |r| Volume::read_images(r, b))?
                }
                b"imagePullSecrets" => {
                    s.image_pull_secrets = seen.list(r, "imagePullSecrets", |r| {
                        b.pull_secret(r)?;
                        NameRef::read(r)
                    })?
                }
                b"template" => {
                    s.template = seen
                        .field(r, "template", |r| Template::read(r, b))?
                        .map(Box::new)
                }
                b"jobTemplate" => {
                    s.job_template = seen
                        .field(r, "jobTemplate", |r| Template::read(r, b))?
                        .map(Box::new)
                }
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(s)
    }
}

impl<'a> Template<'a> {
    fn read(r: &mut Reader<'a>, b: &mut Budget) -> json::Result<Template<'a>> {
        let mut t = Template::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"spec" => t.spec = seen.field(r, "spec", |r| Spec::read(r, b))?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(t)
    }
}

impl<'a> Container<'a> {
    fn read_counted(r: &mut Reader<'a>, b: &mut Budget) -> json::Result<Container<'a>> {
        b.location(r)?;
        Container::read(r)
    }

    fn read(r: &mut Reader<'a>) -> json::Result<Container<'a>> {
        let mut c = Container::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"name" => c.name = seen.field(r, "name", Reader::string)?,
                b"image" => c.image = seen.field(r, "image", Reader::string)?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(c)
    }
}

impl<'a> Volume<'a> {
    /// The volumes of a list that have an image: only they are kept (and counted as
    /// image locations), the others are read and dropped.
    fn read_images(r: &mut Reader<'a>, b: &mut Budget) -> json::Result<Vec<Volume<'a>>> {
        let mut out = Vec::new();
        r.array(|r| {
            let v = Volume::read(r)?;
            if v.image.is_some() {
                b.location(r)?;
                out.push(v);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn read(r: &mut Reader<'a>) -> json::Result<Volume<'a>> {
        let mut v = Volume::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"name" => v.name = seen.field(r, "name", Reader::string)?,
                b"image" => v.image = seen.field(r, "image", ImageVolume::read)?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(v)
    }
}

impl<'a> ImageVolume<'a> {
    fn read(r: &mut Reader<'a>) -> json::Result<ImageVolume<'a>> {
        let mut v = ImageVolume::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"reference" => v.reference = seen.field(r, "reference", Reader::string)?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(v)
    }
}

impl<'a> NameRef<'a> {
    fn read(r: &mut Reader<'a>) -> json::Result<NameRef<'a>> {
        let mut n = NameRef::default();
        let mut seen = Seen::default();
        r.object(|r, key| {
            match &*key {
                b"name" => n.name = seen.field(r, "name", Reader::string)?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        Ok(n)
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

/// The work one diff did, for tests and benchmarks that show it is linear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffWork {
    /// Equality tests of two image uses.
    pub comparisons: usize,
    /// Insertions into and lookups in the table of old image uses.
    pub lookups: usize,
}

impl DiffWork {
    pub fn total(self) -> usize {
        self.comparisons + self.lookups
    }
}

/// The images of `new` that are new or changed compared with `old` (same location and
/// name with the same image is unchanged).
pub fn changed<'a>(new: Vec<ImageUse<'a>>, old: &[ImageUse<'_>]) -> Vec<ImageUse<'a>> {
    changed_counted(new, old).0
}

/// [`changed`], with the work it did: one insertion per old image use and one lookup
/// per new one in a table keyed by (location, name, image), and an equality test only
/// where hashes meet. The hasher is std's, keyed at random per process, so a caller
/// cannot choose names that collide.
pub fn changed_counted<'a>(
    new: Vec<ImageUse<'a>>,
    old: &[ImageUse<'_>],
) -> (Vec<ImageUse<'a>>, DiffWork) {
    let comparisons = Cell::new(0);
    // The key's cell is the comparison counter, not part of its identity (hash and
    // equality ignore it).
    #[allow(clippy::mutable_key_type)]
    let old_keys: HashSet<Key<'_>> = old.iter().map(|o| Key::of(o, &comparisons)).collect();
    let new_len = new.len();
    let out = new
        .into_iter()
        .filter(|n| !old_keys.contains(&Key::of(n, &comparisons)))
        .collect();
    drop(old_keys);
    let work = DiffWork {
        comparisons: comparisons.get(),
        lookups: old.len() + new_len,
    };
    (out, work)
}

/// An image use as the diff's table key; equality tests are counted.
struct Key<'k> {
    location: Location,
    name: &'k str,
    image: &'k str,
    comparisons: &'k Cell<usize>,
}

impl<'k> Key<'k> {
    fn of(u: &ImageUse<'k>, comparisons: &'k Cell<usize>) -> Key<'k> {
        Key {
            location: u.location,
            name: u.name,
            image: u.image,
            comparisons,
        }
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.comparisons.set(self.comparisons.get() + 1);
        self.location == other.location && self.name == other.name && self.image == other.image
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.location, self.name, self.image).hash(state);
    }
}
