//! `pullgate serve`: wires a binding-table source (the `--config` file reloaded on
//! change, or the cluster watches), the admission handler, the audit log and the TLS
//! server together, and shuts them down together on SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::admission::{Admission, Outcome, Webhook};
use crate::cli::ServeArgs;
use crate::cluster::{self, ClusterOptions, DenialEvents, Hook, RobotHooks};
use crate::config;
use crate::index::{Snapshot, Table};
use crate::provider::issuer::TokenIssuer;
use crate::server::credentials::Issuer;
use crate::server::{self, Handler, Health, Metrics, ServerOptions, TlsSource};
use crate::ui::{self, denials::RecentDenials};
use crate::whatif;

/// How long a changed config file must stay the same before it is loaded.
const CONFIG_SETTLE: Duration = Duration::from_millis(50);

/// How often the binding-table metrics (revision, staleness, registries) are refreshed.
const METRICS_TICK: Duration = Duration::from_secs(1);

/// The admission handler the server calls: review, then log the audit record and
/// report a denied workload. The server sends the outcome and counts it.
pub struct AdmissionHandler {
    pub admission: Admission,
    /// Cluster mode: denials of workloads become Events (written by this replica).
    pub events: Option<DenialEvents>,
    /// With `--ui-listen`: the latest denials, for the overview page.
    pub denials: Option<Arc<RecentDenials>>,
}

impl Handler for AdmissionHandler {
    fn handle(&self, webhook: Webhook, body: &[u8]) -> Outcome {
        let outcome = self.admission.review(webhook, body);
        if let Some(record) = &outcome.audit {
            record.emit();
            if let Some(denials) = &self.denials {
                denials.record(record);
            }
        }
        if let (Some(events), Some(d)) = (&self.events, &outcome.event) {
            events.report(d.kind.as_str(), &d.namespace, &d.name, &d.message);
        }
        outcome
    }
}

/// The `serve` command: logging, a runtime, then [`run`]. Returns the exit code.
pub fn main(args: ServeArgs) -> i32 {
    let _guard = crate::logging::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            error!("{e:#}");
            1
        }
    }
}

/// Runs until SIGTERM/SIGINT, then drains.
pub async fn run(args: ServeArgs) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let pull = args.pull_credentials.pull_credentials;
    if pull.provider() && args.config.is_some() {
        anyhow::bail!("--pull-credentials={pull:?} needs cluster mode: the tokens of POST /credentials are checked with the apiserver's TokenReview (run without --config, or with --pull-credentials=secrets)");
    }
    let (table, events, issuer, running) = match &args.config {
        Some(path) => {
            // Standalone mode watches no workloads, so no change warns there.
            let none: Arc<dyn whatif::Running> = Arc::new(whatif::Shared::default());
            (
                standalone(path, &args, &health, &metrics)?,
                None,
                None,
                none,
            )
        }
        None => {
            let workloads = cluster::RunningWorkloads::default();
            let (table, events, issuer) = cluster_mode(
                &args,
                &health,
                &metrics,
                stop_tx.clone(),
                failed.clone(),
                workloads.clone(),
            )
            .await?;
            let running: Arc<dyn whatif::Running> = Arc::new(workloads);
            (table, Some(events), issuer, running)
        }
    };
    tokio::spawn(publish_table_metrics(table.clone(), metrics.clone()));
    let denials = match args.ui_listen {
        Some(addr) => {
            let stop = stopped(stop_tx.subscribe());
            let findings: Arc<dyn ui::FindingsSource> = Arc::new(ui::findings::Judged {
                running: running.clone(),
                table: table.clone(),
                policy: args.policy.policy(&args.pullgate_namespace),
            });
            Some(
                ui::start(
                    addr,
                    args.config.as_deref(),
                    args.policy.mode,
                    Some(findings),
                    stop,
                )
                .await?,
            )
        }
        None => None,
    };
    let handler = Arc::new(AdmissionHandler {
        admission: Admission {
            policy: args.policy.policy(&args.pullgate_namespace),
            // `--pull-credentials provider`: the kubelet asks POST /credentials instead.
            pull_secret_name: if pull.secrets() {
                args.pull_secret_name.clone()
            } else {
                String::new()
            },
            table,
            // Cluster mode: this replica's watches of the running workloads.
            changes: Some(Arc::new(whatif::Warnings(running))),
        },
        events,
        denials,
    });
    let mut options = server_options(&args);
    options.credentials = issuer;
    options.credential_rate_per_node = args.pull_credentials.node_credential_rate;
    options.credential_burst_per_node = args.pull_credentials.node_credential_burst;
    server::serve(options, handler, health, metrics, stopped(stop_rx)).await?;
    if failed.load(std::sync::atomic::Ordering::Relaxed) {
        anyhow::bail!("cluster mode failed; exiting so that the replica is restarted");
    }
    Ok(())
}

