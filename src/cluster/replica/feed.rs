//! The feed: the one task that owns [`Watched`] (what the watches have seen). It applies
//! the watches' changes, publishes a new binding-table snapshot per burst of changes,
//! keeps the staleness flag (`--max-staleness`), starts and stops the watches of referenced
//! Secrets, and hands the leader a consistent [`LeaderView`].
//!
//! Only a leader pays for the [`LeaderView`] (a copy of [`Watched`], whose namespaces and
//! Secrets are shared `Arc`s, so only the maps are copied: 16–19 ms at 100,000
//! namespaces with a pull Secret each, BENCHMARKS.md): the feed
//! follows the election, builds a view per change only while this replica leads, and
//! tells the leader loops they lead only after the view of their term is published, so
//! no loop ever works from a view older than its term.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::Client;
use tokio::sync::{mpsc, watch as channel};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::state::{Change, LeaderView, WatchId, Watched};
use super::watch::{self, Source};
use super::workloads::RunningWorkloads;
use crate::api::SecretRef;
use crate::cluster::hook::Hook;
use crate::index::{Builder, Inputs, Table};

/// How long a burst of watch events is gathered into one snapshot: long enough to
/// absorb a relist or a `kubectl apply -f dir/`, far below the 100 ms visibility target.
pub const COALESCE: Duration = Duration::from_millis(10);

/// Told, on every replica, what `POST /credentials` reads
/// ([`Watched::credential_part`]) after every change of it once synced (README, "Pulls without Secrets").
pub type CredentialsHook = Hook<dyn Fn(Watched) + Send + Sync>;

pub struct Feed {
    pub client: Client,
    pub table: Arc<Table>,
    pub synced: channel::Sender<bool>,
    pub view: channel::Sender<Arc<LeaderView>>,
    /// Leadership as the leader loops see it (see the module doc).
    pub leading: channel::Sender<bool>,
    pub max_staleness: Duration,
    /// How often the staleness bound is checked.
    pub staleness_tick: Duration,
    pub credentials: CredentialsHook,
    /// Told the objects of every table built (for the warnings on an admin's change).
    pub running: RunningWorkloads,
}

struct Run {
    feed: Feed,
    watched: Watched,
    tx: mpsc::Sender<Change>,
    listed: HashSet<WatchId>,
    broken_since: HashMap<WatchId, Instant>,
    refs: BTreeMap<(String, String), JoinHandle<()>>,
    revision: u64,
    /// The table's inputs as last built, each list shared until its watch changes it.
    inputs: Inputs,
    /// Table watches whose list in `inputs` is out of date.
    inputs_changed: BTreeSet<WatchId>,
    /// Reuses what the last build derived from the lists that did not change.
    builder: Builder,
    table_dirty: bool,
    view_dirty: bool,
    /// Whether what the credentials hook is told changed since it was last told.
    credentials_dirty: bool,
    /// Whether the election says this replica leads.
    leading: bool,
}

impl Feed {
    /// Runs until `rx` closes. `tx` is the sender the watches use (for new Secret watches);
    /// `elected` says whether this replica holds the Lease.
    pub async fn run(
        self,
        tx: mpsc::Sender<Change>,
        mut rx: mpsc::Receiver<Change>,
        mut elected: channel::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.staleness_tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut run = Run::new(self, tx);
        loop {
            tokio::select! {
                change = rx.recv() => {
                    let Some(change) = change else { break };
                    run.handle(change);
                    let deadline = Instant::now() + COALESCE;
                    loop {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(c)) => run.handle(c),
                            Ok(None) => return run.stop(),
                            Err(_) => break,
                        }
                    }
                    run.publish().await;
                    run.check_staleness();
                }
                _ = tick.tick() => run.check_staleness(),
                Ok(()) = elected.changed() => {
                    let leads = *elected.borrow_and_update();
                    run.set_leading(leads);
                }
            }
        }
        run.stop();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.abort_refs();
    }
}

impl Run {
    fn new(feed: Feed, tx: mpsc::Sender<Change>) -> Run {
        let revision = feed.table.load().revision();
        Run {
            feed,
            watched: Watched::default(),
            tx,
            listed: HashSet::new(),
            broken_since: HashMap::new(),
            refs: BTreeMap::new(),
            revision,
            inputs: Inputs::default(),
            inputs_changed: BTreeSet::new(),
            builder: Builder::default(),
            table_dirty: true,
            view_dirty: true,
            credentials_dirty: true,
            leading: false,
        }
    }

