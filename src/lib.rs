//! pullgate: a Kubernetes admission webhook and image-pull gatekeeper.
//!
//! ```text
//! AdmissionReview ──► admission/ ──► policy::decide(images, namespace, &Snapshot) ──► verdicts
//!       (wire)          parse once        pure, synchronous, no IO                     │
//!                                               ▲                                      ▼
//! --config file ────► index/ builds Snapshot ───┘                    response + patch + audit line
//! ```
//!
//! - [`api`]: the CRD types and shared constants.
//! - [`policy`]: image references and the decision (pure).
//! - [`index`]: the binding table built from objects (pure).
//! - [`admission`]: images of pods and workloads, AdmissionReview in and out, the patch.
//! - [`config`]: the standalone configuration file.
//! - [`cluster`]: cluster mode: watches feeding the table, leader-only Secrets, status, Events.
//! - [`check`]: the offline `pullgate check` command.
//! - [`overview`]: the `pullgate overview` command.
//! - [`registry`]: Harbor and Docker Registry clients, probes, status and Harbor management.

pub mod admission;
pub mod api;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod index;
pub mod overview;
pub mod policy;
pub mod registry;