/// Standalone: the table comes from the file, reloaded when it changes. There is no
/// leader and no staleness bound: `pullgate_leader` and `pullgate_binding_table_stale`
/// stay 0; a file that cannot be loaded is counted and shows in the staleness seconds.
fn standalone(
    path: &std::path::Path,
    args: &ServeArgs,
    health: &Health,
    metrics: &Arc<Metrics>,
) -> Result<Arc<Table>> {
    let (cfg, content) = config::load_bytes(path).context("loading --config")?;
    let snapshot = Snapshot::build(&cfg.objects, 1);
    log_problems(&snapshot);
    let table = Arc::new(Table::new(snapshot));
    health.set_synced(true);
    tokio::spawn(watch_config(
        path.to_path_buf(),
        table.clone(),
        metrics.clone(),
        args.reload_interval,
        content,
    ));
    info!(path = %path.display(), "standalone mode");
    Ok(table)
}

/// Cluster mode: the table follows the cluster; ready after the first full sync.
async fn cluster_mode(
    args: &ServeArgs,
    health: &Health,
    metrics: &Arc<Metrics>,
    stop: watch::Sender<bool>,
    failed: Arc<std::sync::atomic::AtomicBool>,
    running: cluster::RunningWorkloads,
) -> Result<(Arc<Table>, DenialEvents, Option<Arc<dyn Issuer>>)> {
    let client = kube::Client::try_default()
        .await
        .context("cluster mode needs in-cluster config or a kubeconfig (or run standalone with --config FILE)")?;
    let identity = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("pullgate-{}", std::process::id()));
    let mut opts = ClusterOptions::new(&args.pullgate_namespace, &identity);
    opts.pull_secret_name = args.pull_secret_name.clone();
    opts.max_staleness = args.max_staleness;
    opts.probe_interval = args.probe_interval;
    opts.cluster_name = args.cluster_name.clone().unwrap_or_default();
    opts.robot_lifetime = args.robot_lifetime;
    opts.robot_rotation_grace = args.robot_rotation_grace;
    opts.managed_harbor = args.managed_harbor == crate::cli::ManagedHarbor::Auto;
    let (rotated, expiry) = (metrics.clone(), metrics.clone());
    opts.robot_hooks = RobotHooks {
        rotated: Some(Arc::new(move |_registry: &str| {
            rotated.inc_robot_rotation()
        })),
        earliest_expiry: Some(Arc::new(move |at: Option<i64>| {
            expiry.set_robot_earliest_expiry(at)
        })),
    };
    let m = metrics.clone();
    opts.registry_health = Hook(Some(Arc::new(move |name: &str, healthy: bool| {
        m.set_registry_health(name, healthy)
    })));
    let m = metrics.clone();
    opts.pull_secret_syncs = Hook(Some(Arc::new(move |result: &str| {
        m.inc_pull_secret_sync(result)
    })));
    let m = metrics.clone();
    opts.leadership = Hook(Some(Arc::new(move |leading: bool| m.set_leader(leading))));
    let m = metrics.clone();
    opts.registry_api_errors = Hook(Some(Arc::new(
        move |name: &str, operation: crate::registry::ApiOperation| {
            m.inc_registry_api_error(name, operation.as_str())
        },
    )));
    opts.policy = args.policy.policy(&args.pullgate_namespace);
    opts.write_rate = cluster::WriteRate {
        qps: args.kube_api_qps,
        burst: args.kube_api_burst,
    };
    let m = metrics.clone();
    opts.write_wait = cluster::Hook(Some(Arc::new(move |waited: Duration| {
        m.observe_kube_api_write_wait(waited)
    })));
    opts.reports = args.reports;
    opts.running = running;
    let m = metrics.clone();
    opts.audit_findings = Hook(Some(Arc::new(move |s: &cluster::AuditSummary| {
        m.set_audit_findings(&s.by_workspace, s.stale.is_some())
    })));
    let table = Arc::new(Table::new(Snapshot::default()));
    let pull = &args.pull_credentials;
    opts.write_pull_secrets = pull.pull_credentials.secrets();
    let issuer = pull.pull_credentials.provider().then(|| {
        let issuer = TokenIssuer::new(
            client.clone(),
            &pull.token_audience,
            table.clone(),
            &args.policy.policy(&args.pullgate_namespace),
            pull.credential_cache_duration,
        );
        opts.credentials = issuer.hook();
        Arc::new(issuer) as Arc<dyn Issuer>
    });
    let (synced_tx, mut synced_rx) = watch::channel(false);
    let ready = health.clone();
    tokio::spawn(async move {
        if synced_rx.wait_for(|s| *s).await.is_ok() {
            ready.set_synced(true);
            info!("binding table synced; ready");
        }
    });
    let (events, queue) = cluster::denial_events();
    let run = cluster::run(
        opts,
        client,
        table.clone(),
        synced_tx,
        queue,
        stopped(stop.subscribe()),
    );
    let shared = table.clone();
    tokio::spawn(async move {
        if let Err(e) = run.await {
            // Nothing keeps the table current any more: refuse Private grants at once
            // and drain, so the replica is restarted rather than serving a frozen table.
            error!("cluster mode stopped: {e:#}");
            shared.set_stale(true);
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = stop.send(true);
        }
    });
    info!(identity, "cluster mode");
    Ok((table, events, issuer))
}

