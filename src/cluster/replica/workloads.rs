//! The running workloads (README, "Background audit and reports"): one watch per kind
//! judged at admission (Pods that have not finished, and the eight workload kinds), each object turned at once into the compact
//! [`Workload`] judging needs (kind, name, uid, controller, images per location), so
//! what is kept is small whatever the objects hold. [`RunningWorkloads`] is the shared
//! handle: the store task publishes a new [`Running`] per burst of changes, with one
//! `Arc` per namespace, so a reader tells the namespaces that changed by pointer.
//!
//! Every replica runs these watches: `/validate` answers an admin's change with the
//! workloads it would newly deny on whichever replica the apiserver calls, and only the
//! leader judges them into Reports. A broken watch marks the set stale (with the kind)
//! until that kind is listed again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodTemplate, ReplicationController};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, watcher};
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::state::WatchChange;
use super::watch::{relist, Seen};
use crate::findings::{workload, Content, Workload};
use crate::index::Inputs;
use crate::object::Kind;
use crate::whatif::{self, Current};

/// How long a burst of watch events is gathered into one publication: a relist of
/// 100,000 pods arrives as one change, single edits are seen within this.
const COALESCE: Duration = Duration::from_millis(50);
/// Queue of converted changes waiting for the store.
const QUEUE: usize = 1024;
/// Pods that have finished run nothing: the apiserver leaves them out of the watch (a
/// pod that finishes leaves the selection and is reported deleted).
const RUNNING_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The workloads of one namespace, sorted by kind and name.
pub type NamespaceWorkloads = Arc<[Workload]>;

/// What the watches have seen, as published.
#[derive(Clone, Debug, Default)]
pub struct Running {
    /// Namespaces with at least one workload; an unchanged namespace keeps its `Arc`
    /// from one publication to the next.
    pub namespaces: BTreeMap<Arc<str>, NamespaceWorkloads>,
    /// Every kind has been listed once.
    pub synced: bool,
    /// Kinds whose watch is broken now: what is held of them may be out of date.
    pub broken: BTreeSet<Kind>,
}

impl Running {
    /// Whether what is held is current (listed and no watch broken).
    pub fn current(&self) -> bool {
        self.synced && self.broken.is_empty()
    }

    /// How many workloads are held.
    pub fn len(&self) -> usize {
        self.namespaces.values().map(|ws| ws.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }
}

/// The shared handle on the running workloads and the objects of the current binding
/// table: the store publishes the workloads, the feed the objects of each table it
/// builds; admission (the warnings on an admin's change, through
/// [`whatif::Running`]) and the leader's audit read. Empty and not synced until
/// cluster mode runs.
#[derive(Clone, Debug)]
pub struct RunningWorkloads(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    workloads: watch::Sender<Arc<Running>>,
    /// Shared with the feed, list by list; copied out only when a review asks.
    inputs: ArcSwapOption<Inputs>,
}

impl Default for RunningWorkloads {
    fn default() -> Self {
        RunningWorkloads(Arc::new(Shared {
            workloads: watch::channel(Arc::default()).0,
            inputs: ArcSwapOption::empty(),
        }))
    }
}

impl RunningWorkloads {
    /// What is held now.
    pub fn load(&self) -> Arc<Running> {
        self.0.workloads.borrow().clone()
    }

    /// A receiver that wakes on every publication.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Running>> {
        self.0.workloads.subscribe()
    }

    pub(crate) fn publish(&self, running: Running) {
        self.0.workloads.send_replace(Arc::new(running));
    }

    /// Records the inputs the binding table now in use was built from.
    pub(crate) fn set_inputs(&self, inputs: Inputs) {
        self.0.inputs.store(Some(Arc::new(inputs)));
    }
}

/// What an admin's change is judged against: the objects of the current table and the
/// running workloads, as the per-namespace `Arc`s of the current publication (a review
/// copies no workload). Until every kind has been listed the check cannot run, and says
/// so.
impl whatif::Running for RunningWorkloads {
    fn current(&self) -> Result<Current, String> {
        let running = self.load();
        if !running.synced {
            return Err("the running workloads are not listed yet".into());
        }
        let inputs = self
            .0
            .inputs
            .load_full()
            .ok_or("the current objects are not known yet")?;
        Ok(Current {
            objects: Arc::new(inputs.to_objects()),
            workloads: running.namespaces.clone(),
        })
    }
}

