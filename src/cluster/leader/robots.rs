//! The Harbor robots of this cluster as pullgate keeps them (README, "Several clusters, one Harbor"): which
//! bindings get a robot ([`robot_managed`]: a Private space of a Harbor registry that has
//! API credentials and no `pullSecretRef`, one pull-only robot per (space, workspace)),
//! what each robot is called and how it is marked as this cluster's ([`RobotIdentity`]:
//! the cluster name is in the robot's name and in its description), and what is kept
//! of it ([`RobotState`]: the credentials in use, when the robot was made, and a
//! rotation in progress). Harbor shows a robot's secret only once, so the state is kept
//! in a Secret in pullgate's own namespace ([`Store`] writes it as [`robot_secret`],
//! read back by [`parse`]); the rotation's progress is in that Secret's annotations, so a
//! new leader finishes what the last one started. [`wanted`] says which robots the
//! bindings need; [`RobotSource`] answers the pull-Secret sync from those Secrets. What
//! is done on Harbor (create, rotate, prune, delete) is `rotation`'s business.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::Client;

use super::credentials::{Credential, CredentialKey, CredentialSource, Lookup, BASIC_AUTH_TYPE};
use super::sync::FIELD_MANAGER;
use crate::api::{Registry, RegistryType, Visibility, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::cluster::replica::state::{PullSecret, Watched};
pub use crate::cluster::replica::watch::ROBOT_LABEL;
use crate::index::{Snapshot, SpaceEntry};
use crate::registry::{valid_project_name, RobotCredentials};

/// Annotations naming what a robot Secret is for.
pub const REGISTRY_ANNOTATION: &str = "pullgate.io/registry";
pub const SPACE_ANNOTATION: &str = "pullgate.io/space";
pub const WORKSPACE_ANNOTATION: &str = "pullgate.io/workspace";
/// The cluster name the robot was made for (for people; ownership is the description).
pub const CLUSTER_ANNOTATION: &str = "pullgate.io/cluster";
/// When the robot in use was made (Unix seconds). Absent on Secrets written before
/// robots had a lifetime: such a robot is replaced at once.
pub const CREATED_ANNOTATION: &str = "pullgate.io/robot-created-at";
/// A rotation in progress: the robot being replaced (its Harbor id and login name).
pub const OLD_ID_ANNOTATION: &str = "pullgate.io/rotation-old-robot-id";
pub const OLD_NAME_ANNOTATION: &str = "pullgate.io/rotation-old-robot";
/// A rotation in progress whose new credential every pull Secret carries: the old robot
/// is deleted from this time on (Unix seconds).
pub const RETIRE_ANNOTATION: &str = "pullgate.io/rotation-retire-after";
/// Data keys besides `username` and `password` (the robot's secret).
const ID_KEY: &str = "robot-id";
const EXPIRES_KEY: &str = "expires-at";
/// Characters of the readable part of a robot Secret's name (the whole name stays
/// within 63, like a label value, though a Secret name may be longer).
const NAME_PART: usize = 36;

/// Name prefix of the robots pullgate makes; also the whole prefix of the robots made
/// before robots carried a cluster name (`pullgate-<workspace>`).
pub const ROBOT_PREFIX: &str = "pullgate-";
/// Start of the description that marks a robot as pullgate's.
pub const MARKER: &str = "managed by pullgate";

/// Longest robot name pullgate gives up to generation 9,999,999 (Harbor keeps
/// `robot$<project>+<name>` in a column of 255 characters; 63 leaves room for long
/// project names and reads well in Harbor's UI).
#[cfg(test)]
const MAX_ROBOT_NAME: usize = 63;
/// Characters of the cluster name and of the workspace name in a robot name; a hash of
/// both keeps names distinct when these are cut or spelt alike.
const CLUSTER_PART: usize = 16;
const WORKSPACE_PART: usize = 20;

/// Default robot lifetime (`--robot-lifetime`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Default wait between every pull Secret carrying a new credential and the old robot's
/// deletion (`--robot-rotation-grace`): a kubelet reads a pull Secret at each pull, but
/// an image pull that started with the old credential, or a node's cached copy, must
/// finish first.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Which robot: a (registry, space, workspace) binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RobotKey {
    pub registry: String,
    pub space: String,
    pub workspace: String,
}

