//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the holder
//! renews `renewTime` every `lease_duration / 3` with an optimistic-concurrency replace;
//! another replica takes the Lease over once it has seen the record unchanged for a full
//! lease duration (its own clock, so clock skew does not matter). A leader that cannot
//! renew within two thirds of the duration steps down before anyone may take over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::hook::Hook;

/// Who competes for which Lease.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    pub duration: Duration,
}

impl LeaseConfig {
    fn retry_period(&self) -> Duration {
        self.duration / 3
    }

    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    fn duration_seconds(&self) -> i32 {
        self.duration.as_secs_f64().ceil().max(1.0) as i32
    }
}

/// A callback told whether this replica leads.
pub type LeaderFn = dyn Fn(bool) + Send + Sync;

/// Told `true` when this replica becomes leader and `false` when it stops (e.g. for the
/// leadership metric).
pub type LeaderHook = Hook<LeaderFn>;

/// The `leader` channel and the hook, changed together.
struct Leadership {
    tx: watch::Sender<bool>,
    hook: LeaderHook,
}

impl Leadership {
    /// Returns whether this replica led before.
    fn send_replace(&self, leading: bool) -> bool {
        let was = self.tx.send_replace(leading);
        if was != leading {
            if let Some(f) = &self.hook.0 {
                f(leading);
            }
        }
        was
    }
}

/// What this replica last saw of someone else's Lease record, and when.
struct Observed {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Instant,
}

struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observed>,
}

/// Competes for the Lease until `shutdown` turns true; `leader` (and `hook`) say whether
/// this replica holds it. On shutdown a held Lease is released so another replica takes
/// over at once.
pub async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    hook: LeaderHook,
    mut shutdown: watch::Receiver<bool>,
) {
    let leader = Leadership { tx: leader, hook };
    let mut elector = Elector {
        api,
        config,
        observed: None,
    };
    let mut last_renew: Option<Instant> = None;
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => {
                last_renew = Some(Instant::now());
                if !leader.send_replace(true) {
                    tracing::info!(identity = %elector.config.identity, "became leader");
                }
            }
            Ok(false) => {
                last_renew = None;
                if leader.send_replace(false) {
                    tracing::info!("lost the lease; stepping down");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease update failed");
                let expired =
                    last_renew.is_none_or(|t| t.elapsed() > elector.config.renew_deadline());
                if expired && leader.send_replace(false) {
                    tracing::warn!("could not renew the lease in time; stepping down");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(elector.config.retry_period()) => {}
            _ = crate::cluster::stopped(&mut shutdown) => break,
        }
    }
    if leader.send_replace(false) {
        if let Err(e) = elector.release().await {
            tracing::warn!(error = %e, "could not release the lease");
        }
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// Ok(true) when this replica holds the Lease after the call.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let me = &self.config.identity;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.config.duration_seconds()),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() != Some(me.as_str()) {
            let changed = self
                .observed
                .as_ref()
                .is_none_or(|o| o.holder != holder || o.renew != spec.renew_time);
            if changed {
                self.observed = Some(Observed {
                    holder: holder.clone(),
                    renew: spec.renew_time.clone(),
                    at: Instant::now(),
                });
            }
            let their_duration = spec
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(1) as u64))
                .unwrap_or(self.config.duration);
            let expired = self
                .observed
                .as_ref()
                .is_some_and(|o| o.at.elapsed() > their_duration);
            if holder.is_some() && !expired {
                return Ok(false);
            }
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(self.config.duration_seconds());
        // The resourceVersion read above makes this replace fail if anyone wrote between.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica still holds it.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(now());
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}
