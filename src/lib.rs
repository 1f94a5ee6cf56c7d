//! pullgate: a Kubernetes admission webhook and image-pull gatekeeper.
//!
//! ```text
//! AdmissionReview ──► admission/ ──► policy::decide(images, namespace, &Snapshot) ──► verdicts
//!       (wire)          parse once        pure, synchronous, no IO                     │
//!                                               ▲                                      ▼
//! cluster watches ──► index/ builds Snapshot ───┘                    response + patch + audit line
//! (or --config file)   (Arc swapped per revision)
//! cluster/replica (every replica): watches → Watched → Table; Events about denials
//! cluster/leader (Lease holder only): pull Secrets, status, probes, Harbor projects and
//!                robots, managed Harbor
//! registry/: Harbor and Docker Registry clients (the only place that talks to registries)
//! ```
//!
//! What we know, by name:
//!
//! - `Objects` ([`index::Objects`]): the valid custom resources and namespace labels a
//!   binding table is built from, as read from a file or taken from the watches.
//! - `Snapshot` ([`index::Snapshot`]): the binding table itself, built from `Objects`
//!   at one revision; immutable, pure, what `policy::decide` reads.
//! - `Table` ([`index::Table`]): the live cell holding the current `Snapshot` (swapped
//!   atomically per revision) and whether it may be stale; admission loads from it.
//! - `Watched` ([`cluster::replica::state::Watched`]): everything the watches have seen,
//!   valid or not, with statuses and Secrets; the one copy each replica keeps, owned by
//!   the feed, which turns it into `Objects`.
//! - `LeaderView` ([`cluster::replica::state::LeaderView`]): a `Snapshot` and a copy of
//!   `Watched` consistent with it (its namespaces and Secrets shared, not copied); built
//!   only on the leader, for the leader's loops.
//! - `Running` ([`cluster::Running`]): the running workloads the workload watches have
//!   seen, one `Arc` list per namespace, published per burst of changes.
//!   [`whatif::Current`] is what an admin's change is judged against: the `Objects` of
//!   the current table and those same per-namespace `Arc`s (no workload copied), as a
//!   [`whatif::Running`] hands them out.
//!
//! Where to add a new kind of registry: a client beside `registry::harbor` and
//! `registry::docker`, a variant of [`registry::RegistryClient`] and of
//! `api::RegistryType`, and its probe in `registry::probe`; what the leader does with it
//! (projects, robots) goes in `cluster::leader`.
//!
//! - [`api`]: the CRD types and shared constants.
//! - [`reference`](mod@reference): image references parsed as the container runtime parses them (pure,
//!   the leaf both `index` and `policy` use).
//! - [`policy`]: the decision (pure).
//! - [`index`]: the binding table built from objects (pure).
//! - [`findings`]: running workloads judged with the admission decision, folded under
//!   their controllers, and the diff between two tables (pure); [`findings::workload`]
//!   reads a `Workload` from an object's JSON with [`object`]'s reader.
//! - [`object`]: the kinds pullgate judges and the parts of a pod or workload it reads
//!   (serde types, bounded lists), with the images they use; read the same way by
//!   admission, `findings`, `check` and the what-if.
//! - [`admission`]: AdmissionReview in and out, the decision mapped to an answer, the
//!   UPDATE diff, the patch.
//! - [`audit_record`]: the audit record (one JSON line per decision) and the bounds on
//!   what an answer or a record echoes.
//! - [`wire`]: JSON bodies read into serde types (the depth bound, sonic-rs or
//!   serde_json) and answers written by hand (`wire::out`); knows nothing of Kubernetes.
//! - [`whatif`]: the warnings on an admin's change (`changes.pullgate.io`): the running
//!   workloads a Registry, RegistrySpace or Workspace change would newly deny; admission
//!   is handed it as an [`admission::ChangeWarnings`].
//! - [`input`]: input files read as kubectl reads them (files, directories, stdin, lists,
//!   merge keys), the kinds pullgate knows, and escaping for printing.
//! - [`sensitive`]: reading objects that may hold credentials, with redacted errors.
//! - [`config`]: the standalone configuration file.
//! - [`cluster`]: cluster mode, in two halves: [`cluster::replica`] (every replica: watches
//!   feeding the table, Events) and [`cluster::leader`] (the Lease holder: pull Secrets,
//!   status, registries, Harbor projects and robots).
//! - [`server`]: the TLS listener, limits, certificate reload, probes and metrics.
//! - [`serve`]: `pullgate serve`, wiring a table source, admission and the server.
//! - [`logging`]: ordinary logs on stderr, audit lines on stdout (it owns the audit target).
//! - [`certs`]: development and self-signed certificates.
//! - [`check`]: the offline `pullgate check` command.
//! - [`audit_cli`]: the `pullgate audit` command (findings on running workloads, and
//!   what-if).
//! - [`overview`]: the `pullgate overview` command.
//! - [`ui`]: the overview page of `serve --ui-listen` (plain HTTP, read-only) and the
//!   ring of the latest denials it shows.
//! - [`registry`]: Harbor and Docker Registry clients, probes, status and Harbor management.
//! - [`provider`]: pulls without Secrets (README, "Pulls without Secrets"): the `pullgate credential-provider`
//!   command the kubelet runs, and the issuer behind `POST /credentials`.

pub mod admission;
pub mod api;
pub mod audit_cli;
pub mod audit_record;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod findings;
pub mod index;
pub mod input;
pub mod logging;
pub mod object;
pub mod overview;
pub mod policy;
pub mod provider;
pub mod reference;
pub mod registry;
pub mod sensitive;
pub mod serve;
pub mod server;
pub mod ui;
pub mod whatif;
pub mod wire;
