//! The Harbor robot lifecycle, all of it: which bindings get a robot
//! ([`robot_managed`]: a Private space of a Harbor registry that has API credentials and
//! no `pullSecretRef`, one pull-only robot per (space, workspace), named
//! `pullgate-<workspace>`), creating it, giving it a new secret when the stored one is
//! lost, replacing it when disabled or near expiry ([`ensure_robot`]), deleting it when
//! its binding goes ([`delete_robot`], [`prune_robots`]), and keeping its secret. Harbor
//! shows a robot's secret only once, so it is kept in a Secret in pullgate's own
//! namespace ([`Store`] writes it as [`robot_secret`], read back by [`parse`]);
//! [`wanted`] says which robots the bindings need; [`RobotSource`] answers the
//! pull-Secret sync from those Secrets. The HTTP calls themselves are the registry
//! client's ([`HarborClient`]); the registry loop decides when to run a pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::Client;

use super::credentials::{Credential, CredentialKey, CredentialSource, Lookup, BASIC_AUTH_TYPE};
use super::sync::{FIELD_MANAGER, MANAGED_BY_VALUE};
use crate::api::{Registry, RegistryType, Visibility, MANAGED_BY_LABEL};
use crate::cluster::replica::state::Watched;
pub use crate::cluster::replica::watch::ROBOT_LABEL;
use crate::index::{Snapshot, SpaceEntry};
use crate::registry::{valid_project_name, HarborClient, RegistryError, Robot, RobotCredentials};

/// Annotations naming what a robot Secret is for.
pub const REGISTRY_ANNOTATION: &str = "pullgate.io/registry";
pub const SPACE_ANNOTATION: &str = "pullgate.io/space";
pub const WORKSPACE_ANNOTATION: &str = "pullgate.io/workspace";
/// Data keys besides `username` and `password` (the robot's secret).
const ID_KEY: &str = "robot-id";
const EXPIRES_KEY: &str = "expires-at";
/// Characters of the readable part of a robot Secret's name (the whole name stays
/// within 63, like a label value, though a Secret name may be longer).
const NAME_PART: usize = 36;

/// Name prefix of the robots pullgate manages (the rest is the workspace).
pub const ROBOT_PREFIX: &str = "pullgate-";

/// A robot whose expiry is closer than this is replaced, so pulls never start failing.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Which robot: a (registry, space, workspace) binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RobotKey {
    pub registry: String,
    pub space: String,
    pub workspace: String,
}

/// Whether pullgate keeps robots for `space` of a registry of type `registry_type`
/// (`has_credentials`: the Registry names API credentials).
pub fn robot_managed(
    registry_type: RegistryType,
    has_credentials: bool,
    space: &SpaceEntry,
) -> bool {
    registry_type == RegistryType::Harbor
        && has_credentials
        && space.visibility == Visibility::Private
        && space.pull_secret_ref.is_none()
        && valid_project_name(&space.space)
}

/// The robot Secrets in pullgate's namespace as this leader writes them. What it wrote is
/// remembered, since it is newer than what the watch may have delivered yet.
pub struct Store {
    client: Client,
    namespace: String,
    written: BTreeMap<RobotKey, RobotCredentials>,
}

impl Store {
    pub fn new(client: Client, namespace: &str) -> Store {
        Store {
            client,
            namespace: namespace.to_string(),
            written: BTreeMap::new(),
        }
    }

    /// Forgets what this leader wrote (it stopped leading; a new term starts from what
    /// the watch delivers).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// What is kept of each robot: `stored` (as the watch saw it), overlaid with what
    /// this leader wrote since.
    pub fn kept(
        &self,
        stored: &BTreeMap<RobotKey, RobotCredentials>,
    ) -> BTreeMap<RobotKey, RobotCredentials> {
        let mut kept = stored.clone();
        kept.extend(self.written.iter().map(|(k, c)| (k.clone(), c.clone())));
        kept
    }

