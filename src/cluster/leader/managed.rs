//! Managed Harbor: when the CRD `harborclusters.goharbor.io` exists (looked
//! for every `--probe-interval`), the leader watches HarborClusters and keeps one
//! Registry per HarborCluster: type Harbor, `url` from `spec.externalURL`, API
//! credentials from the admin password Secret `spec.harborAdminPasswordRef` (user
//! `admin`), labelled `pullgate.io/managed: "true"`, with an ownerReference to the
//! HarborCluster. [`Managed::run`] is the entry point.
//!
//! The harbor-operator's admin Secret holds only the password (key `secret`, or
//! `password`); pullgate then keeps a derived Secret with `username`/`password` in its
//! own namespace. A Secret that already has both keys is referenced as it is.
//!
//! Kubernetes' garbage collector does not follow an ownerReference from a
//! cluster-scoped object to a namespaced owner, so the Registry (and a derived Secret)
//! is also deleted here when its HarborCluster goes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use super::credentials::BASIC_AUTH_TYPE;
use super::inputs::{Inputs, Wake};
use super::sync::FIELD_MANAGER;
use crate::api::{Registry, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MANAGED_LABEL};
use crate::cluster::replica::state::LeaderView;
use crate::cluster::ClusterOptions;

/// The CRD whose presence turns managed Harbor on.
pub const HARBOR_CRD: &str = "harborclusters.goharbor.io";
/// API version and kind of a HarborCluster (harbor-operator).
pub const HARBOR_API_VERSION: &str = "goharbor.io/v1beta1";
pub const HARBOR_KIND: &str = "HarborCluster";
/// Annotation on a managed Registry naming its HarborCluster, `<namespace>/<name>`.
pub const SOURCE_ANNOTATION: &str = "pullgate.io/source";
/// Harbor's built-in admin user, whose password the HarborCluster names.
const ADMIN_USER: &str = "admin";
/// Wait after a failed CRD check or watch before trying again.
const RETRY: Duration = Duration::from_secs(5);

type Events = BoxStream<'static, Result<Event<DynamicObject>, watcher::Error>>;

fn harbor_resource() -> ApiResource {
    ApiResource {
        group: "goharbor.io".into(),
        version: "v1beta1".into(),
        api_version: HARBOR_API_VERSION.into(),
        kind: HARBOR_KIND.into(),
        plural: "harborclusters".into(),
    }
}

fn crd_resource() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// The Registry name of a HarborCluster: `<name>.<namespace>` (a namespace has no dots,
/// so two HarborClusters never share one).
pub fn registry_name(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}")
}

/// The derived credentials Secret of a HarborCluster, in pullgate's namespace.
pub fn derived_secret_name(namespace: &str, name: &str) -> String {
    format!("pullgate-harbor-admin-{namespace}-{name}")
}

pub struct Managed {
    client: Client,
    opts: ClusterOptions,
    /// HarborClusters by (namespace, name), once listed.
    clusters: BTreeMap<(String, String), DynamicObject>,
    /// Whether `clusters` is complete (listed, or the CRD is absent).
    listed: bool,
    /// Derived Secrets written by this leader: name → password written.
    derived: HashMap<String, String>,
}

impl Managed {
    pub fn new(client: Client, opts: ClusterOptions) -> Managed {
        Managed {
            client,
            opts,
            clusters: BTreeMap::new(),
            listed: false,
            derived: HashMap::new(),
        }
    }