/// Resolves when the stop flag turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub fn server_options(args: &ServeArgs) -> ServerOptions {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => TlsSource::SelfSigned {
            ca_out: args.ca_out.clone(),
        },
    };
    let mut opts = ServerOptions::new(args.listen, args.probe_listen, tls);
    opts.max_in_flight = args.max_in_flight;
    opts.max_body_memory = args.max_body_memory;
    opts.drain_period = args.drain_period;
    opts.cert_reload_interval = args.reload_interval;
    opts
}

/// Keeps the binding-table metrics current: revision and age, staleness, and the
/// registries that have series.
async fn publish_table_metrics(table: Arc<Table>, metrics: Arc<Metrics>) {
    loop {
        let snapshot = table.load();
        metrics.set_binding_table(snapshot.revision(), table.built_at());
        metrics.set_staleness(table.is_stale(), table.behind_since());
        metrics.set_registries(snapshot.registries().iter().map(|r| r.name.as_str()));
        metrics.set_workspaces(snapshot.workspaces().iter().map(|w| w.name.as_str()));
        tokio::time::sleep(METRICS_TICK).await;
    }
}

/// What the config poll remembers from one poll to the next.
struct ConfigPoll {
    /// The content last read, good or bad: a changed file is loaded once, and a bad one
    /// is reported (and counted) once.
    last: config::Content,
    /// Whether `last` could not be loaded.
    last_failed: bool,
    /// The read error last reported, so an unreadable file is reported once.
    read_error: Option<String>,
}

/// Polls the config file and publishes a new snapshot when its content differs from
/// `last` (the files the current table came from). An invalid or unreadable file keeps
/// the last good table, logs why and counts a reload failure; the table is marked as
/// behind its source until the file loads again.
async fn watch_config(
    path: PathBuf,
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    every: Duration,
    last: config::Content,
) {
    let mut poll = ConfigPoll {
        last,
        last_failed: false,
        read_error: None,
    };
    loop {
        tokio::time::sleep(every).await;
        // Reading, comparing and (at scale) rebuilding take milliseconds: on the blocking
        // pool, so that the runtime's workers keep answering reviews meanwhile.
        let (path, table, metrics) = (path.clone(), table.clone(), metrics.clone());
        let reload =
            tokio::task::spawn_blocking(move || reload_config(&path, &table, &metrics, poll));
        poll = reload
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
}

/// One poll of [`watch_config`]: publishes the file if it differs from the last content.
fn reload_config(
    path: &Path,
    table: &Table,
    metrics: &Metrics,
    mut poll: ConfigPoll,
) -> ConfigPoll {
    let content = match config::read_content(path) {
        Ok(c) => c,
        Err(e) => {
            let error = e.to_string();
            if poll.read_error.as_deref() != Some(error.as_str()) {
                warn!(path = %path.display(), error = %e, "cannot read config; keeping the last good binding table");
                metrics.inc_config_reload_failure();
                poll.read_error = Some(error);
            }
            mark_behind(table);
            return poll;
        }
    };
    poll.read_error = None;
    if content != poll.last {
        // A file being rewritten in place (truncated, then filled) can be read half-way,
        // and a prefix of a config may well parse: a change counts once a second read,
        // a moment later, agrees. Otherwise the next poll looks again.
        std::thread::sleep(CONFIG_SETTLE);
        if config::read_content(path).ok().as_ref() != Some(&content) {
            return poll;
        }
        match config::parse_content(&content) {
            Ok(cfg) => {
                let revision = table.load().revision() + 1;
                let snapshot = Snapshot::build(&cfg.objects, revision);
                log_problems(&snapshot);
                table.store(snapshot);
                poll.last_failed = false;
                info!(path = %path.display(), revision, "config reloaded");
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "invalid config; keeping the last good binding table");
                metrics.inc_config_reload_failure();
                poll.last_failed = true;
            }
        }
        poll.last = content;
    }
    if poll.last_failed {
        mark_behind(table);
    } else {
        table.set_behind_since(None);
    }
    poll
}

