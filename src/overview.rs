//! `pullgate overview`: the admin's view of every registry (type, URL, health, spaces,
//! storage) and its spaces (visibility, workspaces, bound namespaces, what the registry
//! says about them). With `--config` every registry is probed live, concurrently, each
//! within `--probe-timeout`. [`collect`] gathers the data from objects and Secrets
//! wherever they come from; [`render_text`] prints it. Exit 0 when printed (whatever the
//! registries' health), 2 on bad input.

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{Health, Registry, RegistryType, Visibility};
use crate::cli::{Output, OverviewArgs};
use crate::config;
use crate::index::{Objects, Snapshot};
use crate::registry::{
    credentials_from_secret, human_bytes, probe, ClientOptions, Credentials, RegistryClient,
    RegistryReport,
};

const EXIT_OK: i32 = 0;
const EXIT_BAD_INPUT: i32 = 2;

/// The whole overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub registries: Vec<RegistryRow>,
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
    let Some(path) = &args.config else {
        eprintln!(
            "error: without --config, `pullgate overview` reads the cluster, which needs cluster mode; pass --config FILE to probe the registries of a configuration file"
        );
        return EXIT_BAD_INPUT;
    };
    let cfg = match config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
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
    let overview = runtime.block_on(collect(&cfg.objects, &cfg.secrets, args.probe_timeout));
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
                    .filter(|p| p.kind == "Registry" && p.name == name)
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
                url: registry.spec.url.clone(),
                health: report.health,
                message: report.message.clone(),
                space_count: report.space_count,
                storage_used_bytes: report.storage_used_bytes,
                storage_used: report.storage_used_bytes.map(human_bytes),
                problems,
                spaces,
            }
        })
        .collect();
    Overview { registries: rows }
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
                    if s.workspaces.is_empty() {
                        "-".into()
                    } else {
                        s.workspaces.join(",")
                    },
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
    out
}
