//! The watch tasks: one kube-runtime watcher per kind (and one per referenced Secret),
//! each turning its stream into [`Change`]s. A failed watch reports [`Change::Broken`]
//! and starts over with a fresh list after a backoff, so a recovered watch always
//! announces itself with a full list (which also repairs whatever a `410 Gone` hid).

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, watcher, Event};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::state::{Change, Item, WatchId};

/// Label on the Secrets that hold Harbor robot credentials (what their watch selects;
/// the leader's robot module writes it).
pub const ROBOT_LABEL: &str = "pullgate.io/robot";
use crate::api::{Registry, RegistrySpace, SecretRef, Workspace};
use crate::index::NamespaceInfo;

/// First wait after a failed watch; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Long enough not to hammer a struggling apiserver, short enough that recovery is
/// seen well within any sensible `--max-staleness`.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Events = BoxStream<'static, Result<Event<Item>, watcher::Error>>;

/// How to open one watch stream (called again after every failure).
pub struct Source {
    pub id: WatchId,
    open: Box<dyn Fn() -> Events + Send + Sync>,
}

impl Source {
    /// A pullgate custom resource, read as raw JSON so that each object is parsed alone.
    pub fn custom<K>(client: &Client, id: WatchId) -> Source
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::erase::<K>(&()));
        Source {
            id,
            open: Box::new(move || {
                map_events(watcher(api.clone(), watcher::Config::default()), |o| {
                    Item::Custom(Box::new(o))
                })
            }),
        }
    }

    pub fn registries(client: &Client) -> Source {
        Source::custom::<Registry>(client, WatchId::Registries)
    }

    pub fn spaces(client: &Client) -> Source {
        Source::custom::<RegistrySpace>(client, WatchId::Spaces)
    }

    pub fn workspaces(client: &Client) -> Source {
        Source::custom::<Workspace>(client, WatchId::Workspaces)
    }

    /// Namespaces, metadata only: labels are all the table needs.
    pub fn namespaces(client: &Client) -> Source {
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        Source {
            id: WatchId::Namespaces,
            open: Box::new(move || {
                map_events(
                    watcher(api.clone(), watcher::Config::default()),
                    |m: PartialObjectMeta<Namespace>| {
                        Item::Namespace(NamespaceInfo {
                            name: m.name_any(),
                            labels: m.labels().clone(),
                        })
                    },
                )
            }),
        }
    }

    /// Every Secret named `name` in any namespace: pullgate's own pull Secrets and any
    /// foreign Secret of the same name, which must be left alone.
    pub fn pull_secrets(client: &Client, name: &str) -> Source {
        let api: Api<Secret> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        Source {
            id: WatchId::PullSecrets,
            open: Box::new(move || {
                map_events(watcher(api.clone(), config.clone()), |s| {
                    Item::Secret(Box::new(s))
                })
            }),
        }
    }

    /// The Secrets in pullgate's namespace that keep Harbor robot credentials.
    pub fn robot_secrets(client: &Client, namespace: &str) -> Source {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().labels(&format!("{ROBOT_LABEL}=true"));
        Source {
            id: WatchId::RobotSecrets,
            open: Box::new(move || {
                map_events(watcher(api.clone(), config.clone()), |s| {
                    Item::Secret(Box::new(s))
                })
            }),
        }
    }

    /// One Secret named by a `pullSecretRef` or `credentialsSecretRef`.
    pub fn referenced(client: &Client, r: &SecretRef) -> Source {
        let api: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", r.name));
        Source {
            id: WatchId::Ref(r.namespace.clone(), r.name.clone()),
            open: Box::new(move || {
                map_events(watcher(api.clone(), config.clone()), |s| {
                    Item::Secret(Box::new(s))
                })
            }),
        }
    }
}

fn map_events<K: 'static, S>(stream: S, f: fn(K) -> Item) -> Events
where
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    stream
        .map_ok(move |e| match e {
            Event::Apply(k) => Event::Apply(f(k)),
            Event::Delete(k) => Event::Delete(f(k)),
            Event::Init => Event::Init,
            Event::InitApply(k) => Event::InitApply(f(k)),
            Event::InitDone => Event::InitDone,
        })
        .boxed()
}

/// Runs one watch until the receiver is gone.
pub async fn run(source: Source, tx: mpsc::Sender<Change>) {
    let span = tracing::info_span!("watch", id = ?source.id);
    let id = &source.id;
    let change = |seen: Seen<Item, Item>| match seen {
        Seen::Listed(items) => Change::Reset(id.clone(), items),
        Seen::Applied(item) => Change::Apply(id.clone(), item),
        Seen::Deleted(item) => Change::Delete(id.clone(), item),
        Seen::Broken => Change::Broken(id.clone()),
    };
    relist("watch", &source.open, Some, change, &tx)
        .instrument(span)
        .await
}

/// What a watch saw, for its caller to turn into its own kind of change.
pub(super) enum Seen<K, L> {
    /// A complete list: the first one, and again after every failure.
    Listed(Vec<L>),
    Applied(K),
    Deleted(K),
    /// The watch failed; a new list follows after a backoff.
    Broken,
}

/// The loop every replica watch runs until the receiver is gone: open a stream, gather
/// its initial list (each object through `listed`, which may leave it out), send what
/// it sees as `change` turns it; after a failure, report [`Seen::Broken`] and open a new
/// stream after a backoff (doubled per failure, back to the least after a full list).
/// `what` names the watch in the warning about a failure.
pub(super) async fn relist<K, L, C, S>(
    what: &str,
    open: impl Fn() -> S,
    mut listed: impl FnMut(K) -> Option<L>,
    mut change: impl FnMut(Seen<K, L>) -> C,
    tx: &mpsc::Sender<C>,
) where
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
{
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut stream = open();
        let mut buffer = Vec::new();
        while let Some(event) = stream.next().await {
            let seen = match event {
                Ok(Event::Init) => {
                    buffer.clear();
                    continue;
                }
                Ok(Event::InitApply(k)) => {
                    buffer.extend(listed(k));
                    continue;
                }
                Ok(Event::InitDone) => {
                    backoff = MIN_BACKOFF;
                    Seen::Listed(std::mem::take(&mut buffer))
                }
                Ok(Event::Apply(k)) => Seen::Applied(k),
                Ok(Event::Delete(k)) => Seen::Deleted(k),
                Err(e) => {
                    tracing::warn!(error = %e, "{what} failed; listing again after {backoff:?}");
                    if tx.send(change(Seen::Broken)).await.is_err() {
                        return;
                    }
                    break;
                }
            };
            if tx.send(change(seen)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