/// Marks the table as behind its source from now, unless it already is.
fn mark_behind(table: &Table) {
    if table.behind_since().is_none() {
        table.set_behind_since(Some(SystemTime::now()));
    }
}

fn log_problems(snapshot: &Snapshot) {
    for p in snapshot.problems() {
        warn!(kind = p.kind.as_str(), name = %p.name, "{}", p.message);
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM received; draining"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received; draining"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;

    const REGISTRY: &[u8] = b"apiVersion: pullgate.io/v1alpha1\nkind: Registry\nmetadata: {name: local}\nspec: {type: DockerRegistry, url: http://127.0.0.1:5000}\n";

    /// A file that cannot be loaded counts once per failure (not per poll), keeps the
    /// table and marks it as behind until a good file loads; never stale (standalone has
    /// no staleness bound).
    #[test]
    fn config_reload_failures_are_counted_once_and_mark_the_table_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, REGISTRY).unwrap();
        let table = Table::new(Snapshot::build(&Default::default(), 1));
        let metrics = Metrics::new();
        let failures = "pullgate_config_reload_failures_total";
        let mut poll = ConfigPoll {
            last: Default::default(),
            last_failed: false,
            read_error: None,
        };
        poll = reload_config(&path, &table, &metrics, poll);
        assert_eq!(table.load().revision(), 2);
        assert_eq!(table.behind_since(), None);

        std::fs::write(&path, b"kind: [unclosed").unwrap();
        for _ in 0..3 {
            poll = reload_config(&path, &table, &metrics, poll);
        }
        assert_eq!(metrics.sample(failures), 1.0);
        let since = table
            .behind_since()
            .expect("behind while the file is invalid");
        assert_eq!(table.load().revision(), 2, "the last good table stays");

        std::fs::remove_file(&path).unwrap();
        for _ in 0..3 {
            poll = reload_config(&path, &table, &metrics, poll);
        }
        assert_eq!(metrics.sample(failures), 2.0);
        assert_eq!(
            table.behind_since(),
            Some(since),
            "behind since the first failure"
        );

        std::fs::write(&path, REGISTRY).unwrap();
        poll = reload_config(&path, &table, &metrics, poll);
        assert_eq!(table.behind_since(), None);
        assert_eq!(table.load().revision(), 3);
        let _ = poll;
        assert!(!table.is_stale());
        assert_eq!(metrics.sample(failures), 2.0);
    }

    /// The registry module's operations are the metric's label values, pre-made per
    /// registry.
    #[test]
    fn registry_operations_are_the_metric_labels() {
        let names: Vec<&str> = crate::registry::ApiOperation::ALL
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(names, crate::server::metrics::REGISTRY_OPERATIONS);
    }

    /// The reload reads the file off the runtime: a config path that is a FIFO with no
    /// writer blocks that read until the test writes, and the runtime (one thread here)
    /// must keep running tasks meanwhile; then the written config (read twice, as a change
    /// is) is published.
    #[test]
    fn a_reload_in_progress_does_not_hold_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
        let table = Arc::new(Table::new(Snapshot::build(&Default::default(), 1)));

        // The writer: once the poll has the FIFO open (its open for writing returns then),
        // it asks the runtime for a sign of life, then writes the config either way.
        let (ask, asked) = tokio::sync::oneshot::channel::<()>();
        let (answer, answered) = mpsc::channel::<()>();
        let fifo = path.clone();
        let writer = std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let _ = ask.send(());
            let alive = answered.recv_timeout(Duration::from_secs(30)).is_ok();
            file.write_all(REGISTRY).unwrap();
            // A change is loaded once a second read agrees: that read finds the same
            // config in a plain file, put in the FIFO's place before the FIFO ends.
            let plain = fifo.with_extension("plain");
            std::fs::write(&plain, REGISTRY).unwrap();
            std::fs::rename(&plain, &fifo).unwrap();
            drop(file);
            alive
        });

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let poll = Duration::from_millis(10);
            let metrics = Arc::new(Metrics::new());
            tokio::spawn(watch_config(
                path,
                table.clone(),
                metrics,
                poll,
                Default::default(),
            ));
            asked.await.unwrap();
            let _ = answer.send(());
            while table.load().revision() < 2 {
                tokio::time::sleep(poll).await;
            }
        });
        runtime.shutdown_background();
        assert!(
            writer.join().unwrap(),
            "the runtime ran no task while the config was being read"
        );
        assert_eq!(table.load().registries().len(), 1);
    }
}
