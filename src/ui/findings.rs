//! The audit findings the page shows: the running workloads this replica watches (every
//! replica watches them in cluster mode), judged against the current binding table with
//! the background audit's own code, grouped by workspace. Standalone mode watches no
//! workloads, so the page says it has no audit data there.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Finding, FindingsSource, WorkspaceFindings};
use crate::findings;
use crate::index::Table;
use crate::policy::Policy;
use crate::whatif::Running;

/// Findings listed per workspace (the page shows the first few; the total counts all).
const LISTED: usize = 10;

/// The name the page gives namespaces in no workspace.
const NO_WORKSPACE: &str = "(no workspace)";

/// A [`FindingsSource`] over the running workloads and the live table. Judging is done
/// when the page is asked for (at 100,000 pods about 0.1 s, and the page is for people).
pub struct Judged {
    pub running: Arc<dyn Running>,
    pub table: Arc<Table>,
    pub policy: Policy,
}

impl FindingsSource for Judged {
    fn findings(&self) -> Option<Vec<WorkspaceFindings>> {
        let current = self.running.current().ok()?;
        if current.workloads.is_empty() {
            return None;
        }
        let snap = self.table.load();
        // Namespace by namespace (what judging all at once finds, without gathering them).
        let found: Vec<findings::Finding> = current
            .workloads
            .values()
            .flat_map(|ws| findings::judge_all(&snap, &self.policy, ws))
            .collect();
        let mut by: BTreeMap<String, WorkspaceFindings> = snap
            .workspaces()
            .iter()
            .map(|w| (w.name.clone(), named(&w.name)))
            .collect();
        for f in &found {
            let mut names: Vec<&str> = snap
                .workspaces_of(&f.namespace)
                .map(|w| w.name.as_str())
                .collect();
            if names.is_empty() {
                names.push(NO_WORKSPACE);
            }
            for name in names {
                let w = by.entry(name.to_string()).or_insert_with(|| named(name));
                w.total += 1;
                if w.findings.len() < LISTED {
                    w.findings.push(Finding {
                        kind: f.kind.as_str().to_string(),
                        namespace: f.namespace.clone(),
                        name: f.name.clone(),
                        image: f.image.clone(),
                        reason: f.message.clone(),
                    });
                }
            }
        }
        Some(by.into_values().collect())
    }
}

fn named(name: &str) -> WorkspaceFindings {
    WorkspaceFindings {
        workspace: name.to_string(),
        ..WorkspaceFindings::default()
    }
}
