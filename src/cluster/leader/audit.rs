//! The background audit (README, "Background audit and reports"), leader only: the findings of every namespace's
//! running workloads ([`crate::findings::judge_all`] over the current binding table),
//! kept per namespace and recomputed incrementally: a new table revision re-judges
//! every namespace, a change of the running workloads only the namespaces whose list
//! changed (the store gives each namespace a new `Arc` only when it changed). The
//! reports of a namespace are written when its findings changed, and only then
//! ([`super::reports`] builds them; their content hash, kept in an annotation, spares
//! a new leader the rewrite of what is already there).
//!
//! What it keeps: per namespace the list it last judged and its findings, and what is
//! stored of its reports (name → hash). What it hands on: an [`AuditSummary`] (counts
//! per workspace and per space, and whether they are current) for the status writer and
//! the metrics. A broken workload watch makes the findings stale: the summary says so
//! and no report is written until the watch has listed again, so a report never shows
//! results from a partial view as current. A report the apiserver refuses is logged
//! with its reason and retried with a backoff per namespace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

use super::inputs::{Inputs, Wake};
use super::reports::{self, ReportFormat, HASH_ANNOTATION, MANAGED_LABEL, MANAGED_VALUE};
use super::sync::FIELD_MANAGER;
use crate::cluster::hook::Hook;
use crate::cluster::replica::state::{LeaderView, WatchId};
use crate::cluster::replica::workloads::{NamespaceWorkloads, Running};
use crate::cluster::ClusterOptions;
use crate::findings::{self, Finding};
use crate::index::Snapshot;
use crate::policy::Policy;

/// First wait before writing a namespace's reports again after a refusal; doubled per
/// failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// A refused report is tried again at least this often (the cause may be fixed).
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Namespaces written per pass: between passes the loop looks at leadership, shutdown
/// and newer findings, so a change of 10,000 namespaces never holds it for long.
const WRITE_BATCH: usize = 100;

/// What the audit found, as the status writer and the metrics read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditSummary {
    /// Whether findings were computed (this replica leads and every kind was listed).
    pub computed: bool,
    /// Why the findings may be out of date (a workload watch is broken), if they may.
    pub stale: Option<String>,
    /// Findings per workspace (a namespace counts in each of its workspaces); the key
    /// `""` counts the namespaces in no workspace.
    pub by_workspace: BTreeMap<String, u64>,
    /// Findings per (registry, space) of the image.
    pub by_space: BTreeMap<(String, String), u64>,
    pub total: u64,
}

/// A callback told every new [`AuditSummary`] (for the metrics).
pub type AuditFn = dyn Fn(&AuditSummary) + Send + Sync;

/// Called with the audit's summary whenever it changes, and with an empty one when this
/// replica stops leading.
pub type AuditHook = Hook<AuditFn>;

