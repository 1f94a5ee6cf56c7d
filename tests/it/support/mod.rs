//! Shared test support: the fake apiserver, object builders, a running cluster-mode
//! replica, the admission helper and bounded waits.
#![allow(dead_code)]

pub mod binary;
pub mod cli;
pub mod fake_apiserver;
pub mod fake_harbor;
pub mod registry;
pub mod server;
pub mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use pullgate::cluster::{self, ClusterOptions, DenialEvents};
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

pub use fake_apiserver::FakeApiServer;
pub use webhook::PullgateServer;

pub const PG: &str = "pullgate.io/v1alpha1";
pub const OWN_NS: &str = "pullgate-system";
pub const PULL: &str = "pullgate-pull";

/// A kube client for the fake; `who` goes into the `x-client` header of every request.
pub fn client(fake: &FakeApiServer, who: &str) -> kube::Client {
    let mut config = kube::Config::new(fake.url().parse().expect("url"));
    config.headers.push((
        "x-client".parse().expect("header name"),
        who.parse().expect("header value"),
    ));
    kube::Client::try_from(config).expect("client")
}

pub fn registry(name: &str, url: &str, aliases: &[&str]) -> Value {
    json!({"apiVersion": PG, "kind": "Registry", "metadata": {"name": name},
           "spec": {"type": "DockerRegistry", "url": url, "aliases": aliases}})
}

pub fn space(name: &str, registry: &str, space: &str, vis: &str, ws: &[&str]) -> Value {
    json!({"apiVersion": PG, "kind": "RegistrySpace", "metadata": {"name": name},
           "spec": {"registry": registry, "space": space, "visibility": vis, "workspaces": ws}})
}

pub fn with_ref(mut space: Value, ns: &str, name: &str) -> Value {
    space["spec"]["pullSecretRef"] = json!({"namespace": ns, "name": name});
    space
}

pub fn workspace(name: &str, namespaces: &[&str], selector: Option<Value>) -> Value {
    let mut w = json!({"apiVersion": PG, "kind": "Workspace", "metadata": {"name": name},
                       "spec": {"namespaces": namespaces}});
    if let Some(s) = selector {
        w["spec"]["namespaceSelector"] = json!({"matchLabels": s});
    }
    w
}

pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A Harbor Registry `name` at `url`, its API login in Secret `secret` of pullgate's
/// namespace.
pub fn harbor_registry(name: &str, url: &str, secret: &str) -> Value {
    json!({"apiVersion": PG, "kind": "Registry", "metadata": {"name": name},
           "spec": {"type": "Harbor", "url": url,
                    "credentialsSecretRef": {"namespace": OWN_NS, "name": secret}}})
}

/// Registry h, the Harbor at `url` with its API login `creds` in Secret `secret`, and a
/// private space team-a bound to workspace ws-a of `namespaces` (which exist).
pub fn seed_harbor_team_a(
    fake: &FakeApiServer,
    url: &str,
    secret: &str,
    creds: (&str, &str),
    namespaces: &[&str],
) {
    fake.put(harbor_registry("h", url, secret));
    fake.put(basic_auth_secret(OWN_NS, secret, creds.0, creds.1));
    fake.put(space("h.team-a", "h", "team-a", "Private", &["ws-a"]));
    fake.put(workspace("ws-a", namespaces, None));
    for ns in namespaces {
        fake.put(namespace(ns, json!({})));
    }
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn basic_auth_secret(ns: &str, name: &str, user: &str, pass: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
           "type": "kubernetes.io/basic-auth",
           "data": {"username": b64(user), "password": b64(pass)}})
}

/// The decoded `.dockerconfigjson` of a Secret, as text.
pub fn docker_config(secret: &Value) -> String {
    let data = secret["data"][".dockerconfigjson"]
        .as_str()
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64 data");
    String::from_utf8(bytes).expect("utf-8")
}

