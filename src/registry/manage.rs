//! What the leader does on a Harbor with admin credentials (SPEC §6.4–6.5): create the
//! project of a RegistrySpace, keep its `public` flag equal to the space's visibility,
//! and keep one pull-only robot per (space, workspace) binding, named
//! `pullgate-<workspace>`. Harbor shows a robot's secret only once, so the caller keeps
//! it (a Secret in pullgate's namespace) and hands it back on the next call.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::harbor::{HarborClient, Robot};
use super::RegistryError;
use crate::api::Visibility;

/// Name prefix of the robots pullgate manages (the rest is the workspace).
pub const ROBOT_PREFIX: &str = "pullgate-";

/// A robot whose expiry is closer than this is replaced, so pulls never start failing.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Login credentials of a robot account: what a dockerconfigjson entry carries.
/// The secret never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotCredentials {
    /// Harbor's robot id.
    pub id: i64,
    /// Login user, `robot$<project>+pullgate-<workspace>`.
    pub username: String,
    pub secret: String,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
}

impl fmt::Debug for RobotCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobotCredentials")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl RobotCredentials {
    /// The `auths` entry of a `.dockerconfigjson`: `username`, `password` and `auth`
    /// (base64 of `user:password`), all three, since some clients read only `auth`.
    pub fn docker_auth_entry(&self) -> serde_json::Value {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.secret));
        serde_json::json!({
            "username": self.username,
            "password": self.secret,
            "auth": auth,
        })
    }
}

/// What [`ensure_project`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectChange {
    Created,
    /// The `public` flag was changed to match the visibility.
    VisibilityUpdated,
    Unchanged,
}

/// The robot name pullgate gives a workspace's robot: `pullgate-<workspace>`.
pub fn robot_name(workspace: &str) -> String {
    format!("{ROBOT_PREFIX}{workspace}")
}

/// The login name Harbor gives that robot: `robot$<project>+pullgate-<workspace>`.
pub fn robot_username(project: &str, workspace: &str) -> String {
    format!("robot${project}+{}", robot_name(workspace))
}

/// Creates the project of a space if it is missing, and keeps its `public` flag equal to
/// `visibility`.
pub async fn ensure_project(
    client: &HarborClient,
    space: &str,
    visibility: Visibility,
) -> Result<ProjectChange, RegistryError> {
    client.require_admin().await?;
    let public = visibility == Visibility::Public;
    let existing = match client.project(space).await? {
        Some(project) => project,
        None => {
            if client.create_project(space, public).await? {
                return Ok(ProjectChange::Created);
            }
            // Created by someone else a moment ago (409): check its flag like any other.
            client
                .project(space)
                .await?
                .ok_or_else(|| RegistryError::InvalidResponse {
                    url: format!("/projects/{space}"),
                    reason: "project reported as existing but not found".into(),
                })?
        }
    };
    if existing.is_public() == public {
        Ok(ProjectChange::Unchanged)
    } else {
        client.set_project_public(space, public).await?;
        Ok(ProjectChange::VisibilityUpdated)
    }
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
