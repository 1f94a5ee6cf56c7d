//! The leader's registry loop: every `--probe-interval`, and whenever a
//! Registry, a space or an API credential Secret changes, each registry is probed
//! (concurrently, each within [`PROBE_TIMEOUT`]) and, for a Harbor with admin
//! credentials, its projects and robots are brought in line with the RegistrySpaces:
//! missing projects created, `public` kept equal to `visibility`, one pull-only robot per
//! (Private space without `pullSecretRef`, bound workspace) rotated make-before-break
//! (`rotation`), robots of bindings that went deleted; only this cluster's robots are
//! touched (its identity: `--cluster-name`, or the UID of `kube-system`, read once when
//! the loop first leads). Robot state is kept in Secrets in pullgate's namespace
//! (`robots`); each rotation step is an Event on the RegistrySpace.
//!
//! What the probes found is published as [`Probed`] for the status writer (the one writer
//! of every status field). A registry that fails is data (Unhealthy), never an error, and
//! nothing here is on the admission path. [`RegistryLoop::run`] is the entry point.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Event, Namespace, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::sync::watch;

use super::inputs::{Inputs, Wake};
use super::robots::{self, RobotIdentity, RobotKey, RobotState};
use super::rotation::{self, Phase, RotationStep};
use crate::api::{CrKind, Health, RegistrySpec, RegistryStatus, RegistryType, Visibility};
use crate::cluster::hook::Hook;
use crate::cluster::replica::state::LeaderView;
use crate::cluster::ClusterOptions;
use crate::registry::{
    credentials_from_secret, ensure_project, probe_counting, registry_status, valid_project_name,
    ApiOperation, ClientOptions, Credentials, ProjectChange, RegistryClient, RegistryReport,
};

/// Longest wait for one registry's pass (probe and management); a registry slower than
/// this is reported Unhealthy, and the others are not held up by it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// An unchanged status is rewritten only to refresh `lastProbeTime`, at most this often
/// (or every probe interval, if longer), so a steady registry costs no writes.
pub const STATUS_REFRESH: Duration = Duration::from_secs(300);

/// What the registry loop found, for the status writer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probed {
    /// Registry name → its status as probed (conditions: `Ready` only).
    pub registries: BTreeMap<String, RegistryProbe>,
    /// RegistrySpace object name → what the registry says about the space.
    pub spaces: BTreeMap<String, SpaceProbe>,
    /// RegistrySpace object name → what Harbor management could not do for it.
    pub space_problems: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryProbe {
    pub status: RegistryStatus,
}

/// The probed fields of a RegistrySpace status (`None`: unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpaceProbe {
    pub exists: Option<bool>,
    pub repo_count: Option<u64>,
    pub storage_used_bytes: Option<u64>,
}

/// A callback told (registry name, healthy).
pub type HealthFn = dyn Fn(&str, bool) + Send + Sync;

/// Called with (registry name, healthy) after every probe (e.g. for a health metric).
pub type HealthHook = Hook<HealthFn>;

/// A callback told (registry name, operation) of a failed registry API call.
pub type ApiErrorFn = dyn Fn(&str, ApiOperation) + Send + Sync;

/// Called with (registry name, operation) for every failed call to a registry's API
/// (e.g. for an error metric).
pub type ApiErrorHook = Hook<ApiErrorFn>;

/// A callback told that a robot rotation finished (registry name).
pub type RotatedFn = dyn Fn(&str) + Send + Sync;
/// A callback told the earliest expiry of this cluster's robots (Unix seconds; `None`:
/// no robot, or none that expires).
pub type ExpiryFn = dyn Fn(Option<i64>) + Send + Sync;

/// Told of robot rotations and expiry (e.g. for metrics).
#[derive(Clone, Default)]
pub struct RobotHooks {
    pub rotated: Option<Arc<RotatedFn>>,
    pub earliest_expiry: Option<Arc<ExpiryFn>>,
}

impl std::fmt::Debug for RobotHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotHooks")
            .field("rotated", &self.rotated.is_some())
            .field("earliest_expiry", &self.earliest_expiry.is_some())
            .finish()
    }
}