/// The exact dockerconfigjson text pullgate writes for one user on the given keys.
pub fn expected_config(keys: &[&str], user: &str, pass: &str) -> String {
    let auth = b64(&format!("{user}:{pass}"));
    let entries: Vec<String> = keys
        .iter()
        .map(|k| format!(r#""{k}":{{"username":"{user}","password":"{pass}","auth":"{auth}"}}"#))
        .collect();
    format!(r#"{{"auths":{{{}}}}}"#, entries.join(","))
}

/// An image in the private space team-a of [`seed_reg`]'s registry, and one in its
/// public space pub.
pub const IMAGE: &str = "127.0.0.1:5000/team-a/app:1";
pub const PUBLIC_IMAGE: &str = "127.0.0.1:5000/pub/tool:1";

/// Registry `reg` at 127.0.0.1:5000 with a private space team-a (bound to workspace ws-a
/// = `bound`, credentials u/p from a basic-auth Secret) and a public space pub;
/// namespaces `bound` and app-2.
pub fn seed_reg(fake: &FakeApiServer, bound: &[&str]) {
    fake.put(registry("reg", "http://127.0.0.1:5000", &[]));
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(space("reg.pub", "reg", "pub", "Public", &[]));
    fake.put(workspace("ws-a", bound, None));
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", "u", "p"));
    for ns in bound.iter().chain(&["app-2"]) {
        fake.put(namespace(ns, json!({})));
    }
}

/// Who holds pullgate's leader Lease on the fake, if anyone.
pub fn lease_holder(fake: &FakeApiServer) -> Option<String> {
    let lease = fake.get("coordination.k8s.io/v1", "Lease", OWN_NS, "pullgate-leader")?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

/// Another replica, `pullgate-other`, holds the leader Lease for an hour from now: a
/// replica started against `fake` does not lead.
pub fn lease_held_by_other(fake: &FakeApiServer) {
    let renewed = k8s_openapi::jiff::Timestamp::now().to_string();
    fake.put(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "pullgate-leader", "namespace": OWN_NS},
        "spec": {"holderIdentity": "pullgate-other", "leaseDurationSeconds": 3600,
                 "acquireTime": renewed, "renewTime": renewed}
    }));
}

/// Test options: short ticks, the given identity, a short lease.
pub fn options(identity: &str) -> ClusterOptions {
    let mut o = ClusterOptions::new(OWN_NS, identity);
    o.max_staleness = Duration::from_secs(1);
    o.staleness_tick = Duration::from_millis(50);
    o.lease_duration = Duration::from_secs(2);
    o.resync = Duration::from_secs(2);
    o.cluster_name = "test-cluster".into();
    o
}

/// One pullgate replica running cluster mode against the fake.
pub struct Replica {
    pub table: Arc<Table>,
    pub synced: watch::Receiver<bool>,
    pub events: DenialEvents,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    pub fn start(fake: &FakeApiServer, opts: ClusterOptions) -> Replica {
        let table = Arc::new(Table::new(Snapshot::default()));
        let (synced_tx, synced) = watch::channel(false);
        let (events, queue) = cluster::denial_events();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(cluster::run(
            opts.clone(),
            client(fake, &opts.identity),
            table.clone(),
            synced_tx,
            queue,
            async move {
                let _ = stopped.await;
            },
        ));
        Replica {
            table,
            synced,
            events,
            stop: Some(stop),
            task,
        }
    }

    /// Waits for the first full sync.
    pub async fn synced(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), self.synced.wait_for(|s| *s))
            .await
            .expect("synced within 10s")
            .expect("sender alive");
    }

    /// Graceful stop (releases the Lease).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("stops within 10s");
        r.expect("task").expect("run returns Ok");
    }

    /// Crash: the task is dropped on the spot, nothing released.
    pub fn kill(self) {
        self.task.abort();
    }

    pub fn revision(&self) -> u64 {
        self.table.load().revision()
    }

    /// Waits until the table has a revision above `rev` and `check` holds.
    pub async fn wait_table(&self, what: &str, check: impl Fn(&Replica) -> bool) {
        wait_until(what, || check(self)).await;
    }
}

/// A kubeconfig file in `dir` pointing at `server` with no credentials.
pub fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody}}\ncurrent-context: fake\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A loopback port that refuses every connection for the rest of the test run: for a
/// registry or apiserver that is not running. The port stays bound (never listened on),
/// so no listener of a test, which the kernel gives ports of its own, can take it over;
/// a released port could come back as the binary's own probe port.
pub fn closed_port() -> u16 {
    static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind a loopback port");
    let port = socket.local_addr().expect("local address").port();
    HELD.lock().unwrap().push(socket);
    port
}

/// A loopback port nothing listens on (bound, then released): for a listener the test
/// hands to the binary. It is taken below the kernel's ephemeral range, where no
/// listener bound to port 0 (the binaries', the fakes') is ever given a port, and each
/// call takes the next one, so two calls never hand out the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000, ephemeral_low.saturating_sub(10_000).max(1));
    // Another run of the suite at the same time starts elsewhere in the span.
    let start = std::process::id() % span;
    for _ in 0..span {
        let port = low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range")
}

/// Polls `cond` every 20 ms for up to 10 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if cond() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after 10s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The admission answer for a pod with one image in `ns`: (allowed, message), from a
/// review posted over TLS to a pullgate webhook serving `table` (one server per table,
/// started on first use and kept for the test binary's life).
pub fn decide(table: &Arc<Table>, ns: &str, image: &str) -> (bool, String) {
    static SERVERS: Mutex<Vec<(Arc<Table>, Arc<PullgateServer>)>> = Mutex::new(Vec::new());
    let server = {
        let mut servers = SERVERS.lock().unwrap();
        match servers.iter().find(|(t, _)| Arc::ptr_eq(t, table)) {
            Some((_, s)) => s.clone(),
            None => {
                let s = Arc::new(PullgateServer::start(table.clone(), Policy::default()));
                servers.push((table.clone(), s.clone()));
                s
            }
        }
    };
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "image": image}]}},
            "dryRun": false
        }
    });
    let (status, v) = server.review("/validate", &body);
    assert_eq!(status, 200, "review answered: {v}");
    let allowed = v["response"]["allowed"].as_bool().expect("allowed field");
    let msg = v["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (allowed, msg)
}
