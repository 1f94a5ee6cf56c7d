//! Several clusters, one Harbor (README, "Several clusters, one Harbor"): two clusters (two fake apiservers, two
//! leaders) share a fake Harbor that checks credentials; each touches only its own
//! robots, whatever the workspaces are called. Robots are rotated make-before-break: no
//! pull Secret ever carries a credential that does not work, the old one stops working
//! after the switch, and a new leader finishes a rotation the last one started. Robots
//! from before cluster names are adopted from their Secret and replaced; others of the
//! old name are left alone. A HarborCluster on a host a hand-integrated Registry already
//! claims changes nothing for admission and says so in a `Conflict` condition;
//! `--managed-harbor=off` makes no Registry. Status and `overview` name the kind of API
//! credential (admin user or system robot).

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pullgate::cluster::leader::robots;
use pullgate::cluster::{ClusterOptions, Hook, RobotHooks};
use serde_json::{json, Value};
use support::fake_harbor::{FakeHarbor, ADMIN, MANAGER_ACCESS};
use support::*;

/// Polls `cond` every 10 ms for up to `secs` seconds (for waits that span a robot
/// lifetime, longer than [`wait_until`]'s).
async fn wait_long(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type Probes = Arc<AtomicUsize>;

fn probing(identity: &str, cluster: &str) -> (ClusterOptions, Probes) {
    let mut o = options(identity);
    o.cluster_name = cluster.into();
    o.probe_interval = Duration::from_millis(200);
    let probes: Probes = Arc::default();
    let seen = probes.clone();
    o.registry_health = Hook(Some(Arc::new(move |_: &str, _: bool| {
        seen.fetch_add(1, Ordering::SeqCst);
    })));
    (o, probes)
}

/// (user, password) of the first entry of `ns`'s pull Secret.
fn pull_creds(fake: &FakeApiServer, ns: &str) -> Option<(String, String)> {
    let secret = fake.get("v1", "Secret", ns, PULL)?;
    let config: Value = serde_json::from_str(&docker_config(&secret)).ok()?;
    let entry = config["auths"].as_object()?.values().next()?.clone();
    Some((
        entry["username"].as_str()?.to_string(),
        entry["password"].as_str()?.to_string(),
    ))
}

fn robot_secrets(fake: &FakeApiServer) -> Vec<Value> {
    fake.list("v1", "Secret")
        .into_iter()
        .filter(|s| {
            s["metadata"]["namespace"] == OWN_NS
                && s["metadata"]["labels"]["pullgate.io/robot"] == "true"
        })
        .collect()
}

/// Cluster `fake`: Registry h on `harbor` with credentials (user, password), space
/// team-a bound to `workspaces`, each with one namespace `app-<workspace>`.
fn seed(fake: &FakeApiServer, harbor: &FakeHarbor, creds: (&str, &str), workspaces: &[&str]) {
    fake.put(harbor_registry("h", &harbor.url(), "h-api"));
    fake.put(basic_auth_secret(OWN_NS, "h-api", creds.0, creds.1));
    fake.put(space("h.team-a", "h", "team-a", "Private", workspaces));
    for ws in workspaces {
        let ns = format!("app-{ws}");
        fake.put(workspace(ws, &[&ns], None));
        fake.put(namespace(&ns, json!({})));
    }
}

/// Both clusters bind team-a to a workspace of the same name (ws-a) and to one of
/// their own (ws-x, ws-y). Over many probe rounds neither deletes or re-secrets the
/// other's robots and every pull Secret's credential keeps working; an unbind in one
/// cluster revokes only its robot. Cluster A is named by its kube-system UID (the
/// default), cluster B by `--cluster-name`, with a system robot as API credential.
#[tokio::test]
async fn two_clusters_share_a_harbor_without_touching_each_others_robots() {
    let harbor = FakeHarbor::start().await;
    harbor.add_project("team-a", false, 0, 0);
    let robot_login = harbor.add_system_robot("pullgate-b", "SysB12345", MANAGER_ACCESS);
    let (a, b) = (FakeApiServer::start().await, FakeApiServer::start().await);
    a.put(namespace("kube-system", json!({})));
    let a_uid = a.get("v1", "Namespace", "", "kube-system").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    seed(&a, &harbor, ADMIN, &["ws-a", "ws-x"]);
    seed(&b, &harbor, (&robot_login, "SysB12345"), &["ws-a", "ws-y"]);
    let (opts_a, probes_a) = probing("pod-a", "");
    let (opts_b, probes_b) = probing("pod-b", "cluster-b");
    let mut ra = Replica::start(&a, opts_a);
    let mut rb = Replica::start(&b, opts_b);
    ra.synced().await;
    rb.synced().await;

    let pulls = [
        (&a, "app-ws-a"),
        (&a, "app-ws-x"),
        (&b, "app-ws-a"),
        (&b, "app-ws-y"),
    ];
    let working = |fake: &FakeApiServer, ns: &str| {
        pull_creds(fake, ns).is_some_and(|(u, p)| harbor.robot_login_ok(&u, &p))
    };
    wait_until("every pull Secret holds a working credential", || {
        pulls.iter().all(|(f, ns)| working(f, ns))
    })
    .await;
    let users: Vec<String> = pulls
        .iter()
        .map(|(f, ns)| pull_creds(f, ns).unwrap().0)
        .collect();
    assert_eq!(
        users.iter().collect::<BTreeSet<_>>().len(),
        4,
        "one robot per cluster and binding: {users:?}"
    );
    let a_prefix: String = a_uid.chars().take(16).collect();
    assert!(
        users[0].starts_with(&format!(
            "robot$team-a+pullgate-{}-ws-a-",
            a_prefix.trim_end_matches('-')
        )),
        "cluster A's name is its kube-system UID: {}",
        users[0]
    );
    assert!(users[2].starts_with("robot$team-a+pullgate-cluster-b-ws-a-"));
    let descriptions: Vec<String> = harbor.robots().into_iter().map(|r| r.description).collect();
    assert!(descriptions
        .iter()
        .any(|d| d.contains(&format!("cluster={a_uid};"))));
    assert!(descriptions
        .iter()
        .any(|d| d.contains("cluster=cluster-b;")));

    // Several probe rounds of both leaders: every credential keeps working throughout,
    // nothing is re-secreted, and nothing is deleted.
    let rounds = |p: &Probes| p.load(Ordering::SeqCst);
    let (start_a, start_b) = (rounds(&probes_a), rounds(&probes_b));
    wait_long("5 probe rounds of each cluster", 30, || {
        for (f, ns) in &pulls {
            let (u, p) = pull_creds(f, ns).expect("pull Secret stays");
            assert!(harbor.robot_login_ok(&u, &p), "{ns}: {u} stopped working");
        }
        rounds(&probes_a) >= start_a + 5 && rounds(&probes_b) >= start_b + 5
    })
    .await;
    assert!(harbor.calls("PATCH", "/robots").is_empty(), "no re-secret");
    assert_eq!(harbor.deleted().len(), 0, "nothing deleted");
    assert_eq!(harbor.robots().len(), 4);

    // Cluster A unbinds ws-a: A's robot for it goes, B's ws-a robot keeps working.
    let (a_ws_a, _) = pull_creds(&a, "app-ws-a").unwrap();
    a.put(space("h.team-a", "h", "team-a", "Private", &["ws-x"]));
    wait_until("A's ws-a robot deleted", || {
        !harbor.robots().iter().any(|r| r.name == a_ws_a)
    })
    .await;
    wait_until("A's app-ws-a pull Secret removed", || {
        pull_creds(&a, "app-ws-a").is_none()
    })
    .await;
    for _ in 0..3 {
        let start = rounds(&probes_b);
        wait_until("a probe round of B", || rounds(&probes_b) > start).await;
        for (f, ns) in [(&a, "app-ws-x"), (&b, "app-ws-a"), (&b, "app-ws-y")] {
            assert!(working(f, ns), "{ns} keeps a working credential");
        }
    }
    let deleted = harbor.deleted();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].1.name, a_ws_a);
    assert_eq!(deleted[0].0, ADMIN.0, "deleted by cluster A's credentials");
    assert_eq!(deleted[0].1.creator, ADMIN.0, "a robot cluster A made");
    // Registry status says which kind of API credential each cluster uses.
    let kind = |f: &FakeApiServer| {
        f.get(PG, "Registry", "", "h").unwrap()["status"]["credentialKind"].clone()
    };
    wait_until("credential kinds in status", || {
        kind(&a) == "AdminUser" && kind(&b) == "SystemRobot"
    })
    .await;
    ra.stop().await;
    rb.stop().await;
}