/// What one workload watch reports, already converted; a deletion names the object gone
/// by (namespace, name).
pub type WorkloadChange = WatchChange<Kind, Workload, (Arc<str>, Box<str>)>;

/// The `ApiResource` of a kind (its stable version), as the watches and `pullgate audit`
/// list it.
pub fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Pod => ApiResource::erase::<Pod>(&()),
        Kind::Deployment => ApiResource::erase::<Deployment>(&()),
        Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        Kind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
        Kind::ReplicationController => ApiResource::erase::<ReplicationController>(&()),
        Kind::Job => ApiResource::erase::<Job>(&()),
        Kind::CronJob => ApiResource::erase::<CronJob>(&()),
        Kind::PodTemplate => ApiResource::erase::<PodTemplate>(&()),
    }
}

/// Interns strings many workloads repeat (namespace names, image references), so each
/// is kept once: 100,000 pods run a few thousand distinct images.
#[derive(Default)]
struct Names(HashMap<Arc<str>, ()>);

impl Names {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some((k, _)) = self.0.get_key_value(s) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(s);
        self.0.insert(k.clone(), ());
        k
    }

    /// Forgets what no workload holds any more.
    fn prune(&mut self) {
        self.0.retain(|k, _| Arc::strong_count(k) > 1);
    }
}

/// A watched object as a workload; `None` for a pod that has finished (it runs nothing).
pub fn convert(kind: Kind, obj: DynamicObject) -> Option<Workload> {
    if kind == Kind::Pod {
        let phase = obj.data.pointer("/status/phase").and_then(|p| p.as_str());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
    }
    let mut value = match serde_json::to_value(&obj) {
        Ok(v) => v,
        Err(e) => {
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            return Some(Workload::unreadable(kind, ns, name, e.to_string()));
        }
    };
    // Only metadata and spec are read; the status goes before the object is looked at.
    if let Some(o) = value.as_object_mut() {
        o.remove("status");
    }
    Some(workload::from_value(kind, &value))
}

/// Runs the watches of every kind and the store until `shutdown` turns true.
pub async fn run(client: Client, running: RunningWorkloads, mut shutdown: watch::Receiver<bool>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut tasks = tokio::task::JoinSet::new();
    for kind in Kind::ALL {
        tasks.spawn(watch_kind(client.clone(), kind, tx.clone()));
    }
    drop(tx);
    tokio::select! {
        _ = store(rx, running) => {}
        _ = crate::cluster::stopped(&mut shutdown) => {}
    }
    tasks.shutdown().await;
}

/// One kind's watch: a full list, then changes; after a failure, a new list.
async fn watch_kind(client: Client, kind: Kind, tx: mpsc::Sender<WorkloadChange>) {
    let api: Api<DynamicObject> = Api::all_with(client, &resource(kind));
    let mut config = watcher::Config::default();
    if kind == Kind::Pod {
        config = config.fields(RUNNING_PODS);
    }
    let open = || watcher(api.clone(), config.clone()).boxed();
    let change = |seen: Seen<DynamicObject, Workload>| match seen {
        Seen::Listed(ws) => WorkloadChange::Reset(kind, ws),
        Seen::Applied(o) => {
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            match convert(kind, o) {
                Some(w) => WorkloadChange::Apply(kind, w),
                None => WorkloadChange::Delete(kind, (ns.into(), name.into())),
            }
        }
        Seen::Deleted(o) => WorkloadChange::Delete(
            kind,
            (
                o.metadata.namespace.unwrap_or_default().into(),
                o.metadata.name.unwrap_or_default().into(),
            ),
        ),
        Seen::Broken => WorkloadChange::Broken(kind),
    };
    let span = tracing::info_span!("workload_watch", kind = kind.as_str());
    relist("workload watch", open, |o| convert(kind, o), change, &tx)
        .instrument(span)
        .await
}

/// A namespace's changes not yet published: (kind, name) → the workload now, or `None`
/// when it is gone.
type Pending = BTreeMap<(Kind, Box<str>), Option<Workload>>;