    pub async fn run(mut self, mut inputs: Inputs) {
        let mut tick = tokio::time::interval(self.opts.probe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stream: Option<Events> = None;
        let mut buffer = Vec::new();
        let mut dirty = false;
        loop {
            // The loop's own reasons: time to look for the CRD (None), or a watch event.
            let own = async {
                tokio::select! {
                    _ = tick.tick() => None,
                    event = next(&mut stream) => Some(event),
                }
            };
            match inputs.wake(own).await {
                Wake::Own(None) => {
                    self.check_crd(&mut stream).await;
                    dirty = true;
                }
                Wake::Own(Some(event)) => dirty |= self.handle(event, &mut buffer),
                Wake::View | Wake::Synced => dirty = true,
                Wake::Leader => {
                    if !*inputs.leader.borrow() {
                        self.derived.clear();
                    }
                    dirty = true;
                }
                Wake::Stop => return,
            }
            let leading = *inputs.leader.borrow();
            let synced = *inputs.synced.borrow();
            if dirty && leading && synced && self.listed {
                let view = inputs.view.borrow().clone();
                if inputs.unless_stopped(self.reconcile(&view)).await.is_none() {
                    return;
                }
                dirty = false;
            }
        }
    }

    /// Starts the HarborCluster watch when the CRD appears, stops it when it goes.
    async fn check_crd(&mut self, stream: &mut Option<Events>) {
        let crds: Api<DynamicObject> = Api::all_with(self.client.clone(), &crd_resource());
        match crds.get_opt(HARBOR_CRD).await {
            Ok(Some(_)) if stream.is_none() => {
                tracing::info!("HarborCluster CRD found: managing a Registry per HarborCluster");
                let api: Api<DynamicObject> =
                    Api::all_with(self.client.clone(), &harbor_resource());
                *stream = Some(
                    watcher(api, watcher::Config::default())
                        .default_backoff()
                        .boxed(),
                );
                self.listed = false;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                if stream.take().is_some() {
                    tracing::info!("HarborCluster CRD removed");
                }
                self.clusters.clear();
                self.listed = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether the HarborCluster CRD exists; retrying")
            }
        }
    }

    /// Applies one watch event; true when the set of HarborClusters changed.
    fn handle(
        &mut self,
        event: Option<Result<Event<DynamicObject>, watcher::Error>>,
        buffer: &mut Vec<DynamicObject>,
    ) -> bool {
        let key = |o: &DynamicObject| (o.namespace().unwrap_or_default(), o.name_any());
        match event {
            Some(Ok(Event::Init)) => buffer.clear(),
            Some(Ok(Event::InitApply(o))) => buffer.push(o),
            Some(Ok(Event::InitDone)) => {
                self.clusters = buffer.drain(..).map(|o| (key(&o), o)).collect();
                self.listed = true;
                return true;
            }
            Some(Ok(Event::Apply(o))) => {
                self.clusters.insert(key(&o), o);
                return true;
            }
            Some(Ok(Event::Delete(o))) => {
                self.clusters.remove(&key(&o));
                return true;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "HarborCluster watch failed; retrying"),
            None => {}
        }
        false
    }

    /// Creates or updates the Registry of every HarborCluster and deletes the managed
    /// Registries whose HarborCluster is gone.
    async fn reconcile(&mut self, view: &LeaderView) {
        let registries: Api<Registry> = Api::all(self.client.clone());
        let mut owners = Vec::new();
        let clusters: Vec<DynamicObject> = self.clusters.values().cloned().collect();
        for hc in &clusters {
            let (ns, name) = (hc.namespace().unwrap_or_default(), hc.name_any());
            let Some(uid) = hc.uid() else { continue };
            owners.push(uid.clone());
            let Some(url) = hc.data.pointer("/spec/externalURL").and_then(Value::as_str) else {
                tracing::warn!(namespace = %ns, name = %name, "HarborCluster has no spec.externalURL; no Registry for it");
                continue;
            };
            let secret_ref = match hc
                .data
                .pointer("/spec/harborAdminPasswordRef")
                .and_then(Value::as_str)
            {
                Some(s) => self.credentials_ref(&ns, &name, s).await,
                None => None,
            };
            let desired = desired_registry(hc, &uid, url, secret_ref);
            let reg_name = registry_name(&ns, &name);
            if let Some(existing) = view.watched.registries.get(&reg_name) {
                let current = existing.object.as_ref();
                if current.is_some_and(|c| !is_managed(c))
                    || (current.is_none() && existing.invalid.is_none())
                {
                    tracing::warn!(registry = %reg_name, "a Registry of that name exists and is not managed by pullgate; left alone");
                    continue;
                }
                if current.is_some_and(|c| same(c, &desired)) {
                    continue;
                }
            }
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            match registries
                .patch(&reg_name, &pp, &Patch::Apply(&desired))
                .await
            {
                Ok(_) => {
                    tracing::info!(registry = %reg_name, "managed Registry written for HarborCluster {ns}/{name}")
                }
                Err(e) => {
                    tracing::warn!(registry = %reg_name, error = %e, "managed Registry could not be written")
                }
            }
        }
        for (reg_name, stored) in &view.watched.registries {
            let Some(r) = &stored.object else { continue };
            if !is_managed(r) {
                continue;
            }
            let owned_by_gone = r.owner_references().iter().any(|o| {
                o.api_version.starts_with("goharbor.io/")
                    && o.kind == HARBOR_KIND
                    && !owners.contains(&o.uid)
            });
            if !owned_by_gone {
                continue;
            }
            match registries.delete(reg_name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(registry = %reg_name, "HarborCluster gone: managed Registry deleted")
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(registry = %reg_name, error = %e, "managed Registry could not be deleted");
                    continue;
                }
            }
            if let Some((ns, name)) = r
                .annotations()
                .get(SOURCE_ANNOTATION)
                .and_then(|s| s.split_once('/'))
            {
                self.delete_derived(&derived_secret_name(ns, name)).await;
            }
        }
    }

