//! The admission decision (README, "Decision rules") as one pure function, [`decide`]: which images a
//! namespace may pull, in which mode, and the message a developer reads.

use std::fmt;

use serde::Serialize;

use crate::api::{Enforcement, Visibility};
use crate::index::{Resolution, Snapshot};
use crate::reference::ImageRef;

/// What to do with images of registries that are not integrated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Unmanaged {
    #[default]
    Deny,
    Allow,
}

/// The global policy settings (flags of `serve` and `check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Enforcement,
    pub unmanaged: Unmanaged,
    pub exempt_namespaces: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Enforcement::Enforce,
            unmanaged: Unmanaged::Deny,
            exempt_namespaces: vec![crate::api::DEFAULT_NAMESPACE.into(), "kube-system".into()],
        }
    }
}

/// Where in a pod an image is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    Container,
    InitContainer,
    EphemeralContainer,
    ImageVolume,
}

impl Location {
    /// The name in JSON output (the `Serialize` form).
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Container => "container",
            Location::InitContainer => "initContainer",
            Location::EphemeralContainer => "ephemeralContainer",
            Location::ImageVolume => "imageVolume",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Container => "container",
            Location::InitContainer => "init container",
            Location::EphemeralContainer => "ephemeral container",
            Location::ImageVolume => "image volume",
        })
    }
}

/// One image to judge, with the container (or volume) that uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUse<'a> {
    pub image: &'a str,
    pub location: Location,
    pub name: &'a str,
}

/// What the decision needs to know about a request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// `request.namespace`, never the object's own.
    pub namespace: &'a str,
    /// The images to judge (on UPDATE, only new or changed ones).
    pub images: &'a [ImageUse<'a>],
    /// A mirror pod created by a node (`system:node:*` with the mirror annotation).
    pub mirror_pod_by_node: bool,
    /// The binding table is older than the staleness bound: grants of Private spaces
    /// cannot be trusted.
    pub stale: bool,
}

/// Why an image was allowed or denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum Reason {
    Invalid {
        error: String,
    },
    Unmanaged {
        host: String,
    },
    HostConflict {
        host: String,
    },
    /// The host belongs to a Registry whose spec is invalid.
    UnusableRegistry,
    NoSpace,
    Public,
    Bound,
    NotBound,
    /// The namespace is not in the binding table yet; a retry will see it.
    NamespaceUnknown,
    /// The binding table is stale; a retry after recovery will succeed.
    Stale,
}

impl Reason {
    /// A stable machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Invalid { .. } => "invalid",
            Reason::Unmanaged { .. } => "unmanaged",
            Reason::HostConflict { .. } => "hostConflict",
            Reason::UnusableRegistry => "unusableRegistry",
            Reason::NoSpace => "noSpace",
            Reason::Public => "public",
            Reason::Bound => "bound",
            Reason::NotBound => "notBound",
            Reason::NamespaceUnknown => "namespaceUnknown",
            Reason::Stale => "stale",
        }
    }
}

/// The verdict on one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageVerdict {
    pub image: String,
    pub location: Location,
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    pub allowed: bool,
    pub reason: Reason,
    /// Pulling it needs the injected pull Secret.
    #[serde(skip)]
    pub needs_credentials: bool,
}

/// The overall outcome as written to the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Deny,
    Warn,
    Audit,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Warn => "warn",
            Verdict::Audit => "audit",
        }
    }
}

/// The decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Exempt namespace or mirror pod: allowed untouched.
    pub exempt: bool,
    /// The namespace's effective mode ([`Snapshot::mode_of`]), which `check --image`
    /// prints too.
    pub mode: Enforcement,
    pub images: Vec<ImageVerdict>,
    namespace: String,
}

impl Decision {
    pub fn denied(&self) -> impl Iterator<Item = &ImageVerdict> {
        self.images.iter().filter(|v| !v.allowed)
    }

    pub fn verdict(&self) -> Verdict {
        if self.exempt || self.denied().next().is_none() {
            return Verdict::Allow;
        }
        match self.mode {
            Enforcement::Enforce => Verdict::Deny,
            Enforcement::Warn => Verdict::Warn,
            Enforcement::Audit => Verdict::Audit,
        }
    }

    pub fn allowed(&self) -> bool {
        self.verdict() != Verdict::Deny
    }

    /// Whether any image needs the pull Secret (for the mutating webhook).
    pub fn needs_credentials(&self) -> bool {
        !self.exempt && self.images.iter().any(|v| v.needs_credentials)
    }

    /// One sentence per denied image, for the developer.
    pub fn denial_messages(&self) -> Vec<String> {
        self.denied().map(|v| explain(v, &self.namespace)).collect()
    }

    /// All denials in one message (the response status message).
    pub fn message(&self) -> String {
        let msgs = self.denial_messages();
        match msgs.len() {
            0 => String::new(),
            1 => msgs.into_iter().next().unwrap_or_default(),
            n => format!("{n} images are not allowed: {}", msgs.join("; ")),
        }
    }
}

