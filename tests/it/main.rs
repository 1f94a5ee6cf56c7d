//! The integration tests, one binary: each module is one area (the file name says
//! which), `support` holds the fakes and helpers they share. `tests/transport_abuse.rs`
//! is the one test kept apart, because it counts its own process's file descriptors and
//! memory, which tests running beside it in one process would change.

mod support;

mod admin_cli;
mod admission;
mod audit_cli;
mod bypass;
mod change_warnings;
mod check_cli;
mod cluster;
mod cluster_faults;
mod cluster_resilience;
mod credential_provider;
mod docker_registry;
mod events;
mod harbor_client;
mod import_cycles;
mod large_objects;
mod metrics;
mod multi_cluster;
mod no_secrets;
mod overview_cli;
mod overview_cluster;
mod registry_auth;
mod registry_loop;
mod reports;
mod serve;
mod serve_cluster;
mod server;
mod server_lifecycle;
mod ui;
mod write_pacing;