/// The report format to use: the flag's, or the first whose API the apiserver serves
/// (OpenReports, then wgpolicyk8s.io), else none.
pub async fn discover(client: &Client) -> kube::Result<ReportFormat> {
    for format in [ReportFormat::OpenReports, ReportFormat::WgPolicy] {
        let Some((group, version, _, plural)) = format.resource() else {
            continue;
        };
        match client
            .list_api_group_resources(&format!("{group}/{version}"))
            .await
        {
            Ok(list) if list.resources.iter().any(|r| r.name == plural) => return Ok(format),
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ReportFormat::None)
}

/// What one leadership term keeps.
struct Term {
    /// The format in use; `None` until discovery answered.
    format: Option<ReportFormat>,
    next_discovery: Instant,
    judged_revision: Option<u64>,
    seen: HashMap<Arc<str>, NamespaceWorkloads>,
    findings: BTreeMap<Arc<str>, Vec<Finding>>,
    /// What is stored: namespace → report name → hash; `None` until listed.
    written: Option<HashMap<String, BTreeMap<String, String>>>,
    next_list: Instant,
    /// Namespaces whose reports may differ from their findings.
    dirty: BTreeSet<Arc<str>>,
    /// Namespaces whose last write failed: when to try again, and the next backoff.
    retry: HashMap<Arc<str>, (Instant, Duration)>,
}

impl Term {
    fn new() -> Term {
        let now = Instant::now();
        Term {
            format: None,
            next_discovery: now,
            judged_revision: None,
            seen: HashMap::new(),
            findings: BTreeMap::new(),
            written: None,
            next_list: now,
            dirty: BTreeSet::new(),
            retry: HashMap::new(),
        }
    }
}

pub struct Audit {
    client: Client,
    opts: ClusterOptions,
    summary: watch::Sender<Arc<AuditSummary>>,
    term: Option<Term>,
}

impl Audit {
    pub fn new(
        client: Client,
        opts: ClusterOptions,
        summary: watch::Sender<Arc<AuditSummary>>,
    ) -> Audit {
        Audit {
            client,
            opts,
            summary,
            term: None,
        }
    }

    /// Runs until shutdown; `running` is what the workload watches hold.
    pub async fn run(mut self, mut inputs: Inputs, mut running: watch::Receiver<Arc<Running>>) {
        loop {
            let mut next = None;
            if inputs.leading() && inputs.synced() {
                let view = inputs.view();
                let now_running = running.borrow_and_update().clone();
                next = inputs
                    .while_leading(self.pass(view, now_running))
                    .await
                    .flatten();
            } else if self.term.take().is_some() {
                self.publish(AuditSummary::default());
            }
            let own = async {
                match next {
                    Some(at) => tokio::select! {
                        Ok(()) = running.changed() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    },
                    None => {
                        if running.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            };
            if let Wake::Stop = inputs.wake(own).await {
                return;
            }
        }
    }

    fn publish(&self, summary: AuditSummary) {
        let changed = self.summary.send_if_modified(|s| {
            if **s == summary {
                return false;
            }
            *s = Arc::new(summary.clone());
            true
        });
        if changed {
            if let Some(hook) = &self.opts.audit_findings.0 {
                hook(&summary);
            }
        }
    }

    /// One pass: judge what changed, publish the summary, write the reports that are
    /// due. Returns when to look again without news (a retry or the next batch).
    async fn pass(&mut self, view: Arc<LeaderView>, running: Arc<Running>) -> Option<Instant> {
        let snap = &view.snapshot;
        let term = self.term.get_or_insert_with(Term::new);
        let now = Instant::now();
        if term.format.is_none() || now >= term.next_discovery {
            Self::choose_format(&self.client, &self.opts, term).await;
        }
        if !running.synced {
            return Some(term.next_discovery);
        }
        Self::judge(&self.opts, term, snap, &running).await;
        let summary = summarize(snap, &term.findings, &running, &view.broken);
        self.publish(summary);
        let term = self.term.as_mut()?;
        let mut next = Some(term.next_discovery);
        if !running.current() || !view.broken.is_empty() {
            // Stale: the reports keep the last current findings until the watch is back.
            return next;
        }
        let wrote = Self::write(&self.client, term).await;
        next = earliest(next, wrote);
        next
    }

    /// Decides the format: the flag's, else discovery (looked at again every probe
    /// interval, so an OpenReports CRD installed later is picked up).
    async fn choose_format(client: &Client, opts: &ClusterOptions, term: &mut Term) {
        let found = match opts.reports {
            Some(f) => Ok(f),
            None => discover(client).await,
        };
        term.next_discovery = Instant::now() + opts.probe_interval;
        match found {
            Ok(f) if term.format != Some(f) => {
                tracing::info!(
                    format = f.as_str(),
                    "writing audit findings as reports of this format"
                );
                term.format = Some(f);
                term.written = None;
                term.next_list = Instant::now();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which report API the cluster serves; looking again later");
                term.next_discovery = Instant::now() + MIN_BACKOFF;
            }
        }
    }

    /// Re-judges every namespace after a table change, else the namespaces whose
    /// workloads changed; marks those whose findings changed.
    async fn judge(
        opts: &ClusterOptions,
        term: &mut Term,
        snap: &Arc<Snapshot>,
        running: &Running,
    ) {
        let all = term.judged_revision != Some(snap.revision());
        let mut todo: Vec<Todo> = Vec::new();
        for (ns, ws) in &running.namespaces {
            let same = term.seen.get(ns).is_some_and(|s| Arc::ptr_eq(s, ws));
            if all || !same {
                todo.push((ns.clone(), Some(ws.clone())));
            }
        }
        for ns in term.seen.keys() {
            if !running.namespaces.contains_key(ns) {
                todo.push((ns.clone(), None));
            }
        }
        if todo.is_empty() {
            term.judged_revision = Some(snap.revision());
            return;
        }
        let (snap2, policy) = (snap.clone(), opts.policy.clone());
        // At scale this takes a while: on the blocking pool, beside the admission work.
        let judged = tokio::task::spawn_blocking(move || judge_namespaces(&snap2, &policy, todo))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        for (ns, ws, found) in judged {
            match ws {
                Some(ws) => {
                    term.seen.insert(ns.clone(), ws);
                }
                None => {
                    term.seen.remove(&ns);
                }
            }
            let old = term.findings.get(&ns).map_or(&[][..], Vec::as_slice);
            if old != found.as_slice() {
                term.dirty.insert(ns.clone());
                if found.is_empty() {
                    term.findings.remove(&ns);
                } else {
                    term.findings.insert(ns, found);
                }
            }
        }
        term.judged_revision = Some(snap.revision());
    }

    /// Writes the reports of up to [`WRITE_BATCH`] due namespaces; returns when to go on.
    async fn write(client: &Client, term: &mut Term) -> Option<Instant> {
        let format = match term.format {
            None => return None,
            Some(ReportFormat::None) => {
                term.dirty.clear();
                return None;
            }
            Some(f) => f,
        };
        let (group, version, kind, plural) = format.resource()?;
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        };
        if term.written.is_none() {
            if Instant::now() < term.next_list {
                return Some(term.next_list);
            }
            match list_written(client, &ar).await {
                Ok(w) => {
                    // Every namespace with reports or findings is compared once.
                    term.dirty.extend(w.keys().map(|ns| Arc::from(ns.as_str())));
                    term.dirty.extend(term.findings.keys().cloned());
                    term.written = Some(w);
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind, "cannot list the reports already written; retrying");
                    term.next_list = Instant::now() + MIN_BACKOFF;
                    return Some(term.next_list);
                }
            }
        }
        let now = Instant::now();
        let due: Vec<Arc<str>> = term
            .dirty
            .iter()
            .filter(|ns| term.retry.get(*ns).is_none_or(|(at, _)| *at <= now))
            .take(WRITE_BATCH)
            .cloned()
            .collect();
        let seconds = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        for ns in due {
            let found = term.findings.get(&ns).map_or(&[][..], Vec::as_slice);
            let desired = reports::build(format, &ns, found, seconds);
            let stored = term.written.as_mut()?.entry(ns.to_string()).or_default();
            match write_namespace(client, &ar, &ns, desired, stored).await {
                Ok(()) => {
                    term.dirty.remove(&ns);
                    term.retry.remove(&ns);
                }
                Err(e) => {
                    let backoff = term.retry.get(&ns).map_or(MIN_BACKOFF, |(_, b)| *b);
                    tracing::warn!(namespace = %ns, kind, error = %e, "report write refused; retrying in {backoff:?}");
                    term.retry.insert(
                        ns.clone(),
                        (Instant::now() + backoff, (backoff * 2).min(MAX_BACKOFF)),
                    );
                }
            }
        }
        if let Some(w) = term.written.as_mut() {
            w.retain(|_, reports| !reports.is_empty());
        }
        let now = Instant::now();
        term.dirty
            .iter()
            .map(|ns| term.retry.get(ns).map_or(now, |(at, _)| *at))
            .min()
    }
}

/// A namespace to judge: its workloads now, or `None` when it has none left.
pub type Todo = (Arc<str>, Option<NamespaceWorkloads>);

/// Judges each namespace's workloads on their own (owners live in the namespace of what
/// they own, so this equals judging them all at once): the audit's one computation.
pub fn judge_namespaces(
    snap: &Snapshot,
    policy: &Policy,
    todo: Vec<Todo>,
) -> Vec<(Arc<str>, Option<NamespaceWorkloads>, Vec<Finding>)> {
    todo.into_iter()
        .map(|(ns, ws)| {
            let found = match &ws {
                Some(ws) => findings::judge_all(snap, policy, ws),
                None => Vec::new(),
            };
            (ns, ws, found)
        })
        .collect()
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The reports pullgate has stored: namespace → name → hash (metadata only).
async fn list_written(
    client: &Client,
    ar: &ApiResource,
) -> kube::Result<HashMap<String, BTreeMap<String, String>>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    let mut out: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut params = ListParams::default()
        .labels(&format!("{MANAGED_LABEL}={MANAGED_VALUE}"))
        .limit(500);
    loop {
        let page = api.list_metadata(&params).await?;
        for m in &page.items {
            let ns = m.metadata.namespace.clone().unwrap_or_default();
            let name = m.metadata.name.clone().unwrap_or_default();
            let hash = m
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HASH_ANNOTATION).cloned())
                .unwrap_or_default();
            out.entry(ns).or_default().insert(name, hash);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return Ok(out),
        }
    }
}

