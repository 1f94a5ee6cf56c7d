//! Writing the pull Secrets: [`plan`] compares the desired content (from
//! `pull_secrets::desired`) with the Secrets the watch sees and says what to do, purely;
//! [`Writer::apply`] does it. A Secret of that name without pullgate's label is never
//! written or deleted: it is reported instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::Client;

use super::pull_secrets::Desired;
use crate::api::{
    DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
};
use crate::cluster::hook::Hook;
use crate::cluster::replica::state::PullSecret;

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "pullgate";

/// One write to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No Secret of that name yet: create it (a create never overwrites).
    Create { namespace: String, data: Vec<u8> },
    /// Pullgate's own Secret with other content: apply, on the resourceVersion seen.
    Update {
        namespace: String,
        resource_version: Option<String>,
        data: Vec<u8>,
    },
    /// Pullgate's own Secret no longer needed.
    Delete {
        namespace: String,
        resource_version: Option<String>,
    },
}

impl Action {
    pub fn namespace(&self) -> &str {
        match self {
            Action::Create { namespace, .. }
            | Action::Update { namespace, .. }
            | Action::Delete { namespace, .. } => namespace,
        }
    }
}

/// What to do, and which namespaces hold a foreign Secret in the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub blocked: Vec<String>,
}

/// Compares desired content with the Secrets of that name that exist (by namespace).
pub fn plan(desired: &Desired, existing: &BTreeMap<String, Arc<PullSecret>>) -> Plan {
    let mut out = Plan::default();
    for (ns, data) in &desired.secrets {
        match existing.get(ns) {
            None => out.actions.push(Action::Create {
                namespace: ns.clone(),
                data: data.clone(),
            }),
            Some(s) if !s.managed => out.blocked.push(ns.clone()),
            Some(s) if s.config.as_deref() == Some(data.as_slice()) && s.docker_config_type => {}
            Some(s) => out.actions.push(Action::Update {
                namespace: ns.clone(),
                resource_version: s.resource_version.clone(),
                data: data.clone(),
            }),
        }
    }
    for (ns, s) in existing {
        if s.managed && !desired.secrets.contains_key(ns) {
            out.actions.push(Action::Delete {
                namespace: ns.clone(),
                resource_version: s.resource_version.clone(),
            });
        }
    }
    out
}

/// The Secret object pullgate writes.
pub fn secret_object(name: &str, namespace: &str, data: &[u8], rv: Option<String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())].into()),
            resource_version: rv,
            ..ObjectMeta::default()
        },
        type_: Some(DOCKER_CONFIG_JSON_TYPE.to_string()),
        data: Some(
            [(
                DOCKER_CONFIG_JSON_KEY.to_string(),
                ByteString(data.to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    }
}

/// Called with the result of each pull-Secret write (e.g. for a metric).
pub type SyncHook = Hook<SyncFn>;

/// A callback told the result of a write.
pub type SyncFn = dyn Fn(&str) + Send + Sync;

impl SyncHook {
    fn tell(&self, result: &str) {
        if let Some(f) = &self.0 {
            f(result);
        }
    }
}

/// Makes the writes of a plan, remembering what it wrote so that a pass that runs
/// before the watch has delivered the result does not write it again.
pub struct Writer {
    client: Client,
    name: String,
    /// Namespace → (resourceVersion seen when written, the action).
    done: HashMap<String, (Option<String>, Action)>,
    hook: SyncHook,
}

impl Writer {
    pub fn new(client: Client, name: &str, hook: SyncHook) -> Writer {
        Writer {
            client,
            name: name.to_string(),
            done: HashMap::new(),
            hook,
        }
    }

    /// Makes the writes; returns false when one failed (the caller retries soon).
    pub async fn apply(
        &mut self,
        plan: &Plan,
        existing: &BTreeMap<String, Arc<PullSecret>>,
    ) -> bool {
        // A remembered write whose object the watch has since seen change is done with.
        self.done.retain(|ns, (seen, _)| {
            existing.get(ns).and_then(|s| s.resource_version.as_ref()) == seen.as_ref()
        });
        let mut ok = true;
        for action in &plan.actions {
            let ns = action.namespace();
            let seen = existing.get(ns).and_then(|s| s.resource_version.clone());
            if self.done.get(ns) == Some(&(seen.clone(), action.clone())) {
                continue;
            }
            match self.write(action).await {
                Ok(()) => {
                    self.hook.tell(match action {
                        Action::Create { .. } => "created",
                        Action::Update { .. } => "updated",
                        Action::Delete { .. } => "deleted",
                    });
                    self.done.insert(ns.to_string(), (seen, action.clone()));
                }
                Err(e) => {
                    self.hook.tell("error");
                    ok = false;
                    tracing::warn!(namespace = %ns, error = %e, "pull Secret write failed");
                }
            }
        }
        ok
    }

    async fn write(&self, action: &Action) -> Result<(), kube::Error> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), action.namespace());
        match action {
            Action::Create { namespace, data } => {
                let s = secret_object(&self.name, namespace, data, None);
                let pp = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                match api.create(&pp, &s).await {
                    Ok(_) => {
                        tracing::info!(%namespace, "pull Secret created");
                        Ok(())
                    }
                    // Someone created one since the watch last told: the next pass sees it.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Action::Update {
                namespace,
                resource_version,
                data,
            } => {
                // The resourceVersion in the applied object makes the apply fail if the
                // Secret changed hands since the watch saw it pullgate's.
                let s = secret_object(&self.name, namespace, data, resource_version.clone());
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                api.patch(&self.name, &pp, &Patch::Apply(&s)).await?;
                tracing::info!(%namespace, "pull Secret updated");
                Ok(())
            }
            Action::Delete {
                namespace,
                resource_version,
            } => {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        resource_version: resource_version.clone(),
                        uid: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&self.name, &dp).await {
                    Ok(_) => {
                        tracing::info!(%namespace, "pull Secret deleted");
                        Ok(())
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }
}
