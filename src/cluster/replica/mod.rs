//! What every replica runs, leader or not: the watches ([`watch`]), what they have
//! seen ([`state`]), the feed that owns that state and rebuilds the binding table from it
//! ([`feed`]), the writer of the Events about the denials this replica served
//! ([`events`]), and the running workloads ([`workloads`]) that the warnings on an
//! admin's change and the leader's audit read. Nothing here writes to the apiserver except those Events, and nothing
//! here talks to a registry; admission depends only on what this half produces.
//!
//! The cut is the one that matters when reading a failure: a replica that is not leader
//! runs exactly this module, so a bug outside it cannot affect what it admits.

pub mod events;
pub mod feed;
pub mod state;
pub mod watch;
pub mod workloads;