/// `pullgate overview` (from the cluster) says which kind of API credential a Harbor
/// registry is managed with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_names_the_kind_of_credential() {
    let fake = FakeApiServer::start().await;
    let mut h = harbor_registry("h", "https://harbor.example.com", "h-api");
    h["status"] = json!({"health": "Healthy", "credentialKind": "SystemRobot",
        "lastProbeTime": "2026-01-01T00:00:00Z"});
    fake.put(h);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = kubeconfig(dir.path(), &fake.url());
    let out = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_pullgate"))
                .args(args)
                .env("KUBECONFIG", &config)
                .output()
                .expect("run pullgate overview")
        };
        (run(&["overview", "-o", "json"]), run(&["overview"]))
    })
    .await
    .unwrap();
    let (json_out, text_out) = out;
    let text = String::from_utf8_lossy(&json_out.stdout);
    assert!(
        json_out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&json_out.stderr)
    );
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        json["registries"][0]["credentialKind"], "SystemRobot",
        "{json}"
    );
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert!(
        text.contains("h: API credential: system robot with project and robot permissions"),
        "{text}"
    );
}

/// The robot of app-1 and app-2 (one binding) is rotated: at no moment does a pull
/// Secret carry a credential that does not work; the first credential stops working
/// once both pull Secrets carry its successor; the rotation is an Event and a metric.
#[tokio::test]
async fn rotation_switches_every_pull_secret_before_the_old_robot_goes() {
    let harbor = Arc::new(FakeHarbor::start().await);
    let fake = Arc::new(FakeApiServer::start().await);
    seed_harbor_team_a(&fake, &harbor.url(), "h-api", ADMIN, &["app-1", "app-2"]);
    let (mut opts, _) = probing("pod-a", "c1");
    opts.robot_lifetime = Duration::from_secs(3);
    opts.robot_rotation_grace = Duration::from_secs(1);
    let rotated = Arc::new(AtomicUsize::new(0));
    let counted = rotated.clone();
    opts.robot_hooks = RobotHooks {
        rotated: Some(Arc::new(move |_: &str| {
            counted.fetch_add(1, Ordering::SeqCst);
        })),
        earliest_expiry: None,
    };
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("both pull Secrets hold the first robot", || {
        let (a, b) = (pull_creds(&fake, "app-1"), pull_creds(&fake, "app-2"));
        a.is_some() && a == b
    })
    .await;
    let first = pull_creds(&fake, "app-1").unwrap();

    // Watch every pull Secret all along: what it carries always works.
    let broken: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let (fake, harbor, broken) = (fake.clone(), harbor.clone(), broken.clone());
        tokio::spawn(async move {
            loop {
                for ns in ["app-1", "app-2"] {
                    if let Some((u, p)) = pull_creds(&fake, ns) {
                        if !harbor.robot_login_ok(&u, &p) {
                            broken.lock().unwrap().push(format!("{ns}: {u}"));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    wait_long("the first credential stops working", 30, || {
        !harbor.robot_login_ok(&first.0, &first.1)
    })
    .await;
    let (a, b) = (
        pull_creds(&fake, "app-1").unwrap(),
        pull_creds(&fake, "app-2").unwrap(),
    );
    assert_ne!(a.0, first.0, "app-1 carries the successor");
    assert_ne!(b.0, first.0, "app-2 carries the successor");
    wait_until("the rotation counted", || {
        rotated.load(Ordering::SeqCst) >= 1
    })
    .await;
    for reason in ["RobotRotationStarted", "RobotRotated"] {
        wait_until(&format!("an Event {reason} on the RegistrySpace"), || {
            fake.list("v1", "Event").iter().any(|e| {
                e["reason"] == reason
                    && e["involvedObject"]["kind"] == "RegistrySpace"
                    && e["involvedObject"]["name"] == "h.team-a"
            })
        })
        .await;
    }
    watcher.abort();
    assert_eq!(
        *broken.lock().unwrap(),
        Vec::<String>::new(),
        "a pull Secret carried a dead credential"
    );
    assert!(
        harbor.calls("PATCH", "/robots").is_empty(),
        "never refreshed in place"
    );
    r.stop().await;
}

/// The leader crashes in the middle of a rotation; the next leader finishes it from what
/// the robot Secret says: the old robot is deleted after the switch, the new robot the
/// first leader made stays in use (no rotation started over).
#[tokio::test]
async fn a_new_leader_finishes_a_rotation_from_the_robot_secret() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    seed_harbor_team_a(&fake, &harbor.url(), "h-api", ADMIN, &["app-1"]);
    let (mut opts, _) = probing("pod-a", "c1");
    // Rotation at 10s; the grace outlasts the crash so the new leader deletes.
    opts.robot_lifetime = Duration::from_secs(15);
    opts.robot_rotation_grace = Duration::from_secs(3);
    let ra = Replica::start(&fake, opts.clone());
    wait_until("first robot in use", || {
        pull_creds(&fake, "app-1").is_some()
    })
    .await;
    let first = pull_creds(&fake, "app-1").unwrap();
    let annotation = |k: &str| -> Option<String> {
        robot_secrets(&fake)
            .first()
            .and_then(|s| s["metadata"]["annotations"][k].as_str().map(str::to_string))
    };
    wait_long("a rotation under way", 30, || {
        annotation("pullgate.io/rotation-old-robot").is_some()
    })
    .await;
    assert_eq!(
        annotation("pullgate.io/rotation-old-robot").as_deref(),
        Some(first.0.as_str())
    );
    let successor = robot_secrets(&fake)[0]["data"]["username"]
        .as_str()
        .map(|u| String::from_utf8(base64_decode(u)).unwrap())
        .unwrap();
    ra.kill();
    assert!(harbor.robot_login_ok(&first.0, &first.1), "old still there");

    let (mut opts_b, _) = probing("pod-b", "c1");
    opts_b.robot_lifetime = opts.robot_lifetime;
    opts_b.robot_rotation_grace = opts.robot_rotation_grace;
    let mut rb = Replica::start(&fake, opts_b);
    rb.synced().await;
    wait_long("the new leader finishes the rotation", 30, || {
        annotation("pullgate.io/rotation-old-robot").is_none()
            && !harbor.robot_login_ok(&first.0, &first.1)
    })
    .await;
    let now = pull_creds(&fake, "app-1").unwrap();
    assert_eq!(
        now.0, successor,
        "the first leader's new robot stays in use"
    );
    assert!(harbor.robot_login_ok(&now.0, &now.1));
    wait_until("the new leader reports the rotation it finished", || {
        fake.writes().iter().any(|w| {
            w.client == "pod-b"
                && w.path.ends_with("/events")
                && w.body_json()["reason"] == "RobotRotated"
        })
    })
    .await;
    assert_eq!(
        harbor
            .robots()
            .iter()
            .filter(|r| r.name.starts_with("robot$team-a+pullgate-c1-ws-a-"))
            .count(),
        1,
        "no robot made again: {:?}",
        harbor.robots().iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    rb.stop().await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn harbor_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "harborclusters.goharbor.io"},
           "spec": {"group": "goharbor.io", "scope": "Namespaced",
                    "names": {"plural": "harborclusters", "kind": "HarborCluster"}}})
}

/// A hand-integrated Registry for the fake Harbor's host, a private space bound to
/// app-1, and a HarborCluster whose external URL is that same host.
fn seed_collision(fake: &FakeApiServer, harbor: &FakeHarbor) {
    fake.put(harbor_registry("by-hand", &harbor.url(), "h-api"));
    fake.put(basic_auth_secret(OWN_NS, "h-api", ADMIN.0, ADMIN.1));
    fake.put(space(
        "by-hand.team-a",
        "by-hand",
        "team-a",
        "Private",
        &["ws-a"],
    ));
    fake.put(workspace("ws-a", &["app-1"], None));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    fake.put(harbor_crd());
    fake.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "admin-core-secret", "namespace": "harbor"},
        "type": "goharbor.io/single-secret", "data": {"secret": b64(ADMIN.1)}}));
}

