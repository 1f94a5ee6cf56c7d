//! Status of the custom resources, as far as cluster mode knows it: a Workspace's
//! resolved namespaces and `Ready`; a RegistrySpace's `boundNamespaces`, `Conflict` and
//! `Ready`, and what the last probe found (`existsOnRegistry`, `repoCount`,
//! `storageUsedBytes`); a Registry's `Valid` and `Conflict` (hosts another Registry
//! claims too, shown by `kubectl get`), and from the last probe its health, counts and
//! `Ready`; on a Workspace and a RegistrySpace, the count of audit `findings` and the
//! condition `Audited`. [`writes`] computes the merge patches purely, only for objects whose
//! status differs; conditions of other types are kept as they are. Every status field
//! has this one writer; the registry loop only hands it [`Probed`] data.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::audit::AuditSummary;
use super::registry_loop::Probed;
use crate::api::CrKind;
use crate::cluster::replica::state::{LeaderView, StoredView};
use crate::index::Snapshot;
use crate::registry::READY_CONDITION;

/// The condition that says whether the `findings` count is current.
pub const AUDITED_CONDITION: &str = "Audited";

/// One status merge patch to send.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusWrite {
    pub kind: CrKind,
    pub name: String,
    /// The resourceVersion the patch was computed from.
    pub seen: Option<String>,
    pub patch: Value,
}

/// A condition as pullgate wants it (the time is added when it changes).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Want {
    type_: &'static str,
    /// "True", "False" or "Unknown".
    status: String,
    reason: String,
    message: String,
}

fn want(type_: &'static str, status: bool, reason: &str, message: String) -> Want {
    Want {
        type_,
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
    }
}

/// Status patches for every object whose status is not yet what it should be.
/// `space_problems` holds what the pull-Secret sync found per RegistrySpace; `now` is an
/// RFC 3339 time for changed conditions; `probed` is what the registry loop found.
pub fn writes(
    view: &LeaderView,
    space_problems: &BTreeMap<String, Vec<String>>,
    probed: &Probed,
    audit: &AuditSummary,
    now: &str,
) -> Vec<StatusWrite> {
    let snap = &view.snapshot;
    let mut out = Vec::new();
    for kind in CrKind::ALL {
        for obj in view.watched.stored(kind) {
            let problems: Vec<&str> = snap
                .problems()
                .iter()
                .filter(|p| p.kind == kind && p.name == obj.name)
                .map(|p| p.message.as_str())
                .collect();
            let (fields, conds) = match kind {
                CrKind::Registry => registry(snap, obj, &problems, probed),
                CrKind::Workspace => {
                    let (mut fields, mut conds) = workspace(snap, obj, &problems);
                    let n = audit.by_workspace.get(obj.name).copied().unwrap_or(0);
                    audited(audit, n, &mut fields, &mut conds);
                    (fields, conds)
                }
                CrKind::RegistrySpace => {
                    let mut extra = space_problems.get(obj.name).cloned().unwrap_or_default();
                    extra.extend(
                        probed
                            .space_problems
                            .get(obj.name)
                            .cloned()
                            .unwrap_or_default(),
                    );
                    let (mut fields, mut conds) = space(snap, obj, &problems, &extra);
                    let n = space_entry(snap, obj.name)
                        .and_then(|e| {
                            audit
                                .by_space
                                .get(&(e.registry.clone(), e.space.clone()))
                                .copied()
                        })
                        .unwrap_or(0);
                    audited(audit, n, &mut fields, &mut conds);
                    if let Some(p) = probed.spaces.get(obj.name) {
                        fields.push(("existsOnRegistry", json!(p.exists)));
                        fields.push(("repoCount", json!(p.repo_count)));
                        fields.push(("storageUsedBytes", json!(p.storage_used_bytes)));
                    }
                    (fields, conds)
                }
            };
            if let Some(patch) = patch_for(obj, fields, &conds, now) {
                out.push(StatusWrite {
                    kind,
                    name: obj.name.to_string(),
                    seen: obj.resource_version.map(str::to_string),
                    patch,
                });
            }
        }
    }
    out
}

