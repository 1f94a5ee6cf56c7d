//! The current binding table shared between whoever builds snapshots (the config
//! reloader or the cluster watches) and admission, which reads it without locks; also
//! whether it is stale, and since when it may be behind its source (for the metrics).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::Snapshot;

pub struct Table {
    current: ArcSwap<Snapshot>,
    built_at: ArcSwap<SystemTime>,
    stale: AtomicBool,
    behind_since: Mutex<Option<SystemTime>>,
}

impl Table {
    pub fn new(snapshot: Snapshot) -> Table {
        Table {
            current: ArcSwap::from_pointee(snapshot),
            built_at: ArcSwap::from_pointee(SystemTime::now()),
            stale: AtomicBool::new(false),
            behind_since: Mutex::new(None),
        }
    }

    /// The snapshot to decide with; cheap, lock-free.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes a new snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
        self.built_at.store(Arc::new(SystemTime::now()));
    }

    pub fn built_at(&self) -> SystemTime {
        **self.built_at.load()
    }

    /// Whether grants of Private spaces must be refused (watches broken too long).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    pub fn set_stale(&self, stale: bool) {
        self.stale.store(stale, Ordering::Relaxed);
    }

    /// Since when the table may be behind its source (a watch broken, the config file
    /// unreadable or invalid); `None` while it is current.
    pub fn behind_since(&self) -> Option<SystemTime> {
        *self
            .behind_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_behind_since(&self, since: Option<SystemTime>) {
        *self
            .behind_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = since;
    }
}