    /// Deletes the Secrets of robots of registries not `listed` (the Registry was
    /// deleted): nothing can be asked of their Harbor any more, so only the Secret goes.
    pub async fn drop_unlisted(
        &mut self,
        stored: &BTreeMap<RobotKey, RobotCredentials>,
        listed: &BTreeSet<String>,
    ) {
        for key in stored.keys().chain(self.written.keys()) {
            if !listed.contains(&key.registry) {
                tracing::warn!(registry = %key.registry, space = %key.space, workspace = %key.workspace,
                    "Registry gone: forgetting its robot credentials (the robot itself is left on Harbor)");
            }
        }
        let orphans: Vec<RobotKey> = stored
            .keys()
            .chain(self.written.keys())
            .filter(|k| !listed.contains(&k.registry))
            .cloned()
            .collect();
        for key in orphans {
            self.delete(&key).await;
        }
    }

    /// Stores a robot's credentials unless the Secret already holds them.
    pub async fn keep(
        &mut self,
        stored: &BTreeMap<RobotKey, RobotCredentials>,
        key: &RobotKey,
        creds: &RobotCredentials,
    ) {
        if stored.get(key) == Some(creds) || self.written.get(key) == Some(creds) {
            return;
        }
        let secret = robot_secret(&self.namespace, key, creds);
        let name = secret_name(key);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(&name, &pp, &Patch::Apply(&secret)).await {
            Ok(_) => {
                tracing::info!(registry = %key.registry, space = %key.space, workspace = %key.workspace,
                    robot = %creds.username, "robot credentials stored");
                self.written.insert(key.clone(), creds.clone());
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "robot credentials could not be stored")
            }
        }
    }

    /// Deletes a robot's Secret.
    pub async fn delete(&mut self, key: &RobotKey) {
        let name = secret_name(key);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(registry = %key.registry, space = %key.space, workspace = %key.workspace,
                    "robot credentials deleted");
                self.written.remove(key);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.written.remove(key);
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "robot Secret could not be deleted")
            }
        }
    }
}

/// The robots the spaces of Registry `name` should have, by space: each bound workspace
/// with the credentials `kept` for it; and the robots `kept` for this registry whose
/// binding went (to delete).
pub fn wanted(
    name: &str,
    registry: &Registry,
    snap: &Snapshot,
    kept: &BTreeMap<RobotKey, RobotCredentials>,
) -> (Wanted, Vec<RobotKey>) {
    let configured = registry.spec.credentials_secret_ref.is_some();
    let mut wanted = Wanted::new();
    let mut bound: BTreeSet<RobotKey> = BTreeSet::new();
    for entry in snap.spaces_of(name) {
        if !robot_managed(registry.spec.registry_type, configured, entry) {
            continue;
        }
        let robots = wanted.entry(entry.space.clone()).or_default();
        for ws in &entry.workspaces {
            let key = RobotKey {
                registry: name.to_string(),
                space: entry.space.clone(),
                workspace: ws.clone(),
            };
            robots.push((ws.clone(), kept.get(&key).cloned()));
            bound.insert(key);
        }
    }
    let unbound = kept
        .keys()
        .filter(|k| k.registry == name && !bound.contains(*k))
        .cloned()
        .collect();
    (wanted, unbound)
}

/// Space → each workspace that gets a robot there, with what is kept for it.
pub type Wanted = BTreeMap<String, Vec<(String, Option<RobotCredentials>)>>;

/// The name of a robot's Secret: readable, a valid object name, and unique per key
/// (a hash of the key makes sanitised spellings that collide distinct).
pub fn secret_name(key: &RobotKey) -> String {
    let raw = format!("{}-{}-{}", key.registry, key.space, key.workspace);
    let mut readable = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            readable.push(c);
        } else if !readable.ends_with('-') {
            readable.push('-');
        }
    }
    let readable: String = readable.trim_matches('-').chars().take(NAME_PART).collect();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}\0{}\0{}", key.registry, key.space, key.workspace).as_bytes(),
    );
    let mut hash = String::new();
    for b in &digest.as_ref()[..5] {
        let _ = write!(hash, "{b:02x}");
    }
    format!("pullgate-robot-{}-{hash}", readable.trim_end_matches('-'))
}

