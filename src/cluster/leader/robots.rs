//! Harbor robot accounts as pull credentials (SPEC §6.4): for a Private space of a
//! Harbor registry that has API credentials and no `pullSecretRef`, one pull-only robot
//! per (space, workspace). Harbor shows a robot's secret only once, so it is kept in a
//! Secret in pullgate's own namespace ([`robot_secret`], read back by [`parse`]);
//! [`RobotSource`] answers the pull-Secret sync from those Secrets. Creating and deleting
//! the robots themselves is the registry loop's business.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;

use super::credentials::{Credential, CredentialKey, CredentialSource, Lookup, BASIC_AUTH_TYPE};
use super::sync::MANAGED_BY_VALUE;
use crate::api::{RegistryType, Visibility, MANAGED_BY_LABEL};
use crate::cluster::replica::state::State;
pub use crate::cluster::replica::watch::ROBOT_LABEL;
use crate::index::SpaceEntry;
use crate::registry::{valid_project_name, RobotCredentials};

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
pub fn registries(state: &State) -> BTreeSet<String> {
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
}
