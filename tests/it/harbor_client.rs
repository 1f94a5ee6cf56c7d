//! The Harbor client, probe and management logic against a fake Harbor that follows the
//! v2.0 swagger (see `support/fake_harbor.rs`).

use crate::support::fake_harbor;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_harbor::{FakeHarbor, FakeRobot, ADMIN, DEVELOPER, MANAGER_ACCESS};
use pullgate::api::{Health, RegistryType, Visibility};
use std::collections::BTreeSet;

use pullgate::cluster::leader::robots::{RobotIdentity, RobotKey, RobotState};
use pullgate::cluster::leader::rotation;
use pullgate::index::testing::mk_registry;
use pullgate::registry::{
    self, ClientOptions, CredentialKind, Credentials, HarborClient, ProjectChange, RegistryClient,
    RegistryError,
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

fn identity(cluster: &str) -> RobotIdentity {
    RobotIdentity {
        cluster: cluster.into(),
        lifetime: Duration::from_secs(90 * 24 * 3600),
        grace: Duration::from_secs(3600),
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One pass of `keep_space` for `wanted` workspaces with what is stored for them.
async fn pass(
    h: &HarborClient,
    id: &RobotIdentity,
    carried: &BTreeSet<String>,
    now: i64,
    space: &str,
    wanted: &[(&str, Option<RobotState>)],
) -> rotation::Kept {
    let wanted: Vec<(String, Option<RobotState>)> = wanted
        .iter()
        .map(|(w, s)| (w.to_string(), s.clone()))
        .collect();
    let ctx = rotation::Ctx {
        harbor: h,
        registry: "h",
        identity: id,
        carried,
        now,
    };
    rotation::keep_space(ctx, space, &wanted).await
}

fn state_of(kept: &rotation::Kept, ws: &str) -> RobotState {
    kept.robots
        .iter()
        .find(|(k, _)| k.workspace == ws)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("no state for {ws}: {:?}", kept.problems))
}

#[tokio::test]
async fn one_pull_only_robot_per_binding_named_and_marked_for_the_cluster() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let id = identity("prod-eu");
    let none = BTreeSet::new();
    let kept = pass(
        h,
        &id,
        &none,
        unix(now()),
        "team-a",
        &[("ws-a", None), ("ws-b", None)],
    )
    .await;
    assert!(kept.problems.is_empty(), "{:?}", kept.problems);
    let a = state_of(&kept, "ws-a");
    assert!(
        a.current
            .username
            .starts_with("robot$team-a+pullgate-prod-eu-ws-a-"),
        "{}",
        a.current.username
    );
    assert!(a.current.username.ends_with("-1"));
    assert!(fake.robot_login_ok(&a.current.username, &a.current.secret));
    let robot = fake
        .robots()
        .into_iter()
        .find(|r| r.name == a.current.username)
        .unwrap();
    assert_eq!(robot.description, id.description("ws-a"));
    assert_eq!(
        robot.permissions[0]["access"],
        serde_json::json!([{"resource": "repository", "action": "pull"}]),
        "pull only"
    );
    let post: serde_json::Value =
        serde_json::from_str(&fake.calls("POST", "/robots")[0].body).unwrap();
    assert_eq!(post["duration"], 90, "the lifetime in days");
    assert_eq!(post["level"], "project");

    // With the stored state nothing is written again, and no secret is ever refreshed.
    fake.clear_requests();
    let again = pass(
        h,
        &id,
        &none,
        unix(now()),
        "team-a",
        &[
            ("ws-a", Some(a.clone())),
            ("ws-b", Some(state_of(&kept, "ws-b"))),
        ],
    )
    .await;
    assert_eq!(state_of(&again, "ws-a"), a);
    assert!(fake.calls("POST", "/robots").is_empty());
    assert!(fake.calls("PATCH", "/robots").is_empty());
    assert!(fake.calls("DELETE", "/robots").is_empty());
}

/// Another cluster's robots, robots of unknown origin and robots from before cluster
/// names are never touched; this cluster's robots that nothing uses are.
#[tokio::test]
async fn only_this_clusters_unused_robots_are_pruned() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let (a, b) = (identity("cluster-a"), identity("cluster-b"));
    let none = BTreeSet::new();
    let t = unix(now());
    let theirs = state_of(
        &pass(h, &b, &none, t, "team-a", &[("ws-a", None)]).await,
        "ws-a",
    );
    let project_id = fake.project("team-a").unwrap().id;
    let legacy = FakeRobot {
        id: 900,
        project_id,
        name: "robot$team-a+pullgate-ws-a".into(),
        secret: "Legacy123".into(),
        disable: false,
        expires_at: -1,
        permissions: serde_json::json!([]),
        description: "pull-only robot managed by pullgate".into(),
        creator: String::new(),
    };
    fake.state.lock().unwrap().robots.push(legacy.clone());
    let ours = state_of(
        &pass(h, &a, &none, t, "team-a", &[("ws-a", None), ("ws-x", None)]).await,
        "ws-x",
    );
    // ws-x unbound while pullgate was away: its robot goes, nothing else does.
    let kept = pass(h, &a, &none, t, "team-a", &[]).await;
    assert!(kept.problems.is_empty(), "{:?}", kept.problems);
    let left: Vec<String> = fake.robots().into_iter().map(|r| r.name).collect();
    assert!(!left.contains(&ours.current.username), "{left:?}");
    assert!(left.contains(&theirs.current.username), "{left:?}");
    assert!(left.contains(&legacy.name), "{left:?}");
    assert!(fake.robot_login_ok(&theirs.current.username, &theirs.current.secret));
    for (by, robot) in fake.deleted() {
        assert_eq!(by, "admin");
        assert!(a.owned_workspace(&robot.description).is_some(), "{robot:?}");
    }
}

