//! The leader's registry loop against the fake apiserver: Registry and RegistrySpace
//! status for a real Docker Registry (live and stopped) and the fake Harbor; Harbor
//! projects created and kept public-flag-synced; one robot per (space, workspace) whose
//! credentials are exactly what the namespace's pull Secret holds, deleted on unbind;
//! non-admin credentials reported as a condition; admission untouched by a dead
//! registry.

use crate::support;

use crate::support::fake_harbor;

use std::sync::{Arc, Mutex};

use fake_harbor::{FakeHarbor, ADMIN, DEVELOPER};
use pullgate::cluster::{ClusterOptions, Hook};
use serde_json::{json, Value};
use support::registry::{tools_available, RealRegistry};
use support::*;

const MIB: i64 = 1024 * 1024;

/// Every (registry, healthy) the loop reported, in order.
type Probes = Arc<Mutex<Vec<(String, bool)>>>;

fn probing_options(identity: &str) -> (ClusterOptions, Probes) {
    let mut o = options(identity);
    o.probe_interval = std::time::Duration::from_millis(200);
    let probes: Probes = Arc::default();
    let seen = probes.clone();
    o.registry_health = Hook(Some(Arc::new(move |name: &str, healthy: bool| {
        seen.lock().unwrap().push((name.to_string(), healthy));
    })));
    (o, probes)
}

fn probes_of(probes: &Probes, registry: &str) -> usize {
    probes
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == registry)
        .count()
}

/// Waits until `registry` has been probed `n` more times.
async fn wait_probes(probes: &Probes, registry: &str, n: usize) {
    let start = probes_of(probes, registry);
    wait_until(&format!("{n} more probes of {registry}"), || {
        probes_of(probes, registry) >= start + n
    })
    .await;
}

fn status(fake: &FakeApiServer, kind: &str, name: &str) -> Value {
    fake.get(PG, kind, "", name)
        .map(|o| o["status"].clone())
        .unwrap_or(Value::Null)
}

fn ready(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or(Value::Null)
}

async fn wait_status(
    fake: &FakeApiServer,
    kind: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) {
    wait_until(&format!("{kind} {name}: {what}"), || {
        check(&status(fake, kind, name))
    })
    .await;
}

