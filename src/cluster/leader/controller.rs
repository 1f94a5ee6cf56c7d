//! The leader's side effects: after every change of the leader view or of what the
//! registry loop probed (and on a resync timer), sync the pull Secrets and write the
//! statuses that changed (and an Event on a foreign Secret in the way). Nothing is
//! written unless this replica holds the Lease. Denial Events are written by every
//! replica ([`crate::cluster::replica::events::run`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::Client;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::audit::AuditSummary;
use super::credentials::{Chain, RefCredentials};
use super::inputs::{Inputs, Wake};
use super::pull_secrets;
use super::registry_loop::Probed;
use super::robots::{self, RobotSource};
use super::status::{self, StatusWrite};
use super::sync::{self, Writer, FIELD_MANAGER};
use crate::api::{CrKind, Registry, RegistrySpace, Workspace};
use crate::cluster::replica::events::{Recorder, Report};
use crate::cluster::replica::state::LeaderView;
use crate::cluster::ClusterOptions;

/// Wait before retrying after a failed write.
const RETRY: Duration = Duration::from_secs(1);
/// Reason of the Event on a foreign Secret that blocks the pull Secret.
const NOT_MANAGED_REASON: &str = "SecretNotManaged";

pub struct Controller {
    client: Client,
    opts: ClusterOptions,
    writer: Writer,
    recorder: Recorder,
    /// (kind, name) → (resourceVersion seen, patch written without times).
    statuses_done: HashMap<(CrKind, String), (Option<String>, Value)>,
}

impl Controller {
    pub fn new(client: Client, opts: ClusterOptions) -> Controller {
        Controller {
            writer: Writer::new(
                client.clone(),
                &opts.pull_secret_name,
                opts.pull_secret_syncs.clone(),
            ),
            recorder: Recorder::new(client.clone(), &opts.identity),
            client,
            opts,
            statuses_done: HashMap::new(),
        }
    }

    /// Runs until shutdown; `probed` is what the registry loop found.
    pub async fn run(
        mut self,
        mut inputs: Inputs,
        mut probed: watch::Receiver<Arc<Probed>>,
        mut audit: watch::Receiver<Arc<AuditSummary>>,
    ) {
        let mut next = Instant::now() + self.opts.resync;
        // Every wake-up below is a reason to reconcile (when leading and synced).
        loop {
            let leading = inputs.leading();
            let synced = inputs.synced();
            if leading && synced {
                let view = inputs.view();
                let probed = probed.borrow_and_update().clone();
                let audit = audit.borrow_and_update().clone();
                // Cut short (None): the next pass of whoever leads does the rest.
                let pass = inputs.while_leading(self.reconcile(&view, &probed, &audit));
                let ok = pass.await.unwrap_or(true);
                next = Instant::now() + if ok { self.opts.resync } else { RETRY };
            }
            let own = async {
                tokio::select! {
                    Ok(()) = probed.changed() => false,
                    Ok(()) = audit.changed() => false,
                    _ = tokio::time::sleep_until(next) => true,
                }
            };
            match inputs.wake(own).await {
                Wake::Stop => return,
                Wake::Own(true) => next = Instant::now() + self.opts.resync,
                _ => {}
            }
        }
    }

    /// One pass; false when a write failed.
    async fn reconcile(
        &mut self,
        view: &LeaderView,
        probed: &Probed,
        audit: &AuditSummary,
    ) -> bool {
        let mut desired = {
            let refs = RefCredentials {
                secrets: &view.watched.ref_secrets,
            };
            let robots = robots::stored(view.watched.robot_secrets.values().map(Arc::as_ref));
            let registries = robots::registries(&view.watched);
            let robots = RobotSource {
                robots: &robots,
                registries: &registries,
            };
            pull_secrets::desired(&view.snapshot, &Chain(vec![&refs, &robots]))
        };
        if !self.opts.write_pull_secrets {
            // `--pull-credentials provider`: no namespace keeps a pull Secret; the plan
            // deletes those pullgate wrote (the problems still go to the statuses).
            desired.secrets.clear();
        }
        let plan = sync::plan(&desired, &view.watched.pull_secrets);
        let mut space_problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (space, msg) in &desired.problems {
            space_problems
                .entry(space.clone())
                .or_default()
                .push(msg.clone());
        }
        for ns in &plan.blocked {
            self.blocked(view, ns, &mut space_problems).await;
        }
        let mut ok = self.writer.apply(&plan, &view.watched.pull_secrets).await;
        let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        for w in status::writes(view, &space_problems, probed, audit, &now) {
            ok &= self.write_status(w).await;
        }
        ok
    }

    /// A foreign Secret holds the pull Secret's name in `ns`: say so on the spaces it
    /// affects and in an Event on the Secret.
    async fn blocked(
        &mut self,
        view: &LeaderView,
        ns: &str,
        space_problems: &mut BTreeMap<String, Vec<String>>,
    ) {
        let name = &self.opts.pull_secret_name;
        let snap = &view.snapshot;
        for registry in snap.registries() {
            for space in snap.spaces_of(&registry.name) {
                if space.needs_credentials() && snap.bound_namespaces(space).contains(&ns) {
                    for o in &space.objects {
                        space_problems.entry(o.clone()).or_default().push(format!(
                            "namespace {ns:?} has a Secret {name:?} that pullgate did not create; it is left alone, so that namespace gets no pull credentials"
                        ));
                    }
                }
            }
        }
        self.recorder
            .record(&Report {
                kind: "Secret".into(),
                namespace: ns.to_string(),
                name: name.clone(),
                reason: NOT_MANAGED_REASON,
                message: format!(
                    "Secret {name:?} lacks the label pullgate.io/managed-by=pullgate, so pullgate neither overwrites nor deletes it; rename or remove it to get pullgate's pull credentials here"
                ),
            })
            .await;
    }

    async fn write_status(&mut self, w: StatusWrite) -> bool {
        let key = (w.kind, w.name.clone());
        let core = without_times(&w.patch);
        // A patch already sent for this very version of the object: the watch has not
        // delivered the result yet.
        if self.statuses_done.get(&key) == Some(&(w.seen.clone(), core.clone())) {
            return true;
        }
        let ar = match w.kind {
            CrKind::Registry => ApiResource::erase::<Registry>(&()),
            CrKind::RegistrySpace => ApiResource::erase::<RegistrySpace>(&()),
            CrKind::Workspace => ApiResource::erase::<Workspace>(&()),
        };
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api
            .patch_status(&w.name, &pp, &Patch::Merge(&w.patch))
            .await
        {
            Ok(_) => {
                self.statuses_done.insert(key, (w.seen, core));
                true
            }
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(e) => {
                tracing::warn!(kind = w.kind.as_str(), name = %w.name, error = %e, "status write failed");
                false
            }
        }
    }
}

fn without_times(patch: &Value) -> Value {
    let mut p = patch.clone();
    if let Some(conds) = p
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    p
}
