//! `pullgate overview`: the admin's view of every registry (type, URL, health, spaces,
//! storage), its spaces (visibility, workspaces, bound namespaces, what the registry
//! says about them) and every workspace (mode, namespaces, bound spaces). With `--config` every registry is probed live, concurrently, each
//! within `--probe-timeout` ([`collect`]). Without it the objects are read from the
//! cluster (kubeconfig or in-cluster) and the registry columns are the status the
//! leader recorded at its last probe ([`from_cluster`]); nothing is probed. [`render_text`]
//! prints either; the overview page (`serve --ui-listen`, [`crate::ui`]) draws the same
//! [`Overview`]. Exit 0 when printed (whatever the registries' health), 2 on bad input
//! or an unreachable cluster.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::Serialize;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use crate::api::{
    CrKind, Enforcement, Health, Registry, RegistrySpace, RegistryType, Visibility, Workspace,
};
use crate::cli::{Output, OverviewArgs};
use crate::config;
use crate::index::{NamespaceInfo, Objects, Snapshot};
use crate::input::EXIT_BAD_INPUT;
use crate::registry::{
    credentials_from_secret, human_bytes, probe, ClientOptions, Credentials, RegistryClient,
    RegistryReport, SpaceReport, READY_CONDITION,
};

const EXIT_OK: i32 = 0;

/// The whole overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub registries: Vec<RegistryRow>,
    pub workspaces: Vec<WorkspaceRow>,
}

/// One workspace: its resolved namespaces and the Private spaces bound to it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRow {
    pub name: String,
    /// Its own mode; `None` keeps the global `--mode`.
    pub enforcement: Option<Enforcement>,
    /// Member namespaces (explicit and selected), sorted.
    pub namespaces: Vec<String>,
    /// The spaces that list it, as `registry/space`.
    pub spaces: Vec<String>,
}

/// One registry and its spaces.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRow {
    pub name: String,
    #[serde(rename = "type")]
    pub registry_type: RegistryType,
    pub url: String,
    pub health: Health,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub space_count: Option<u64>,
    pub storage_used_bytes: Option<u64>,
    pub storage_used: Option<String>,
    /// Harbor: which kind of API credential is in use (AdminUser, SystemRobot, User).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_kind: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    pub spaces: Vec<SpaceRow>,
}

/// One space of a registry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceRow {
    /// The RegistrySpace object(s) declaring it.
    pub objects: Vec<String>,
    pub space: String,
    pub visibility: Visibility,
    pub workspaces: Vec<String>,
    pub bound_namespaces: u64,
    pub exists_on_registry: Option<bool>,
    pub repo_count: Option<u64>,
    pub storage_used_bytes: Option<u64>,
}

/// Runs the command, printing to stdout; returns the exit code.
pub fn run(args: &OverviewArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    let overview = match &args.config {
        Some(path) => {
            let cfg = match config::load(path) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_BAD_INPUT;
                }
            };
            runtime.block_on(collect(&cfg.objects, &cfg.secrets, args.probe_timeout))
        }
        None => match runtime.block_on(async {
            let client = kube::Client::try_default().await?;
            from_cluster(client).await
        }) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: cannot read the cluster (pass --config FILE to probe the registries of a configuration file instead): {e}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    match args.output {
        Output::Text => print!("{}", render_text(&overview)),
        Output::Json => match serde_json::to_string_pretty(&overview) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_BAD_INPUT;
            }
        },
    }
    EXIT_OK
}

