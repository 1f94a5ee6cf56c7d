//! The command line: one derived parser, every flag also read from `PULLGATE_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::{Enforcement, DEFAULT_NAMESPACE, DEFAULT_PULL_SECRET_NAME};
use crate::policy::{Policy, Unmanaged};

#[derive(Debug, Parser)]
#[command(
    name = "pullgate",
    version,
    about = "Kubernetes image-pull gatekeeper for integrated registries"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook (standalone with --config, else in the cluster).
    Serve(Box<ServeArgs>),
    /// Evaluate manifests or one image offline, with the same code as admission.
    Check(CheckArgs),
    /// Print the CustomResourceDefinitions.
    Crds,
    /// Write a CA and an ECDSA serving certificate, print the caBundle.
    Certs(CertsArgs),
    /// Show every registry (health, spaces, storage) and its spaces: probed live with
    /// --config, else read from the cluster with the status the leader last recorded.
    Overview(OverviewArgs),
    /// The kubelet's exec credential provider: reads a CredentialProviderRequest on
    /// stdin, asks `pullgate serve` (POST /credentials) and prints the response.
    CredentialProvider(CredentialProviderArgs),
    /// Judge running workloads (from files or the cluster) and print the findings; with
    /// --what-if, the workloads a proposed configuration would newly deny or allow.
    Audit(AuditArgs),
}

/// Policy flags shared by `serve` and `check`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Global mode, also what a workspace without `enforcement` contributes; the strictest
    /// contribution of a namespace's workspaces wins. Written in any case: `warn` or the
    /// Workspace's spelling `Warn`.
    #[arg(
        long,
        env = "PULLGATE_MODE",
        value_enum,
        ignore_case = true,
        default_value = "enforce"
    )]
    pub mode: Enforcement,
    /// What to do with images of registries that are not integrated.
    #[arg(long, env = "PULLGATE_UNMANAGED", value_enum, default_value = "deny")]
    pub unmanaged: Unmanaged,
    /// Namespaces allowed untouched (repeatable). pullgate's own namespace is always
    /// exempt; giving the flag replaces the default `kube-system`.
    #[arg(
        long = "exempt-namespace",
        env = "PULLGATE_EXEMPT_NAMESPACE",
        value_delimiter = ',',
        default_value = "kube-system"
    )]
    pub exempt_namespaces: Vec<String>,
}