fn status_writes(fake: &FakeApiServer) -> Vec<String> {
    fake.writes()
        .into_iter()
        .filter(|w| w.path.ends_with("/status"))
        .map(|w| format!("{} {}", w.path, String::from_utf8_lossy(&w.body)))
        .collect()
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

#[tokio::test]
async fn docker_registry_status_live_and_stopped_and_admission_unaffected() {
    if !tools_available() {
        return;
    }
    let mut live = RealRegistry::start(None);
    live.push("team-a/app", "1");
    live.push("team-a/tools/lint", "1");
    live.push("other/x", "1");
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_url = format!("http://127.0.0.1:{dead_port}");
    let fake = FakeApiServer::start().await;
    fake.put(registry("live", &live.url(), &[]));
    fake.put(registry("stopped", &dead_url, &[]));
    fake.put(space("live.team-a", "live", "team-a", "Private", &["ws-a"]));
    fake.put(space("live.tools", "live", "tools", "Public", &[]));
    fake.put(space(
        "stopped.team-b",
        "stopped",
        "team-b",
        "Private",
        &["ws-a"],
    ));
    fake.put(workspace("ws-a", &["app-1"], None));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    let (opts, probes) = probing_options("pod-a");
    let mut r = Replica::start(&fake, opts);
    r.synced().await;

    wait_status(&fake, "Registry", "live", "Healthy with 2 spaces", |s| {
        s["health"] == "Healthy" && s["spaceCount"] == 2 && ready(s)["status"] == "True"
    })
    .await;
    let s = status(&fake, "Registry", "live");
    assert!(
        s.get("storageUsedBytes").is_none(),
        "a Docker Registry cannot tell: {s}"
    );
    assert!(s["lastProbeTime"].is_string(), "{s}");
    assert_eq!(
        s["conditions"].as_array().unwrap().len(),
        2,
        "Ready and Valid: {s}"
    );
    wait_status(
        &fake,
        "RegistrySpace",
        "live.team-a",
        "exists with 2 repos",
        |s| s["existsOnRegistry"] == true && s["repoCount"] == 2,
    )
    .await;
    let team_a = status(&fake, "RegistrySpace", "live.team-a");
    assert_eq!(
        team_a["boundNamespaces"], 1,
        "the binding count is kept: {team_a}"
    );
    assert_eq!(ready(&team_a)["reason"], "Bound", "{team_a}");
    wait_status(&fake, "RegistrySpace", "live.tools", "absent", |s| {
        s["existsOnRegistry"] == false && s["repoCount"] == 0
    })
    .await;

    wait_status(
        &fake,
        "Registry",
        "stopped",
        "Unhealthy with a message",
        |s| {
            s["health"] == "Unhealthy"
                && s["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("cannot reach"))
                && ready(s)["status"] == "False"
        },
    )
    .await;
    let team_b = status(&fake, "RegistrySpace", "stopped.team-b");
    assert!(
        team_b.get("existsOnRegistry").is_none(),
        "unknown: {team_b}"
    );

    // The dead registry changes nothing for admission.
    let image = format!("{}/team-b/app:1", dead_url.trim_start_matches("http://"));
    assert!(decide(&r.table, "app-1", &image).0);
    let (allowed, msg) = decide(&r.table, "app-2", &image);
    assert!(!allowed && msg.contains("not bound"), "{msg}");

    // Steady registries: probed again and again, no status rewritten.
    wait_probes(&probes, "live", 1).await;
    fake.clear_writes();
    wait_probes(&probes, "live", 3).await;
    wait_probes(&probes, "stopped", 3).await;
    assert_eq!(status_writes(&fake), Vec::<String>::new());

    // The registry stops: its status says so.
    live.stop();
    wait_status(&fake, "Registry", "live", "Unhealthy", |s| {
        s["health"] == "Unhealthy" && ready(s)["reason"] == "Unhealthy"
    })
    .await;
    assert!(probes
        .lock()
        .unwrap()
        .iter()
        .any(|(n, h)| n == "live" && !h));
    r.stop().await;
}

/// Harbor `h` (admin credentials) with a private space team-a bound to ws-a {app-1} and
/// ws-b {app-2}, and a public space pub whose project exists as private.
fn seed_harbor(fake: &FakeApiServer, harbor: &FakeHarbor) {
    harbor.add_project("pub", false, 2, 5 * MIB);
    fake.put(harbor_registry("h", &harbor.url(), "h-admin"));
    fake.put(basic_auth_secret(OWN_NS, "h-admin", ADMIN.0, ADMIN.1));
    fake.put(space(
        "h.team-a",
        "h",
        "team-a",
        "Private",
        &["ws-a", "ws-b"],
    ));
    fake.put(space("h.pub", "h", "pub", "Public", &[]));
    fake.put(workspace("ws-a", &["app-1"], None));
    fake.put(workspace("ws-b", &["app-2"], None));
    for ns in ["app-1", "app-2", "app-3"] {
        fake.put(namespace(ns, json!({})));
    }
}

fn pull_secret(fake: &FakeApiServer, ns: &str) -> Option<String> {
    fake.get("v1", "Secret", ns, PULL)
        .map(|s| docker_config(&s))
}

#[tokio::test]
async fn harbor_projects_robots_and_pull_secrets() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    seed_harbor(&fake, &harbor);
    let (opts, probes) = probing_options("pod-a");
    let mut r = Replica::start(&fake, opts.clone());
    r.synced().await;

    // The missing project is created private; the public space's project turns public.
    wait_until("project team-a created", || {
        harbor.project("team-a").is_some()
    })
    .await;
    assert_eq!(harbor.project("team-a").unwrap().public, "false");
    wait_until("pub made public", || {
        harbor.project("pub").is_some_and(|p| p.public == "true")
    })
    .await;

    // One robot per binding; its credentials are exactly the namespace's pull Secret.
    let host = harbor.url().trim_start_matches("http://").to_string();
    let key = format!("{host}/team-a");
    for (ws, ns) in [("ws-a", "app-1"), ("ws-b", "app-2")] {
        let prefix = format!("robot$team-a+pullgate-test-cluster-{ws}-");
        wait_until(&format!("pull Secret of {ns} holds {prefix}…"), || {
            let Some(robot) = harbor
                .robots()
                .into_iter()
                .find(|r| r.name.starts_with(&prefix))
            else {
                return false;
            };
            let user = robot.name.clone();
            pull_secret(&fake, ns) == Some(expected_config(&[&key], &user, &robot.secret))
        })
        .await;
        let robot = harbor
            .robots()
            .into_iter()
            .find(|r| r.name.starts_with(&prefix))
            .unwrap();
        assert!(harbor.robot_login_ok(&robot.name, &robot.secret));
        assert_eq!(
            robot.permissions[0]["access"][0],
            json!({"resource": "repository", "action": "pull"})
        );
    }
    assert_eq!(pull_secret(&fake, "app-3"), None);
    assert_eq!(robot_secrets(&fake).len(), 2, "one stored Secret per robot");

    // Status: storage from the statistics, per space from the project summary.
    wait_status(&fake, "Registry", "h", "Healthy with storage", |s| {
        s["health"] == "Healthy"
            && s["storageUsedBytes"] == 5 * MIB
            && s["storageUsed"] == "5.0 MiB"
            && s["spaceCount"] == 3
    })
    .await;
    wait_status(&fake, "RegistrySpace", "h.pub", "storage of pub", |s| {
        s["existsOnRegistry"] == true && s["repoCount"] == 2 && s["storageUsedBytes"] == 5 * MIB
    })
    .await;
    wait_status(&fake, "RegistrySpace", "h.team-a", "team-a exists", |s| {
        s["existsOnRegistry"] == true && ready(s)["status"] == "True"
    })
    .await;

    // Unbind ws-b: its robot goes from Harbor, its stored Secret and app-2's pull Secret too.
    fake.put(space("h.team-a", "h", "team-a", "Private", &["ws-a"]));
    wait_until("robot of ws-b deleted", || {
        !harbor.robots().iter().any(|r| {
            r.name
                .starts_with("robot$team-a+pullgate-test-cluster-ws-b-")
        })
    })
    .await;
    wait_until("stored robot Secret of ws-b removed", || {
        robot_secrets(&fake).len() == 1
    })
    .await;
    wait_until("app-2 pull Secret removed", || {
        pull_secret(&fake, "app-2").is_none()
    })
    .await;
    assert!(pull_secret(&fake, "app-1").is_some());

    // Visibility change flips the public flag.
    fake.put(space("h.pub", "h", "pub", "Private", &[]));
    wait_until("pub made private", || {
        harbor.project("pub").is_some_and(|p| p.public == "false")
    })
    .await;

    // A new leader reads the stored credentials back: no new robot, no new secret.
    let before = pull_secret(&fake, "app-1");
    r.stop().await;
    harbor.clear_requests();
    let mut r2 = Replica::start(&fake, opts);
    r2.synced().await;
    wait_probes(&probes, "h", 3).await;
    assert!(
        harbor.calls("POST", "/robots").is_empty(),
        "no robot created again"
    );
    assert!(
        harbor.calls("PATCH", "/robots").is_empty(),
        "no secret refreshed: {:#?}",
        harbor
            .requests()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.body))
            .collect::<Vec<_>>()
    );
    assert_eq!(pull_secret(&fake, "app-1"), before);
    r2.stop().await;
}