/// The credentials a Registry names, from the given Secrets.
fn credentials_for(registry: &Registry, secrets: &[Secret]) -> Result<Option<Credentials>, String> {
    let Some(r) = &registry.spec.credentials_secret_ref else {
        return Ok(None);
    };
    let secret = secrets
        .iter()
        .find(|s| s.name_any() == r.name && s.namespace().as_deref() == Some(r.namespace.as_str()))
        .ok_or_else(|| {
            format!(
                "credentialsSecretRef {}/{} not found among the Secrets of the configuration",
                r.namespace, r.name
            )
        })?;
    credentials_from_secret(secret)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Probes every registry of `objects` concurrently and puts the answers beside what
/// the binding table says about their spaces.
pub async fn collect(objects: &Objects, secrets: &[Secret], timeout: Duration) -> Overview {
    let snapshot = Snapshot::build(objects, 1);
    let mut registries: Vec<&Registry> = objects.registries.iter().collect();
    registries.sort_by_key(|r| r.name_any());
    let options = ClientOptions {
        request_timeout: timeout.min(ClientOptions::default().request_timeout),
        ..ClientOptions::default()
    };
    let mut probes = tokio::task::JoinSet::new();
    for (i, registry) in registries.iter().enumerate() {
        let name = registry.name_any();
        let spaces: Vec<String> = snapshot.spaces_of(&name).map(|s| s.space.clone()).collect();
        let client = credentials_for(registry, secrets).and_then(|creds| {
            RegistryClient::new(registry, creds, &options).map_err(|e| e.to_string())
        });
        probes.spawn(async move {
            let spaces: Vec<&str> = spaces.iter().map(String::as_str).collect();
            let report = match client {
                Err(message) => RegistryReport {
                    health: Health::Unknown,
                    message,
                    ..RegistryReport::default()
                },
                Ok(client) => match tokio::time::timeout(timeout, probe(&client, &spaces)).await {
                    Ok(report) => report,
                    Err(_) => RegistryReport {
                        health: Health::Unhealthy,
                        message: format!("probe did not finish within {}s", timeout.as_secs()),
                        ..RegistryReport::default()
                    },
                },
            };
            (i, report)
        });
    }
    let mut reports: Vec<Option<RegistryReport>> = vec![None; registries.len()];
    while let Some(joined) = probes.join_next().await {
        if let Ok((i, report)) = joined {
            reports[i] = Some(report);
        }
    }
    rows(&snapshot, &registries, reports)
}

/// The overview of a cluster's objects with the status the leader recorded: the
/// Registries, RegistrySpaces, Workspaces and Namespaces are listed; an object that
/// cannot be parsed is left out with a note on stderr.
pub async fn from_cluster(client: kube::Client) -> Result<Overview, kube::Error> {
    let objects = objects_from_cluster(&client).await?;
    let snapshot = Snapshot::build(&objects, 1);
    let mut registries: Vec<&Registry> = objects.registries.iter().collect();
    registries.sort_by_key(|r| r.name_any());
    let reports = registries
        .iter()
        .map(|r| Some(recorded(r, &objects.spaces)))
        .collect();
    Ok(rows(&snapshot, &registries, reports))
}

/// The objects a binding table is built from, listed from the cluster (Registries,
/// RegistrySpaces, Workspaces, and the labels of every Namespace).
pub async fn objects_from_cluster(client: &kube::Client) -> Result<Objects, kube::Error> {
    let client = client.clone();
    let registries: Vec<Registry> = list_parsed(&client).await?;
    let spaces: Vec<RegistrySpace> = list_parsed(&client).await?;
    let workspaces: Vec<Workspace> = list_parsed(&client).await?;
    let namespaces = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|m| NamespaceInfo {
            name: m.name_any(),
            labels: m.labels().clone(),
        })
        .collect();
    Ok(Objects {
        registries,
        spaces,
        workspaces,
        namespaces,
        namespaces_complete: true,
    })
}

async fn list_parsed<K>(client: &kube::Client) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
{
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::erase::<K>(&()));
    let mut out = Vec::new();
    for o in api.list(&ListParams::default()).await?.items {
        let name = o.name_any();
        match serde_json::to_value(&o).and_then(serde_json::from_value::<K>) {
            Ok(k) => out.push(k),
            Err(e) => eprintln!(
                "note: {} {name:?} cannot be parsed and is left out: {e}",
                K::kind(&())
            ),
        }
    }
    Ok(out)
}

/// A probe report rebuilt from the recorded status of a Registry and its spaces.
fn recorded(registry: &Registry, spaces: &[RegistrySpace]) -> RegistryReport {
    let name = registry.name_any();
    let status = registry.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION);
    let mut problems = Vec::new();
    if let Some(c) = ready {
        if status.health == Health::Healthy && c.status != "True" && !c.message.is_empty() {
            problems.push(c.message.clone());
        }
    }
    if status.health == Health::Unknown && status.last_probe_time.is_none() {
        problems
            .push("not probed yet (the leader writes the status at every --probe-interval)".into());
    }
    RegistryReport {
        health: status.health,
        message: status.message.clone(),
        space_count: status.space_count,
        storage_used_bytes: status.storage_used_bytes,
        spaces: spaces
            .iter()
            .filter(|s| s.spec.registry == name)
            .map(|s| {
                let st = s.status.clone().unwrap_or_default();
                SpaceReport {
                    space: s.spec.space.clone(),
                    exists: st.exists_on_registry,
                    repo_count: st.repo_count,
                    storage_used_bytes: st.storage_used_bytes,
                }
            })
            .collect(),
        problems,
        credential_kind: status
            .credential_kind
            .as_deref()
            .and_then(|k| serde_json::from_value(serde_json::json!(k)).ok()),
    }
}

