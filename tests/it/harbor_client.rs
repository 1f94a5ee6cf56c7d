//! The Harbor client, probe and management logic against a fake Harbor that follows the
//! v2.0 swagger (see `support/fake_harbor.rs`).

use crate::support::fake_harbor;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_harbor::{FakeHarbor, FakeRobot, ADMIN, DEVELOPER};
use pullgate::api::{Health, RegistryType, Visibility};
use pullgate::cluster::leader::robots;
use pullgate::index::testing::mk_registry;
use pullgate::registry::{
    self, ClientOptions, Credentials, HarborClient, ProjectChange, RegistryClient, RegistryError,
};

const MIB: i64 = 1024 * 1024;

fn client_with(fake: &FakeHarbor, creds: Option<(&str, &str)>, page_size: u32) -> RegistryClient {
    let reg = mk_registry("harbor-prod", RegistryType::Harbor, &fake.url(), &[]);
    let options = ClientOptions {
        page_size,
        ..ClientOptions::default()
    };
    RegistryClient::new(&reg, creds.map(|(u, p)| Credentials::new(u, p)), &options).expect("client")
}

fn admin(fake: &FakeHarbor) -> RegistryClient {
    client_with(fake, Some(ADMIN), 100)
}

fn harbor(client: &RegistryClient) -> &HarborClient {
    client.as_harbor().expect("a Harbor client")
}

fn now() -> SystemTime {
    SystemTime::now()
}

#[tokio::test]
async fn status_of_a_healthy_harbor() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 3, 50 * MIB);
    fake.add_project("team-b", true, 1, 0);
    let client = admin(&fake);
    let report = registry::probe(&client, &["team-a", "team-b", "team-c"]).await;
    assert_eq!(report.health, Health::Healthy, "{report:?}");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.space_count, Some(3), "library, team-a, team-b");
    assert_eq!(report.storage_used_bytes, Some(50 * MIB as u64));
    let a = report.space("team-a").unwrap();
    assert_eq!(
        (a.exists, a.repo_count, a.storage_used_bytes),
        (Some(true), Some(3), Some(50 * MIB as u64))
    );
    assert_eq!(report.space("team-b").unwrap().repo_count, Some(1));
    assert_eq!(report.space("team-c").unwrap().exists, Some(false));

    let status = registry::registry_status(&report, None, now());
    assert_eq!(status.health, Health::Healthy);
    assert_eq!(status.storage_used.as_deref(), Some("50.0 MiB"));
    assert_eq!(status.conditions[0].status, "True");
    let space = registry::space_status(report.space("team-a"), Some(4), None, now());
    assert_eq!(space.exists_on_registry, Some(true));
    assert_eq!(space.bound_namespaces, Some(4));

    // The summary was asked by project name, flagged as a name.
    let summary = fake.calls("GET", "/projects/team-a/summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].is_resource_name.as_deref(), Some("true"));
    assert!(
        fake.calls("GET", "/health")[0].user.is_none(),
        "health needs no auth"
    );
}

#[tokio::test]
async fn unhealthy_component_makes_the_registry_unhealthy() {
    let fake = FakeHarbor::start().await;
    fake.set_unhealthy(Some("redis"));
    let report = registry::probe(&admin(&fake), &["library"]).await;
    assert_eq!(report.health, Health::Unhealthy);
    assert!(report.message.contains("redis"), "{}", report.message);
    let status = registry::registry_status(&report, None, now());
    assert_eq!(status.health, Health::Unhealthy);
    assert!(status.message.contains("redis"));
    assert_eq!(status.conditions[0].reason, "Unhealthy");

    fake.set_unhealthy(None);
    assert_eq!(
        registry::probe(&admin(&fake), &[]).await.health,
        Health::Healthy
    );
}

#[tokio::test]
async fn unreachable_harbor_is_unhealthy_not_an_error() {
    let fake = FakeHarbor::start().await;
    let client = admin(&fake);
    drop(fake);
    let report = registry::probe(&client, &["team-a"]).await;
    assert_eq!(report.health, Health::Unhealthy);
    assert!(
        report.message.contains("cannot reach"),
        "{}",
        report.message
    );
    assert_eq!(report.space("team-a").unwrap().exists, None);
}