/// What the store keeps between publications: the published lists (the one copy of
/// each workload) and the changes not yet published, by namespace.
#[derive(Default)]
pub struct Store {
    published: BTreeMap<Arc<str>, NamespaceWorkloads>,
    pending: HashMap<Arc<str>, Pending>,
    names: Names,
    images: Names,
    listed: BTreeSet<Kind>,
    broken: BTreeSet<Kind>,
    /// Whether the next publication has news (a change or a flag).
    changed: bool,
}

impl Store {
    pub fn apply(&mut self, change: WorkloadChange) {
        self.changed = true;
        match change {
            WorkloadChange::Broken(kind) => {
                self.broken.insert(kind);
            }
            WorkloadChange::Reset(kind, items) => {
                self.broken.remove(&kind);
                self.listed.insert(kind);
                // Everything of this kind goes, unless the new list has it again.
                for (ns, ws) in &self.published {
                    for w in ws.iter().filter(|w| w.kind == kind) {
                        self.pending
                            .entry(ns.clone())
                            .or_default()
                            .insert((kind, w.name.clone()), None);
                    }
                }
                for pending in self.pending.values_mut() {
                    for (key, w) in pending.iter_mut() {
                        if key.0 == kind {
                            *w = None;
                        }
                    }
                }
                for w in items {
                    self.put(w);
                }
            }
            WorkloadChange::Apply(kind, w) => {
                self.broken.remove(&kind);
                self.put(w);
            }
            WorkloadChange::Delete(kind, (ns, name)) => {
                self.broken.remove(&kind);
                let ns = self.names.intern(&ns);
                self.pending
                    .entry(ns)
                    .or_default()
                    .insert((kind, name), None);
            }
        }
    }

    fn put(&mut self, mut w: Workload) {
        let ns = self.names.intern(&w.namespace);
        w.namespace = ns.clone();
        if let Content::Images(uses) = &mut w.content {
            for u in uses.iter_mut() {
                u.image = self.images.intern(&u.image);
            }
        }
        self.pending
            .entry(ns)
            .or_default()
            .insert((w.kind, w.name.clone()), Some(w));
    }