#[tokio::test]
async fn non_admin_credentials_are_a_condition_not_a_crash() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    seed_harbor_team_a(&fake, &harbor.url(), "h-dev", DEVELOPER, &["app-1"]);
    let (opts, probes) = probing_options("pod-a");
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_status(&fake, "Registry", "h", "Ready False: not an admin", |s| {
        s["health"] == "Healthy"
            && ready(s)["status"] == "False"
            && ready(s)["message"]
                .as_str()
                .is_some_and(|m| m.contains("not a Harbor system admin"))
    })
    .await;
    wait_status(
        &fake,
        "RegistrySpace",
        "h.team-a",
        "says the robot is missing",
        |s| {
            ready(s)["status"] == "False"
                && ready(s)["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("robot account of workspace \"ws-a\""))
        },
    )
    .await;
    wait_probes(&probes, "h", 2).await;
    assert!(
        harbor.project("team-a").is_none(),
        "nothing created without admin rights"
    );
    assert!(harbor.robots().is_empty());
    r.stop().await;
}

fn harbor_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "harborclusters.goharbor.io"},
           "spec": {"group": "goharbor.io", "scope": "Namespaced",
                    "names": {"plural": "harborclusters", "kind": "HarborCluster"}}})
}

fn harbor_cluster(ns: &str, name: &str, url: &str, secret: &str) -> Value {
    json!({"apiVersion": "goharbor.io/v1beta1", "kind": "HarborCluster",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"externalURL": url, "harborAdminPasswordRef": secret, "version": "2.10.0"}})
}

