//! What the watches have seen: every Registry, RegistrySpace and Workspace (valid or
//! not, with its current status), namespace labels, the Secrets named like the pull
//! Secret, and the Secrets spaces reference. [`Watched::apply`] is the one way to change
//! it; [`Watched::renew_input`] renews the binding table's inputs list by list (each
//! namespace shared with them by `Arc`), and on the leader a copy goes into the
//! [`LeaderView`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use crate::api::{
    CrKind, Registry, RegistrySpace, SecretRef, Workspace, DOCKER_CONFIG_JSON_KEY,
    DOCKER_CONFIG_JSON_TYPE, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
};
use crate::index::{with_name_label, Inputs, NamespaceInfo, Objects, Snapshot};

/// One watch, named by what it lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchId {
    Registries,
    Spaces,
    Workspaces,
    Namespaces,
    /// Every Secret named like the pull Secret, managed or not.
    PullSecrets,
    /// One Secret named by a `pullSecretRef` or `credentialsSecretRef`: (namespace, name).
    Ref(String, String),
    /// The Secrets in pullgate's namespace that keep Harbor robot credentials.
    RobotSecrets,
}

impl WatchId {
    /// Watches the binding table is built from (their health decides staleness).
    pub const TABLE: [WatchId; 4] = [
        WatchId::Registries,
        WatchId::Spaces,
        WatchId::Workspaces,
        WatchId::Namespaces,
    ];

    /// The resource a watch lists, for messages.
    pub fn resource(&self) -> &'static str {
        match self {
            WatchId::Registries => "registries",
            WatchId::Spaces => "registryspaces",
            WatchId::Workspaces => "workspaces",
            WatchId::Namespaces => "namespaces",
            WatchId::PullSecrets => "pull secrets",
            WatchId::Ref(..) => "a referenced secret",
            WatchId::RobotSecrets => "robot secrets",
        }
    }

    /// Watches whose first full list makes the table ready (a referenced Secret's watch
    /// starts only after the table is built, so it cannot be one of them).
    pub const SYNC: [WatchId; 6] = [
        WatchId::Registries,
        WatchId::Spaces,
        WatchId::Workspaces,
        WatchId::Namespaces,
        WatchId::PullSecrets,
        WatchId::RobotSecrets,
    ];
}

/// What the leader needs of a Secret named like the pull Secret: whether it is
/// pullgate's, its resourceVersion (writes are made on it), and whether it holds what is
/// wanted. Kept instead of the whole Secret, since there is one in nearly every namespace:
/// at 100,000 namespaces the whole objects took about 220 MiB more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullSecret {
    pub resource_version: Option<String>,
    /// Labelled as pullgate's (`pullgate.io/managed-by: pullgate`).
    pub managed: bool,
    /// Of type `kubernetes.io/dockerconfigjson`.
    pub docker_config_type: bool,
    /// Its `.dockerconfigjson` data.
    pub config: Option<Vec<u8>>,
}

impl From<Secret> for PullSecret {
    fn from(s: Secret) -> PullSecret {
        let managed =
            s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE);
        PullSecret {
            managed,
            docker_config_type: s.type_.as_deref() == Some(DOCKER_CONFIG_JSON_TYPE),
            config: s
                .data
                .and_then(|mut d| d.remove(DOCKER_CONFIG_JSON_KEY))
                .map(|b| b.0),
            resource_version: s.metadata.resource_version,
        }
    }
}

/// An object as a watch delivers it.
#[derive(Clone, Debug)]
pub enum Item {
    Custom(Box<DynamicObject>),
    Namespace(NamespaceInfo),
    Secret(Box<Secret>),
}

/// What a watch reports: `Id` names the watch, `T` is an object it delivers and `Gone`
/// what it says of an object deleted. The watches of the binding table send [`Change`],
/// those of running workloads `workloads::WorkloadChange`.
#[derive(Debug)]
pub enum WatchChange<Id, T, Gone = T> {
    /// A full list: replaces everything this watch delivered before.
    Reset(Id, Vec<T>),
    Apply(Id, T),
    Delete(Id, Gone),
    /// The watch failed and is being restarted.
    Broken(Id),
}

/// What a watch of the binding table's inputs (and of Secrets) reports.
pub type Change = WatchChange<WatchId, Item>;

/// A custom resource: parsed when it could be, with its status as stored.
#[derive(Clone, Debug)]
pub struct Stored<T> {
    pub object: Option<T>,
    /// Why it could not be parsed.
    pub invalid: Option<String>,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    pub status: serde_json::Value,
}