/// The audit's part of a status: `findings` (the count) and the condition `Audited`
/// (False while the findings may be out of date), once the audit has computed them.
fn audited(
    audit: &AuditSummary,
    n: u64,
    fields: &mut Vec<(&'static str, Value)>,
    conds: &mut Vec<Want>,
) {
    if !audit.computed {
        return;
    }
    fields.push(("findings", json!(n)));
    conds.push(match &audit.stale {
        None => want(
            AUDITED_CONDITION,
            true,
            "Current",
            format!("{n} findings on running workloads"),
        ),
        Some(why) => want(AUDITED_CONDITION, false, "Stale", why.clone()),
    });
}

/// The binding-table entry of a RegistrySpace object.
fn space_entry<'s>(snap: &'s Snapshot, name: &str) -> Option<&'s crate::index::SpaceEntry> {
    snap.registries()
        .iter()
        .flat_map(|r| snap.spaces_of(&r.name))
        .find(|s| s.objects.iter().any(|o| o == name))
}

fn registry(
    snap: &Snapshot,
    obj: StoredView<'_>,
    problems: &[&str],
    probed: &Probed,
) -> (Vec<(&'static str, Value)>, Vec<Want>) {
    // Host conflicts, and a managed Registry on a host another Registry keeps, have
    // their own condition; the rest make the spec invalid.
    let (conflicts, others): (Vec<&str>, Vec<&str>) =
        problems.iter().partition(|p| p.starts_with("Conflict:"));
    let valid = match (obj.invalid, others.as_slice()) {
        (Some(why), _) => want("Valid", false, "Invalid", why.to_string()),
        (None, []) => want("Valid", true, "Valid", String::new()),
        (None, p) => want("Valid", false, "InvalidSpec", p.join("; ")),
    };
    let mut conds = vec![valid];
    if obj.invalid.is_none() {
        // Present while there is a conflict, and False once one is over (a Registry that
        // never had one carries no such condition).
        let had = obj.status["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Conflict"));
        let shared = host_conflict(snap, obj.name);
        if shared.status == "True" {
            conds.push(shared);
        } else if !conflicts.is_empty() {
            conds.push(want("Conflict", true, "HostClaimed", conflicts.join("; ")));
        } else if had {
            conds.push(shared);
        }
    }
    let mut fields = Vec::new();
    if let Some(p) = probed.registries.get(obj.name) {
        let s = &p.status;
        fields = vec![
            ("health", json!(s.health)),
            (
                "message",
                json!((!s.message.is_empty()).then_some(&s.message)),
            ),
            ("spaceCount", json!(s.space_count)),
            ("storageUsedBytes", json!(s.storage_used_bytes)),
            ("storageUsed", json!(s.storage_used)),
            ("lastProbeTime", json!(s.last_probe_time)),
            ("credentialKind", json!(s.credential_kind)),
        ];
        if let Some(ready) = s.conditions.iter().find(|c| c.type_ == READY_CONDITION) {
            conds.insert(
                0,
                Want {
                    type_: READY_CONDITION,
                    status: ready.status.clone(),
                    reason: ready.reason.clone(),
                    message: ready.message.clone(),
                },
            );
        }
    }
    (fields, conds)
}

/// "1 namespace", "2 namespaces".
fn namespaces(n: usize) -> String {
    format!("{n} namespace{}", if n == 1 { "" } else { "s" })
}

/// `Conflict`: the hosts of this Registry that others claim too, and who; its message is
/// the CONFLICT column of `kubectl get registries`, so it stays short.
fn host_conflict(snap: &Snapshot, name: &str) -> Want {
    let conflicts = snap.host_conflicts(name);
    if conflicts.is_empty() {
        return want("Conflict", false, "NoConflict", String::new());
    }
    let hosts: Vec<&str> = conflicts.iter().map(|(host, _)| *host).collect();
    let mut with: Vec<&str> = conflicts
        .iter()
        .flat_map(|(_, names)| names.iter().map(String::as_str))
        .filter(|n| *n != name)
        .collect();
    with.sort_unstable();
    with.dedup();
    want(
        "Conflict",
        true,
        "HostConflict",
        format!(
            "{} also claimed by {}; images from {} are denied",
            hosts.join(", "),
            with.join(", "),
            if hosts.len() == 1 { "it" } else { "them" }
        ),
    )
}