fn condition(fake: &FakeApiServer, registry: &str, type_: &str) -> Value {
    fake.get(PG, "Registry", "", registry)
        .and_then(|r| {
            r["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
        })
        .unwrap_or(Value::Null)
}

/// A HarborCluster on the host a hand-integrated Registry claims: its managed Registry
/// gets a `Conflict` condition and admission keeps deciding by the existing Registry,
/// exactly as before. When the HarborCluster moves to another host, the condition clears.
#[tokio::test]
async fn a_managed_harbor_on_a_claimed_host_changes_nothing_for_admission() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    seed_collision(&fake, &harbor);
    let (opts, _) = probing("pod-a", "c1");
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    let host = harbor.url().trim_start_matches("http://").to_string();
    let image = format!("{host}/team-a/app:1");
    wait_until("admission decides by the hand-integrated Registry", || {
        decide(&r.table, "app-1", &image).0
    })
    .await;
    let before = [
        decide(&r.table, "app-1", &image),
        decide(&r.table, "app-2", &image),
    ];
    assert!(
        before[1].1.contains("registry \"by-hand\""),
        "{}",
        before[1].1
    );

    fake.put(
        json!({"apiVersion": "goharbor.io/v1beta1", "kind": "HarborCluster",
        "metadata": {"name": "prod", "namespace": "harbor"},
        "spec": {"externalURL": harbor.url(), "harborAdminPasswordRef": "admin-core-secret"}}),
    );
    wait_until("managed Registry with a Conflict condition", || {
        let c = condition(&fake, "prod.harbor", "Conflict");
        c["status"] == "True"
            && c["message"]
                .as_str()
                .is_some_and(|m| m.contains("\"by-hand\""))
    })
    .await;
    let rev = r.revision();
    r.wait_table("the table has the managed Registry", |r| {
        r.revision() > rev || r.table.load().registries().len() == 2
    })
    .await;
    assert_eq!(r.table.load().registries().len(), 2);
    let after = [
        decide(&r.table, "app-1", &image),
        decide(&r.table, "app-2", &image),
    ];
    assert_eq!(after, before, "admission unchanged");
    assert_eq!(condition(&fake, "prod.harbor", "Valid")["status"], "True");
    assert_eq!(
        condition(&fake, "by-hand", "Conflict"),
        Value::Null,
        "the existing Registry has no conflict"
    );

    // The HarborCluster moves to a host of its own: the condition clears.
    fake.put(json!({"apiVersion": "goharbor.io/v1beta1", "kind": "HarborCluster",
        "metadata": {"name": "prod", "namespace": "harbor"},
        "spec": {"externalURL": "https://harbor.other.example", "harborAdminPasswordRef": "admin-core-secret"}}));
    wait_until("Conflict cleared", || {
        condition(&fake, "prod.harbor", "Conflict")["status"] == "False"
    })
    .await;
    r.stop().await;
}

