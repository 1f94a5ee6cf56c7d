//! `pullgate serve`: wires the binding table source (the `--config` file, reloaded on
//! change), the admission handler, the audit log and the TLS server together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{info, warn};

use crate::admission::{Admission, Webhook};
use crate::cli::ServeArgs;
use crate::config;
use crate::index::{Snapshot, Table};
use crate::server::{self, Endpoint, Handler, Health, Metrics, Reply, ServerOptions, TlsSource};

/// The admission handler the server calls: review, count, audit.
pub struct AdmissionHandler {
    pub admission: Admission,
    pub metrics: Arc<Metrics>,
}

impl Handler for AdmissionHandler {
    fn handle(&self, endpoint: Endpoint, body: &[u8], _deadline: Instant) -> Reply {
        let start = Instant::now();
        let webhook = match endpoint {
            Endpoint::Validate => Webhook::Validate,
            Endpoint::Mutate => Webhook::Mutate,
        };
        let reviewed = self.admission.review(webhook, body);
        if let Some(verdict) = reviewed.verdict {
            self.metrics
                .observe_request(endpoint, verdict.as_str(), start.elapsed());
        }
        if let Some(record) = &reviewed.audit {
            record.emit();
        }
        Reply {
            status: reviewed.status,
            body: reviewed.body,
        }
    }
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let Some(config_path) = args.config.clone() else {
        anyhow::bail!(
            "cluster mode (serve without --config) is not available in this build; \
             run standalone with --config FILE"
        );
    };
    let cfg = config::load(&config_path).context("loading --config")?;
    let snapshot = Snapshot::build(&cfg.objects, 1);
    log_problems(&snapshot);
    let table = Arc::new(Table::new(snapshot));
    metrics.set_binding_table(1, table.built_at());
    health.set_synced(true);
    tokio::spawn(watch_config(
        config_path,
        table.clone(),
        metrics.clone(),
        args.reload_interval,
    ));

    let handler = Arc::new(AdmissionHandler {
        admission: Admission {
            policy: args.policy.policy(),
            pull_secret_name: args.pull_secret_name.clone(),
            table,
        },
        metrics: metrics.clone(),
    });
    server::serve(server_options(&args), handler, health, metrics, shutdown_signal()).await
}

pub fn server_options(args: &ServeArgs) -> ServerOptions {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => TlsSource::SelfSigned {
            ca_out: args.ca_out.clone(),
        },
    };
    let mut opts = ServerOptions::new(args.listen, args.probe_listen, tls);
    opts.max_in_flight = args.max_in_flight;
    opts.drain_period = args.drain_period;
    opts.cert_reload_interval = args.reload_interval;
    opts
}

/// Polls the config file and publishes a new snapshot when its content changes. An
/// invalid file keeps the last good table and logs why.
async fn watch_config(path: PathBuf, table: Arc<Table>, metrics: Arc<Metrics>, every: Duration) {
    let mut last = std::fs::read(&path).ok();
    let mut revision = table.load().revision();
    loop {
        tokio::time::sleep(every).await;
        let content = match std::fs::read(&path) {
            Ok(c) => c,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot read config; keeping the last good binding table");
                continue;
            }
        };
        if last.as_ref() == Some(&content) {
            continue;
        }
        last = Some(content.clone());
        let parsed = std::str::from_utf8(&content)
            .map_err(|e| config::ConfigError(format!("not UTF-8: {e}")))
            .and_then(config::parse);
        match parsed {
            Ok(cfg) => {
                revision += 1;
                let snapshot = Snapshot::build(&cfg.objects, revision);
                log_problems(&snapshot);
                table.store(snapshot);
                metrics.set_binding_table(revision, table.built_at());
                info!(path = %path.display(), revision, "config reloaded");
            }
            Err(e) => warn!(path = %path.display(), error = %e, "invalid config; keeping the last good binding table"),
        }
    }
}

fn log_problems(snapshot: &Snapshot) {
    for p in snapshot.problems() {
        warn!(kind = p.kind, name = %p.name, "{}", p.message);
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM received; draining"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received; draining"),
    }
}
