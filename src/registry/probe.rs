//! The registry probe and the status it turns into. [`probe`] asks a registry what the
//! Registry and RegistrySpace statuses need and always returns a
//! [`RegistryReport`]: a registry that fails is reported Unhealthy, never an error.
//! [`probe_counting`] also lists which of its calls failed (for the API error metric).
//! [`registry_status`] and [`space_status`] are pure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::harbor::{valid_project_name, CredentialKind, HarborClient};
use super::{DockerClient, RegistryClient, RegistryError};
use crate::api::{Health, RegistrySpaceStatus, RegistryStatus};

/// Condition type of Registry and RegistrySpace status.
pub const READY_CONDITION: &str = "Ready";

/// Which kind of registry API call failed: the `operation` of the API error metric, a
/// fixed set so that the metric's labels stay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiOperation {
    /// The health check (Docker `GET /v2/`, Harbor `/api/v2.0/health`), or a whole pass
    /// that got no answer in time.
    Health,
    /// The other reads of a probe: catalog, statistics, projects, current user.
    Read,
    /// Harbor project creation and visibility.
    Project,
    /// Harbor robot accounts.
    Robot,
}

impl ApiOperation {
    pub const ALL: [ApiOperation; 4] = [
        ApiOperation::Health,
        ApiOperation::Read,
        ApiOperation::Project,
        ApiOperation::Robot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiOperation::Health => "health",
            ApiOperation::Read => "read",
            ApiOperation::Project => "project",
            ApiOperation::Robot => "robot",
        }
    }
}

/// What one probe of a registry found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryReport {
    pub health: Health,
    /// Why the registry is not Healthy.
    pub message: String,
    /// Spaces found on the registry (Harbor projects, or first path components).
    pub space_count: Option<u64>,
    /// Storage used (Harbor statistics); `None` when the registry cannot tell.
    pub storage_used_bytes: Option<u64>,
    /// The asked-for spaces, in the order asked.
    pub spaces: Vec<SpaceReport>,
    /// Parts of the probe that failed on a healthy registry (e.g. credentials that are
    /// not an admin's), each saying what to fix.
    pub problems: Vec<String>,
    /// Which kind of API credential a Harbor registry was probed with (`None`: none, or
    /// not a Harbor).
    pub credential_kind: Option<CredentialKind>,
}

/// What one probe found about one space. `None` fields are unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceReport {
    pub space: String,
    pub exists: Option<bool>,
    pub repo_count: Option<u64>,
    pub storage_used_bytes: Option<u64>,
}

impl RegistryReport {
    fn unhealthy(message: String, spaces: &[&str]) -> RegistryReport {
        RegistryReport {
            health: Health::Unhealthy,
            message,
            spaces: spaces.iter().map(|s| unknown(s)).collect(),
            ..RegistryReport::default()
        }
    }

    /// The report of one space, if it was asked for.
    pub fn space(&self, space: &str) -> Option<&SpaceReport> {
        self.spaces.iter().find(|s| s.space == space)
    }
}

fn unknown(space: &str) -> SpaceReport {
    SpaceReport {
        space: space.to_string(),
        ..SpaceReport::default()
    }
}

/// Probes a registry: health, space count, storage, and each of `spaces`.
pub async fn probe(client: &RegistryClient, spaces: &[&str]) -> RegistryReport {
    probe_counting(client, spaces, &mut Vec::new()).await
}

/// [`probe`], adding to `failed` the operation of each call that failed.
pub async fn probe_counting(
    client: &RegistryClient,
    spaces: &[&str],
    failed: &mut Vec<ApiOperation>,
) -> RegistryReport {
    match client {
        RegistryClient::Harbor(h) => probe_harbor(h, spaces, failed).await,
        RegistryClient::Docker(d) => probe_docker(d, spaces, failed).await,
    }
}

