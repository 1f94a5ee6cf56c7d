//! `pullgate audit` (README, "Background audit and reports"): the findings on running workloads, judged by
//! [`findings`] with the admission decision, printed as a table or one JSON document;
//! exit 0 when there are none, 1 when there are, 2 on bad input. With `--what-if
//! PROPOSED` it prints the workloads whose verdict changes between the current table and
//! a proposed configuration, newly denied first; exit 1 if any is newly denied.
//!
//! The table comes from `--config FILE`, else from the cluster; the workloads from `-f
//! PATH...` (read by the shared [`input`] loader: kubectl `List` dumps, directories,
//! `-`), else from the cluster. In files, an object of an unknown kind or one that
//! cannot be read is bad input; other known kinds (Services, ConfigMaps,
//! custom resources) are counted as not judged. In the cluster, an object that cannot
//! be read is a finding of its own ("unreadable").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;

use crate::cli::{AuditArgs, Output};
use crate::config;
use crate::findings::{self, workload, Change, Content, Finding, Workload};
use crate::index::{Objects, Snapshot};
use crate::input::{self, escape, Class};
use crate::object::Kind;

pub const EXIT_NONE: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub use crate::input::EXIT_BAD_INPUT;

/// Objects asked for per page when listing workloads from the cluster: pages keep
/// the apiserver's answers (and ours) small at 100,000 pods.
const PAGE: u32 = 500;

/// Runs the command, printing to stdout; returns the exit code.
pub fn run(args: &AuditArgs) -> i32 {
    input::finish(run_inner(args))
}

/// The workloads of the input and what else it held.
#[derive(Debug, Default)]
pub struct Workloads {
    pub workloads: Vec<Workload>,
    /// Objects of known kinds that hold no pod (Services, custom resources, …).
    pub not_judged: usize,
}

fn run_inner(args: &AuditArgs) -> Result<(String, i32), Vec<String>> {
    let one = |e: String| vec![e];
    let stdin = |p: &Path| p.as_os_str() == "-";
    let readers = args.config.iter().filter(|p| stdin(p)).count()
        + usize::from(args.files.iter().any(|p| stdin(p)))
        + args.what_if.iter().filter(|p| stdin(p)).count();
    if readers > 1 {
        return Err(one(
            "stdin (-) can be read for one of --config, -f and --what-if, not several".into(),
        ));
    }
    let configured = match &args.config {
        Some(path) => Some(load_objects(path, "--config")?),
        None => None,
    };
    let proposed = match &args.what_if {
        Some(path) => Some(load_objects(path, "--what-if")?),
        None => None,
    };
    let from_files = match args.files.is_empty() {
        true => None,
        false => Some(workloads_from_files(&args.files)?),
    };
    let (from_cluster, running) = match (configured.is_none(), from_files.is_none()) {
        (false, false) => (None, None),
        (objects, workloads) => read_cluster(args, objects, workloads)?,
    };
    let current = configured.or(from_cluster).unwrap_or_default();
    let from_files = from_files.or(running).unwrap_or_default();
    let policy = args.policy.policy(&args.pullgate_namespace);
    let before = built(&current, "current");
    Ok(match proposed {
        None => {
            let found = findings::judge_all(&before, &policy, &from_files.workloads);
            let code = if found.is_empty() {
                EXIT_NONE
            } else {
                EXIT_FINDINGS
            };
            (findings_output(&found, &from_files, args.output), code)
        }
        Some(proposed) => {
            let after = built(&proposed, "proposed");
            let changes = findings::diff(&before, &after, &policy, &from_files.workloads);
            let code = if changes.iter().any(Change::is_newly_denied) {
                EXIT_FINDINGS
            } else {
                EXIT_NONE
            };
            (
                what_if_output(&changes, from_files.workloads.len(), args.output),
                code,
            )
        }
    })
}

/// A configuration's objects; `flag` names it in errors.
fn load_objects(path: &Path, flag: &str) -> Result<Objects, Vec<String>> {
    config::load(path)
        .map(|c| c.objects)
        .map_err(|e| vec![format!("{flag}: {e}")])
}

/// The table of a configuration; its problems are warnings on stderr.
fn built(objects: &Objects, which: &str) -> Snapshot {
    let snapshot = Snapshot::build(objects, 1);
    for p in snapshot.problems() {
        eprintln!(
            "warning: {which} configuration: {} {:?}: {}",
            p.kind,
            p.name,
            escape(&p.message)
        );
    }
    snapshot
}

/// The workloads of input files. Objects of unknown kinds and objects that cannot be
/// read are bad input: every such problem is returned.
pub fn workloads_from_files(paths: &[PathBuf]) -> Result<Workloads, Vec<String>> {
    let objects = input::load(paths).map_err(|e| vec![e.to_string()])?;
    if objects.is_empty() {
        return Err(vec![
            "the input holds no objects (give workloads with -f FILE, DIR or -)".into(),
        ]);
    }
    workloads_from_objects(&objects)
}

