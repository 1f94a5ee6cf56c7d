//! A small Kubernetes apiserver stand-in at the HTTP layer, for tests: objects per
//! (apiVersion, plural, namespace, name) with one global resourceVersion counter; LIST
//! with label and field selectors; WATCH from a resourceVersion (`410 Gone` below the
//! compaction floor); GET, POST, PUT (optimistic concurrency), PATCH (merge, JSON and
//! apply), DELETE (with preconditions) and the `/status` subresource; core/v1 Events are
//! validated as the apiserver does (name, size limits). Test controls break
//! every watch, make every request fail with 500, compact history, and list every write
//! in order with the header `x-client` that says which client made it, and when it
//! arrived. TokenReviews are answered from tokens the test registers (`token_review`).

mod http;
pub mod token_review;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;
/// (apiVersion, plural, namespace or "", name)
pub(crate) type Key = (String, String, String, String);

/// One write request as the server received it.
#[derive(Clone, Debug)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The `x-client` header (which replica wrote).
    pub client: String,
    pub status: u16,
    /// When its head arrived.
    pub at: std::time::Instant,
}

impl Write {
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug)]
pub(crate) struct Evt {
    pub(crate) rv: u64,
    pub(crate) key: Key,
    pub(crate) old: Option<Value>,
    pub(crate) new: Option<Value>,
}

#[derive(Default)]
pub struct Store {
    pub(crate) rv: u64,
    pub(crate) objects: BTreeMap<Key, Value>,
    pub(crate) history: Vec<Arc<Evt>>,
    pub(crate) floor: u64,
    pub(crate) writes: Vec<Write>,
    pub(crate) names: u64,
}

pub(crate) struct Inner {
    pub(crate) store: Mutex<Store>,
    pub(crate) events: broadcast::Sender<Arc<Evt>>,
    pub(crate) breaks: watch::Sender<u64>,
    pub(crate) failing: AtomicBool,
    pub(crate) requests: AtomicU64,
    pub(crate) gone: AtomicU64,
    /// Tokens TokenReviews know, and how many reviews were asked.
    pub(crate) tokens: Mutex<BTreeMap<String, token_review::TokenInfo>>,
    pub(crate) token_reviews: AtomicU64,
    /// API group versions served beyond the built-in ones: "group/version" → (plural,
    /// kind) pairs, answered by discovery (`GET /apis/<group>/<version>`).
    pub(crate) apis: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    /// Writes to this plural are refused with this status code.
    pub(crate) refuse: Mutex<Option<(String, u16)>>,
    /// Reads (lists and watches) of this plural are answered 500.
    pub(crate) fail_reads: Mutex<Option<String>>,
}

/// The running fake; dropped with the test.
pub struct FakeApiServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Atomic access to the store: changes made here reach no watch that was broken first.
pub struct Tx<'a> {
    pub(crate) store: MutexGuard<'a, Store>,
    pub(crate) inner: &'a Inner,
}