/// `--managed-harbor=off`: no Registry is made for a HarborCluster.
#[tokio::test]
async fn managed_harbor_off_makes_no_registry() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    seed_collision(&fake, &harbor);
    fake.put(
        json!({"apiVersion": "goharbor.io/v1beta1", "kind": "HarborCluster",
        "metadata": {"name": "prod", "namespace": "harbor"},
        "spec": {"externalURL": harbor.url(), "harborAdminPasswordRef": "admin-core-secret"}}),
    );
    let (mut opts, probes) = probing("pod-a", "c1");
    opts.managed_harbor = false;
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    let start = probes.load(Ordering::SeqCst);
    wait_until("3 probe rounds", || {
        probes.load(Ordering::SeqCst) >= start + 3
    })
    .await;
    assert!(fake.get(PG, "Registry", "", "prod.harbor").is_none());
    r.stop().await;
}

/// A robot from before cluster names (`robot$team-a+pullgate-ws-a`, kept in a robot
/// Secret of the old format) is adopted and replaced make-before-break by a robot of
/// this cluster; a robot of the old name that no Secret of this cluster names (another
/// cluster's, not yet upgraded) is left alone.
#[tokio::test]
async fn robots_from_before_cluster_names_are_adopted_then_replaced() {
    let harbor = FakeHarbor::start().await;
    harbor.add_project("team-a", false, 0, 0);
    let project_id = harbor.project("team-a").unwrap().id;
    let legacy = |id: i64, ws: &str, secret: &str| support::fake_harbor::FakeRobot {
        id,
        project_id,
        name: format!("robot$team-a+pullgate-{ws}"),
        secret: secret.into(),
        disable: false,
        expires_at: -1,
        permissions: json!([]),
        description: "pull-only robot managed by pullgate".into(),
        creator: String::new(),
    };
    {
        let mut s = harbor.state.lock().unwrap();
        s.robots.push(legacy(500, "ws-a", "Legacy123a"));
        s.robots.push(legacy(501, "ws-other", "Legacy123b"));
    }
    let fake = FakeApiServer::start().await;
    seed_harbor_team_a(&fake, &harbor.url(), "h-api", ADMIN, &["app-1"]);
    // The robot Secret as the previous version wrote it (the same name).
    let name = robots::secret_name(&robots::RobotKey {
        registry: "h".into(),
        space: "team-a".into(),
        workspace: "ws-a".into(),
    });
    fake.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": OWN_NS,
            "labels": {"pullgate.io/managed-by": "pullgate", "pullgate.io/robot": "true"},
            "annotations": {"pullgate.io/registry": "h", "pullgate.io/space": "team-a",
                            "pullgate.io/workspace": "ws-a"}},
        "type": "kubernetes.io/basic-auth",
        "data": {"username": b64("robot$team-a+pullgate-ws-a"), "password": b64("Legacy123a"),
                 "robot-id": b64("500"), "expires-at": b64("-1")}}));
    let (mut opts, _) = probing("pod-a", "c1");
    opts.robot_rotation_grace = Duration::from_secs(1);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_long("the adopted robot replaced", 30, || {
        pull_creds(&fake, "app-1").is_some_and(|(u, p)| {
            u.starts_with("robot$team-a+pullgate-c1-ws-a-") && harbor.robot_login_ok(&u, &p)
        }) && !harbor.robot_login_ok("robot$team-a+pullgate-ws-a", "Legacy123a")
    })
    .await;
    assert!(
        harbor.robot_login_ok("robot$team-a+pullgate-ws-other", "Legacy123b"),
        "another cluster's robot of the old name is left alone"
    );
    let deleted: Vec<i64> = harbor.deleted().iter().map(|(_, r)| r.id).collect();
    assert_eq!(deleted, vec![500]);
    assert_eq!(
        robot_secrets(&fake).len(),
        1,
        "the Secret was rewritten in place"
    );
    let ann = &robot_secrets(&fake)[0]["metadata"]["annotations"];
    assert_eq!(ann["pullgate.io/cluster"], "c1");
    assert!(ann["pullgate.io/robot-created-at"].is_string(), "{ann}");
    r.stop().await;
}