/// Decides a request against a binding table (README, "Decision rules").
pub fn decide(req: &Request<'_>, snap: &Snapshot, policy: &Policy) -> Decision {
    let exempt =
        req.mirror_pod_by_node || policy.exempt_namespaces.iter().any(|n| n == req.namespace);
    let mode = snap.mode_of(req.namespace, policy.mode);
    let images = if exempt {
        Vec::new()
    } else {
        req.images
            .iter()
            .map(|u| judge(u, req, snap, policy))
            .collect()
    };
    Decision {
        exempt,
        mode,
        images,
        namespace: req.namespace.to_string(),
    }
}

fn judge(u: &ImageUse<'_>, req: &Request<'_>, snap: &Snapshot, policy: &Policy) -> ImageVerdict {
    let mut v = ImageVerdict {
        image: u.image.to_string(),
        location: u.location,
        container: u.name.to_string(),
        registry: None,
        space: None,
        visibility: None,
        allowed: false,
        reason: Reason::NoSpace,
        needs_credentials: false,
    };
    let image = match ImageRef::parse(u.image) {
        Ok(i) => i,
        Err(e) => {
            v.reason = Reason::Invalid {
                error: e.to_string(),
            };
            return v;
        }
    };
    match snap.resolve(&image) {
        Resolution::Unmanaged => {
            v.allowed = policy.unmanaged == Unmanaged::Allow;
            v.reason = Reason::Unmanaged {
                host: image.host_key().to_string(),
            };
        }
        Resolution::HostConflict(_) => {
            v.reason = Reason::HostConflict {
                host: image.host_key().to_string(),
            };
        }
        Resolution::Unusable(name) => {
            v.registry = Some(name.to_string());
            v.reason = Reason::UnusableRegistry;
        }
        Resolution::NoSpace(reg) => v.registry = Some(reg.name.clone()),
        Resolution::Space(reg, space) => {
            v.registry = Some(reg.name.clone());
            v.space = Some(space.space.clone());
            v.visibility = Some(space.visibility);
            v.needs_credentials = space.needs_credentials();
            (v.allowed, v.reason) = match space.visibility {
                Visibility::Public => (true, Reason::Public),
                Visibility::Private => {
                    if !snap.is_bound(space, req.namespace) {
                        if snap.namespace_known(req.namespace) {
                            (false, Reason::NotBound)
                        } else {
                            (false, Reason::NamespaceUnknown)
                        }
                    } else if req.stale {
                        (false, Reason::Stale)
                    } else {
                        (true, Reason::Bound)
                    }
                }
            };
        }
    }
    v
}

/// The developer-facing sentence for one verdict. It names the image, its container,
/// registry and space, and the requesting namespace — never other tenants.
pub fn explain(v: &ImageVerdict, namespace: &str) -> String {
    format!(
        "image {:?} ({} {:?}) {}",
        v.image,
        v.location,
        v.container,
        why(v, namespace)
    )
}

/// [`explain`] without the image and its container: what is said of it (`is in public
/// registry space ...`), for an image judged on its own (`check --image`).
pub fn why(v: &ImageVerdict, namespace: &str) -> String {
    let registry = v.registry.as_deref().unwrap_or_default();
    let space = v.space.as_deref().unwrap_or_default();
    let vis = match v.visibility {
        Some(Visibility::Public) => "public",
        _ => "private",
    };
    match &v.reason {
        Reason::Invalid { error } => format!("is not a valid image reference: {error}"),
        Reason::Unmanaged { host } if v.allowed => {
            format!("is from {host:?}, which is not an integrated registry (allowed by the unmanaged policy)")
        }
        Reason::Unmanaged { host } => {
            format!("is from {host:?}, which is not an integrated registry")
        }
        Reason::HostConflict { host } => format!(
            "is from {host:?}, which several registries claim; ask a cluster admin to fix the registry aliases"
        ),
        Reason::UnusableRegistry => format!(
            "is from registry {registry:?}, whose spec is invalid (see its status); ask a cluster admin to fix it"
        ),
        Reason::NoSpace => format!("is not in any registry space of registry {registry:?}"),
        Reason::Public => format!("is in public registry space {space:?} of registry {registry:?}"),
        Reason::Bound => format!("is in private registry space {space:?} of registry {registry:?}, bound to a workspace of namespace {namespace:?}"),
        Reason::NotBound => format!(
            "is in {vis} registry space {space:?} of registry {registry:?}, which is not bound to a workspace of namespace {namespace:?}"
        ),
        Reason::NamespaceUnknown => format!(
            "is in private registry space {space:?} of registry {registry:?}, and namespace {namespace:?} is not known to pullgate yet; retry in a few seconds"
        ),
        Reason::Stale => format!(
            "is in private registry space {space:?} of registry {registry:?}, and pullgate's binding table is out of date; retry later"
        ),
    }
}