#[tokio::test]
async fn a_harbor_cluster_yields_a_managed_registry_until_it_goes() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    fake.put(harbor_crd());
    // The harbor-operator's admin Secret holds only the password, under `secret`.
    fake.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "admin-core-secret", "namespace": "harbor"},
        "type": "goharbor.io/single-secret", "data": {"secret": b64(ADMIN.1)}}));
    let hc = fake.put(harbor_cluster(
        "harbor",
        "prod",
        &format!("{}/", harbor.url()),
        "admin-core-secret",
    ));
    let (opts, _probes) = probing_options("pod-a");
    let mut r = Replica::start(&fake, opts);
    r.synced().await;

    wait_until("managed Registry created", || {
        fake.get(PG, "Registry", "", "prod.harbor").is_some()
    })
    .await;
    let reg = fake.get(PG, "Registry", "", "prod.harbor").unwrap();
    assert_eq!(reg["metadata"]["labels"]["pullgate.io/managed"], "true");
    let owner = &reg["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "HarborCluster");
    assert_eq!(owner["apiVersion"], "goharbor.io/v1beta1");
    assert_eq!(owner["name"], "prod");
    assert_eq!(owner["uid"], hc["metadata"]["uid"]);
    assert_eq!(reg["spec"]["type"], "Harbor");
    assert_eq!(reg["spec"]["url"], harbor.url());
    let cref = &reg["spec"]["credentialsSecretRef"];
    assert_eq!(cref["namespace"], OWN_NS);
    let derived = fake
        .get("v1", "Secret", OWN_NS, cref["name"].as_str().unwrap())
        .expect("derived credentials Secret");
    assert_eq!(derived["data"]["username"], b64("admin"));
    assert_eq!(derived["data"]["password"], b64(ADMIN.1));
    // The credentials work: the leader probes it as an admin.
    wait_status(&fake, "Registry", "prod.harbor", "Healthy and Ready", |s| {
        s["health"] == "Healthy" && ready(s)["status"] == "True"
    })
    .await;

    // Gone: the Registry and the derived Secret go too (no garbage collector here).
    fake.delete("goharbor.io/v1beta1", "HarborCluster", "harbor", "prod");
    wait_until("managed Registry deleted", || {
        fake.get(PG, "Registry", "", "prod.harbor").is_none()
    })
    .await;
    wait_until("derived Secret deleted", || {
        fake.get("v1", "Secret", OWN_NS, cref["name"].as_str().unwrap())
            .is_none()
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn without_the_crd_no_registry_is_made() {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    fake.put(harbor_cluster("harbor", "prod", &harbor.url(), "admin"));
    fake.put(registry("plain", "http://127.0.0.1:5000", &[]));
    let (opts, probes) = probing_options("pod-a");
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_probes(&probes, "plain", 3).await;
    assert!(fake.get(PG, "Registry", "", "prod.harbor").is_none());
    r.stop().await;
}