fn workspace(
    snap: &Snapshot,
    obj: StoredView<'_>,
    problems: &[&str],
) -> (Vec<(&'static str, Value)>, Vec<Want>) {
    let members: Vec<&str> = snap
        .workspaces()
        .iter()
        .find(|w| w.name == obj.name)
        .map(|w| w.namespaces.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let ready = match (obj.invalid, problems) {
        (Some(why), _) => want("Ready", false, "Invalid", why.to_string()),
        (None, []) => want("Ready", true, "Resolved", namespaces(members.len())),
        (None, p) => want("Ready", false, "InvalidSpec", p.join("; ")),
    };
    (vec![("namespaces", json!(members))], vec![ready])
}

fn space(
    snap: &Snapshot,
    obj: StoredView<'_>,
    problems: &[&str],
    extra: &[String],
) -> (Vec<(&'static str, Value)>, Vec<Want>) {
    let entry = snap
        .registries()
        .iter()
        .flat_map(|r| snap.spaces_of(&r.name))
        .find(|s| s.objects.iter().any(|o| o == obj.name));
    let bound = entry.map_or(0, |e| snap.bound_namespaces(e).len());
    let (conflicts, others): (Vec<&str>, Vec<&str>) =
        problems.iter().partition(|p| p.starts_with("Conflict:"));
    let conflict = match conflicts.first() {
        Some(msg) => want("Conflict", true, "Conflict", msg.to_string()),
        None => want("Conflict", false, "NoConflict", String::new()),
    };
    let mut why: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    why.extend(extra.iter().cloned());
    let ready = match obj.invalid {
        Some(w) => want("Ready", false, "Invalid", w.to_string()),
        None if entry.is_none() => want("Ready", false, "InvalidSpec", why.join("; ")),
        None if !why.is_empty() => want("Ready", false, "Degraded", why.join("; ")),
        None => want(
            "Ready",
            true,
            "Bound",
            format!("{} may pull", namespaces(bound)),
        ),
    };
    let mut conds = vec![ready];
    if obj.invalid.is_none() {
        conds.push(conflict);
    }
    (vec![("boundNamespaces", json!(bound))], conds)
}

/// The merge patch that brings the status to what is wanted, or None if it is already.
fn patch_for(
    obj: StoredView<'_>,
    fields: Vec<(&'static str, Value)>,
    conds: &[Want],
    now: &str,
) -> Option<Value> {
    let current = obj.status;
    let existing: Vec<Value> = current
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let find = |t: &str| existing.iter().find(|c| c["type"] == t);
    // A null field is an absent one (the merge patch removes it).
    let mut changed = fields
        .iter()
        .any(|(k, v)| current.get(*k).unwrap_or(&Value::Null) != v);
    let mut out_conds: Vec<Value> = existing
        .iter()
        .filter(|c| !conds.iter().any(|w| c["type"] == w.type_))
        .cloned()
        .collect();
    for w in conds {
        let old = find(w.type_);
        let same_status = old.is_some_and(|c| c["status"] == w.status.as_str());
        let same = same_status
            && old.is_some_and(|c| {
                c["reason"] == w.reason.as_str()
                    && c["message"] == w.message.as_str()
                    && c.get("observedGeneration").and_then(Value::as_i64) == obj.generation
            });
        changed |= !same;
        let time = match old {
            Some(c) if same_status => c["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        let mut c = json!({
            "type": w.type_,
            "status": w.status,
            "reason": w.reason,
            "message": w.message,
            "lastTransitionTime": time,
        });
        if let Some(g) = obj.generation {
            c["observedGeneration"] = json!(g);
        }
        out_conds.push(c);
    }
    if !changed {
        return None;
    }
    let mut status = serde_json::Map::new();
    for (k, v) in fields {
        status.insert(k.to_string(), v);
    }
    status.insert("conditions".into(), Value::Array(out_conds));
    Some(json!({ "status": status }))
}