#[tokio::test]
async fn projects_are_listed_across_pages() {
    let fake = FakeHarbor::start().await;
    for i in 0..250 {
        fake.add_project(&format!("p{i:03}"), i % 2 == 0, 1, 0);
    }
    let client = admin(&fake);
    let projects = harbor(&client).projects().await.unwrap();
    assert_eq!(projects.len(), 251);
    let mut names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 251, "no page read twice");
    let calls = fake.calls("GET", "/projects");
    assert_eq!(calls.len(), 3);
    for (i, c) in calls.iter().enumerate() {
        assert!(c.query.contains("page_size=100"), "{}", c.query);
        assert!(c.query.contains(&format!("page={}", i + 1)), "{}", c.query);
    }
    // String-valued metadata is read as such.
    assert!(projects
        .iter()
        .find(|p| p.name == "p000")
        .unwrap()
        .is_public());
    assert!(!projects
        .iter()
        .find(|p| p.name == "p001")
        .unwrap()
        .is_public());

    // Small pages: the same set.
    fake.clear_requests();
    let small = client_with(&fake, Some(ADMIN), 7);
    assert_eq!(harbor(&small).projects().await.unwrap().len(), 251);
    assert_eq!(fake.calls("GET", "/projects").len(), 36);
}

#[tokio::test]
async fn missing_project_is_created_and_409_is_not_an_error() {
    let fake = FakeHarbor::start().await;
    let client = admin(&fake);
    let h = harbor(&client);
    let change = registry::ensure_project(h, "team-new", Visibility::Private)
        .await
        .unwrap();
    assert_eq!(change, ProjectChange::Created);
    assert_eq!(fake.project("team-new").unwrap().public, "false");
    let post = &fake.calls("POST", "/projects")[0];
    let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["project_name"], "team-new");
    assert_eq!(
        body["metadata"]["public"], "false",
        "a string, as Harbor wants"
    );

    assert_eq!(
        registry::ensure_project(h, "team-new", Visibility::Private)
            .await
            .unwrap(),
        ProjectChange::Unchanged
    );
    assert_eq!(fake.calls("POST", "/projects").len(), 1);
    // A duplicate create answers 409, which the client reports as "already there".
    assert!(!h.create_project("team-new", false).await.unwrap());
    assert!(matches!(
        h.create_project("Bad/Name", false).await,
        Err(RegistryError::Settings(_))
    ));
}

#[tokio::test]
async fn public_flag_follows_visibility_both_ways() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    assert_eq!(
        registry::ensure_project(h, "team-a", Visibility::Public)
            .await
            .unwrap(),
        ProjectChange::VisibilityUpdated
    );
    assert_eq!(fake.project("team-a").unwrap().public, "true");
    let put = &fake.calls("PUT", "/projects/team-a")[0];
    assert_eq!(put.is_resource_name.as_deref(), Some("true"));
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["metadata"]["public"], "true");

    assert_eq!(
        registry::ensure_project(h, "team-a", Visibility::Private)
            .await
            .unwrap(),
        ProjectChange::VisibilityUpdated
    );
    assert_eq!(fake.project("team-a").unwrap().public, "false");
    assert_eq!(
        registry::ensure_project(h, "team-a", Visibility::Private)
            .await
            .unwrap(),
        ProjectChange::Unchanged
    );
}

#[tokio::test]
async fn one_pull_only_robot_per_space_and_workspace() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    fake.add_project("team-b", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let a1 = robots::ensure_robot(h, "team-a", "ws-a", None, now())
        .await
        .unwrap();
    let a2 = robots::ensure_robot(h, "team-a", "ws-b", None, now())
        .await
        .unwrap();
    let b1 = robots::ensure_robot(h, "team-b", "ws-a", None, now())
        .await
        .unwrap();
    assert_eq!(a1.username, "robot$team-a+pullgate-ws-a");
    assert_eq!(a2.username, "robot$team-a+pullgate-ws-b");
    assert_eq!(b1.username, "robot$team-b+pullgate-ws-a");
    assert_eq!(a1.expires_at, -1);
    for r in [&a1, &a2, &b1] {
        assert!(fake.robot_login_ok(&r.username, &r.secret), "{r:?} logs in");
    }
    let robots = fake.robots();
    assert_eq!(robots.len(), 3);
    let perms = &robots[0].permissions;
    assert_eq!(perms[0]["kind"], "project");
    assert_eq!(perms[0]["namespace"], "team-a");
    assert_eq!(
        perms[0]["access"],
        serde_json::json!([{"resource": "repository", "action": "pull"}]),
        "pull only"
    );
    let post: serde_json::Value =
        serde_json::from_str(&fake.calls("POST", "/robots")[0].body).unwrap();
    assert_eq!(post["name"], "pullgate-ws-a");
    assert_eq!(post["duration"], -1);
    assert_eq!(post["level"], "project");

    // What the namespace's pull Secret would carry is exactly these credentials.
    let entry = a1.docker_auth_entry();
    assert_eq!(entry["username"], "robot$team-a+pullgate-ws-a");
    assert_eq!(entry["password"], a1.secret.as_str());

    // With the stored credentials nothing is written again.
    fake.clear_requests();
    let again = robots::ensure_robot(h, "team-a", "ws-a", Some(&a1), now())
        .await
        .unwrap();
    assert_eq!(again, a1);
    assert!(fake.calls("POST", "/robots").is_empty());
    assert!(fake.calls("PATCH", "/robots").is_empty());
}

