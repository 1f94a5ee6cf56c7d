//! What the leader does to this cluster's robots on Harbor (README, "Several clusters, one Harbor"), one
//! project at a time ([`keep_space`]): a robot for each bound workspace, made
//! make-before-break when the one in use is due (two thirds into its lifetime, from a
//! Secret written before lifetimes, gone from Harbor or disabled): the new robot is
//! made, the state says "rotating", the pull-Secret sync writes the new credential,
//! and once no pull Secret carries the old one and the grace period has passed, the old
//! robot is deleted. A robot's secret is never refreshed in place (Harbor's refresh
//! kills the old secret at once, under every copy already on a node).
//!
//! What is touched on Harbor is only ever this cluster's: a robot is deleted by id, and
//! only when the listing shows that id with the login name this cluster's state names,
//! or with this cluster's marker in its description ([`RobotIdentity`]); a robot
//! another cluster made, or one of unknown origin, is left alone. A 409 on create picks
//! the next name (the robot of that name is not taken over), a 404 on delete means
//! gone, and a robot whose login a pull Secret carries is never pruned.

use std::collections::BTreeSet;

use super::robots::{RobotIdentity, RobotKey, RobotState, Rotation};
use crate::registry::{HarborClient, RegistryError, Robot, RobotCredentials};

/// How many names a create tries when Harbor answers 409 (a robot of that name exists
/// that the listing did not show).
const CREATE_ATTEMPTS: u64 = 3;

/// What a pass works with besides the robots: this cluster's identity, who is logged in
/// on the nodes (the login names pullgate's pull Secrets carry), and the time.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub harbor: &'a HarborClient,
    pub registry: &'a str,
    pub identity: &'a RobotIdentity,
    pub carried: &'a BTreeSet<String>,
    /// Unix seconds.
    pub now: i64,
}

/// A step of a rotation, for an Event and the rotation metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationStep {
    pub key: RobotKey,
    pub phase: Phase,
    pub old: String,
    pub new: String,
    /// Why the rotation started.
    pub why: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A new robot was made; the old one stays until the pull Secrets carry the new one.
    Started,
    /// The old robot was deleted.
    Completed,
}

/// What [`keep_space`] did to the robots of one space.
#[derive(Debug, Default)]
pub struct Kept {
    /// The state of every wanted robot that could be worked on (to store).
    pub robots: Vec<(RobotKey, RobotState)>,
    pub steps: Vec<RotationStep>,
    /// What could not be done, for the space's status.
    pub problems: Vec<String>,
    /// How many Harbor calls about robots failed.
    pub failed_calls: usize,
}

/// Brings this cluster's robots in `space`'s project in line with `wanted` (each bound
/// workspace with what is stored for it), and deletes this cluster's robots there that
/// no state names and no pull Secret carries (left by a pass that could not store what
/// it made, or by bindings removed while pullgate was not running).
pub async fn keep_space(
    ctx: Ctx<'_>,
    space: &str,
    wanted: &[(String, Option<RobotState>)],
) -> Kept {
    let mut out = Kept::default();
    let listed = match list(ctx.harbor, space).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            out.problems.push(format!(
                "Harbor project {space:?} does not exist; it is created for a RegistrySpace that names it"
            ));
            return out;
        }
        Err(e) => {
            out.failed_calls += 1;
            out.problems
                .push(format!("robot accounts of project {space:?}: {e}"));
            return out;
        }
    };
    let mut referenced: BTreeSet<i64> = BTreeSet::new();
    for (ws, state) in wanted {
        if let Some(s) = state {
            referenced.insert(s.current.id);
            referenced.extend(s.rotation.as_ref().map(|r| r.old_id));
        }
        let key = RobotKey {
            registry: ctx.registry.to_string(),
            space: space.to_string(),
            workspace: ws.clone(),
        };
        match ensure(ctx, &key, state.as_ref(), &listed, &mut out.steps).await {
            Ok(s) => {
                referenced.insert(s.current.id);
                referenced.extend(s.rotation.as_ref().map(|r| r.old_id));
                out.robots.push((key, s));
            }
            Err(e) => {
                out.failed_calls += 1;
                out.problems
                    .push(format!("robot account of workspace {ws:?}: {e}"));
            }
        }
    }
    for robot in &listed {
        let Some(ws) = ctx.identity.owned_workspace(&robot.description) else {
            continue;
        };
        if referenced.contains(&robot.id) || ctx.carried.contains(&robot.name) {
            continue;
        }
        match ctx.harbor.delete_robot(robot.id).await {
            Ok(_) => tracing::info!(registry = %ctx.registry, project = %space, workspace = %ws,
                robot = %robot.name, "robot of this cluster that nothing uses deleted"),
            Err(e) => {
                out.failed_calls += 1;
                out.problems
                    .push(format!("robot account {:?}: {e}", robot.name));
            }
        }
    }
    out
}

/// Deletes the robots of a binding that went (the one in use and one being replaced),
/// so credentials copied out of a namespace stop working. Only robots listed with the
/// id and login name the state names are deleted. `Ok` when none is left.
pub async fn delete_unbound(
    harbor: &HarborClient,
    key: &RobotKey,
    state: &RobotState,
) -> Result<(), RegistryError> {
    let Some(listed) = list(harbor, &key.space).await? else {
        return Ok(());
    };
    let mut names = vec![(state.current.id, state.current.username.as_str())];
    if let Some(r) = &state.rotation {
        names.push((r.old_id, r.old_username.as_str()));
    }
    for (id, name) in names {
        if let Some(robot) = find(&listed, id, name) {
            harbor.delete_robot(robot.id).await?;
        }
    }
    Ok(())
}