    /// The `credentialsSecretRef` for a HarborCluster's admin Secret `secret` (in `ns`):
    /// the Secret itself when it has `username` and `password`, else a derived one.
    async fn credentials_ref(&mut self, ns: &str, name: &str, secret: &str) -> Option<Value> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let source = match api.get_opt(secret).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(namespace = %ns, secret = %secret, "admin password Secret of HarborCluster {name} does not exist");
                return Some(json!({"namespace": ns, "name": secret}));
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, secret = %secret, error = %e, "admin password Secret cannot be read");
                return None;
            }
        };
        let key = |k: &str| {
            source
                .data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        };
        if key("username").is_some() && key("password").is_some() {
            return Some(json!({"namespace": ns, "name": secret}));
        }
        let password = key("secret").or_else(|| key("password"))?;
        let derived = derived_secret_name(ns, name);
        if self.derived.get(&derived) != Some(&password) {
            let s = Secret {
                metadata: ObjectMeta {
                    name: Some(derived.clone()),
                    namespace: Some(self.opts.namespace.clone()),
                    labels: Some(
                        [(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())].into(),
                    ),
                    annotations: Some(
                        [(SOURCE_ANNOTATION.to_string(), format!("{ns}/{name}"))].into(),
                    ),
                    ..ObjectMeta::default()
                },
                type_: Some(BASIC_AUTH_TYPE.to_string()),
                data: Some(
                    [
                        (
                            "username".to_string(),
                            ByteString(ADMIN_USER.as_bytes().to_vec()),
                        ),
                        (
                            "password".to_string(),
                            ByteString(password.clone().into_bytes()),
                        ),
                    ]
                    .into(),
                ),
                ..Secret::default()
            };
            let own: Api<Secret> = Api::namespaced(self.client.clone(), &self.opts.namespace);
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            match own.patch(&derived, &pp, &Patch::Apply(&s)).await {
                Ok(_) => {
                    self.derived.insert(derived.clone(), password);
                }
                Err(e) => {
                    tracing::warn!(secret = %derived, error = %e, "derived admin Secret could not be written")
                }
            }
        }
        Some(json!({"namespace": self.opts.namespace, "name": derived}))
    }

    async fn delete_derived(&mut self, name: &str) {
        let own: Api<Secret> = Api::namespaced(self.client.clone(), &self.opts.namespace);
        match own.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.derived.remove(name);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.derived.remove(name);
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "derived admin Secret could not be deleted")
            }
        }
    }
}

async fn next(stream: &mut Option<Events>) -> Option<Result<Event<DynamicObject>, watcher::Error>> {
    match stream {
        Some(s) => match s.next().await {
            Some(e) => Some(e),
            None => {
                // A watcher stream does not end; if it does, look again later.
                tokio::time::sleep(RETRY).await;
                None
            }
        },
        None => futures::future::pending().await,
    }
}

fn is_managed(r: &Registry) -> bool {
    r.labels().get(MANAGED_LABEL).map(String::as_str) == Some("true")
}

/// The Registry a HarborCluster should have.
fn desired_registry(hc: &DynamicObject, uid: &str, url: &str, secret_ref: Option<Value>) -> Value {
    let ns = hc.namespace().unwrap_or_default();
    let name = hc.name_any();
    let mut spec = json!({"type": "Harbor", "url": url.trim_end_matches('/')});
    if let Some(r) = secret_ref {
        spec["credentialsSecretRef"] = r;
    }
    json!({
        "apiVersion": "pullgate.io/v1alpha1",
        "kind": "Registry",
        "metadata": {
            "name": registry_name(&ns, &name),
            "labels": {MANAGED_LABEL: "true"},
            "annotations": {SOURCE_ANNOTATION: format!("{ns}/{name}")},
            "ownerReferences": [{
                "apiVersion": HARBOR_API_VERSION,
                "kind": HARBOR_KIND,
                "name": name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": false,
            }],
        },
        "spec": spec,
    })
}

/// Whether an existing Registry already is what `desired` says.
fn same(current: &Registry, desired: &Value) -> bool {
    let Ok(want) = serde_json::from_value::<Registry>(desired.clone()) else {
        return false;
    };
    current.spec == want.spec
        && is_managed(current)
        && current.annotations().get(SOURCE_ANNOTATION) == want.annotations().get(SOURCE_ANNOTATION)
        && current
            .owner_references()
            .iter()
            .any(|o| want.owner_references().iter().any(|w| w.uid == o.uid))
}
