//! pullgate: a Kubernetes admission webhook and image-pull gatekeeper.
//!
//! ```text
//! AdmissionReview ──► admission/ ──► policy::decide(images, namespace, &Snapshot) ──► verdicts
//!       (wire)          parse once        pure, synchronous, no IO                     │
//!                                               ▲                                      ▼
//! cluster watches ──► index/ builds Snapshot ───┘                    response + patch + audit line
//! (or --config file)   (Arc swapped per revision)
//! cluster/ (leader only): pull Secrets, status, Events
//! registry/: Harbor and Docker Registry clients (the only place that talks to registries)
//! ```
//!
//! - [`api`]: the CRD types and shared constants.
//! - [`policy`]: image references and the decision (pure).
//! - [`index`]: the binding table built from objects (pure).
//! - [`admission`]: images of pods and workloads, AdmissionReview in and out, the patch.
//! - [`input`]: input files read as kubectl reads them (files, directories, stdin, lists,
//!   merge keys), the kinds pullgate knows, and escaping for printing.
//! - [`sensitive`]: reading objects that may hold credentials, with redacted errors.
//! - [`config`]: the standalone configuration file.
//! - [`cluster`]: cluster mode: watches feeding the table, leader-only Secrets, status, Events.
//! - [`server`]: the TLS listener, limits, certificate reload, probes and metrics.
//! - [`serve`]: `pullgate serve`, wiring a table source, admission and the server.
//! - [`logging`]: ordinary logs on stderr, audit lines on stdout.
//! - [`certs`]: development and self-signed certificates.
//! - [`check`]: the offline `pullgate check` command.
//! - [`overview`]: the `pullgate overview` command.
//! - [`registry`]: Harbor and Docker Registry clients, probes, status and Harbor management.

pub mod admission;
pub mod api;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod index;
pub mod input;
pub mod logging;
pub mod overview;
pub mod policy;
pub mod registry;
pub mod sensitive;
pub mod serve;
pub mod server;