/// A robot whose login a pull Secret still carries is not pruned, even when no state
/// names it.
#[tokio::test]
async fn a_robot_in_a_pull_secret_is_never_pruned() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let a = identity("cluster-a");
    let t = unix(now());
    let made = state_of(
        &pass(h, &a, &BTreeSet::new(), t, "team-a", &[("ws-a", None)]).await,
        "ws-a",
    );
    let carried: BTreeSet<String> = [made.current.username.clone()].into();
    pass(h, &a, &carried, t, "team-a", &[]).await;
    assert!(fake.robot_login_ok(&made.current.username, &made.current.secret));
    pass(h, &a, &BTreeSet::new(), t, "team-a", &[]).await;
    assert!(!fake.robot_login_ok(&made.current.username, &made.current.secret));
}

/// A 409 on create (a robot of that name appeared meanwhile) is not taken over: the next
/// name is used. A 404 on delete (the robot vanished between list and delete) is gone.
#[tokio::test]
async fn conflicts_and_vanished_robots_are_handled_without_touching_others() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let a = identity("cluster-a");
    let none = BTreeSet::new();
    let t = unix(now());
    fake.state.lock().unwrap().conflicts_on_create = 1;
    let kept = pass(h, &a, &none, t, "team-a", &[("ws-a", None)]).await;
    let st = state_of(&kept, "ws-a");
    assert!(
        st.current.username.ends_with("-2"),
        "{}",
        st.current.username
    );
    assert!(fake.robot_login_ok(&st.current.username, &st.current.secret));
    let foreign = fake
        .robots()
        .into_iter()
        .find(|r| r.creator == "someone-else")
        .expect("the other robot");
    assert!(fake.calls("PATCH", "/robots").is_empty(), "never refreshed");

    // Unbound, and the robot vanishes just before the delete: fine, and nothing else goes.
    fake.state.lock().unwrap().vanish_on_delete = 1;
    rotation::delete_unbound(
        h,
        &RobotKey {
            registry: "h".into(),
            space: "team-a".into(),
            workspace: "ws-a".into(),
        },
        &st,
    )
    .await
    .expect("a 404 is gone");
    assert!(!fake.robot_login_ok(&st.current.username, &st.current.secret));
    assert!(
        fake.robots().iter().any(|r| r.id == foreign.id),
        "left alone"
    );
    pass(h, &a, &none, t, "team-a", &[]).await;
    assert!(
        fake.robots().iter().any(|r| r.id == foreign.id),
        "left alone"
    );
}