async fn probe_docker(
    client: &DockerClient,
    spaces: &[&str],
    failed: &mut Vec<ApiOperation>,
) -> RegistryReport {
    if let Err(e) = client.ping().await {
        failed.push(ApiOperation::Health);
        return RegistryReport::unhealthy(e.to_string(), spaces);
    }
    let mut report = RegistryReport {
        health: Health::Healthy,
        spaces: spaces.iter().map(|s| unknown(s)).collect(),
        ..RegistryReport::default()
    };
    match client.catalog().await {
        Ok(repositories) => {
            let declared: Vec<&str> = spaces.to_vec();
            report.space_count = Some(first_components(&repositories).len() as u64);
            for s in &mut report.spaces {
                let count = repositories
                    .iter()
                    .filter(|r| owner_of(r, &declared) == Some(s.space.as_str()))
                    .count() as u64;
                s.repo_count = Some(count);
                // A Docker Registry has no empty namespaces: a space exists once it
                // holds a repository.
                s.exists = Some(count > 0);
            }
        }
        Err(e) => {
            failed.push(ApiOperation::Read);
            report.problems.push(format!("catalog: {e}"));
        }
    }
    report
}

async fn probe_harbor(
    client: &HarborClient,
    spaces: &[&str],
    failed: &mut Vec<ApiOperation>,
) -> RegistryReport {
    let health = match client.health().await {
        Ok(h) => h,
        Err(e) => {
            failed.push(ApiOperation::Health);
            return RegistryReport::unhealthy(e.to_string(), spaces);
        }
    };
    let mut report = RegistryReport {
        health: if health.is_healthy() {
            Health::Healthy
        } else {
            Health::Unhealthy
        },
        message: if health.is_healthy() {
            String::new()
        } else {
            health.problem()
        },
        spaces: spaces.iter().map(|s| unknown(s)).collect(),
        ..RegistryReport::default()
    };
    // Totals of the statistics are an admin's view; other users (a system robot too) see
    // only their part. A system robot with project permissions lists every project.
    let kind = match client.credential_kind().await {
        Ok(kind) => Some(kind),
        Err(e) => {
            // No credentials are a setting to fix (the probe reports it), not a failed call.
            if !matches!(e, RegistryError::Settings(_)) {
                failed.push(ApiOperation::Read);
            }
            report.problems.push(e.to_string());
            None
        }
    };
    report.credential_kind = kind;
    if kind == Some(CredentialKind::User) {
        report.problems.push(
            RegistryError::NotAdmin {
                username: client.username().unwrap_or_default().to_string(),
            }
            .to_string(),
        );
    }
    let admin = kind.is_some_and(CredentialKind::manages);
    if kind == Some(CredentialKind::AdminUser) {
        match client.statistics().await {
            Ok(stats) => {
                report.space_count = Some(stats.total_project_count);
                report.storage_used_bytes = Some(stats.total_storage_consumption);
            }
            Err(e) => {
                failed.push(ApiOperation::Read);
                report.problems.push(format!("statistics: {e}"));
            }
        }
    }
    let projects = match client.projects().await {
        Ok(p) => p,
        Err(e) => {
            failed.push(ApiOperation::Read);
            report.problems.push(format!("projects: {e}"));
            return report;
        }
    };
    if report.space_count.is_none() {
        report.space_count = Some(projects.len() as u64);
    }
    let by_name: BTreeMap<&str, u64> = projects
        .iter()
        .map(|p| (p.name.as_str(), p.repo_count))
        .collect();
    for s in &mut report.spaces {
        if s.space == "*" {
            // The catch-all space: every project no other space names.
            let others: Vec<&str> = spaces.iter().copied().filter(|x| *x != "*").collect();
            let repos = by_name
                .iter()
                .filter(|(name, _)| !others.contains(name))
                .map(|(_, n)| n)
                .sum();
            s.exists = Some(true);
            s.repo_count = Some(repos);
            continue;
        }
        if !valid_project_name(&s.space) {
            s.exists = Some(false);
            continue;
        }
        match by_name.get(s.space.as_str()) {
            // Only an admin sees every project; to anyone else a private project they
            // are not a member of looks absent.
            None if !admin => {}
            None => s.exists = Some(false),
            Some(repos) => {
                s.exists = Some(true);
                s.repo_count = Some(*repos);
                match client.project_summary(&s.space).await {
                    Ok(summary) => s.storage_used_bytes = summary.storage_used_bytes,
                    Err(e) => {
                        failed.push(ApiOperation::Read);
                        report.problems.push(format!("summary of {}: {e}", s.space));
                    }
                }
            }
        }
    }
    report
}