impl PolicyArgs {
    /// The policy, with pullgate's own namespace (`--pullgate-namespace`) exempt.
    pub fn policy(&self, own_namespace: &str) -> Policy {
        let mut exempt = vec![own_namespace.to_string()];
        exempt.extend(self.exempt_namespaces.iter().cloned());
        exempt.sort();
        exempt.dedup();
        Policy {
            mode: self.mode,
            unmanaged: self.unmanaged,
            exempt_namespaces: exempt,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TLS address of the webhook.
    #[arg(long, env = "PULLGATE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PULLGATE_PROBE_LISTEN", default_value = "0.0.0.0:9090")]
    pub probe_listen: SocketAddr,
    /// Serving certificate (PEM); reloaded when it changes.
    #[arg(long, env = "PULLGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "PULLGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Standalone mode: the objects come from this file, reloaded when it changes.
    #[arg(long, env = "PULLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where to write the CA of the self-signed certificate (without --tls-cert).
    #[arg(long, env = "PULLGATE_CA_OUT")]
    pub ca_out: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// pullgate's own namespace: always exempt, and in cluster mode where its Lease and
    /// the Secrets it keeps for itself live (the Deployment passes its pod's namespace).
    /// `--namespace` is its old name, still accepted.
    #[arg(
        long,
        env = "PULLGATE_NAMESPACE",
        default_value = DEFAULT_NAMESPACE,
        alias = "namespace"
    )]
    pub pullgate_namespace: String,
    /// Name of the pull Secret injected into pods and kept in namespaces.
    #[arg(long, env = "PULLGATE_PULL_SECRET_NAME", default_value = DEFAULT_PULL_SECRET_NAME)]
    pub pull_secret_name: String,
    /// Cluster mode: refuse grants of Private spaces when watches are broken this long.
    #[arg(long, env = "PULLGATE_MAX_STALENESS", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_staleness: Duration,
    /// Cluster mode: how often the leader probes registries.
    #[arg(long, env = "PULLGATE_PROBE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,
    /// Cluster mode: how the leader writes the findings of the background audit:
    /// `openreports` (openreports.io/v1alpha1 Report per namespace), `wgpolicy`
    /// (wgpolicyk8s.io/v1alpha2 PolicyReport) or `none` (metrics and logs only).
    /// Default: the first whose API the cluster serves, looked for every --probe-interval.
    #[arg(long, env = "PULLGATE_REPORTS", value_enum)]
    pub reports: Option<crate::api::ReportFormat>,
    /// How often the configuration file and certificate files are checked for changes.
    #[arg(long, env = "PULLGATE_RELOAD_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// After SIGTERM, how long to keep serving with /readyz false before closing.
    #[arg(long, env = "PULLGATE_DRAIN_PERIOD", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain_period: Duration,
    /// Requests handled at once; more are answered 503 at once.
    #[arg(long, env = "PULLGATE_MAX_IN_FLIGHT", default_value = "256")]
    pub max_in_flight: usize,
    /// Request bodies held in memory at once, across all requests (bytes, or with a
    /// Ki/Mi/Gi suffix); a body that finds no room is answered 503 at once.
    #[arg(long, env = "PULLGATE_MAX_BODY_MEMORY", default_value = "64Mi", value_parser = parse_bytes)]
    pub max_body_memory: usize,
    /// Log format of ordinary logs (audit lines are always JSON on stdout).
    #[arg(long, env = "PULLGATE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Plain-HTTP address of the read-only overview page (registries, spaces,
    /// workspaces, latest denials); off when not given. It has no authentication: bind
    /// it to 127.0.0.1 and reach it with `kubectl port-forward`.
    #[arg(long, env = "PULLGATE_UI_LISTEN")]
    pub ui_listen: Option<SocketAddr>,
    /// Boxed: the flags of pulls without Secrets would otherwise make `Command` one
    /// large variant.
    #[command(flatten)]
    pub pull_credentials: Box<PullCredentialsArgs>,
    /// Cluster mode: this cluster's name toward registries shared with other clusters
    /// (in Harbor robot names and descriptions); default: the UID of kube-system.
    #[arg(long, env = "PULLGATE_CLUSTER_NAME", value_parser = parse_cluster_name)]
    pub cluster_name: Option<String>,
    /// Cluster mode: lifetime of the Harbor robot accounts pullgate makes; each is
    /// replaced (make-before-break) two thirds into it.
    #[arg(long, env = "PULLGATE_ROBOT_LIFETIME", default_value = "90d", value_parser = humantime::parse_duration)]
    pub robot_lifetime: Duration,
    /// Cluster mode: how long a replaced robot keeps working after every pull Secret
    /// carries its successor (time for pulls under way and kubelets to move on).
    #[arg(long, env = "PULLGATE_ROBOT_ROTATION_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub robot_rotation_grace: Duration,
    /// Cluster mode: keep a Registry for each HarborCluster (`auto`: when the CRD
    /// exists) or not (`off`).
    #[arg(
        long,
        env = "PULLGATE_MANAGED_HARBOR",
        value_enum,
        default_value = "auto"
    )]
    pub managed_harbor: ManagedHarbor,
    /// Cluster mode: writes per second to the apiserver, on average (pull Secrets,
    /// statuses, Reports, Events: every write but the leader Lease's; reads and watches
    /// are not limited). Writes beyond it wait, never fail. 0: no limit.
    #[arg(
        long,
        env = "PULLGATE_KUBE_API_QPS",
        default_value_t = crate::api::DEFAULT_KUBE_API_QPS,
        value_parser = parse_kube_api_qps
    )]
    pub kube_api_qps: f64,
    /// Cluster mode: writes to the apiserver allowed at once before --kube-api-qps
    /// applies (at least 1).
    #[arg(
        long,
        env = "PULLGATE_KUBE_API_BURST",
        default_value_t = crate::api::DEFAULT_KUBE_API_BURST,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kube_api_burst: u32,
}

/// `--kube-api-qps`: 0 (no limit) or a finite rate of at least `MIN_QPS`.
fn parse_kube_api_qps(text: &str) -> Result<f64, String> {
    use crate::api::MIN_KUBE_API_QPS as MIN_QPS;
    text.parse::<f64>()
        .ok()
        .filter(|r| crate::api::is_kube_api_qps(*r))
        .ok_or_else(|| {
            format!("{text:?} is not a rate: writes per second such as 50 or 0.5 (at least {MIN_QPS}), or 0 for no limit")
        })
}

/// `--managed-harbor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ManagedHarbor {
    Auto,
    Off,
}