/// A robot being replaced: it stays until every pull Secret carries the new one and
/// the grace period has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub old_id: i64,
    pub old_username: String,
    /// Set once no pull Secret carries the old credential: when it may be deleted.
    pub retire_after: Option<i64>,
}

/// What is kept of one binding's robot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotState {
    /// The robot whose credential the pull Secrets carry.
    pub current: RobotCredentials,
    /// When it was made (Unix seconds); `None` for a robot from before lifetimes.
    pub created_at: Option<i64>,
    pub rotation: Option<Rotation>,
}

/// Who this cluster is toward a shared Harbor, and how long its robots live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotIdentity {
    /// `--cluster-name` (default: the UID of `kube-system`).
    pub cluster: String,
    pub lifetime: Duration,
    pub grace: Duration,
}

impl RobotIdentity {
    /// The description that marks a robot of `workspace` as this cluster's.
    pub fn description(&self, workspace: &str) -> String {
        format!(
            "{MARKER}; cluster={}; workspace={workspace}; pull-only",
            self.cluster
        )
    }

    /// The workspace of a robot whose description carries this cluster's marker.
    pub fn owned_workspace<'d>(&self, description: &'d str) -> Option<&'d str> {
        let (cluster, workspace) = parse_marker(description)?;
        (cluster == self.cluster).then_some(workspace)
    }

    /// The common start of the names of `workspace`'s robots:
    /// `pullgate-<cluster>-<workspace>-<hash>-` (cut and sanitised parts, and a hash of
    /// the whole names so that cut spellings stay distinct).
    pub fn name_stem(&self, workspace: &str) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}\0{workspace}", self.cluster).as_bytes(),
        );
        let mut hash = String::new();
        for b in &digest.as_ref()[..4] {
            let _ = write!(hash, "{b:02x}");
        }
        format!(
            "{ROBOT_PREFIX}{}-{}-{hash}-",
            sanitise(&self.cluster, CLUSTER_PART),
            sanitise(workspace, WORKSPACE_PART)
        )
    }

    /// The name of generation `generation` of `workspace`'s robot (a rotation makes the
    /// next generation, so old and new exist side by side).
    pub fn robot_name(&self, workspace: &str, generation: u64) -> String {
        format!("{}{generation}", self.name_stem(workspace))
    }

    /// The generation a robot's login name carries, if it is one of `workspace`'s.
    pub fn generation(&self, project: &str, workspace: &str, username: &str) -> Option<u64> {
        let stem = format!("robot${project}+{}", self.name_stem(workspace));
        username.strip_prefix(&stem)?.parse().ok()
    }

    /// Harbor's `duration` (whole days, at least one) for the lifetime. Harbor's own
    /// expiry is the backstop; pullgate replaces robots well before it.
    pub fn duration_days(&self) -> i64 {
        let day = 24 * 3600;
        i64::try_from(self.lifetime.as_secs().div_ceil(day))
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// When a robot made at `created_at` is replaced: after two thirds of its lifetime,
    /// which leaves a third (30 days of the default 90) for the rotation to finish.
    pub fn rotate_at(&self, created_at: i64) -> i64 {
        created_at.saturating_add(secs(self.lifetime) * 2 / 3)
    }

    /// When a robot stops working: the earlier of Harbor's expiry and its lifetime.
    pub fn expires_at(&self, state: &RobotState) -> Option<i64> {
        let own = state
            .created_at
            .map(|c| c.saturating_add(secs(self.lifetime)));
        let harbor = (state.current.expires_at >= 0).then_some(state.current.expires_at);
        match (own, harbor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// (cluster, workspace) of a description carrying pullgate's marker.
pub fn parse_marker(description: &str) -> Option<(&str, &str)> {
    let rest = description.strip_prefix(MARKER)?;
    let (mut cluster, mut workspace) = (None, None);
    for field in rest.split(';').map(str::trim) {
        if let Some(c) = field.strip_prefix("cluster=") {
            cluster = Some(c);
        } else if let Some(w) = field.strip_prefix("workspace=") {
            workspace = Some(w);
        }
    }
    Some((cluster?, workspace?))
}

/// Lower-case letters and digits of `s`, other runs turned into one `-`, cut to `max`,
/// never empty: a part of a name Harbor accepts (`[a-z0-9]+(?:[._-][a-z0-9]+)*`).
fn sanitise(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let cut: String = out.chars().take(max).collect();
    let cut = cut.trim_matches('-').to_string();
    if cut.is_empty() {
        "x".into()
    } else {
        cut
    }
}

/// The name a robot had before robots carried a cluster name: `pullgate-<workspace>`,
/// login `robot$<project>+pullgate-<workspace>`.
pub fn legacy_username(project: &str, workspace: &str) -> String {
    format!("robot${project}+{ROBOT_PREFIX}{workspace}")
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
    cluster: String,
    written: BTreeMap<RobotKey, RobotState>,
}

impl Store {
    pub fn new(client: Client, namespace: &str) -> Store {
        Store {
            client,
            namespace: namespace.to_string(),
            cluster: String::new(),
            written: BTreeMap::new(),
        }
    }

    /// The cluster name written into new Secrets.
    pub fn set_cluster(&mut self, cluster: &str) {
        self.cluster = cluster.to_string();
    }

    /// Forgets what this leader wrote (it stopped leading; a new term starts from what
    /// the watch delivers).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// What is kept of each robot: `stored` (as the watch saw it), overlaid with what
    /// this leader wrote since.
    pub fn kept(&self, stored: &BTreeMap<RobotKey, RobotState>) -> BTreeMap<RobotKey, RobotState> {
        let mut kept = stored.clone();
        kept.extend(self.written.iter().map(|(k, c)| (k.clone(), c.clone())));
        kept
    }

    /// Deletes the Secrets of robots of registries not `listed` (the Registry was
    /// deleted): nothing can be asked of their Harbor any more, so only the Secret goes.
    pub async fn drop_unlisted(
        &mut self,
        stored: &BTreeMap<RobotKey, RobotState>,
        listed: &BTreeSet<String>,
    ) {
        let orphans: BTreeSet<RobotKey> = stored
            .keys()
            .chain(self.written.keys())
            .filter(|k| !listed.contains(&k.registry))
            .cloned()
            .collect();
        for key in orphans {
            tracing::warn!(registry = %key.registry, space = %key.space, workspace = %key.workspace,
                "Registry gone: forgetting its robot credentials (the robot itself is left on Harbor)");
            self.delete(&key).await;
        }
    }

    /// Stores a robot's state unless the Secret already holds it; false when the write
    /// failed.
    pub async fn keep(
        &mut self,
        stored: &BTreeMap<RobotKey, RobotState>,
        key: &RobotKey,
        state: &RobotState,
    ) -> bool {
        let known = self.written.get(key).or_else(|| stored.get(key));
        if known == Some(state) {
            return true;
        }
        let secret = robot_secret(&self.namespace, &self.cluster, key, state);
        let name = secret_name(key);
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(&name, &pp, &Patch::Apply(&secret)).await {
            Ok(_) => {
                tracing::info!(registry = %key.registry, space = %key.space, workspace = %key.workspace,
                    robot = %state.current.username, rotating = state.rotation.is_some(), "robot credentials stored");
                self.written.insert(key.clone(), state.clone());
                true
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "robot credentials could not be stored");
                false
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
/// with the state `kept` for it; and the robots `kept` for this registry whose binding
/// went (to delete).
pub fn wanted(
    name: &str,
    registry: &Registry,
    snap: &Snapshot,
    kept: &BTreeMap<RobotKey, RobotState>,
) -> (Wanted, Vec<(RobotKey, RobotState)>) {
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
        .iter()
        .filter(|(k, _)| k.registry == name && !bound.contains(*k))
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();
    (wanted, unbound)
}

/// Space → each workspace that gets a robot there, with what is kept for it.
pub type Wanted = BTreeMap<String, Vec<(String, Option<RobotState>)>>;

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

/// The Secret that keeps a robot's state in `namespace`.
pub fn robot_secret(namespace: &str, cluster: &str, key: &RobotKey, state: &RobotState) -> Secret {
    let creds = &state.current;
    let data = [
        ("username", creds.username.clone()),
        ("password", creds.secret.clone()),
        (ID_KEY, creds.id.to_string()),
        (EXPIRES_KEY, creds.expires_at.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    let mut annotations: BTreeMap<String, String> = [
        (REGISTRY_ANNOTATION, key.registry.clone()),
        (SPACE_ANNOTATION, key.space.clone()),
        (WORKSPACE_ANNOTATION, key.workspace.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if !cluster.is_empty() {
        annotations.insert(CLUSTER_ANNOTATION.into(), cluster.to_string());
    }
    if let Some(c) = state.created_at {
        annotations.insert(CREATED_ANNOTATION.into(), c.to_string());
    }
    if let Some(r) = &state.rotation {
        annotations.insert(OLD_ID_ANNOTATION.into(), r.old_id.to_string());
        annotations.insert(OLD_NAME_ANNOTATION.into(), r.old_username.clone());
        if let Some(t) = r.retire_after {
            annotations.insert(RETIRE_ANNOTATION.into(), t.to_string());
        }
    }
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
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        type_: Some(BASIC_AUTH_TYPE.to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The key and state a robot Secret holds; `None` for a Secret that is not one.
pub fn parse(secret: &Secret) -> Option<(RobotKey, RobotState)> {
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
    let current = RobotCredentials {
        id: text(ID_KEY)?.parse().ok()?,
        username: text("username")?,
        secret: text("password")?,
        expires_at: text(EXPIRES_KEY)?.parse().ok()?,
    };
    let number = |k: &str| ann.get(k).and_then(|v| v.parse::<i64>().ok());
    let rotation = match (number(OLD_ID_ANNOTATION), ann.get(OLD_NAME_ANNOTATION)) {
        (Some(old_id), Some(old_username)) => Some(Rotation {
            old_id,
            old_username: old_username.clone(),
            retire_after: number(RETIRE_ANNOTATION),
        }),
        _ => None,
    };
    Some((
        key,
        RobotState {
            current,
            created_at: number(CREATED_ANNOTATION),
            rotation,
        },
    ))
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
pub fn stored<'a>(secrets: impl Iterator<Item = &'a Secret>) -> BTreeMap<RobotKey, RobotState> {
    secrets.filter_map(parse).collect()
}

/// The login names that pullgate's pull Secrets carry now: a robot whose name is here
/// may be in use on a node, so it is never deleted (a rotation waits for it to go).
pub fn carried<'a>(pull_secrets: impl Iterator<Item = &'a PullSecret>) -> BTreeSet<String> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        auth: Option<String>,
    }
    let mut names = BTreeSet::new();
    for s in pull_secrets.filter(|s| s.managed) {
        let Some(raw) = &s.config else {
            continue;
        };
        let Ok(config) = serde_json::from_slice::<Config>(raw) else {
            continue;
        };
        for entry in config.auths.values() {
            if let Some(u) = &entry.username {
                names.insert(u.clone());
            }
            // Some clients read only `auth`: the user it names counts too.
            let decoded = entry.auth.as_deref().and_then(|a| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(a).ok()
            });
            if let Some(user) = decoded
                .as_deref()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| t.split_once(':'))
                .map(|(u, _)| u.to_string())
            {
                names.insert(user);
            }
        }
    }
    names
}

/// Pull credentials from the stored robot Secrets.
pub struct RobotSource<'a> {
    /// Robot state by key.
    pub robots: &'a BTreeMap<RobotKey, RobotState>,
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
            Some(s) => Lookup::Found(Credential {
                username: s.current.username.clone(),
                password: s.current.secret.clone(),
            }),
            None => Lookup::Broken(format!(
                "the Harbor robot account of workspace {workspace:?} does not exist yet (the Registry {:?}'s Ready condition says why, if it stays so)",
                key.registry.name
            )),
        }
    }
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

    fn identity(cluster: &str) -> RobotIdentity {
        RobotIdentity {
            cluster: cluster.into(),
            lifetime: DEFAULT_LIFETIME,
            grace: DEFAULT_GRACE,
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
    fn robot_secrets_read_back_with_their_rotation() {
        let k = key("h", "team-a", "ws-a");
        let state = RobotState {
            current: RobotCredentials {
                id: 7,
                username: "robot$team-a+pullgate-c-ws-a-0a0b0c0d-2".into(),
                secret: "S3cretXyz".into(),
                expires_at: -1,
            },
            created_at: Some(1_000),
            rotation: Some(Rotation {
                old_id: 3,
                old_username: "robot$team-a+pullgate-c-ws-a-0a0b0c0d-1".into(),
                retire_after: Some(2_000),
            }),
        };
        let s = robot_secret("pullgate-system", "c", &k, &state);
        assert_eq!(parse(&s), Some((k.clone(), state.clone())));
        let stable = RobotState {
            rotation: None,
            ..state
        };
        let s = robot_secret("pullgate-system", "c", &k, &stable);
        assert_eq!(parse(&s), Some((k, stable)));
        assert_eq!(parse(&Secret::default()), None);
    }

    /// A Secret written before robots had a lifetime reads back with no creation time:
    /// its robot is replaced at once.
    #[test]
    fn secrets_from_before_lifetimes_read_back() {
        let k = key("h", "team-a", "ws-a");
        let mut s = robot_secret(
            "ns",
            "",
            &k,
            &RobotState {
                current: RobotCredentials {
                    id: 7,
                    username: legacy_username("team-a", "ws-a"),
                    secret: "S3cretXyz".into(),
                    expires_at: -1,
                },
                created_at: None,
                rotation: None,
            },
        );
        let ann = s.metadata.annotations.as_mut().unwrap();
        assert_eq!(ann.len(), 3, "only what the old format had: {ann:?}");
        let (_, state) = parse(&s).unwrap();
        assert_eq!(state.created_at, None);
        assert_eq!(state.current.username, "robot$team-a+pullgate-ws-a");
    }

    #[test]
    fn robot_names_carry_the_cluster_and_stay_valid() {
        let a = identity("7d3c9a52-0f1e-4b8a-9c1d-2e3f4a5b6c7d");
        let name = a.robot_name("ws-a", 1);
        assert!(
            name.starts_with("pullgate-7d3c9a52-0f1e-4b-ws-a-"),
            "{name}"
        );
        assert!(name.ends_with("-1"), "{name}");
        assert!(valid_project_name(&name), "Harbor's name rule: {name}");
        assert!(name.len() <= MAX_ROBOT_NAME, "{name}");
        // Same workspace, other cluster: another name.
        let b = identity("prod-eu");
        assert_ne!(b.robot_name("ws-a", 1), name);
        // Names Harbor would refuse as they are, or too long, still make valid names.
        for ws in ["ws--a", "a.b-c", &"w".repeat(253), "x"] {
            let n = b.robot_name(ws, 12345);
            assert!(valid_project_name(&n), "{n}");
            assert!(n.len() <= MAX_ROBOT_NAME, "{n}");
        }
        // Cut spellings stay distinct.
        let long = "w".repeat(40);
        assert_ne!(b.robot_name(&long, 1), b.robot_name(&format!("{long}x"), 1));
        let user = format!("robot$team-a+{}", b.robot_name("ws-a", 7));
        assert_eq!(b.generation("team-a", "ws-a", &user), Some(7));
        assert_eq!(b.generation("team-a", "ws-b", &user), None);
        assert_eq!(a.generation("team-a", "ws-a", &user), None);
    }

    #[test]
    fn ownership_is_the_cluster_in_the_description() {
        let a = identity("prod-eu");
        let d = a.description("ws-a");
        assert_eq!(a.owned_workspace(&d), Some("ws-a"));
        assert_eq!(identity("prod-us").owned_workspace(&d), None);
        assert_eq!(
            identity("prod").owned_workspace(&d),
            None,
            "no prefix match"
        );
        assert_eq!(
            a.owned_workspace("pull-only robot managed by pullgate"),
            None
        );
        assert_eq!(a.owned_workspace(""), None);
    }

    #[test]
    fn lifetime_days_rotation_and_expiry() {
        let mut a = identity("c");
        assert_eq!(a.duration_days(), 90);
        a.lifetime = Duration::from_secs(20);
        assert_eq!(a.duration_days(), 1, "Harbor counts whole days");
        a.lifetime = Duration::from_secs(30);
        assert_eq!(a.rotate_at(1_000), 1_020);
        let state = RobotState {
            current: RobotCredentials {
                id: 1,
                username: "u".into(),
                secret: "s".into(),
                expires_at: 1_025,
            },
            created_at: Some(1_000),
            rotation: None,
        };
        assert_eq!(a.expires_at(&state), Some(1_025));
        a.lifetime = Duration::from_secs(10);
        assert_eq!(a.expires_at(&state), Some(1_010));
    }
}