/// A Harbor that answers 409 on create (a robot of that name appeared meanwhile) and
/// loses robots just before pullgate deletes them (404), through binding and two
/// rotations: every pull Secret's credential works at every moment, and the robots
/// someone else made are never deleted or re-secreted.
#[tokio::test]
async fn harbor_faults_never_cost_a_working_credential_or_a_foreign_robot() {
    let harbor = Arc::new(FakeHarbor::start().await);
    let fake = Arc::new(FakeApiServer::start().await);
    seed_harbor_team_a(&fake, &harbor.url(), "h-api", ADMIN, &["app-1"]);
    {
        let mut s = harbor.state.lock().unwrap();
        s.conflicts_on_create = 3;
        s.vanish_on_delete = 2;
    }
    let (mut opts, _) = probing("pod-a", "c1");
    opts.robot_lifetime = Duration::from_secs(3);
    opts.robot_rotation_grace = Duration::from_millis(500);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("a working credential", || {
        pull_creds(&fake, "app-1").is_some_and(|(u, p)| harbor.robot_login_ok(&u, &p))
    })
    .await;
    let broken: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let (fake, harbor, broken) = (fake.clone(), harbor.clone(), broken.clone());
        tokio::spawn(async move {
            loop {
                match pull_creds(&fake, "app-1") {
                    Some((u, p)) if harbor.robot_login_ok(&u, &p) => {}
                    other => broken.lock().unwrap().push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Two rotations: three credentials seen, the first two dead.
    let mut seen: Vec<(String, String)> = Vec::new();
    wait_long("two rotations", 30, || {
        if let Some(c) = pull_creds(&fake, "app-1") {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
        seen.len() >= 3 && seen[..2].iter().all(|(u, p)| !harbor.robot_login_ok(u, p))
    })
    .await;
    watcher.abort();
    assert_eq!(*broken.lock().unwrap(), Vec::<String>::new());
    let foreign: Vec<_> = harbor
        .robots()
        .into_iter()
        .filter(|r| r.creator == "someone-else")
        .collect();
    assert_eq!(
        foreign.len(),
        3,
        "the robots someone else made are all there"
    );
    for f in &foreign {
        assert!(harbor.robot_login_ok(&f.name, &f.secret), "not re-secreted");
    }
    assert!(harbor.calls("PATCH", "/robots").is_empty());
    for (_, robot) in harbor.deleted() {
        assert_eq!(robot.creator, ADMIN.0, "only its own: {robot:?}");
    }
    r.stop().await;
}
