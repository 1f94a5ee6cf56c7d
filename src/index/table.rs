//! The current binding table shared between whoever builds snapshots (the config
//! reloader or the cluster watches) and admission, which reads it without locks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::Snapshot;

pub struct Table {
    current: ArcSwap<Snapshot>,
    built_at: ArcSwap<SystemTime>,
    stale: AtomicBool,
}

impl Table {
    pub fn new(snapshot: Snapshot) -> Table {
        Table {
            current: ArcSwap::from_pointee(snapshot),
            built_at: ArcSwap::from_pointee(SystemTime::now()),
            stale: AtomicBool::new(false),
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
}