    /// The next publication, if anything changed since the last one. Only the
    /// namespaces with changes get a new list.
    pub fn publish(&mut self) -> Option<Running> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        for (ns, changes) in std::mem::take(&mut self.pending) {
            let mut list: BTreeMap<(Kind, Box<str>), Workload> = self
                .published
                .get(&ns)
                .map(|ws| {
                    ws.iter()
                        .map(|w| ((w.kind, w.name.clone()), w.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let mut same = true;
            for (key, w) in changes {
                let old = match w {
                    Some(w) => list.insert(key.clone(), w),
                    None => list.remove(&key),
                };
                same &= old.as_ref() == list.get(&key);
            }
            if same {
                continue;
            }
            if list.is_empty() {
                self.published.remove(&ns);
                self.names.0.remove(&ns);
            } else {
                self.published.insert(ns, list.into_values().collect());
            }
        }
        self.images.prune();
        Some(Running {
            namespaces: self.published.clone(),
            synced: Kind::ALL.iter().all(|k| self.listed.contains(k)),
            broken: self.broken.clone(),
        })
    }
}

/// Applies the watches' changes and publishes once per burst.
async fn store(mut rx: mpsc::Receiver<WorkloadChange>, running: RunningWorkloads) {
    let mut store = Store::default();
    while let Some(change) = rx.recv().await {
        store.apply(change);
        let deadline = Instant::now() + COALESCE;
        while let Ok(Some(c)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            store.apply(c);
        }
        if let Some(r) = store.publish() {
            running.publish(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, image: &str) -> Workload {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": image}]},
            "status": {"phase": "Running"}}))
        .unwrap();
        convert(Kind::Pod, obj).expect("a running pod")
    }

    fn apply_pod(store: &mut Store, ns: &str, name: &str, image: &str) {
        store.apply(WorkloadChange::Apply(Kind::Pod, pod(ns, name, image)));
    }

    fn listed(store: &mut Store) {
        for kind in Kind::ALL {
            store.apply(WorkloadChange::Reset(kind, Vec::new()));
        }
    }

    /// Only the namespace that changed gets a new list: the audit re-judges by pointer.
    #[test]
    fn an_unchanged_namespace_keeps_its_list() {
        let mut store = Store::default();
        listed(&mut store);
        apply_pod(&mut store, "a", "p", "x:1");
        apply_pod(&mut store, "b", "p", "x:1");
        let first = store.publish().unwrap();
        assert!(first.synced && first.current());
        apply_pod(&mut store, "b", "q", "x:2");
        let second = store.publish().unwrap();
        assert!(Arc::ptr_eq(&first.namespaces["a"], &second.namespaces["a"]));
        assert!(!Arc::ptr_eq(
            &first.namespaces["b"],
            &second.namespaces["b"]
        ));
        assert_eq!(second.namespaces["b"].len(), 2);
        // The same object again changes nothing.
        apply_pod(&mut store, "b", "q", "x:2");
        let third = store.publish().unwrap();
        assert!(Arc::ptr_eq(&second.namespaces["b"], &third.namespaces["b"]));
        assert!(store.publish().is_none(), "nothing new, nothing published");
    }

    /// A new list replaces everything of its kind; a namespace left empty goes; a watch
    /// that fails marks the set stale until its kind lists again.
    #[test]
    fn a_relist_replaces_its_kind_and_a_break_is_stale_until_then() {
        let mut store = Store::default();
        listed(&mut store);
        apply_pod(&mut store, "a", "p", "x:1");
        apply_pod(&mut store, "b", "p", "x:1");
        store.publish();
        store.apply(WorkloadChange::Broken(Kind::Pod));
        let broken = store.publish().unwrap();
        assert!(!broken.current());
        assert_eq!(broken.broken, BTreeSet::from([Kind::Pod]));
        store.apply(WorkloadChange::Reset(Kind::Pod, vec![pod("b", "p", "x:1")]));
        let relisted = store.publish().unwrap();
        assert!(relisted.current());
        assert_eq!(
            relisted.namespaces.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["b"]
        );
        store.apply(WorkloadChange::Delete(Kind::Pod, ("b".into(), "p".into())));
        assert!(store.publish().unwrap().is_empty());
    }

    /// An image many pods run is kept once.
    #[test]
    fn images_are_kept_once() {
        let mut store = Store::default();
        listed(&mut store);
        apply_pod(&mut store, "a", "p", "x:1");
        apply_pod(&mut store, "b", "q", "x:1");
        let r = store.publish().unwrap();
        let image = |ns: &str| match &r.namespaces[ns][0].content {
            Content::Images(uses) => uses[0].image.clone(),
            Content::Unreadable(_) => panic!("readable"),
        };
        assert!(Arc::ptr_eq(&image("a"), &image("b")));
    }

    /// An admin's change is judged against the published lists themselves: handing them
    /// out copies no workload (at 100,000 pods a copy per review is a memory spike).
    #[test]
    fn a_change_is_judged_against_the_published_lists_not_a_copy() {
        use crate::whatif::Running as _;
        let handle = RunningWorkloads::default();
        let mut store = Store::default();
        store.apply(WorkloadChange::Apply(Kind::Pod, pod("a", "p", "x:1")));
        handle.publish(store.publish().unwrap());
        handle.set_inputs(crate::index::Inputs::default());
        let not_listed = handle.current().err().expect("not listed yet");
        assert!(not_listed.contains("not listed"), "{not_listed}");
        listed(&mut store);
        for (ns, name) in [("a", "p"), ("b", "q")] {
            store.apply(WorkloadChange::Apply(Kind::Pod, pod(ns, name, "x:1")));
        }
        handle.publish(store.publish().unwrap());
        let published = handle.load();
        let current = handle.current().expect("listed, objects known");
        assert_eq!(
            current.workloads.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["a", "b"]
        );
        for (ns, list) in &current.workloads {
            assert!(Arc::ptr_eq(list, &published.namespaces[ns]), "{ns} copied");
        }
    }

    #[test]
    fn a_finished_pod_runs_nothing_and_the_status_is_not_read() {
        let done: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
            "spec": {"containers": [{"name": "app", "image": "x:1"}]},
            "status": {"phase": "Succeeded"}}))
        .unwrap();
        assert!(convert(Kind::Pod, done).is_none());
        let w = pod("a", "p", "x:1");
        assert_eq!(w.display(), "Pod/a/p");
    }
}
