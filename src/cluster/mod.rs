//! Cluster mode (README, "`pullgate serve`"), cut along its one seam:
//!
//! - [`replica`]: what every replica runs, leader or not. Watches feed
//!   [`Watched`](replica::state::Watched), from which the feed rebuilds the binding
//!   table admission reads ([`Table`]); the Events about the denials this replica served
//!   are written here too. A replica that is not leader runs only this half.
//! - [`leader`]: what only the Lease holder does, once per cluster: pull Secrets, the
//!   status of the custom resources, registry probes, Harbor projects and robots, a
//!   Registry per managed Harbor, and the background audit's findings and Reports. It reads the replica half (a
//!   [`LeaderView`](replica::state::LeaderView)) and never the other way round.
//!
//! - [`pace`]: the one token bucket every write but the Lease's waits for
//!   (`--kube-api-qps`, `--kube-api-burst`), leader or not; reads and watches never wait.
//!
//! [`run`] is the one entry point; admission keeps reading the [`Table`] it is given and
//! reports denials through [`DenialEvents`].
//!
//! ```text
//! every replica                                  leader only
//! watch tasks ──Change──► feed (Watched) ──► Table
//!                          │ LeaderView, only while leading
//!                          ├──────────────────► controller ──► pull Secrets, status
//!                          ├──────────────────► registry loop ──Probed──┘ (probes,
//!                          │                     Harbor projects, robots, robot Secrets)
//!                          └──────────────────► managed Harbor ──► Registries
//! Lease ──► election ──► feed ──leading──►     (all three wait in leader::inputs)
//! admission ──DenialEvents──► event writer ──► Events
//! workload watches ──► RunningWorkloads ──────► audit ──► Reports; AuditSummary ──►
//!   (every replica; admission reads it for        controller (status) and metrics
//!    the warnings on an admin's change)
//! ```

pub mod hook;
pub mod leader;
pub mod pace;
pub mod replica;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::Client;
use tokio::sync::{mpsc, watch as watch_channel};

pub use hook::Hook;
pub use leader::audit::{AuditHook, AuditSummary};
pub use leader::election::LeaderHook;
pub use leader::registry_loop::{ApiErrorHook, HealthHook, Probed, RobotHooks};
pub use leader::reports::ReportFormat;
pub use leader::sync::SyncHook;
use leader::{audit, controller, election, managed, registry_loop};
pub use pace::{WaitHook, WriteRate};
pub use replica::events::{denial_events, DenialEvents, EventQueue};
pub use replica::feed::CredentialsHook;
pub use replica::workloads::{Running, RunningWorkloads};
use replica::{events, feed, watch, workloads};

use crate::index::Table;
use crate::policy::Policy;

/// Default name of the Lease the replicas compete for.
pub const DEFAULT_LEASE_NAME: &str = "pullgate-leader";
/// Default Lease duration: client-go's default; a crashed leader is replaced within it.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Queue of watch changes waiting for the feed.
const CHANGE_QUEUE: usize = 1024;