/// Brings one namespace's stored reports to `desired`: applies those whose hash
/// differs, deletes those no longer wanted. `stored` follows every success.
async fn write_namespace(
    client: &Client,
    ar: &ApiResource,
    ns: &str,
    desired: Vec<reports::ReportObject>,
    stored: &mut BTreeMap<String, String>,
) -> kube::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for r in &desired {
        if stored.get(&r.name) == Some(&r.hash) {
            continue;
        }
        api.patch(&r.name, &params, &Patch::Apply(&r.object))
            .await?;
        stored.insert(r.name.clone(), r.hash.clone());
    }
    let gone: Vec<String> = stored
        .keys()
        .filter(|n| !desired.iter().any(|r| &r.name == *n))
        .cloned()
        .collect();
    for name in gone {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
        stored.remove(&name);
    }
    Ok(())
}

/// Counts per workspace and per space, and whether they are current: not while a
/// workload watch or a watch the binding table is built from (`table_broken`) is broken.
pub fn summarize(
    snap: &Snapshot,
    findings: &BTreeMap<Arc<str>, Vec<Finding>>,
    running: &Running,
    table_broken: &[WatchId],
) -> AuditSummary {
    let mut s = AuditSummary {
        computed: true,
        ..AuditSummary::default()
    };
    let broken: Vec<&str> = table_broken
        .iter()
        .map(WatchId::resource)
        .chain(running.broken.iter().map(|k| k.as_str()))
        .collect();
    if !broken.is_empty() {
        s.stale = Some(format!(
            "the watch of {} is broken; findings may be out of date until it lists again",
            broken.join(", ")
        ));
    }
    for w in snap.workspaces() {
        s.by_workspace.insert(w.name.clone(), 0);
    }
    s.by_workspace.insert(String::new(), 0);
    for (ns, fs) in findings {
        let n = fs.len() as u64;
        s.total += n;
        let mut any = false;
        for w in snap.workspaces_of(ns) {
            *s.by_workspace.entry(w.name.clone()).or_default() += n;
            any = true;
        }
        if !any {
            *s.by_workspace.entry(String::new()).or_default() += n;
        }
        for f in fs {
            if let (Some(r), Some(sp)) = (&f.registry, &f.space) {
                *s.by_space.entry((r.clone(), sp.clone())).or_default() += 1;
            }
        }
    }
    s
}