impl FakeApiServer {
    pub async fn start() -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::default()),
            events: broadcast::channel(4096).0,
            breaks: watch::channel(0).0,
            failing: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            gone: AtomicU64::new(0),
            tokens: Mutex::new(BTreeMap::new()),
            token_reviews: AtomicU64::new(0),
            apis: Mutex::new(BTreeMap::new()),
            refuse: Mutex::new(None),
            fail_reads: Mutex::new(None),
        });
        let server = inner.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let inner = server.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, Infallible>(http::handle(&inner, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeApiServer { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` with the store locked.
    pub fn tx(&self) -> Tx<'_> {
        Tx {
            store: self.inner.store.lock().unwrap(),
            inner: &self.inner,
        }
    }

    pub fn put(&self, obj: Value) -> Value {
        self.tx().put(obj)
    }

    pub fn delete(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        self.tx().delete(api_version, kind, ns, name)
    }

    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let key = key_of(api_version, kind, ns, name);
        self.inner.store.lock().unwrap().objects.get(&key).cloned()
    }

    /// Every object of a kind (all namespaces).
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let plural = plural_of(kind);
        let store = self.inner.store.lock().unwrap();
        store
            .objects
            .iter()
            .filter(|(k, _)| k.0 == api_version && k.1 == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn writes(&self) -> Vec<Write> {
        self.inner.store.lock().unwrap().writes.clone()
    }

    pub fn clear_writes(&self) {
        self.inner.store.lock().unwrap().writes.clear();
    }

    /// Closes every open watch stream now.
    pub fn break_watches(&self) {
        self.inner.breaks.send_modify(|g| *g += 1);
    }

    /// While true, every request is answered 500.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// Forgets history: a watch from any earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.tx().compact();
    }

    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Makes TokenReviews accept `token` as `info` says.
    pub fn add_token(&self, token: &str, info: token_review::TokenInfo) {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .insert(token.to_string(), info);
    }

    /// How many TokenReviews were asked.
    pub fn token_reviews(&self) -> u64 {
        self.inner.token_reviews.load(Ordering::SeqCst)
    }

    /// Serves `plural` (of `kind`) in `group_version` in discovery, as a CRD would.
    pub fn serve_api(&self, group_version: &str, plural: &str, kind: &str) {
        self.inner
            .apis
            .lock()
            .unwrap()
            .entry(group_version.to_string())
            .or_default()
            .push((plural.to_string(), kind.to_string()));
    }

    /// While set, every write to `plural` is answered `code` (as a validating apiserver
    /// refuses an object); `None` accepts them again.
    pub fn refuse_writes(&self, refuse: Option<(&str, u16)>) {
        *self.inner.refuse.lock().unwrap() = refuse.map(|(p, c)| (p.to_string(), c));
    }

    /// While set, every read of `plural` (list, watch, get) is answered 500, so its
    /// watches fail once broken; `None` heals them.
    pub fn fail_reads(&self, plural: Option<&str>) {
        *self.inner.fail_reads.lock().unwrap() = plural.map(str::to_string);
    }

    /// How many watches were answered `410 Gone`.
    pub fn gone_count(&self) -> u64 {
        self.inner.gone.load(Ordering::SeqCst)
    }
}

impl Tx<'_> {
    /// Creates or replaces an object (apiVersion, kind, metadata.name, and
    /// metadata.namespace for namespaced kinds).
    pub fn put(&mut self, obj: Value) -> Value {
        let key = key_for(&obj);
        let old = self.store.objects.get(&key).cloned();
        let new = stamp(obj, old.as_ref(), false);
        self.commit(key, old, Some(new)).unwrap_or(Value::Null)
    }

    pub fn delete(&mut self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let key = key_of(api_version, kind, ns, name);
        let old = self.store.objects.get(&key).cloned()?;
        self.commit(key, Some(old), None)
    }

    pub fn break_watches(&mut self) {
        self.inner.breaks.send_modify(|g| *g += 1);
    }

    pub fn compact(&mut self) {
        self.store.floor = self.store.rv;
        self.store.history.clear();
    }

    /// Stores `new` (or deletes) with the next resourceVersion and tells the watches.
    pub(crate) fn commit(
        &mut self,
        key: Key,
        old: Option<Value>,
        new: Option<Value>,
    ) -> Option<Value> {
        self.store.rv += 1;
        let rv = self.store.rv;
        let new = new.map(|mut n| {
            n["metadata"]["resourceVersion"] = json!(rv.to_string());
            n
        });
        match &new {
            Some(n) => {
                self.store.objects.insert(key.clone(), n.clone());
            }
            None => {
                self.store.objects.remove(&key);
            }
        }
        // A deleted object is reported with the deletion's resourceVersion.
        let reported_old = old.map(|mut o| {
            if new.is_none() {
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
            }
            o
        });
        let evt = Arc::new(Evt {
            rv,
            key,
            old: reported_old.clone(),
            new: new.clone(),
        });
        self.store.history.push(evt.clone());
        let _ = self.inner.events.send(evt);
        new.or(reported_old)
    }
}

/// Fills in what the apiserver sets: uid, creationTimestamp, generation.
pub(crate) fn stamp(mut obj: Value, old: Option<&Value>, status_only: bool) -> Value {
    static UIDS: AtomicU64 = AtomicU64::new(1);
    let meta = &mut obj["metadata"];
    match old {
        Some(o) => {
            meta["uid"] = o["metadata"]["uid"].clone();
            meta["creationTimestamp"] = o["metadata"]["creationTimestamp"].clone();
            let g = o["metadata"]["generation"].as_i64().unwrap_or(1);
            let spec_changed = !status_only && o.get("spec") != obj.get("spec");
            obj["metadata"]["generation"] = json!(if spec_changed { g + 1 } else { g });
        }
        None => {
            meta["uid"] = json!(format!("uid-{}", UIDS.fetch_add(1, Ordering::SeqCst)));
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            meta["generation"] = json!(1);
        }
    }
    obj
}

pub fn plural_of(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if let Some(stem) = k.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{k}s")
    }
}

fn key_of(api_version: &str, kind: &str, ns: &str, name: &str) -> Key {
    (api_version.into(), plural_of(kind), ns.into(), name.into())
}

fn key_for(obj: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    key_of(
        &s(&obj["apiVersion"]),
        &s(&obj["kind"]),
        &s(&obj["metadata"]["namespace"]),
        &s(&obj["metadata"]["name"]),
    )
}
