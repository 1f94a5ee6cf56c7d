//! What every leader loop listens to, and the one way they wait: [`Inputs::wake`] returns
//! at the next reason to look again (the view changed, leadership or sync changed, the
//! loop's own timer or stream fired) or when cluster mode stops. Each loop then decides
//! for itself whether to work; none works unless this replica leads and is synced.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::cluster::replica::state::LeaderView;
use crate::cluster::stopped;

/// The channels a leader loop reads.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// What the watches have seen, published by the feed.
    pub view: watch::Receiver<Arc<LeaderView>>,
    /// True once every watch has listed.
    pub synced: watch::Receiver<bool>,
    /// True while this replica holds the Lease and the view of its term is published.
    pub leader: watch::Receiver<bool>,
    /// Turns true when cluster mode stops.
    pub shutdown: watch::Receiver<bool>,
}

/// Why [`Inputs::wake`] returned.
#[derive(Debug)]
pub enum Wake<T> {
    View,
    Leader,
    Synced,
    /// The loop's own reason (a timer, a stream), with what it produced.
    Own(T),
    Stop,
}

impl Inputs {
    /// Whether this replica leads, marking the current value seen.
    pub fn leading(&mut self) -> bool {
        *self.leader.borrow_and_update()
    }

    /// Whether every watch has listed, marking the current value seen.
    pub fn synced(&mut self) -> bool {
        *self.synced.borrow_and_update()
    }

    /// The current view, marking it seen.
    pub fn view(&mut self) -> Arc<LeaderView> {
        self.view.borrow_and_update().clone()
    }

    /// Waits for the next change of an input, for `own`, or for shutdown.
    pub async fn wake<T>(&mut self, own: impl Future<Output = T>) -> Wake<T> {
        tokio::select! {
            // A closed channel (its task gone at shutdown) is no reason to wake.
            Ok(()) = self.view.changed() => Wake::View,
            Ok(()) = self.leader.changed() => Wake::Leader,
            Ok(()) = self.synced.changed() => Wake::Synced,
            t = own => Wake::Own(t),
            _ = stopped(&mut self.shutdown) => Wake::Stop,
        }
    }

    /// Runs `work` to its end unless cluster mode stops first (then `None`).
    pub async fn unless_stopped<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            t = work => Some(t),
            _ = stopped(&mut self.shutdown) => None,
        }
    }

    /// Runs `work` to its end unless cluster mode stops or this replica stops leading
    /// first (then `None`). A pass paced by `--kube-api-qps` can take minutes: it must
    /// neither hold up the Lease's release at shutdown nor go on writing after another
    /// replica took over.
    pub async fn while_leading<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut leader = self.leader.clone();
        tokio::select! {
            t = work => Some(t),
            _ = stopped(&mut self.shutdown) => None,
            // A closed channel (its task gone at shutdown) is no reason to stop here.
            Ok(_) = leader.wait_for(|leading| !*leading) => None,
        }
    }
}