#[tokio::test]
async fn robot_is_deleted_when_the_binding_goes() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let a = robots::ensure_robot(h, "team-a", "ws-a", None, now())
        .await
        .unwrap();
    let b = robots::ensure_robot(h, "team-a", "ws-b", None, now())
        .await
        .unwrap();
    let c = robots::ensure_robot(h, "team-a", "ws-c", None, now())
        .await
        .unwrap();
    assert!(robots::delete_robot(h, "team-a", "ws-b").await.unwrap());
    assert!(
        !fake.robot_login_ok(&b.username, &b.secret),
        "copied credentials stop working"
    );
    assert!(!robots::delete_robot(h, "team-a", "ws-b").await.unwrap());
    assert!(!robots::delete_robot(h, "no-such-project", "ws-b")
        .await
        .unwrap());

    // Bindings dropped while pullgate was away are pruned.
    let pruned = robots::prune_robots(h, "team-a", &["ws-a"]).await.unwrap();
    assert_eq!(pruned, vec![c.username.clone()]);
    assert!(fake.robot_login_ok(&a.username, &a.secret));
    assert_eq!(fake.robots().len(), 1);
}

#[tokio::test]
async fn lost_secret_is_refreshed() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let first = robots::ensure_robot(h, "team-a", "ws-a", None, now())
        .await
        .unwrap();
    fake.clear_requests();
    // The stored Secret was deleted: Harbor will not show the secret again, so a new
    // one is set on the same robot.
    let second = robots::ensure_robot(h, "team-a", "ws-a", None, now())
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.username, first.username);
    assert_ne!(second.secret, first.secret);
    assert_eq!(
        fake.calls("PATCH", &format!("/robots/{}", first.id)).len(),
        1
    );
    assert!(fake.calls("POST", "/robots").is_empty());
    assert!(!fake.robot_login_ok(&first.username, &first.secret));
    assert!(fake.robot_login_ok(&second.username, &second.secret));
    assert_eq!(fake.robots().len(), 1);
}

#[tokio::test]
async fn robot_near_expiry_is_replaced() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let project_id = fake.project("team-a").unwrap().id;
    fake.state.lock().unwrap().robots.push(FakeRobot {
        id: 99,
        project_id,
        name: "robot$team-a+pullgate-ws-a".into(),
        secret: "OldSecret1".into(),
        disable: false,
        expires_at: 2_000_000,
        permissions: serde_json::json!([]),
    });
    let client = admin(&fake);
    let stored = pullgate::registry::RobotCredentials {
        id: 99,
        username: "robot$team-a+pullgate-ws-a".into(),
        secret: "OldSecret1".into(),
        expires_at: 2_000_000,
    };
    let soon = UNIX_EPOCH + Duration::from_secs(2_000_000 - 3600);
    let fresh = robots::ensure_robot(harbor(&client), "team-a", "ws-a", Some(&stored), soon)
        .await
        .unwrap();
    assert_ne!(fresh.id, 99);
    assert_eq!(fresh.expires_at, -1);
    assert_eq!(fake.calls("DELETE", "/robots/99").len(), 1);
    assert!(fake.robot_login_ok(&fresh.username, &fresh.secret));
}

#[tokio::test]
async fn non_admin_credentials_give_a_clear_error() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 2, 10);
    let dev = client_with(&fake, Some(DEVELOPER), 100);
    let err = registry::ensure_project(harbor(&dev), "team-x", Visibility::Private)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotAdmin { .. }), "{err:?}");
    assert!(err.to_string().contains("system admin"), "{err}");
    assert!(fake.calls("POST", "/projects").is_empty());
    // The fake enforces it too: a direct write is refused with 403.
    let direct = harbor(&dev)
        .create_project("team-x", false)
        .await
        .unwrap_err();
    assert_eq!(direct.status(), Some(403));
    assert!(direct.to_string().contains("admin"), "{direct}");
    let report = registry::probe(&dev, &["team-a"]).await;
    assert_eq!(report.health, Health::Healthy);
    // A private project is invisible to a non-admin: unknown, not "missing".
    assert_eq!(report.space("team-a").unwrap().exists, None);
    assert!(report.problems.iter().any(|p| p.contains("system admin")));
    let status = registry::registry_status(&report, None, now());
    assert_eq!(status.conditions[0].status, "False");

    let wrong = client_with(&fake, Some(("admin", "wrong")), 100);
    let err = harbor(&wrong).statistics().await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("credentialsSecretRef"), "{err}");
    let none = client_with(&fake, None, 100);
    let err = registry::ensure_project(harbor(&none), "team-x", Visibility::Private)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("credentialsSecretRef"), "{err}");
}