/// Everything the watches have seen, valid or not: the one copy a replica keeps.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    pub registries: BTreeMap<String, Stored<Registry>>,
    pub spaces: BTreeMap<String, Stored<RegistrySpace>>,
    pub workspaces: BTreeMap<String, Stored<Workspace>>,
    /// Each with the name label the apiserver sets ([`with_name_label`]), shared with
    /// the binding table's inputs.
    pub namespaces: BTreeMap<String, Arc<NamespaceInfo>>,
    /// Secrets named like the pull Secret, by namespace.
    pub pull_secrets: BTreeMap<String, Arc<PullSecret>>,
    /// Referenced Secrets, by (namespace, name).
    pub ref_secrets: BTreeMap<(String, String), Arc<Secret>>,
    /// Robot credential Secrets in pullgate's namespace, by name.
    pub robot_secrets: BTreeMap<String, Arc<Secret>>,
}

/// What the leader works from: the binding table of one revision and a copy of what the
/// watches had seen when it was built, consistent with each other. Only a leader's feed
/// builds one; it is shared by `Arc` among the leader loops.
#[derive(Debug, Default)]
pub struct LeaderView {
    pub snapshot: Arc<Snapshot>,
    pub watched: Watched,
    /// The binding-table watches broken now: the table, and what is judged on it, may be
    /// behind until they list again.
    pub broken: Vec<WatchId>,
}

impl Watched {
    /// The state once every watch of the binding table has listed `objects` (the
    /// benchmarks and scale examples start from it).
    #[cfg(any(test, feature = "testing"))]
    pub fn listed(objects: &Objects) -> Watched {
        fn custom<T: serde::Serialize>(o: &T) -> Item {
            let value = serde_json::to_value(o).expect("an API object serialises");
            Item::Custom(Box::new(
                serde_json::from_value(value).expect("an API object is a DynamicObject"),
            ))
        }
        let mut watched = Watched::default();
        for (id, items) in [
            (
                WatchId::Registries,
                objects.registries.iter().map(custom).collect(),
            ),
            (WatchId::Spaces, objects.spaces.iter().map(custom).collect()),
            (
                WatchId::Workspaces,
                objects.workspaces.iter().map(custom).collect(),
            ),
            (
                WatchId::Namespaces,
                objects
                    .namespaces
                    .iter()
                    .cloned()
                    .map(Item::Namespace)
                    .collect(),
            ),
        ] {
            watched.apply(Change::Reset(id, items));
        }
        watched
    }