/// Reasons of the Events on a RegistrySpace about its robots.
pub const ROTATION_STARTED_REASON: &str = "RobotRotationStarted";
pub const ROTATED_REASON: &str = "RobotRotated";

/// One space of a registry as a pass needs it.
#[derive(Clone, Debug)]
struct SpaceJob {
    space: String,
    visibility: Visibility,
    objects: Vec<String>,
    /// Workspaces that get a robot, with what is stored for them.
    robots: Vec<(String, Option<RobotState>)>,
    /// Whether pullgate manages this space's Harbor project.
    project: bool,
}

/// One registry's pass.
struct Job {
    name: String,
    client: Result<RegistryClient, String>,
    /// Why the API credentials could not be used.
    credentials_problem: Option<String>,
    manage: bool,
    /// The Registry no longer asks for robots: unbound robots are forgotten without
    /// asking Harbor (which pullgate may no longer log in to).
    forget: bool,
    spaces: Vec<SpaceJob>,
    /// Robots to delete: bindings that went.
    unbound: Vec<(RobotKey, RobotState)>,
    /// This cluster's identity; `None` while unknown (no robot is touched then).
    identity: Option<Arc<RobotIdentity>>,
    /// The login names pullgate's pull Secrets carry.
    carried: Arc<BTreeSet<String>>,
}

/// What one registry's pass produced.
#[derive(Default)]
struct Outcome {
    report: RegistryReport,
    robots: Vec<(RobotKey, RobotState)>,
    steps: Vec<RotationStep>,
    /// Robots deleted on Harbor (their Secrets can go).
    deleted: Vec<RobotKey>,
    space_problems: BTreeMap<String, Vec<String>>,
    /// The operation of each registry API call that failed.
    failed_calls: Vec<ApiOperation>,
}

pub struct RegistryLoop {
    opts: ClusterOptions,
    client: Client,
    /// This cluster's identity, once known.
    identity: Option<Arc<RobotIdentity>>,
    /// Registry clients kept between passes (their caches save calls), by name.
    clients: HashMap<String, (RegistrySpec, Option<Credentials>, RegistryClient)>,
    /// The robot Secrets, with what this leader wrote to them.
    robot_secrets: robots::Store,
}

impl RegistryLoop {
    pub fn new(client: Client, opts: ClusterOptions) -> RegistryLoop {
        RegistryLoop {
            robot_secrets: robots::Store::new(client.clone(), &opts.namespace),
            client,
            identity: None,
            opts,
            clients: HashMap::new(),
        }
    }