    fn handle(&mut self, change: Change) {
        match &change {
            Change::Broken(id) => {
                self.broken_since
                    .entry(id.clone())
                    .or_insert_with(Instant::now);
                // The leader loops learn that the table may be behind (findings go stale).
                self.view_dirty |= WatchId::TABLE.contains(id);
            }
            Change::Reset(id, _) => {
                self.broken_since.remove(id);
                self.listed.insert(id.clone());
                self.view_dirty = true;
            }
            Change::Apply(id, _) | Change::Delete(id, _) => {
                self.broken_since.remove(id);
                self.view_dirty = true;
            }
        }
        if let Change::Reset(id, _) | Change::Apply(id, _) | Change::Delete(id, _) = &change {
            self.credentials_dirty |= matches!(
                id,
                WatchId::Registries | WatchId::Ref(..) | WatchId::RobotSecrets
            );
        }
        // Changes of a Secret watch that was just stopped are stale; drop them.
        if let Change::Apply(WatchId::Ref(ns, name), _) | Change::Reset(WatchId::Ref(ns, name), _) =
            &change
        {
            if !self.refs.contains_key(&(ns.clone(), name.clone())) {
                return;
            }
        }
        let id = match &change {
            Change::Reset(id, _) | Change::Apply(id, _) | Change::Delete(id, _) => id.clone(),
            Change::Broken(id) => id.clone(),
        };
        if self.watched.apply(change) {
            self.table_dirty = true;
            self.inputs_changed.insert(id);
        }
    }

    fn synced(&self) -> bool {
        WatchId::SYNC.iter().all(|id| self.listed.contains(id))
    }

    async fn publish(&mut self) {
        if !self.synced() {
            return;
        }
        if self.table_dirty {
            self.revision += 1;
            let revision = self.revision;
            let changed = std::mem::take(&mut self.inputs_changed);
            let watched = std::mem::take(&mut self.watched);
            let mut inputs = std::mem::take(&mut self.inputs);
            let mut builder = std::mem::take(&mut self.builder);
            // A rebuild at scale takes milliseconds, and so does copying a changed list of
            // namespaces out of the watched state: on the blocking pool, so that the
            // runtime's workers (one, at the shipped CPU limit) keep answering reviews.
            // Nothing else touches the state meanwhile: this task owns it.
            let built = tokio::task::spawn_blocking(move || {
                for id in &changed {
                    watched.renew_input(&mut inputs, id);
                }
                let snapshot = builder.build(&inputs, revision);
                (watched, inputs, builder, snapshot)
            });
            let (watched, inputs, builder, snapshot) = built
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            (self.watched, self.inputs, self.builder) = (watched, inputs, builder);
            self.feed.table.store(snapshot);
            self.feed.running.set_inputs(self.inputs.clone());
            tracing::debug!(revision = self.revision, "binding table updated");
            self.table_dirty = false;
            self.view_dirty = true;
            self.update_ref_watches();
        }
        if let (Some(tell), true) = (&self.feed.credentials.0, self.credentials_dirty) {
            self.credentials_dirty = false;
            tell(self.watched.credential_part());
        }
        // The view first: a leader loop woken by `synced` finds it current.
        self.publish_view();
        self.feed
            .synced
            .send_if_modified(|s| !std::mem::replace(s, true));
    }

    /// Publishes the view for the leader loops, if this replica leads and it changed.
    fn publish_view(&mut self) {
        if !self.leading || !self.view_dirty {
            return;
        }
        self.view_dirty = false;
        let broken = WatchId::TABLE
            .into_iter()
            .filter(|id| self.broken_since.contains_key(id))
            .collect();
        self.feed.view.send_replace(Arc::new(LeaderView {
            snapshot: self.feed.table.load(),
            watched: self.watched.clone(),
            broken,
        }));
    }

    /// Follows the election: a new leader gets its view first, then the word that it
    /// leads; a leader that lost the Lease is told at once, and the view it held goes.
    fn set_leading(&mut self, leads: bool) {
        if leads == self.leading {
            return;
        }
        self.leading = leads;
        if leads {
            self.view_dirty = true;
            if self.synced() {
                self.publish_view();
            }
            self.feed.leading.send_replace(true);
        } else {
            self.feed.leading.send_replace(false);
            self.feed.view.send_replace(Arc::default());
        }
    }