/// How cluster mode runs.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// pullgate's own namespace (holds the Lease).
    pub namespace: String,
    /// Name of the pull Secret kept in each namespace.
    pub pull_secret_name: String,
    /// How long the watches may be broken before grants of Private spaces are refused.
    pub max_staleness: Duration,
    /// How often the staleness bound is checked.
    pub staleness_tick: Duration,
    /// This replica's identity in the Lease (its pod name).
    pub identity: String,
    pub lease_name: String,
    pub lease_duration: Duration,
    /// How often the leader reconciles even without a change (repairs missed writes).
    pub resync: Duration,
    /// How often the leader probes every registry (`--probe-interval`); also how often
    /// the HarborCluster CRD is looked for.
    pub probe_interval: Duration,
    /// Told each registry's health after every probe (for the health metric).
    pub registry_health: HealthHook,
    /// Told the result of every pull-Secret write: `created`, `updated`, `deleted` or
    /// `error` (for the sync metric).
    pub pull_secret_syncs: SyncHook,
    /// Told when this replica becomes leader or stops being it (for the leader metric).
    pub leadership: LeaderHook,
    /// Told (registry name, operation) for every failed registry API call (for the
    /// registry API error metric).
    pub registry_api_errors: ApiErrorHook,
    /// Whether the leader keeps pull Secrets in the namespaces; when false
    /// (`--pull-credentials provider`) it deletes the ones it wrote (README, "Pulls without Secrets").
    pub write_pull_secrets: bool,
    /// Told what `POST /credentials` reads, on every replica (README, "Pulls without Secrets").
    pub credentials: CredentialsHook,
    /// This cluster's identity toward shared registries (`--cluster-name`); empty: the
    /// UID of the `kube-system` namespace, read once when the leader starts.
    pub cluster_name: String,
    /// How long a Harbor robot lives (`--robot-lifetime`); it is replaced after two
    /// thirds of it.
    pub robot_lifetime: Duration,
    /// How long an old robot stays after every pull Secret carries its successor
    /// (`--robot-rotation-grace`).
    pub robot_rotation_grace: Duration,
    /// Whether HarborClusters get a Registry (`--managed-harbor`).
    pub managed_harbor: bool,
    /// Told of every finished rotation and of the earliest robot expiry (for metrics).
    pub robot_hooks: RobotHooks,
    /// The policy flags (`--mode`, `--unmanaged`, `--exempt-namespace`): the background
    /// audit judges running workloads as admission would.
    pub policy: Policy,
    /// `--reports`: the kind of report the audit writes; `None` picks the first whose
    /// API the cluster serves.
    pub reports: Option<ReportFormat>,
    /// Told the audit's summary whenever it changes (for the findings metrics).
    pub audit_findings: AuditHook,
    /// Filled with the running workloads the watches see (read by admission for the
    /// warnings on an admin's change).
    pub running: RunningWorkloads,
    /// `--kube-api-qps` and `--kube-api-burst`: the pace of every write but the Lease's.
    pub write_rate: WriteRate,
    /// Told how long each write waited for the pace (for the wait metric).
    pub write_wait: WaitHook,
}

impl ClusterOptions {
    /// Options with the defaults of `pullgate serve`.
    pub fn new(namespace: &str, identity: &str) -> ClusterOptions {
        ClusterOptions {
            namespace: namespace.to_string(),
            pull_secret_name: crate::api::DEFAULT_PULL_SECRET_NAME.to_string(),
            max_staleness: Duration::from_secs(300),
            staleness_tick: Duration::from_secs(1),
            identity: identity.to_string(),
            lease_name: DEFAULT_LEASE_NAME.to_string(),
            lease_duration: DEFAULT_LEASE_DURATION,
            resync: Duration::from_secs(60),
            probe_interval: Duration::from_secs(60),
            registry_health: HealthHook::default(),
            pull_secret_syncs: SyncHook::default(),
            leadership: LeaderHook::default(),
            registry_api_errors: ApiErrorHook::default(),
            write_pull_secrets: true,
            credentials: CredentialsHook::default(),
            cluster_name: String::new(),
            robot_lifetime: leader::robots::DEFAULT_LIFETIME,
            robot_rotation_grace: leader::robots::DEFAULT_GRACE,
            managed_harbor: true,
            robot_hooks: RobotHooks::default(),
            policy: Policy::default(),
            reports: None,
            audit_findings: AuditHook::default(),
            running: RunningWorkloads::default(),
            write_rate: WriteRate::default(),
            write_wait: WaitHook::default(),
        }
    }
}