    /// Runs until shutdown, publishing what each pass found on `probed`.
    pub async fn run(mut self, mut inputs: Inputs, probed: watch::Sender<Arc<Probed>>) {
        let mut tick = tokio::time::interval(self.opts.probe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due = true;
        let mut seen = String::new();
        loop {
            let leading = inputs.leading();
            let synced = inputs.synced();
            if !leading {
                self.robot_secrets.forget();
            }
            // Revision 0 is the empty view before the first full sync.
            let ready = synced && inputs.view.borrow().snapshot.revision() > 0;
            if due && leading && ready {
                let view = inputs.view();
                seen = fingerprint(&view);
                match inputs.unless_stopped(self.pass(&view)).await {
                    Some(found) => {
                        probed.send_replace(Arc::new(found));
                    }
                    None => return,
                }
                due = false;
            }
            match inputs.wake(tick.tick()).await {
                Wake::View => {
                    let view = inputs.view.borrow().clone();
                    due |= fingerprint(&view) != seen;
                }
                Wake::Own(_) | Wake::Leader | Wake::Synced => due = true,
                Wake::Stop => return,
            }
        }
    }

    /// This cluster's name: `--cluster-name`, else the UID of `kube-system`, read once.
    async fn identity(&mut self) -> Result<Arc<RobotIdentity>, String> {
        if let Some(id) = &self.identity {
            return Ok(id.clone());
        }
        let cluster = if self.opts.cluster_name.is_empty() {
            let api: Api<Namespace> = Api::all(self.client.clone());
            match api.get("kube-system").await {
                Ok(ns) => ns.metadata.uid.filter(|u| !u.is_empty()).ok_or_else(|| {
                    "namespace kube-system has no UID; set --cluster-name".to_string()
                })?,
                Err(e) => {
                    return Err(format!(
                        "cannot read the UID of namespace kube-system for this cluster's name ({e}); set --cluster-name"
                    ))
                }
            }
        } else {
            self.opts.cluster_name.clone()
        };
        tracing::info!(%cluster, "cluster name toward shared registries");
        self.robot_secrets.set_cluster(&cluster);
        let id = Arc::new(RobotIdentity {
            cluster,
            lifetime: self.opts.robot_lifetime,
            grace: self.opts.robot_rotation_grace,
        });
        self.identity = Some(id.clone());
        Ok(id)
    }

    /// One pass over every registry; returns what the status writer needs.
    async fn pass(&mut self, view: &LeaderView) -> Probed {
        let stored = robots::stored(view.watched.robot_secrets.values().map(Arc::as_ref));
        let identity = self.identity().await;
        let carried = Arc::new(robots::carried(
            view.watched.pull_secrets.values().map(Arc::as_ref),
        ));
        let jobs = self.jobs(view, &stored, identity.as_ref().ok(), &carried);
        let listed: BTreeSet<String> = jobs.iter().map(|j| j.name.clone()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, job) in jobs.into_iter().enumerate() {
            tasks.spawn(async move {
                let name = job.name.clone();
                let outcome = match tokio::time::timeout(PROBE_TIMEOUT, work(&job)).await {
                    Ok(o) => o,
                    Err(_) => Outcome {
                        report: RegistryReport {
                            health: Health::Unhealthy,
                            message: format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
                            ..RegistryReport::default()
                        },
                        failed_calls: vec![ApiOperation::Health],
                        ..Outcome::default()
                    },
                };
                (i, name, job.spaces, outcome)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => tracing::warn!(error = %e, "a registry pass failed"),
            }
        }
        results.sort_by_key(|r| r.0);

        self.robot_secrets.drop_unlisted(&stored, &listed).await;

        let now = SystemTime::now();
        let mut probed = Probed::default();
        for (_, name, spaces, mut outcome) in results {
            for (key, state) in &outcome.robots {
                let stored_ok = self.robot_secrets.keep(&stored, key, state).await;
                // A step whose state could not be stored is done again next pass.
                if stored_ok {
                    for step in outcome.steps.iter().filter(|s| &s.key == key) {
                        self.announce(view, step).await;
                    }
                }
            }
            for key in &outcome.deleted {
                self.robot_secrets.delete(key).await;
            }
            if let Err(e) = &identity {
                if spaces.iter().any(|s| !s.robots.is_empty()) {
                    tracing::warn!(registry = %name, error = %e, "robot accounts are left alone until this cluster's name is known");
                    outcome.report.problems.push(format!("robot accounts: {e}"));
                }
            }
            if let Some(hook) = &self.opts.registry_health.0 {
                hook(&name, outcome.report.health == Health::Healthy);
            }
            if let Some(hook) = &self.opts.registry_api_errors.0 {
                for operation in &outcome.failed_calls {
                    hook(&name, *operation);
                }
            }
            let previous = view
                .watched
                .registries
                .get(&name)
                .and_then(|s| serde_json::from_value::<RegistryStatus>(s.status.clone()).ok());
            let mut status = registry_status(&outcome.report, previous.as_ref(), now);
            keep_probe_time(
                &mut status,
                previous.as_ref(),
                self.opts.probe_interval,
                now,
            );
            probed
                .registries
                .insert(name.clone(), RegistryProbe { status });
            for s in &spaces {
                let found = outcome.report.space(&s.space);
                for o in &s.objects {
                    probed.spaces.insert(
                        o.clone(),
                        SpaceProbe {
                            exists: found.and_then(|f| f.exists),
                            repo_count: found.and_then(|f| f.repo_count),
                            storage_used_bytes: found.and_then(|f| f.storage_used_bytes),
                        },
                    );
                }
            }
            for (o, p) in outcome.space_problems {
                probed.space_problems.entry(o).or_default().extend(p);
            }
        }
        if let (Some(hook), Ok(id)) = (&self.opts.robot_hooks.earliest_expiry, &identity) {
            let kept = self.robot_secrets.kept(&robots::stored(
                view.watched.robot_secrets.values().map(Arc::as_ref),
            ));
            hook(kept.values().filter_map(|s| id.expires_at(s)).min());
        }
        probed
    }

    /// An Event on the RegistrySpace objects of a rotation step's space, and the
    /// rotation metric when it finished.
    async fn announce(&self, view: &LeaderView, step: &RotationStep) {
        let (reason, message) = match step.phase {
            Phase::Started => (
                ROTATION_STARTED_REASON,
                format!(
                    "Harbor robot of workspace {:?} is being replaced because {}: new robot {:?} made; the old {:?} is deleted once every pull Secret carries the new one and {} have passed",
                    step.key.workspace,
                    step.why,
                    step.new,
                    step.old,
                    humantime::format_duration(self.opts.robot_rotation_grace)
                ),
            ),
            Phase::Completed => {
                if let Some(hook) = &self.opts.robot_hooks.rotated {
                    hook(&step.key.registry);
                }
                (
                    ROTATED_REASON,
                    format!(
                        "Harbor robot of workspace {:?} replaced: every pull Secret carries {:?}; the old robot {:?} is deleted",
                        step.key.workspace, step.new, step.old
                    ),
                )
            }
        };
        tracing::info!(registry = %step.key.registry, space = %step.key.space,
            workspace = %step.key.workspace, old = %step.old, new = %step.new, reason, "robot rotation");
        let objects = view
            .snapshot
            .spaces_of(&step.key.registry)
            .find(|s| s.space == step.key.space)
            .map(|s| s.objects.clone())
            .unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.opts.namespace);
        for object in objects {
            let event = rotation_event(&self.opts, &object, reason, &message);
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::warn!(space = %object, error = %e, "could not write the rotation Event");
            }
        }
    }