/// Rows of registries (sorted) with their reports, beside what the binding table says.
fn rows(
    snapshot: &Snapshot,
    registries: &[&Registry],
    reports: Vec<Option<RegistryReport>>,
) -> Overview {
    let rows = registries
        .iter()
        .zip(reports)
        .map(|(registry, report)| {
            let name = registry.name_any();
            let report = report.unwrap_or_default();
            let mut problems = report.problems.clone();
            problems.extend(
                snapshot
                    .problems()
                    .iter()
                    .filter(|p| p.kind == CrKind::Registry && p.name == name)
                    .map(|p| p.message.clone()),
            );
            let spaces = snapshot
                .spaces_of(&name)
                .map(|s| {
                    let found = report.space(&s.space);
                    SpaceRow {
                        objects: s.objects.clone(),
                        space: s.space.clone(),
                        visibility: s.visibility,
                        workspaces: s.workspaces.clone(),
                        bound_namespaces: snapshot.bound_namespaces(s).len() as u64,
                        exists_on_registry: found.and_then(|f| f.exists),
                        repo_count: found.and_then(|f| f.repo_count),
                        storage_used_bytes: found.and_then(|f| f.storage_used_bytes),
                    }
                })
                .collect();
            RegistryRow {
                name,
                registry_type: registry.spec.registry_type,
                url: without_userinfo(&registry.spec.url),
                health: report.health,
                message: report.message.clone(),
                space_count: report.space_count,
                storage_used_bytes: report.storage_used_bytes,
                storage_used: report.storage_used_bytes.map(human_bytes),
                credential_kind: report.credential_kind.map(|k| k.as_str().to_string()),
                problems,
                spaces,
            }
        })
        .collect();
    // One pass over the spaces (thousands of them, each naming a few workspaces).
    let mut bound: HashMap<&str, Vec<String>> = HashMap::new();
    for r in snapshot.registries() {
        for s in snapshot.spaces_of(&r.name) {
            for w in &s.workspaces {
                bound
                    .entry(w.as_str())
                    .or_default()
                    .push(format!("{}/{}", s.registry, s.space));
            }
        }
    }
    let workspaces = snapshot
        .workspaces()
        .iter()
        .map(|w| WorkspaceRow {
            name: w.name.clone(),
            enforcement: w.enforcement,
            namespaces: w.namespaces.clone(),
            spaces: bound.remove(w.name.as_str()).unwrap_or_default(),
        })
        .collect();
    Overview {
        registries: rows,
        workspaces,
    }
}

/// The URL with any `user:password@` replaced: such a Registry is refused by the
/// binding table, but its spec is shown as written, and a credential never is.
fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}<redacted>@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

/// How `overview` names a kind of Harbor API credential.
fn credential_words(kind: &str) -> String {
    match kind {
        "AdminUser" => "admin user (AdminUser)".into(),
        "SystemRobot" => "system robot with project and robot permissions (SystemRobot)".into(),
        "User" => "user without admin rights: probes only (User)".into(),
        other => other.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The text form: a table of registries, their messages, then a table of spaces.
pub fn render_text(overview: &Overview) -> String {
    if overview.registries.is_empty() {
        return "no registries\n".into();
    }
    let rows: Vec<Vec<String>> = overview
        .registries
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                format!("{:?}", r.registry_type),
                r.url.clone(),
                format!("{:?}", r.health),
                or_dash(r.space_count),
                r.storage_used.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = table(
        &["NAME", "TYPE", "URL", "HEALTH", "SPACES", "STORAGE"],
        &rows,
    );
    for r in &overview.registries {
        if !r.message.is_empty() {
            let _ = writeln!(out, "  {}: {}", r.name, r.message);
        }
        if let Some(kind) = &r.credential_kind {
            let _ = writeln!(
                out,
                "  {}: API credential: {}",
                r.name,
                credential_words(kind)
            );
        }
        for p in &r.problems {
            let _ = writeln!(out, "  {}: {p}", r.name);
        }
    }
    let spaces: Vec<Vec<String>> = overview
        .registries
        .iter()
        .flat_map(|r| {
            r.spaces.iter().map(|s| {
                vec![
                    r.name.clone(),
                    s.space.clone(),
                    format!("{:?}", s.visibility),
                    list_or_dash(&s.workspaces),
                    s.bound_namespaces.to_string(),
                    match s.exists_on_registry {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "-".into(),
                    },
                    or_dash(s.repo_count),
                    or_dash(s.storage_used_bytes.map(human_bytes)),
                ]
            })
        })
        .collect();
    out.push('\n');
    if spaces.is_empty() {
        out.push_str("no spaces\n");
    } else {
        out.push_str(&table(
            &[
                "REGISTRY",
                "SPACE",
                "VISIBILITY",
                "WORKSPACES",
                "NAMESPACES",
                "EXISTS",
                "REPOS",
                "STORAGE",
            ],
            &spaces,
        ));
    }
    if !overview.workspaces.is_empty() {
        let workspaces: Vec<Vec<String>> = overview
            .workspaces
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.enforcement
                        .map_or_else(|| "-".into(), |e| format!("{e:?}")),
                    list_or_dash(&w.namespaces),
                    list_or_dash(&w.spaces),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["WORKSPACE", "ENFORCEMENT", "NAMESPACES", "SPACES"],
            &workspaces,
        ));
    }
    out
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn a_url_never_shows_its_userinfo() {
        for (url, shown) in [
            ("https://harbor.example", "https://harbor.example"),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/"),
            (
                "https://admin:s3cret@harbor.example/x?a=b@c",
                "https://<redacted>@harbor.example/x?a=b@c",
            ),
            (
                "https://a:b@c@harbor.example",
                "https://<redacted>@harbor.example",
            ),
            (
                "user:pw@harbor.example:443",
                "<redacted>@harbor.example:443",
            ),
        ] {
            assert_eq!(without_userinfo(url), shown, "{url}");
        }
    }
}
