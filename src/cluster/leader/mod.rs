//! What only the leader does: holding the Lease ([`election`]), and every write to the
//! apiserver and the registries that must happen once per cluster rather than once per
//! replica: the pull Secrets ([`pull_secrets`] says what they hold, [`sync`] writes
//! them, from the sources in [`credentials`]), the custom resources' status ([`status`],
//! written by [`controller`]), registry probes and Harbor projects and robots
//! ([`registry_loop`], [`robots`] says what is kept of them, [`rotation`] what is done on
//! Harbor), a Registry per managed Harbor ([`managed`]), and the background audit's
//! findings per namespace ([`audit`]) written as reports ([`reports`]).
//!
//! Everything here reads the replica half's state (a
//! [`LeaderView`](super::replica::state::LeaderView)) and never the other way round
//! (`tests/it/import_cycles.rs` checks it): a replica that is not leader runs none of this.
//! The three loops (controller, registry loop, managed Harbor) wait the same way
//! ([`inputs`]). The pure readers of credentials ([`credentials`]' sources,
//! [`robots::RobotSource`], [`pull_secrets::auth_keys`]) also answer `POST /credentials`
//! on every replica (`crate::provider::issuer`); they write nothing.

pub mod audit;
pub mod controller;
pub mod credentials;
pub mod election;
pub mod inputs;
pub mod managed;
pub mod pull_secrets;
pub mod registry_loop;
pub mod reports;
pub mod robots;
pub mod rotation;
pub mod status;
pub mod sync;