/// Distinct first path components of repository names, with their repository counts.
pub(crate) fn first_components(repositories: &[String]) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for r in repositories {
        let first = r.split('/').next().unwrap_or(r);
        *out.entry(first).or_insert(0) += 1;
    }
    out
}

/// The declared space a repository belongs to: the longest one on whole path
/// components, else `*` if declared (the same rule as image resolution).
pub(crate) fn owner_of<'a>(repository: &str, spaces: &[&'a str]) -> Option<&'a str> {
    spaces
        .iter()
        .filter(|s| **s != "*")
        .filter(|s| {
            repository == **s
                || repository
                    .strip_prefix(**s)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|s| s.len())
        .copied()
        .or_else(|| spaces.iter().find(|s| **s == "*").copied())
}

/// Bytes in binary units with one decimal: `512 B`, `50.0 MiB`, `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn timestamp(now: SystemTime) -> Timestamp {
    Timestamp::try_from(now)
        .ok()
        .and_then(|t| Timestamp::from_second(t.as_second()).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A condition whose `lastTransitionTime` stays as it was while its status does not
/// change (the Kubernetes convention), so status writes do not churn.
fn condition(
    previous: &[Condition],
    status: &str,
    reason: &str,
    message: String,
    now: SystemTime,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.type_ == READY_CONDITION && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(timestamp(now)));
    Condition {
        type_: READY_CONDITION.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: None,
    }
}

/// Other conditions of a previous status (e.g. `Conflict`, which the binding table
/// decides) are kept; Ready is replaced.
fn merge(previous: &[Condition], ready: Condition) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| c.type_ != READY_CONDITION)
        .cloned()
        .collect();
    out.insert(0, ready);
    out
}

/// The Registry status of a probe report.
pub fn registry_status(
    report: &RegistryReport,
    previous: Option<&RegistryStatus>,
    now: SystemTime,
) -> RegistryStatus {
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let ready = match report.health {
        Health::Healthy if report.problems.is_empty() => condition(
            prev,
            "True",
            "Probed",
            "registry answered its health check".into(),
            now,
        ),
        Health::Healthy => condition(
            prev,
            "False",
            "ProbeIncomplete",
            report.problems.join("; "),
            now,
        ),
        Health::Unhealthy => condition(prev, "False", "Unhealthy", report.message.clone(), now),
        Health::Unknown => condition(prev, "Unknown", "NotProbed", String::new(), now),
    };
    RegistryStatus {
        health: report.health,
        message: if report.health == Health::Healthy {
            String::new()
        } else {
            report.message.clone()
        },
        space_count: report.space_count,
        storage_used_bytes: report.storage_used_bytes,
        storage_used: report.storage_used_bytes.map(human_bytes),
        last_probe_time: Some(timestamp(now).to_string()),
        credential_kind: report.credential_kind.map(|k| k.as_str().to_string()),
        conditions: merge(prev, ready),
    }
}

/// The RegistrySpace status of one space's report (`None`: not probed). The
/// `boundNamespaces` count comes from the binding table.
pub fn space_status(
    report: Option<&SpaceReport>,
    bound_namespaces: Option<u64>,
    previous: Option<&RegistrySpaceStatus>,
    now: SystemTime,
) -> RegistrySpaceStatus {
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let exists = report.and_then(|r| r.exists);
    let ready = match exists {
        Some(true) => condition(
            prev,
            "True",
            "Exists",
            "space exists on the registry".into(),
            now,
        ),
        Some(false) => condition(
            prev,
            "False",
            "NotFound",
            "space not found on the registry".into(),
            now,
        ),
        None => condition(
            prev,
            "Unknown",
            "RegistryUnavailable",
            "the registry could not be asked about this space".into(),
            now,
        ),
    };
    RegistrySpaceStatus {
        exists_on_registry: exists,
        repo_count: report.and_then(|r| r.repo_count),
        storage_used_bytes: report.and_then(|r| r.storage_used_bytes),
        bound_namespaces,
        findings: None,
        conditions: merge(prev, ready),
    }
}