    /// What to do for each valid registry.
    fn jobs(
        &mut self,
        view: &LeaderView,
        stored: &BTreeMap<RobotKey, RobotState>,
        identity: Option<&Arc<RobotIdentity>>,
        carried: &Arc<BTreeSet<String>>,
    ) -> Vec<Job> {
        let snap = &view.snapshot;
        let options = ClientOptions {
            cache_ttl: self
                .opts
                .probe_interval
                .mul_f64(0.8)
                .min(ClientOptions::default().cache_ttl),
            ..ClientOptions::default()
        };
        let mut jobs = Vec::new();
        let kept = self.robot_secrets.kept(stored);
        let known: BTreeSet<&String> = view.watched.registries.keys().collect();
        self.clients.retain(|n, _| known.contains(n));
        for (name, s) in &view.watched.registries {
            let Some(registry) = &s.object else { continue };
            let (credentials, credentials_problem) = match &registry.spec.credentials_secret_ref {
                None => (None, None),
                Some(r) => match view
                    .watched
                    .ref_secrets
                    .get(&(r.namespace.clone(), r.name.clone()))
                {
                    None => (
                        None,
                        Some(format!(
                            "credentialsSecretRef: Secret {}/{} does not exist",
                            r.namespace, r.name
                        )),
                    ),
                    Some(secret) => match credentials_from_secret(secret) {
                        Ok(c) => (Some(c), None),
                        Err(e) => (None, Some(format!("credentialsSecretRef: {e}"))),
                    },
                },
            };
            let client = match self.clients.get(name) {
                Some((spec, creds, c)) if *spec == registry.spec && *creds == credentials => {
                    Ok(c.clone())
                }
                _ => match RegistryClient::new(registry, credentials.clone(), &options) {
                    Ok(c) => {
                        self.clients.insert(
                            name.clone(),
                            (registry.spec.clone(), credentials.clone(), c.clone()),
                        );
                        Ok(c)
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            // Robots are kept for a Harbor that names credentials; they are managed once
            // the credentials can be read (a Secret not seen yet stops nothing).
            let configured = registry.spec.credentials_secret_ref.is_some();
            // A managed Registry whose host another Registry keeps (Conflict) is probed
            // but manages nothing: admission never uses it.
            let in_conflict = snap.problems().iter().any(|p| {
                p.kind == CrKind::Registry && p.name == *name && p.message.starts_with("Conflict:")
            });
            let manage = credentials.is_some()
                && !in_conflict
                && client.as_ref().is_ok_and(|c| c.as_harbor().is_some());
            let mut spaces = Vec::new();
            let (mut wanted, unbound) = robots::wanted(name, registry, snap, &kept);
            for entry in snap.spaces_of(name) {
                let mut robots = wanted.remove(&entry.space).unwrap_or_default();
                if !manage {
                    robots.clear();
                }
                spaces.push(SpaceJob {
                    space: entry.space.clone(),
                    visibility: entry.visibility,
                    objects: entry.objects.clone(),
                    robots,
                    project: manage && valid_project_name(&entry.space),
                });
            }
            jobs.push(Job {
                name: name.clone(),
                client,
                credentials_problem,
                manage,
                forget: !configured || registry.spec.registry_type != RegistryType::Harbor,
                spaces,
                unbound,
                identity: identity.cloned(),
                carried: carried.clone(),
            });
        }
        jobs
    }
}

/// Probes one registry and, on a Harbor with admin credentials, manages its projects and
/// robots; then probes again if projects changed, so the status shows them.
async fn work(job: &Job) -> Outcome {
    let client = match &job.client {
        Ok(c) => c,
        Err(message) => {
            return Outcome {
                report: RegistryReport {
                    health: Health::Unknown,
                    message: message.clone(),
                    ..RegistryReport::default()
                },
                ..Outcome::default()
            }
        }
    };
    let names: Vec<&str> = job.spaces.iter().map(|s| s.space.as_str()).collect();
    let mut failed = Vec::new();
    let mut out = Outcome {
        report: probe_counting(client, &names, &mut failed).await,
        ..Outcome::default()
    };
    out.failed_calls = failed;
    let harbor = client.as_harbor().filter(|_| job.manage);
    if let (Some(h), Health::Healthy) = (harbor, out.report.health) {
        // Without admin rights (or a system robot's) the probe has already said so;
        // nothing to manage.
        if h.require_manager().await.is_ok() {
            let mut changed = false;
            for s in job.spaces.iter().filter(|s| s.project) {
                let mut problem = |msg: String| {
                    for o in &s.objects {
                        out.space_problems
                            .entry(o.clone())
                            .or_default()
                            .push(msg.clone());
                    }
                };
                match ensure_project(h, &s.space, s.visibility).await {
                    Ok(ProjectChange::Unchanged) => {}
                    Ok(change) => {
                        tracing::info!(registry = %job.name, project = %s.space, ?change, "Harbor project updated");
                        changed = true;
                    }
                    Err(e) => {
                        out.failed_calls.push(ApiOperation::Project);
                        problem(format!("Harbor project {:?}: {e}", s.space));
                        continue;
                    }
                }
                let Some(identity) = &job.identity else {
                    continue;
                };
                let ctx = rotation::Ctx {
                    harbor: h,
                    registry: &job.name,
                    identity,
                    carried: &job.carried,
                    now: unix_now(),
                };
                let kept = rotation::keep_space(ctx, &s.space, &s.robots).await;
                out.robots.extend(kept.robots);
                out.steps.extend(kept.steps);
                for msg in kept.problems {
                    problem(msg);
                }
                out.failed_calls
                    .extend(std::iter::repeat_n(ApiOperation::Robot, kept.failed_calls));
            }
            if job.identity.is_some() {
                for (key, state) in &job.unbound {
                    match rotation::delete_unbound(h, key, state).await {
                        Ok(()) => out.deleted.push(key.clone()),
                        Err(e) => {
                            out.failed_calls.push(ApiOperation::Robot);
                            tracing::warn!(registry = %job.name, space = %key.space,
                                workspace = %key.workspace, error = %e, "robot of a removed binding could not be deleted; retrying next pass");
                        }
                    }
                }
            }
            if changed {
                out.report = probe_counting(client, &names, &mut out.failed_calls).await;
            }
        }
    } else if job.forget {
        out.deleted
            .extend(job.unbound.iter().map(|(k, _)| k.clone()));
    }
    if let Some(p) = &job.credentials_problem {
        out.report.problems.insert(0, p.clone());
    }
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A Normal Event about RegistrySpace `object` (cluster-scoped, so the Event lives in
/// pullgate's namespace), named like kubectl's: the object's name and a unique suffix.
fn rotation_event(opts: &ClusterOptions, object: &str, reason: &str, message: &str) -> Event {
    let now = Timestamp::now();
    let prefix: String = object.chars().take(200).collect();
    let name = format!(
        "{}.{:x}",
        prefix.trim_end_matches(['.', '-']),
        now.as_nanosecond()
    );
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(opts.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("pullgate.io/v1alpha1".into()),
            kind: Some("RegistrySpace".into()),
            name: Some(object.to_string()),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some("Normal".into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some("RotateRobot".into()),
        reporting_component: Some(crate::cluster::replica::events::COMPONENT.into()),
        reporting_instance: Some(opts.identity.chars().take(128).collect()),
        ..Event::default()
    }
}

/// Keeps the stored `lastProbeTime` while nothing else changed and it is recent, so an
/// unchanged status is not rewritten on every probe.
fn keep_probe_time(
    status: &mut RegistryStatus,
    previous: Option<&RegistryStatus>,
    interval: Duration,
    now: SystemTime,
) {
    let Some(prev) = previous else { return };
    let Some(prev_time) = prev.last_probe_time.as_deref() else {
        return;
    };
    let ready = |s: &RegistryStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == crate::registry::READY_CONDITION)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let same = prev.health == status.health
        && prev.message == status.message
        && prev.space_count == status.space_count
        && prev.storage_used_bytes == status.storage_used_bytes
        && prev.storage_used == status.storage_used
        && ready(prev) == ready(status);
    let age = prev_time
        .parse::<Timestamp>()
        .ok()
        .map(SystemTime::from)
        .and_then(|t| now.duration_since(t).ok());
    let fresh = age.is_some_and(|a| a < STATUS_REFRESH.max(interval));
    if same && fresh {
        status.last_probe_time = Some(prev_time.to_string());
    }
}

/// What a pass depends on besides time: Registry specs, the spaces, the API credential
/// Secrets and the stored robot Secrets. Status changes (the loop's own output) are not
/// part of it, so writing status never triggers another pass.
fn fingerprint(view: &LeaderView) -> String {
    let registries: Vec<_> = view
        .watched
        .registries
        .iter()
        .map(|(n, s)| (n, s.object.as_ref().map(|o| &o.spec)))
        .collect();
    let spaces: Vec<_> = view
        .snapshot
        .registries()
        .iter()
        .flat_map(|r| view.snapshot.spaces_of(&r.name))
        .map(|s| {
            (
                &s.registry,
                &s.space,
                s.visibility,
                &s.workspaces,
                &s.pull_secret_ref,
            )
        })
        .collect();
    let refs: Vec<_> = view
        .watched
        .ref_secrets
        .iter()
        .map(|(k, s)| (k, s.metadata.resource_version.as_deref()))
        .collect();
    let robots: Vec<_> = view
        .watched
        .robot_secrets
        .iter()
        .map(|(k, s)| (k, s.metadata.resource_version.as_deref()))
        .collect();
    format!("{registries:?}{spaces:?}{refs:?}{robots:?}")
}