/// A cluster name: 1–63 lower-case letters, digits, `-` and `.`, starting and ending
/// with a letter or digit (a DNS label or subdomain, as a UID is), so that it fits a
/// Harbor robot name and description.
fn parse_cluster_name(text: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a cluster name: 1-63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// How pods get pull credentials (README, "Pulls without Secrets").
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PullCredentials {
    /// Pull Secrets: kept in each entitled namespace and injected into pods.
    Secrets,
    /// The kubelet's credential provider asks POST /credentials with the pod's
    /// service-account token; no pull Secret is injected or kept.
    Provider,
    /// Both, while nodes are moved to the credential provider one by one.
    Both,
}

impl PullCredentials {
    /// Whether pull Secrets are kept in namespaces and injected into pods.
    pub fn secrets(self) -> bool {
        self != PullCredentials::Provider
    }

    /// Whether `POST /credentials` is served.
    pub fn provider(self) -> bool {
        self != PullCredentials::Secrets
    }
}

/// The flags of `serve` about pulls without Secrets (README, "Pulls without Secrets").
#[derive(Debug, Args)]
pub struct PullCredentialsArgs {
    /// Pull Secrets (`secrets`), the kubelet credential provider (`provider`; cluster
    /// mode only), or both during a node-by-node rollout.
    #[arg(
        long,
        env = "PULLGATE_PULL_CREDENTIALS",
        value_enum,
        default_value = "secrets"
    )]
    pub pull_credentials: PullCredentials,
    /// Audience the service-account tokens of POST /credentials must be made for (the
    /// `serviceAccountTokenAudience` of the kubelet's CredentialProviderConfig).
    #[arg(long, env = "PULLGATE_TOKEN_AUDIENCE", default_value = "pullgate")]
    pub token_audience: String,
    /// Longest time a kubelet may keep credentials from POST /credentials (shorter when
    /// the credential expires sooner).
    #[arg(long, env = "PULLGATE_CREDENTIAL_CACHE_DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub credential_cache_duration: Duration,
    /// POST /credentials requests per second one node (one sender address) may make on
    /// average; more are answered 429 before any TokenReview.
    #[arg(long, env = "PULLGATE_NODE_CREDENTIAL_RATE", default_value = "20", value_parser = parse_rate)]
    pub node_credential_rate: f64,
    /// POST /credentials requests one node may make at once before the rate applies.
    #[arg(long, env = "PULLGATE_NODE_CREDENTIAL_BURST", default_value = "200")]
    pub node_credential_burst: u32,
}

/// `pullgate credential-provider`: the kubelet runs it with its `args` and `env`.
#[derive(Debug, Args)]
pub struct CredentialProviderArgs {
    /// Base URL of pullgate's TLS port, e.g. `https://10.96.0.20:443`, the cluster IP of
    /// Service pullgate (POST /credentials is asked there).
    #[arg(long, env = "PULLGATE_SERVER")]
    pub server: String,
    /// PEM file of the CA that signed pullgate's serving certificate.
    #[arg(long, env = "PULLGATE_CA_FILE")]
    pub ca_file: PathBuf,
    /// Name to verify pullgate's certificate for, when --server is an address the
    /// certificate does not name (a node's own resolver usually cannot resolve
    /// `*.svc` names, so --server is often the Service's cluster IP).
    #[arg(long, env = "PULLGATE_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// Longest wait for pullgate's answer; then no credentials are given.
    #[arg(long, env = "PULLGATE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["files", "image"])))]
pub struct CheckArgs {
    /// Configuration file (same format as `serve --config`).
    #[arg(long, env = "PULLGATE_CONFIG")]
    pub config: PathBuf,
    /// Manifests to check: files, directories (their .yaml/.yml/.json files) or `-` for
    /// stdin; multi-document YAML or JSON, lists and merge keys as kubectl reads them.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Explain the decision for one image, step by step.
    #[arg(long, conflicts_with = "files", requires = "target_namespace")]
    pub image: Option<String>,
    /// The namespace the objects are judged in, as if created there (default: each
    /// object's own metadata.namespace, else "default"); required with --image. Not
    /// pullgate's own namespace, which is --pullgate-namespace.
    #[arg(
        short = 'n',
        long = "namespace",
        alias = "target-namespace",
        value_name = "NAMESPACE"
    )]
    pub target_namespace: Option<String>,
    /// Output format: text (for people) or json (one document, for scripts).
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// pullgate's own namespace, always exempt as in `serve`.
    #[arg(long, env = "PULLGATE_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub pullgate_namespace: String,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into.
    #[arg(long)]
    pub out: PathBuf,
    /// DNS names (or IP addresses) of the serving certificate (repeatable).
    #[arg(long = "dns", required = true, num_args = 1..)]
    pub dns: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OverviewArgs {
    /// Configuration file (same format as `serve --config`), whose registries are probed
    /// live. Without it, the objects are read from the cluster (kubeconfig or in-cluster
    /// config) and health, spaces and storage are the status the leader recorded at its
    /// last probe (`--probe-interval` of `serve`); nothing is probed.
    #[arg(long, env = "PULLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format: text (for people) or json (one document, for scripts).
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// With --config: longest wait for one registry's probe; a registry slower than this
    /// is Unhealthy.
    #[arg(long, env = "PULLGATE_PROBE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub probe_timeout: Duration,
}