/// Rotation, step by step: the new robot first, the old one only once no pull Secret
/// carries it and the grace period has passed.
#[tokio::test]
async fn rotation_is_make_before_break() {
    let fake = FakeHarbor::start().await;
    fake.add_project("team-a", false, 0, 0);
    let client = admin(&fake);
    let h = harbor(&client);
    let mut a = identity("cluster-a");
    a.lifetime = Duration::from_secs(300);
    a.grace = Duration::from_secs(60);
    let t0 = unix(now());
    let first = state_of(
        &pass(h, &a, &BTreeSet::new(), t0, "team-a", &[("ws-a", None)]).await,
        "ws-a",
    );
    let old = first.current.clone();
    let mut carried: BTreeSet<String> = [old.username.clone()].into();
    // Not due yet.
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 100,
        "team-a",
        &[("ws-a", Some(first.clone()))],
    )
    .await;
    assert_eq!(state_of(&kept, "ws-a"), first);
    // Due (two thirds of 300s): a new robot, the old one kept.
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 200,
        "team-a",
        &[("ws-a", Some(first.clone()))],
    )
    .await;
    let rotating = state_of(&kept, "ws-a");
    assert_eq!(kept.steps.len(), 1);
    assert_eq!(kept.steps[0].phase, rotation::Phase::Started);
    let rot = rotating.rotation.clone().expect("rotating");
    assert_eq!((rot.old_id, rot.retire_after), (old.id, None));
    assert!(fake.robot_login_ok(&rotating.current.username, &rotating.current.secret));
    assert!(fake.robot_login_ok(&old.username, &old.secret));
    // A pull Secret still carries the old login: it stays.
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 300,
        "team-a",
        &[("ws-a", Some(rotating.clone()))],
    )
    .await;
    assert_eq!(state_of(&kept, "ws-a"), rotating);
    assert!(fake.robot_login_ok(&old.username, &old.secret));
    // None does: the grace period starts.
    carried = [rotating.current.username.clone()].into();
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 300,
        "team-a",
        &[("ws-a", Some(rotating.clone()))],
    )
    .await;
    let draining = state_of(&kept, "ws-a");
    assert_eq!(
        draining.rotation.as_ref().unwrap().retire_after,
        Some(t0 + 360)
    );
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 359,
        "team-a",
        &[("ws-a", Some(draining.clone()))],
    )
    .await;
    assert_eq!(state_of(&kept, "ws-a"), draining);
    assert!(fake.robot_login_ok(&old.username, &old.secret));
    // Grace over: the old robot goes.
    let kept = pass(
        h,
        &a,
        &carried,
        t0 + 360,
        "team-a",
        &[("ws-a", Some(draining.clone()))],
    )
    .await;
    let done = state_of(&kept, "ws-a");
    assert_eq!(done.rotation, None);
    assert_eq!(kept.steps[0].phase, rotation::Phase::Completed);
    assert!(!fake.robot_login_ok(&old.username, &old.secret));
    assert!(fake.robot_login_ok(&done.current.username, &done.current.secret));
    assert!(
        fake.calls("PATCH", "/robots").is_empty(),
        "never refreshed in place"
    );
}

/// A system robot with project and robot permissions manages projects and robots; the
/// probe says which kind of credential is in use.
#[tokio::test]
async fn a_system_robot_manages_projects_and_robots() {
    let fake = FakeHarbor::start().await;
    let login = fake.add_system_robot("pullgate", "Sys12345x", MANAGER_ACCESS);
    let client = client_with(&fake, Some((&login, "Sys12345x")), 100);
    let h = harbor(&client);
    assert_eq!(
        registry::ensure_project(h, "team-a", Visibility::Private)
            .await
            .unwrap(),
        ProjectChange::Created
    );
    let st = state_of(
        &pass(
            h,
            &identity("c"),
            &BTreeSet::new(),
            unix(now()),
            "team-a",
            &[("ws-a", None)],
        )
        .await,
        "ws-a",
    );
    assert!(fake.robot_login_ok(&st.current.username, &st.current.secret));
    assert!(
        fake.calls("GET", "/users/current").is_empty(),
        "a robot has no user profile"
    );
    let report = registry::probe(&client, &["team-a"]).await;
    assert_eq!(report.credential_kind, Some(CredentialKind::SystemRobot));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.space("team-a").unwrap().exists, Some(true));
    let status = registry::registry_status(&report, None, now());
    assert_eq!(status.credential_kind.as_deref(), Some("SystemRobot"));
    let admin_report = registry::probe(&admin(&fake), &["team-a"]).await;
    assert_eq!(
        admin_report.credential_kind,
        Some(CredentialKind::AdminUser)
    );
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