    /// Applies one change; returns whether the binding table's inputs changed.
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Broken(_) => false,
            Change::Reset(id, items) => {
                match &id {
                    WatchId::Registries => self.registries.clear(),
                    WatchId::Spaces => self.spaces.clear(),
                    WatchId::Workspaces => self.workspaces.clear(),
                    WatchId::Namespaces => self.namespaces.clear(),
                    WatchId::PullSecrets => self.pull_secrets.clear(),
                    WatchId::RobotSecrets => self.robot_secrets.clear(),
                    WatchId::Ref(ns, name) => {
                        self.ref_secrets.remove(&(ns.clone(), name.clone()));
                    }
                }
                for item in items {
                    self.put(&id, item);
                }
                WatchId::TABLE.contains(&id)
            }
            Change::Apply(id, item) => {
                self.put(&id, item);
                WatchId::TABLE.contains(&id)
            }
            Change::Delete(id, item) => {
                self.remove(&id, &item);
                WatchId::TABLE.contains(&id)
            }
        }
    }

    fn put(&mut self, id: &WatchId, item: Item) {
        match (id, item) {
            (WatchId::Registries, Item::Custom(o)) => put_custom(&mut self.registries, *o),
            (WatchId::Spaces, Item::Custom(o)) => put_custom(&mut self.spaces, *o),
            (WatchId::Workspaces, Item::Custom(o)) => put_custom(&mut self.workspaces, *o),
            (WatchId::Namespaces, Item::Namespace(ns)) => {
                self.namespaces
                    .insert(ns.name.clone(), Arc::new(with_name_label(ns)));
            }
            (WatchId::PullSecrets, Item::Secret(s)) => {
                self.pull_secrets.insert(
                    s.namespace().unwrap_or_default(),
                    Arc::new(PullSecret::from(*s)),
                );
            }
            (WatchId::Ref(..), Item::Secret(s)) => {
                let key = (s.namespace().unwrap_or_default(), s.name_any());
                self.ref_secrets.insert(key, Arc::new(*s));
            }
            (WatchId::RobotSecrets, Item::Secret(s)) => {
                self.robot_secrets.insert(s.name_any(), Arc::new(*s));
            }
            (id, _) => tracing::warn!(?id, "watch delivered an object of another kind; ignored"),
        }
    }

    fn remove(&mut self, id: &WatchId, item: &Item) {
        match (id, item) {
            (WatchId::Registries, Item::Custom(o)) => {
                self.registries.remove(&o.name_any());
            }
            (WatchId::Spaces, Item::Custom(o)) => {
                self.spaces.remove(&o.name_any());
            }
            (WatchId::Workspaces, Item::Custom(o)) => {
                self.workspaces.remove(&o.name_any());
            }
            (WatchId::Namespaces, Item::Namespace(ns)) => {
                self.namespaces.remove(&ns.name);
            }
            (WatchId::PullSecrets, Item::Secret(s)) => {
                self.pull_secrets.remove(&s.namespace().unwrap_or_default());
            }
            (WatchId::Ref(..), Item::Secret(s)) => {
                self.ref_secrets
                    .remove(&(s.namespace().unwrap_or_default(), s.name_any()));
            }
            (WatchId::RobotSecrets, Item::Secret(s)) => {
                self.robot_secrets.remove(&s.name_any());
            }
            _ => {}
        }
    }

    /// The inputs of the binding table (invalid objects left out).
    pub fn objects(&self) -> Objects {
        Objects {
            registries: valid(&self.registries),
            spaces: valid(&self.spaces),
            workspaces: valid(&self.workspaces),
            namespaces: self.namespaces.values().map(|n| (**n).clone()).collect(),
            namespaces_complete: true,
        }
    }

    /// Replaces in `inputs` the list that watch `id` feeds, if it feeds the table: the
    /// cluster feed keeps [`Inputs`] and after a change renews only the lists that changed.
    pub fn renew_input(&self, inputs: &mut Inputs, id: &WatchId) {
        inputs.namespaces_complete = true;
        match id {
            WatchId::Registries => inputs.registries = Arc::new(valid(&self.registries)),
            WatchId::Spaces => inputs.spaces = Arc::new(valid(&self.spaces)),
            WatchId::Workspaces => inputs.workspaces = Arc::new(valid(&self.workspaces)),
            WatchId::Namespaces => {
                inputs.namespaces = Arc::new(self.namespaces.values().cloned().collect())
            }
            _ => {}
        }
    }

    /// The inputs of the binding table, every list renewed.
    pub fn inputs(&self) -> Inputs {
        let mut inputs = Inputs::default();
        for id in &WatchId::TABLE {
            self.renew_input(&mut inputs, id);
        }
        inputs
    }

    /// What `POST /credentials` reads on every replica (README, "Pulls without Secrets"): the Registries and the
    /// Secrets pull credentials come from (referenced and robot Secrets), nothing else.
    pub fn credential_part(&self) -> Watched {
        Watched {
            registries: self.registries.clone(),
            ref_secrets: self.ref_secrets.clone(),
            robot_secrets: self.robot_secrets.clone(),
            ..Watched::default()
        }
    }

    /// The `pullSecretRef`s of all valid spaces and the `credentialsSecretRef`s of all
    /// valid registries.
    pub fn referenced_secrets(&self) -> Vec<SecretRef> {
        let pull = self
            .spaces
            .values()
            .filter_map(|s| s.object.as_ref()?.spec.pull_secret_ref.as_ref());
        let api = self
            .registries
            .values()
            .filter_map(|r| r.object.as_ref()?.spec.credentials_secret_ref.as_ref());
        let mut out: Vec<SecretRef> = pull.chain(api).cloned().collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out.dedup();
        out
    }

    /// Stored objects of a kind, by name, as status writing needs them.
    pub fn stored(&self, kind: CrKind) -> Vec<StoredView<'_>> {
        fn rows<T>(m: &BTreeMap<String, Stored<T>>) -> Vec<StoredView<'_>> {
            m.iter()
                .map(|(n, s)| StoredView {
                    name: n,
                    invalid: s.invalid.as_deref(),
                    generation: s.generation,
                    resource_version: s.resource_version.as_deref(),
                    status: &s.status,
                })
                .collect()
        }
        match kind {
            CrKind::Registry => rows(&self.registries),
            CrKind::RegistrySpace => rows(&self.spaces),
            CrKind::Workspace => rows(&self.workspaces),
        }
    }
}

/// A stored custom resource, whatever its kind.
#[derive(Clone, Copy, Debug)]
pub struct StoredView<'a> {
    pub name: &'a str,
    pub invalid: Option<&'a str>,
    pub generation: Option<i64>,
    pub resource_version: Option<&'a str>,
    pub status: &'a serde_json::Value,
}

fn valid<T: Clone>(m: &BTreeMap<String, Stored<T>>) -> Vec<T> {
    m.values().filter_map(|s| s.object.clone()).collect()
}

/// Parses a custom resource on its own, so one bad object never stops the others.
fn put_custom<T: DeserializeOwned>(m: &mut BTreeMap<String, Stored<T>>, o: DynamicObject) {
    let name = o.name_any();
    let generation = o.metadata.generation;
    let resource_version = o.metadata.resource_version.clone();
    let status = o
        .data
        .get("status")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let parsed = serde_json::to_value(&o)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value::<T>(v).map_err(|e| e.to_string()));
    let (object, invalid) = match parsed {
        Ok(t) => (Some(t), None),
        Err(e) => {
            tracing::warn!(%name, error = %e, "object cannot be parsed; skipped");
            (None, Some(format!("the object cannot be parsed: {e}")))
        }
    };
    m.insert(
        name,
        Stored {
            object,
            invalid,
            generation,
            resource_version,
            status,
        },
    );
}