/// The Secret that keeps a robot's credentials in `namespace`.
pub fn robot_secret(namespace: &str, key: &RobotKey, creds: &RobotCredentials) -> Secret {
    let data = [
        ("username", creds.username.clone()),
        ("password", creds.secret.clone()),
        (ID_KEY, creds.id.to_string()),
        (EXPIRES_KEY, creds.expires_at.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(key)),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                    (ROBOT_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
            ),
            annotations: Some(
                [
                    (REGISTRY_ANNOTATION.to_string(), key.registry.clone()),
                    (SPACE_ANNOTATION.to_string(), key.space.clone()),
                    (WORKSPACE_ANNOTATION.to_string(), key.workspace.clone()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some(BASIC_AUTH_TYPE.to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The key and credentials a robot Secret holds; `None` for a Secret that is not one.
pub fn parse(secret: &Secret) -> Option<(RobotKey, RobotCredentials)> {
    let ann = secret.metadata.annotations.as_ref()?;
    let key = RobotKey {
        registry: ann.get(REGISTRY_ANNOTATION)?.clone(),
        space: ann.get(SPACE_ANNOTATION)?.clone(),
        workspace: ann.get(WORKSPACE_ANNOTATION)?.clone(),
    };
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let creds = RobotCredentials {
        id: text(ID_KEY)?.parse().ok()?,
        username: text("username")?,
        secret: text("password")?,
        expires_at: text(EXPIRES_KEY)?.parse().ok()?,
    };
    Some((key, creds))
}

/// Valid Harbor registries that name API credentials: those whose robots pullgate
/// keeps.
pub fn registries(state: &Watched) -> BTreeSet<String> {
    state
        .registries
        .iter()
        .filter(|(_, r)| {
            r.object.as_ref().is_some_and(|o| {
                o.spec.registry_type == RegistryType::Harbor
                    && o.spec.credentials_secret_ref.is_some()
            })
        })
        .map(|(n, _)| n.clone())
        .collect()
}

/// Every robot Secret of a set, by key (a Secret that cannot be read is skipped).
pub fn stored<'a>(
    secrets: impl Iterator<Item = &'a Secret>,
) -> BTreeMap<RobotKey, RobotCredentials> {
    secrets.filter_map(parse).collect()
}

/// Pull credentials from the stored robot Secrets.
pub struct RobotSource<'a> {
    /// Robot credentials by key.
    pub robots: &'a BTreeMap<RobotKey, RobotCredentials>,
    /// Harbor registries that name API credentials (whose robots pullgate keeps).
    pub registries: &'a BTreeSet<String>,
}

impl CredentialSource for RobotSource<'_> {
    fn lookup(&self, key: &CredentialKey<'_>) -> Lookup {
        let managed = robot_managed(
            key.registry.registry_type,
            self.registries.contains(&key.registry.name),
            key.space,
        );
        let (true, Some(workspace)) = (managed, key.workspace) else {
            return Lookup::NotServed;
        };
        let robot_key = RobotKey {
            registry: key.registry.name.clone(),
            space: key.space.space.clone(),
            workspace: workspace.to_string(),
        };
        match self.robots.get(&robot_key) {
            Some(c) => Lookup::Found(Credential {
                username: c.username.clone(),
                password: c.secret.clone(),
            }),
            None => Lookup::Broken(format!(
                "the Harbor robot account of workspace {workspace:?} does not exist yet (the Registry {:?}'s Ready condition says why, if it stays so)",
                key.registry.name
            )),
        }
    }
}

/// The robot name pullgate gives a workspace's robot: `pullgate-<workspace>`.
pub fn robot_name(workspace: &str) -> String {
    format!("{ROBOT_PREFIX}{workspace}")
}

/// The login name Harbor gives that robot: `robot$<project>+pullgate-<workspace>`.
pub fn robot_username(project: &str, workspace: &str) -> String {
    format!("robot${project}+{}", robot_name(workspace))
}

/// What [`keep_space`] did to the robots of one space.
#[derive(Debug, Default)]
pub struct Kept {
    /// Working credentials of every wanted robot that could be made to work.
    pub robots: Vec<(RobotKey, RobotCredentials)>,
    /// What could not be done, for the space's status.
    pub problems: Vec<String>,
    /// How many Harbor calls about robots failed.
    pub failed_calls: usize,
}

/// Brings the robots of `space`'s project on `registry` in line with its bindings: one
/// working robot per workspace in `wanted` (with what is stored for it), and no other
/// pullgate robot in the project (bindings removed while pullgate was not running).
pub async fn keep_space(
    h: &HarborClient,
    registry: &str,
    space: &str,
    wanted: &[(String, Option<RobotCredentials>)],
) -> Kept {
    let mut out = Kept::default();
    for (ws, known) in wanted {
        match ensure_robot(h, space, ws, known.as_ref(), SystemTime::now()).await {
            Ok(creds) => out.robots.push((
                RobotKey {
                    registry: registry.to_string(),
                    space: space.to_string(),
                    workspace: ws.clone(),
                },
                creds,
            )),
            Err(e) => {
                out.failed_calls += 1;
                out.problems
                    .push(format!("robot account of workspace {ws:?}: {e}"));
            }
        }
    }
    let keep: Vec<&str> = wanted.iter().map(|(w, _)| w.as_str()).collect();
    match prune_robots(h, space, &keep).await {
        Ok(gone) if !gone.is_empty() => {
            tracing::info!(%registry, robots = ?gone, "unbound robots deleted")
        }
        Ok(_) => {}
        Err(e) => {
            out.failed_calls += 1;
            out.problems
                .push(format!("robot accounts of project {space:?}: {e}"));
        }
    }
    out
}

/// Deletes the robots of bindings that went; returns those deleted (their Secrets can
/// go) and how many deletions failed (retried on the next pass).
pub async fn delete_unbound(
    h: &HarborClient,
    registry: &str,
    unbound: &[RobotKey],
) -> (Vec<RobotKey>, usize) {
    let (mut deleted, mut failed) = (Vec::new(), 0);
    for key in unbound {
        match delete_robot(h, &key.space, &key.workspace).await {
            Ok(_) => deleted.push(key.clone()),
            Err(e) => {
                failed += 1;
                tracing::warn!(%registry, space = %key.space,
                    workspace = %key.workspace, error = %e, "robot of a removed binding could not be deleted; retrying next pass");
            }
        }
    }
    (deleted, failed)
}

/// Makes sure the robot of (`project`, `workspace`) exists and returns working
/// credentials for it. `stored` is what the caller kept from a previous call: it is
/// returned as it is while the robot it names still exists and is not near expiry. A
/// robot that exists without a stored secret gets a new secret (Harbor never shows the
/// old one again); one that is disabled or near expiry is replaced.
pub async fn ensure_robot(
    client: &HarborClient,
    project: &str,
    workspace: &str,
    stored: Option<&RobotCredentials>,
    now: SystemTime,
) -> Result<RobotCredentials, RegistryError> {
    client.require_admin().await?;
    let project_id = project_id(client, project).await?;
    let username = robot_username(project, workspace);
    let mut found = find_robot(client, project_id, &username).await?;
    if let Some(robot) = &found {
        if robot.disable || expires_within(robot.expires_at, now, EXPIRY_MARGIN) {
            client.delete_robot(robot.id).await?;
            found = None;
        }
    }
    let Some(robot) = found else {
        return match client.create_robot(project, &robot_name(workspace)).await {
            Err(RegistryError::Conflict { .. }) => {
                // Made concurrently (or the list was stale): take it over with a new secret.
                match find_robot(client, project_id, &username).await? {
                    Some(robot) => client.refresh_robot_secret(&robot).await,
                    None => Err(RegistryError::InvalidResponse {
                        url: "/robots".into(),
                        reason: format!("robot {username:?} reported as existing but not listed"),
                    }),
                }
            }
            other => other,
        };
    };
    match stored {
        Some(s) if s.id == robot.id && s.username == robot.name && !s.secret.is_empty() => {
            Ok(RobotCredentials {
                expires_at: robot.expires_at,
                ..s.clone()
            })
        }
        _ => client.refresh_robot_secret(&robot).await,
    }
}

/// Deletes the robot of (`project`, `workspace`) when its binding goes, so credentials
/// copied out of a namespace stop working. `Ok(false)` when there was none.
pub async fn delete_robot(
    client: &HarborClient,
    project: &str,
    workspace: &str,
) -> Result<bool, RegistryError> {
    client.require_admin().await?;
    let Some(project_row) = client.project(project).await? else {
        return Ok(false);
    };
    let username = robot_username(project, workspace);
    match find_robot(client, project_row.project_id, &username).await? {
        Some(robot) => client.delete_robot(robot.id).await,
        None => Ok(false),
    }
}

/// Deletes every pullgate robot of `project` whose workspace is not in `keep` (bindings
/// removed while pullgate was not running). Returns the deleted login names.
pub async fn prune_robots(
    client: &HarborClient,
    project: &str,
    keep: &[&str],
) -> Result<Vec<String>, RegistryError> {
    client.require_admin().await?;
    let Some(project_row) = client.project(project).await? else {
        return Ok(Vec::new());
    };
    let prefix = format!("robot${project}+{ROBOT_PREFIX}");
    let mut deleted = Vec::new();
    for robot in client.robots(project_row.project_id).await? {
        let Some(workspace) = robot.name.strip_prefix(&prefix) else {
            continue;
        };
        if !keep.contains(&workspace) && client.delete_robot(robot.id).await? {
            deleted.push(robot.name.clone());
        }
    }
    Ok(deleted)
}

async fn project_id(client: &HarborClient, project: &str) -> Result<i64, RegistryError> {
    client
        .project(project)
        .await?
        .map(|p| p.project_id)
        .ok_or_else(|| RegistryError::NotFound {
            url: format!("/projects/{project}"),
            message: format!(
                "Harbor project {project:?} does not exist; it is created for a RegistrySpace that names it"
            ),
        })
}

async fn find_robot(
    client: &HarborClient,
    project_id: i64,
    username: &str,
) -> Result<Option<Robot>, RegistryError> {
    Ok(client
        .robots(project_id)
        .await?
        .into_iter()
        .find(|r| r.name == username))
}

/// Whether an `expires_at` (Unix seconds, -1 never) falls within `margin` of `now`.
pub(crate) fn expires_within(expires_at: i64, now: SystemTime, margin: Duration) -> bool {
    if expires_at < 0 {
        return false;
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u64::try_from(expires_at).unwrap_or(0) <= now.saturating_add(margin.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(r: &str, s: &str, w: &str) -> RobotKey {
        RobotKey {
            registry: r.into(),
            space: s.into(),
            workspace: w.into(),
        }
    }

    #[test]
    fn secret_names_are_valid_and_distinct() {
        let a = secret_name(&key("harbor-prod", "team-a", "ws-a"));
        assert!(
            a.starts_with("pullgate-robot-harbor-prod-team-a-ws-a-"),
            "{a}"
        );
        let b = secret_name(&key("harbor-prod", "team.a", "ws-a"));
        assert_ne!(a, b);
        let long = secret_name(&key(&"r".repeat(200), "s", &"W_X".repeat(100)));
        assert!(long.len() <= 63, "{long}");
        assert!(long
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn robot_secrets_read_back() {
        let k = key("h", "team-a", "ws-a");
        let creds = RobotCredentials {
            id: 7,
            username: "robot$team-a+pullgate-ws-a".into(),
            secret: "S3cretXyz".into(),
            expires_at: -1,
        };
        let s = robot_secret("pullgate-system", &k, &creds);
        assert_eq!(parse(&s), Some((k, creds)));
        assert_eq!(parse(&Secret::default()), None);
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn robot_names_and_docker_auth_entry() {
        assert_eq!(robot_name("ws-a"), "pullgate-ws-a");
        assert_eq!(
            robot_username("team-a", "ws-a"),
            "robot$team-a+pullgate-ws-a"
        );
        let r = RobotCredentials {
            id: 7,
            username: robot_username("team-a", "ws-a"),
            secret: "Abc12345".into(),
            expires_at: -1,
        };
        let entry = r.docker_auth_entry();
        assert_eq!(entry["username"], "robot$team-a+pullgate-ws-a");
        assert_eq!(entry["password"], "Abc12345");
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str().unwrap())
            .unwrap();
        assert_eq!(auth, b"robot$team-a+pullgate-ws-a:Abc12345");
    }

    #[test]
    fn expiry_margin() {
        let margin = Duration::from_secs(100);
        assert!(!expires_within(-1, at(1_000), margin));
        assert!(expires_within(1_050, at(1_000), margin));
        assert!(expires_within(900, at(1_000), margin));
        assert!(!expires_within(1_200, at(1_000), margin));
    }
}