/// Runs cluster mode until `shutdown` completes: watches feed `table` (and turn `synced`
/// true after the first full list of every watch); the leader writes Secrets and
/// statuses; this replica writes the Events queued on `events`, leader or not. On
/// shutdown a held Lease is released and what is queued is written, for a short while.
pub async fn run(
    opts: ClusterOptions,
    client: Client,
    table: Arc<Table>,
    synced: watch_channel::Sender<bool>,
    events: EventQueue,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    // Every write but the Lease's goes through `writes` (README, "Pace of writes to the
    // apiserver"): renewals must not wait behind the leader's own backlog.
    let writes = pace::paced(client.clone(), opts.write_rate, opts.write_wait.clone())
        .map_err(anyhow::Error::msg)?;
    let (tx, rx) = mpsc::channel(CHANGE_QUEUE);
    let mut tasks = tokio::task::JoinSet::new();
    for source in [
        watch::Source::registries(&client),
        watch::Source::spaces(&client),
        watch::Source::workspaces(&client),
        watch::Source::namespaces(&client),
        watch::Source::pull_secrets(&client, &opts.pull_secret_name),
        watch::Source::robot_secrets(&client, &opts.namespace),
    ] {
        tasks.spawn(watch::run(source, tx.clone()));
    }
    let (view_tx, view_rx) = watch_channel::channel(Arc::default());
    let synced_rx = synced.subscribe();
    let (probed_tx, probed_rx) = watch_channel::channel(Arc::default());
    // The election's word goes to the feed, which passes it on to the leader loops once
    // their view is published (`leading`).
    let (leader_tx, leader_rx) = watch_channel::channel(false);
    let (leading_tx, leading_rx) = watch_channel::channel(false);
    let feed = feed::Feed {
        client: client.clone(),
        table,
        synced,
        view: view_tx,
        leading: leading_tx,
        max_staleness: opts.max_staleness,
        staleness_tick: opts.staleness_tick,
        credentials: opts.credentials.clone(),
        running: opts.running.clone(),
    };
    let mut feed = AbortOnDrop(tokio::spawn(feed.run(tx, rx, leader_rx)));

    let (stop_tx, stop_rx) = watch_channel::channel(false);
    let lease = election::LeaseConfig {
        namespace: opts.namespace.clone(),
        name: opts.lease_name.clone(),
        identity: opts.identity.clone(),
        duration: opts.lease_duration,
    };
    let mut elector = AbortOnDrop(tokio::spawn(election::run(
        Api::<Lease>::namespaced(client.clone(), &opts.namespace),
        lease,
        leader_tx,
        opts.leadership.clone(),
        stop_rx.clone(),
    )));
    let inputs = leader::inputs::Inputs {
        view: view_rx,
        synced: synced_rx,
        leader: leading_rx,
        shutdown: stop_rx.clone(),
    };
    let mut registries = AbortOnDrop(tokio::spawn(
        registry_loop::RegistryLoop::new(writes.clone(), opts.clone())
            .run(inputs.clone(), probed_tx),
    ));
    // `--managed-harbor=off`: no HarborCluster watch; Registries made before stay.
    let mut managed = AbortOnDrop(tokio::spawn({
        let run = opts
            .managed_harbor
            .then(|| managed::Managed::new(writes.clone(), opts.clone()).run(inputs.clone()));
        async move {
            if let Some(run) = run {
                run.await
            }
        }
    }));
    let mut running = AbortOnDrop(tokio::spawn(workloads::run(
        client.clone(),
        opts.running.clone(),
        stop_rx.clone(),
    )));
    let (summary_tx, summary_rx) = watch_channel::channel(Arc::default());
    let mut audit = AbortOnDrop(tokio::spawn(
        audit::Audit::new(writes.clone(), opts.clone(), summary_tx)
            .run(inputs.clone(), opts.running.subscribe()),
    ));
    let mut writer = AbortOnDrop(tokio::spawn(events::run(
        events::Recorder::new(writes.clone(), &opts.identity),
        events,
        stop_rx.clone(),
    )));
    let mut controller = AbortOnDrop(tokio::spawn(
        controller::Controller::new(writes, opts).run(inputs, probed_rx, summary_rx),
    ));

    let result = tokio::select! {
        _ = shutdown => Ok(()),
        r = &mut feed.0 => Err(match r {
            Err(e) => anyhow::anyhow!("the binding-table feed failed: {e}"),
            Ok(()) => anyhow::anyhow!("the binding-table feed stopped"),
        }),
    };
    feed.0.abort();
    // Stop writing first, then give the Lease back so another replica takes over now.
    stop_tx.send_replace(true);
    let _ = (&mut controller.0).await;
    let _ = (&mut registries.0).await;
    let _ = (&mut managed.0).await;
    let _ = (&mut audit.0).await;
    let _ = (&mut running.0).await;
    let _ = (&mut elector.0).await;
    // The writer stops on its own after DRAIN_TIME; an API call hanging past that is cut.
    let _ = tokio::time::timeout(2 * events::DRAIN_TIME, &mut writer.0).await;
    tasks.shutdown().await;
    result
}

/// Completes when `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch_channel::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A task that ends with its owner: if `run` is dropped (its caller gone), nothing it
/// started keeps writing.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
