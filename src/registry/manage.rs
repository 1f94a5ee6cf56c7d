//! Harbor projects as the leader keeps them: [`ensure_project`] creates the
//! project of a RegistrySpace and keeps its `public` flag equal to the space's
//! visibility, with an admin user's or a system robot's credentials. Robot accounts are decided in `cluster::leader::robots`, which calls the
//! client's robot endpoints.

use super::harbor::HarborClient;
use super::RegistryError;
use crate::api::Visibility;

/// What [`ensure_project`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectChange {
    Created,
    /// The `public` flag was changed to match the visibility.
    VisibilityUpdated,
    Unchanged,
}

/// Creates the project of a space if it is missing, and keeps its `public` flag equal to
/// `visibility`.
pub async fn ensure_project(
    client: &HarborClient,
    space: &str,
    visibility: Visibility,
) -> Result<ProjectChange, RegistryError> {
    client.require_manager().await?;
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