/// A rate: a finite number of at least 0 (0: only the burst, never refilled).
fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a rate such as 20 or 0.5"))
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Configuration file (same format as `serve --config`) whose binding table judges.
    /// Without it, the table is read from the cluster (kubeconfig or in-cluster config).
    #[arg(long, env = "PULLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Workloads to judge: files, directories or `-`, for example the output of
    /// `kubectl get pods,rs,deploy,sts,ds,jobs,cronjobs -A -o yaml`. Without it, the
    /// workloads are listed from the cluster.
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// A complete proposed configuration: print the workloads whose verdict changes
    /// between the current table and this one, newly denied first; exit 1 if any is
    /// newly denied.
    #[arg(long, value_name = "PROPOSED")]
    pub what_if: Option<PathBuf>,
    /// Kubeconfig file for reading the cluster (default: $KUBECONFIG, ~/.kube/config,
    /// or the in-cluster config).
    #[arg(long, env = "PULLGATE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// pullgate's own namespace, always exempt as in `serve`.
    #[arg(long, env = "PULLGATE_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub pullgate_namespace: String,
}

/// A byte count as Kubernetes writes quantities of memory: `1048576`, `512Ki`, `64Mi`,
/// `1Gi`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let scale: Option<usize> = match unit {
        "" => Some(1),
        "Ki" => Some(1 << 10),
        "Mi" => Some(1 << 20),
        "Gi" => Some(1 << 30),
        _ => None,
    };
    scale
        .zip(digits.parse::<usize>().ok())
        .and_then(|(scale, n)| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a byte count such as 67108864 or 64Mi"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        for bad in [
            "",
            "Mi",
            "64M",
            "64mi",
            "-1",
            "1.5Mi",
            "99999999999999999999Gi",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("20"), Ok(20.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert_eq!(parse_rate("0"), Ok(0.0));
        for bad in ["", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kube_api_rate() {
        let serve = |args: &[&str]| {
            Cli::try_parse_from(["pullgate", "serve"].iter().chain(args)).map(|cli| {
                let Command::Serve(a) = cli.command else {
                    panic!("not serve")
                };
                (a.kube_api_qps, a.kube_api_burst)
            })
        };
        assert_eq!(serve(&[]).expect("defaults"), (50.0, 100));
        assert_eq!(
            serve(&["--kube-api-qps", "0.5", "--kube-api-burst", "3"]).expect("valid"),
            (0.5, 3)
        );
        assert_eq!(serve(&["--kube-api-qps", "0"]).expect("no limit").0, 0.0);
        for bad in [
            "--kube-api-qps=-1",
            "--kube-api-qps=NaN",
            "--kube-api-qps=inf",
            "--kube-api-qps=0.0000001",
            "--kube-api-burst=0",
            "--kube-api-burst=-5",
        ] {
            let e = serve(&[bad]).expect_err(bad);
            let flag = bad.split('=').next().unwrap_or_default();
            assert!(e.to_string().contains(flag), "{e}");
        }
    }

    #[test]
    fn cluster_names() {
        for good in [
            "prod-eu",
            "7d3c9a52-0f1e-4b8a-9c1d-2e3f4a5b6c7d",
            "a",
            "a.b",
        ] {
            assert!(parse_cluster_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "-a", "a-", "a;b", "a=b", &"a".repeat(64)] {
            assert!(parse_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Deployments written for earlier releases pass `serve --namespace`.
    #[test]
    fn serve_still_reads_its_old_namespace_flag() {
        for flag in ["--namespace", "--pullgate-namespace"] {
            let cli = Cli::parse_from(["pullgate", "serve", flag, "pg"]);
            let Command::Serve(args) = cli.command else {
                panic!("not serve")
            };
            assert_eq!(args.pullgate_namespace, "pg");
        }
    }

    #[test]
    fn own_namespace_is_always_exempt() {
        let cli = Cli::parse_from([
            "pullgate",
            "check",
            "--config",
            "c",
            "--image",
            "x",
            "-n",
            "a",
            "--pullgate-namespace",
            "pg",
            "--exempt-namespace",
            "infra",
        ]);
        let Command::Check(args) = cli.command else {
            panic!("not check")
        };
        assert_eq!(
            args.policy
                .policy(&args.pullgate_namespace)
                .exempt_namespaces,
            ["infra", "pg"]
        );
        assert_eq!(args.target_namespace.as_deref(), Some("a"));
    }
}