    /// One watch per referenced Secret; a reference that went away loses its watch.
    fn update_ref_watches(&mut self) {
        let wanted: Vec<SecretRef> = self.watched.referenced_secrets();
        let key = |r: &SecretRef| (r.namespace.clone(), r.name.clone());
        let gone: Vec<(String, String)> = self
            .refs
            .keys()
            .filter(|k| !wanted.iter().any(|r| key(r) == **k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(task) = self.refs.remove(&k) {
                task.abort();
            }
            self.watched.ref_secrets.remove(&k);
            self.broken_since.remove(&WatchId::Ref(k.0, k.1));
        }
        for r in wanted {
            if !self.refs.contains_key(&key(&r)) {
                let source = Source::referenced(&self.feed.client, &r);
                let task = tokio::spawn(watch::run(source, self.tx.clone()));
                self.refs.insert(key(&r), task);
            }
        }
    }

    /// Stale when a table watch has been broken for longer than the bound. Also tells the
    /// table since when it may be behind: since the oldest break of a table watch.
    fn check_staleness(&mut self) {
        let now = Instant::now();
        let oldest = WatchId::TABLE
            .iter()
            .filter_map(|id| self.broken_since.get(id))
            .min();
        let behind_since = oldest.map(|since| {
            let broken_for = now.duration_since(*since);
            SystemTime::now()
                .checked_sub(broken_for)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        });
        self.feed.table.set_behind_since(behind_since);
        let broken = WatchId::TABLE.iter().find(|id| {
            self.broken_since
                .get(id)
                .is_some_and(|since| now.duration_since(*since) > self.feed.max_staleness)
        });
        let stale = broken.is_some();
        if stale != self.feed.table.is_stale() {
            if let Some(id) = broken {
                tracing::warn!(watch = ?id, "watch broken for longer than --max-staleness: refusing grants of private spaces until it recovers");
            } else {
                tracing::info!("watches recovered: binding table is current again");
            }
            self.feed.table.set_stale(stale);
        }
    }

    fn stop(&mut self) {
        self.abort_refs();
    }

    fn abort_refs(&mut self) {
        for (_, task) in std::mem::take(&mut self.refs) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::cluster::replica::state::Item;
    use crate::index::testing::mk_ns;
    use crate::index::{Objects, Snapshot};

    /// The rebuild runs on the blocking pool: on a one-thread runtime, other tasks run
    /// while `publish` waits for it. Built inline, `publish` would finish in the poll that
    /// starts it and the ticker would never run in between.
    #[tokio::test(flavor = "current_thread")]
    async fn a_rebuild_does_not_hold_the_runtime() {
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
            .expect("a client that is never called");
        let table = Arc::new(Table::new(Snapshot::build(&Objects::default(), 0)));
        let (synced, _) = channel::channel(false);
        let (view, view_rx) = channel::channel(Arc::new(LeaderView {
            snapshot: table.load(),
            ..LeaderView::default()
        }));
        let (tx, _rx) = mpsc::channel(1);
        let (leading, _) = channel::channel(false);
        let feed = Feed {
            client,
            table: table.clone(),
            synced,
            view,
            leading,
            max_staleness: Duration::from_secs(60),
            staleness_tick: Duration::from_secs(60),
            credentials: CredentialsHook::default(),
            running: RunningWorkloads::default(),
        };
        let mut run = Run::new(feed, tx);
        run.set_leading(true);
        for id in WatchId::TABLE
            .into_iter()
            .chain([WatchId::PullSecrets, WatchId::RobotSecrets])
        {
            run.handle(Change::Reset(id, Vec::new()));
        }
        // Large enough that the rebuild outlasts a scheduling hiccup of this thread on a
        // loaded machine: with 2,000 the build sometimes finished before the ticker was
        // polled again, when other tests ran beside this one.
        let namespaces = (0..20_000)
            .map(|i| Item::Namespace(mk_ns(&format!("app-{i}"), &[("team", "a")])))
            .collect();
        run.handle(Change::Reset(WatchId::Namespaces, namespaces));
        assert!(run.synced());

        let (started, publishing, ticks) = (Cell::new(false), Cell::new(true), Cell::new(0));
        tokio::join!(
            async {
                started.set(true);
                run.publish().await;
                publishing.set(false);
            },
            async {
                while publishing.get() {
                    if started.get() {
                        ticks.set(ticks.get() + 1);
                    }
                    tokio::task::yield_now().await;
                }
            },
        );
        assert!(ticks.get() > 0, "the runtime was held during the rebuild");
        assert_eq!(
            table.load().revision(),
            1,
            "the rebuilt table was published"
        );
        assert_eq!(view_rx.borrow().snapshot.revision(), 1);
    }

    /// Every replica tells the credentials hook what `/credentials` reads: once synced,
    /// then after changes of Registries or credential Secrets, and not for other changes.
    #[tokio::test]
    async fn the_credentials_hook_follows_registries_and_credential_secrets() {
        let (leading, _) = channel::channel(false);
        let (mut run, _view) = mk_run(leading);
        let told = Arc::new(std::sync::Mutex::new(Vec::<Watched>::new()));
        let sink = told.clone();
        run.feed.credentials = Hook(Some(Arc::new(move |w: Watched| {
            sink.lock().unwrap().push(w)
        })));
        let robot = k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("pullgate-robot-x".into()),
                namespace: Some("pullgate-system".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        for id in WatchId::SYNC {
            let items = match id {
                WatchId::RobotSecrets => vec![Item::Secret(Box::new(robot.clone()))],
                _ => Vec::new(),
            };
            run.handle(Change::Reset(id, items));
        }
        run.publish().await;
        {
            let told = told.lock().unwrap();
            assert_eq!(told.len(), 1, "told once synced");
            assert!(told[0].robot_secrets.contains_key("pullgate-robot-x"));
        }
        run.handle(ns_change(1));
        run.publish().await;
        assert_eq!(
            told.lock().unwrap().len(),
            1,
            "a namespace is not its business"
        );
        run.handle(Change::Delete(
            WatchId::RobotSecrets,
            Item::Secret(Box::new(robot)),
        ));
        run.publish().await;
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 2, "told the robot Secret went");
        assert!(told[1].robot_secrets.is_empty());
        assert!(told[1].namespaces.is_empty(), "only what it reads");
    }

    fn mk_run(leading: channel::Sender<bool>) -> (Run, channel::Receiver<Arc<LeaderView>>) {
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
            .expect("a client that is never called");
        let table = Arc::new(Table::new(Snapshot::build(&Objects::default(), 0)));
        let (synced, _) = channel::channel(false);
        let (view, view_rx) = channel::channel(Arc::default());
        let (tx, _rx) = mpsc::channel(1);
        let feed = Feed {
            client,
            table,
            synced,
            view,
            leading,
            max_staleness: Duration::from_secs(60),
            staleness_tick: Duration::from_secs(60),
            credentials: CredentialsHook::default(),
            running: RunningWorkloads::default(),
        };
        (Run::new(feed, tx), view_rx)
    }

    fn ns_change(i: usize) -> Change {
        Change::Apply(
            WatchId::Namespaces,
            Item::Namespace(mk_ns(&format!("app-{i}"), &[("team", "a")])),
        )
    }

    /// A replica that is not leader builds no view (no copy of the whole state) however
    /// often the cluster changes; when it is elected, the loops learn that they lead only
    /// after the current view is published, and when it loses the Lease they are told
    /// at once and the view is dropped.
    #[tokio::test]
    async fn only_a_leader_pays_for_the_view() {
        let (leading_tx, leading) = channel::channel(false);
        let (mut run, mut view) = mk_run(leading_tx);
        for id in WatchId::SYNC {
            run.handle(Change::Reset(id, Vec::new()));
        }
        let mut built = 0;
        // A few bursts only: each rebuilds the table on the blocking pool, beside a test
        // that watches how the runtime fares while that pool works.
        for burst in 0..5 {
            for i in 0..10 {
                run.handle(ns_change(burst * 10 + i));
            }
            run.publish().await;
            if view.has_changed().unwrap() {
                built += 1;
                view.mark_unchanged();
            }
        }
        assert_eq!(built, 0, "worlds built while not leader");
        assert_eq!(
            run.feed.table.load().revision(),
            5,
            "the table still follows"
        );

        let mut seen = leading.clone();
        run.set_leading(true);
        assert!(*seen.borrow_and_update(), "told it leads");
        assert_eq!(
            view.borrow_and_update().watched.namespaces.len(),
            50,
            "the view of the new term was published before"
        );
        run.handle(ns_change(50));
        run.publish().await;
        assert!(
            view.has_changed().unwrap(),
            "a leader's view follows changes"
        );
        assert_eq!(view.borrow_and_update().watched.namespaces.len(), 51);

        run.set_leading(false);
        assert!(
            !*seen.borrow_and_update(),
            "told at once that it no longer leads"
        );
        assert!(view.borrow_and_update().watched.namespaces.is_empty());
    }
}