/// The robots of `project` (always asked of Harbor, not cached: deletions are decided
/// on it); `None` when the project does not exist.
async fn list(harbor: &HarborClient, project: &str) -> Result<Option<Vec<Robot>>, RegistryError> {
    let Some(p) = harbor.project(project).await? else {
        return Ok(None);
    };
    harbor.forget_robots();
    harbor.robots(p.project_id).await.map(Some)
}

fn find<'a>(listed: &'a [Robot], id: i64, name: &str) -> Option<&'a Robot> {
    listed.iter().find(|r| r.id == id && r.name == name)
}

/// The state of one binding's robot after this pass: made if there is none, rotated
/// when due, a rotation in progress moved on.
async fn ensure(
    ctx: Ctx<'_>,
    key: &RobotKey,
    state: Option<&RobotState>,
    listed: &[Robot],
    steps: &mut Vec<RotationStep>,
) -> Result<RobotState, RegistryError> {
    let Some(state) = state else {
        let current = create(ctx, key, listed, None).await?;
        return Ok(RobotState {
            current,
            created_at: Some(ctx.now),
            rotation: None,
        });
    };
    let mut st = state.clone();

    // A rotation in progress: the old robot goes once no pull Secret carries it and the
    // grace period (counted from then) has passed.
    if let Some(rot) = &mut st.rotation {
        let carried = ctx.carried.contains(&rot.old_username);
        match rot.retire_after {
            // A pull Secret carries it (again): wait, and count the grace from when none does.
            Some(_) if carried => rot.retire_after = None,
            None if !carried => {
                rot.retire_after = Some(ctx.now.saturating_add(
                    i64::try_from(ctx.identity.grace.as_secs()).unwrap_or(i64::MAX),
                ));
            }
            Some(t) if ctx.now >= t => {
                if let Some(old) = find(listed, rot.old_id, &rot.old_username) {
                    // 404: gone already, which is what was wanted.
                    ctx.harbor.delete_robot(old.id).await?;
                }
                steps.push(RotationStep {
                    key: key.clone(),
                    phase: Phase::Completed,
                    old: rot.old_username.clone(),
                    new: st.current.username.clone(),
                    why: String::new(),
                });
                st.rotation = None;
            }
            _ => {}
        }
    }

    // The robot in use. One that no longer works is replaced at once; one that is only
    // due waits for a rotation in progress to finish (one at a time).
    let (why, urgent) = match find(listed, st.current.id, &st.current.username) {
        Some(r) if r.disable => (Some("it is disabled on Harbor".to_string()), true),
        Some(r) => {
            st.current.expires_at = r.expires_at;
            (due(ctx, &st), false)
        }
        None => (Some("it is gone from Harbor".to_string()), true),
    };
    let Some(why) = why else { return Ok(st) };
    if st.rotation.is_some() && !urgent {
        return Ok(st);
    }
    let new = create(ctx, key, listed, Some(&st)).await?;
    steps.push(RotationStep {
        key: key.clone(),
        phase: Phase::Started,
        old: st.current.username.clone(),
        new: new.username.clone(),
        why,
    });
    if st.rotation.is_none() {
        st.rotation = Some(Rotation {
            old_id: st.current.id,
            old_username: st.current.username.clone(),
            retire_after: None,
        });
    }
    st.current = new;
    st.created_at = Some(ctx.now);
    Ok(st)
}

/// Why the robot in use is due for replacement, if it is.
fn due(ctx: Ctx<'_>, st: &RobotState) -> Option<String> {
    let Some(created) = st.created_at else {
        return Some("it was made before robots had a lifetime and a cluster name".into());
    };
    if ctx.now >= ctx.identity.rotate_at(created) {
        return Some(format!(
            "it is two thirds into its lifetime of {}",
            humantime::format_duration(ctx.identity.lifetime)
        ));
    }
    let margin = i64::try_from(ctx.identity.lifetime.as_secs() / 3).unwrap_or(i64::MAX);
    if st.current.expires_at >= 0 && st.current.expires_at <= ctx.now.saturating_add(margin) {
        return Some("Harbor expires it soon".into());
    }
    None
}

/// Makes the next generation of `key`'s robot. A 409 means a robot of that name exists
/// that the listing did not show (made a moment ago, or by someone else): it is left
/// alone and the next name is tried.
async fn create(
    ctx: Ctx<'_>,
    key: &RobotKey,
    listed: &[Robot],
    state: Option<&RobotState>,
) -> Result<RobotCredentials, RegistryError> {
    let id = ctx.identity;
    let generation_of = |user: &str| id.generation(&key.space, &key.workspace, user);
    let mut generation = listed
        .iter()
        .map(|r| r.name.as_str())
        .chain(state.map(|s| s.current.username.as_str()))
        .chain(
            state
                .and_then(|s| s.rotation.as_ref())
                .map(|r| r.old_username.as_str()),
        )
        .filter_map(generation_of)
        .max()
        .unwrap_or(0)
        + 1;
    let mut last = None;
    for _ in 0..CREATE_ATTEMPTS {
        let name = id.robot_name(&key.workspace, generation);
        match ctx
            .harbor
            .create_robot(
                &key.space,
                &name,
                &id.description(&key.workspace),
                id.duration_days(),
            )
            .await
        {
            Ok(created) => {
                tracing::info!(registry = %ctx.registry, project = %key.space, workspace = %key.workspace,
                    robot = %created.username, "robot created");
                return Ok(created);
            }
            Err(e @ RegistryError::Conflict { .. }) => {
                tracing::warn!(registry = %ctx.registry, project = %key.space, robot = %name,
                    "Harbor has a robot of that name already; it is left alone and the next name is tried");
                last = Some(e);
                generation += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::InvalidResponse {
        url: "/robots".into(),
        reason: "no robot name left to try".into(),
    }))
}