/// [`workloads_from_files`] over objects already read.
pub fn workloads_from_objects(objects: &[input::Object]) -> Result<Workloads, Vec<String>> {
    let mut out = Workloads::default();
    let mut errors = Vec::new();
    for o in objects {
        let (api_version, kind) = (o.api_version(), o.kind());
        match input::classify(api_version, kind) {
            Class::Judged(k) => {
                let w = workload::from_value(k, &o.value);
                match &w.content {
                    Content::Unreadable(why) => {
                        errors.push(o.error(format!("invalid {kind}: {why}")).0)
                    }
                    Content::Images(_) => out.workloads.push(w),
                }
            }
            Class::BuiltIn | Class::Custom => out.not_judged += 1,
            Class::Unknown => errors.push(
                o.error(format!(
                    "unknown kind {kind:?} of apiVersion {api_version:?}: not a Kubernetes kind pullgate knows, nor one of a custom API group (whose name has a dot)"
                ))
                .0,
            ),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Reads what the files do not give from the cluster: the table's objects when
/// `objects`, the workloads when `workloads`.
fn read_cluster(
    args: &AuditArgs,
    objects: bool,
    workloads: bool,
) -> Result<(Option<Objects>, Option<Workloads>), Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| vec![format!("cannot start the async runtime: {e}")])?;
    runtime
        .block_on(async {
            let client = client(args.kubeconfig.as_deref()).await?;
            let o = match objects {
                true => Some(crate::overview::objects_from_cluster(&client).await?),
                false => None,
            };
            let w = match workloads {
                true => Some(workloads_from_cluster(&client).await?),
                false => None,
            };
            Ok::<_, anyhow::Error>((o, w))
        })
        .map_err(|e| {
            vec![format!(
                "cannot read the cluster (give --config FILE and -f PATH to audit files instead): {e:#}"
            )]
        })
}

async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Client::try_default().await?);
    };
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Every workload of the cluster, listed page by page, kind by kind.
pub async fn workloads_from_cluster(client: &kube::Client) -> Result<Workloads, kube::Error> {
    let mut out = Workloads::default();
    for kind in Kind::ALL {
        // The same resource the replicas' workload watches read.
        let resource = crate::cluster::replica::workloads::resource(kind);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = api.list(&params).await?;
            for o in &page.items {
                let value = serde_json::to_value(o).unwrap_or_default();
                out.workloads.push(workload::from_value(kind, &value));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(out)
}

/// One row of the findings table, and of the JSON output.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FindingsDocument<'a> {
    findings: &'a [Finding],
    workloads: usize,
    workloads_with_findings: usize,
    not_judged: usize,
}

fn findings_output(found: &[Finding], input: &Workloads, output: Output) -> String {
    let mut with_findings: Vec<(&str, Kind, &str)> = found
        .iter()
        .map(|f| (f.namespace.as_str(), f.kind, f.name.as_str()))
        .collect();
    with_findings.dedup();
    let doc = FindingsDocument {
        findings: found,
        workloads: input.workloads.len(),
        workloads_with_findings: with_findings.len(),
        not_judged: input.not_judged,
    };
    if output == Output::Json {
        return json(&doc);
    }
    let mut s = String::new();
    if !found.is_empty() {
        let header = [
            "NAMESPACE",
            "KIND",
            "NAME",
            "CONTAINER",
            "IMAGE",
            "REASON",
            "MODE",
        ];
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|f| {
                vec![
                    f.namespace.clone(),
                    f.kind.to_string(),
                    f.name.clone(),
                    f.container.clone(),
                    f.image.clone(),
                    f.reason.to_string(),
                    format!("{:?}", f.mode),
                ]
            })
            .collect();
        s.push_str(&table(&header, &rows));
    }
    let _ = write!(
        s,
        "{} findings in {} of {} workloads",
        found.len(),
        doc.workloads_with_findings,
        doc.workloads
    );
    if doc.not_judged > 0 {
        let _ = write!(s, ", {} objects not judged (no pods)", doc.not_judged);
    }
    s.push('\n');
    s
}

/// A change of one workload in the JSON output.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeDocument<'a> {
    kind: Kind,
    namespace: &'a str,
    name: &'a str,
    /// `newlyDenied` or `newlyAllowed`.
    change: &'static str,
    newly_denied: &'a [Finding],
    newly_allowed: &'a [Finding],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WhatIfDocument<'a> {
    changes: Vec<ChangeDocument<'a>>,
    workloads: usize,
    newly_denied: usize,
    newly_allowed: usize,
}

fn what_if_output(changes: &[Change<'_>], workloads: usize, output: Output) -> String {
    let denied = changes.iter().filter(|c| c.is_newly_denied()).count();
    let doc = WhatIfDocument {
        changes: changes
            .iter()
            .map(|c| ChangeDocument {
                kind: c.workload.kind,
                namespace: &c.workload.namespace,
                name: &c.workload.name,
                change: if c.is_newly_denied() {
                    "newlyDenied"
                } else {
                    "newlyAllowed"
                },
                newly_denied: &c.newly_denied,
                newly_allowed: &c.newly_allowed,
            })
            .collect(),
        workloads,
        newly_denied: denied,
        newly_allowed: changes.len() - denied,
    };
    if output == Output::Json {
        return json(&doc);
    }
    let mut s = String::new();
    for c in changes {
        let label = if c.is_newly_denied() {
            "NEWLY DENIED "
        } else {
            "NEWLY ALLOWED"
        };
        let w = c.workload;
        let _ = writeln!(
            s,
            "{label} {} {}/{}",
            w.kind,
            escape(&w.namespace),
            escape(&w.name)
        );
        for f in &c.newly_denied {
            let _ = writeln!(s, "  deny  {}", escape(&f.message));
        }
        for f in &c.newly_allowed {
            let _ = writeln!(
                s,
                "  allow image {:?} ({} {:?})",
                escape(&f.image),
                f.location.map(|l| l.to_string()).unwrap_or_default(),
                escape(&f.container)
            );
        }
    }
    let _ = writeln!(
        s,
        "{denied} workloads newly denied, {} newly allowed, of {workloads} workloads",
        doc.newly_allowed
    );
    s
}

fn json<T: Serialize>(doc: &T) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(doc).unwrap_or_default()
    )
}

/// Columns padded to their widest cell; every cell is escaped.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}
