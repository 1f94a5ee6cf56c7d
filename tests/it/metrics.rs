//! `/metrics` as Prometheus reads it, from `pullgate serve` processes: every metric the
//! README lists exists on a standalone server and on a cluster-mode replica that does not
//! lead (0 where it does not apply); `promtool check metrics` accepts the text; the stale
//! gauge, the staleness seconds and `/readyz`'s body follow broken watches; the leader
//! counts its failed registry calls.
//!
//! `promtool` comes from Debian's `prometheus` package, which `tests/run.sh` installs;
//! without it the promtool checks print a notice and pass, unless
//! `PULLGATE_REQUIRE_PROMTOOL` is set (as `tests/run.sh` does), when they fail.

use crate::support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::json;
use support::binary::Binary;
use support::*;

const REQUIRE_PROMTOOL: &str = "PULLGATE_REQUIRE_PROMTOOL";

/// A standalone config with one Registry (so that registry series exist), a Private
/// space and a workspace.
const CONFIG: &str = "apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {name: local}
spec: {type: DockerRegistry, url: 'http://127.0.0.1:1'}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {name: local.team-a}
spec: {registry: local, space: team-a, visibility: Private, workspaces: [ws-a]}
---
apiVersion: pullgate.io/v1alpha1
kind: Workspace
metadata: {name: ws-a}
spec: {namespaces: [app-1]}
";

/// A plain HTTP/1.1 GET: (status, content type, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the probe port");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, _, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `series` (name and labels as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

/// The metric names of the README's table of metrics (its rows start with the name).
fn readme_metrics() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Metrics and what to alert on")
        .nth(1)
        .expect("the README has a section \"Metrics and what to alert on\"");
    let names: Vec<String> = section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("| `pullgate_"))
        .map(|rest| {
            let end = rest.find(['`', '{']).expect("a closed name");
            format!("pullgate_{}", &rest[..end])
        })
        .collect();
    assert!(names.len() >= 10, "the README lists {names:?}");
    names
}

/// Every metric the README lists has a `# TYPE` line and at least one sample in `text`.
fn assert_every_readme_metric(text: &str, replica: &str) {
    let missing: Vec<String> = readme_metrics()
        .into_iter()
        .filter(|name| {
            let typed = text.lines().any(|l| {
                l.strip_prefix("# TYPE ")
                    .and_then(|r| r.strip_prefix(name.as_str()))
                    .is_some_and(|r| r.starts_with(' '))
            });
            let sampled = text.lines().filter(|l| !l.starts_with('#')).any(|l| {
                l.strip_prefix(name.as_str()).is_some_and(|rest| {
                    rest.starts_with([' ', '{'])
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| rest.starts_with(s))
                })
            });
            !(typed && sampled)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{replica}: the README lists {missing:?}, not exposed in\n{text}"
    );
}

/// `promtool check metrics` on `text`: it must pass (lint problems included). Without
/// promtool the check is skipped with a notice, unless [`REQUIRE_PROMTOOL`] is set.
fn promtool_check(text: &str, replica: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os(REQUIRE_PROMTOOL).is_none(),
                "{REQUIRE_PROMTOOL} is set but promtool cannot be run: {e} (install Debian's prometheus package)"
            );
            eprintln!(
                "NOTICE: promtool not found ({e}); `promtool check metrics` skipped. Install Debian's `prometheus` package or run tests/run.sh."
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "{replica}: promtool check metrics failed ({}):\n{}{}\non\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_standalone_server_exposes_every_listed_metric_and_promtool_accepts_them() {
    let b = Binary::start(CONFIG, &[]);
    let text = scrape(b.probe);
    assert_every_readme_metric(&text, "standalone");
    promtool_check(&text, "standalone");
    for (series, value) in [
        ("pullgate_leader", 0.0),
        ("pullgate_binding_table_stale", 0.0),
        ("pullgate_binding_table_staleness_seconds", 0.0),
        ("pullgate_config_reload_failures_total", 0.0),
        (r#"pullgate_registry_health{registry="local"}"#, 0.0),
        (
            r#"pullgate_registry_api_errors_total{operation="health",registry="local"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let expiry = sample(&text, "pullgate_certificate_expiry_timestamp_seconds").expect("expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now,
        "the self-signed certificate expires in the future: {expiry}"
    );

    let (_, content_type, _) = get(b.probe, "/metrics");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "the Prometheus text format, not {content_type:?}"
    );

    // An invalid config is counted once and shows as staleness, never as stale.
    std::fs::write(b.config_path(), "kind: [unclosed").unwrap();
    let text = wait_for_metrics(b.probe, "the reload failure counted", |t| {
        sample(t, "pullgate_config_reload_failures_total") == Some(1.0)
            && sample(t, "pullgate_binding_table_staleness_seconds").is_some_and(|s| s > 0.0)
    });
    assert_eq!(sample(&text, "pullgate_binding_table_stale"), Some(0.0));
    promtool_check(&text, "standalone, after a reload failure");
}

/// Scrapes until `check` holds (10 s at most) and returns the text that passed.
fn wait_for_metrics(probe: SocketAddr, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(probe);
        if check(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A cluster-mode `pullgate serve` against `fake`, named `pod`.
fn cluster_binary(fake: &FakeApiServer, pod: &str, extra: &[&str]) -> Binary {
    let mut args = vec!["--drain-period", "100ms"];
    args.extend_from_slice(extra);
    Binary::in_cluster(&fake.url(), pod, &args)
}

fn seed(fake: &FakeApiServer) {
    // Nothing listens on port 1: every call to this registry fails.
    fake.put(registry("local", "http://127.0.0.1:1", &[]));
    fake.put(space("local.team-a", "local", "team-a", "Public", &[]));
    fake.put(namespace("app-1", json!({})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_does_not_lead_exposes_every_listed_metric() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    // Another replica holds the Lease for an hour: this one never leads in this test.
    lease_held_by_other(&fake);
    let b = cluster_binary(&fake, "pullgate-1", &[]);
    let probe = b.probe;
    wait_until("ready after the first sync", || {
        get(probe, "/readyz").0 == 200
    })
    .await;
    let text = tokio::task::spawn_blocking(move || {
        wait_for_metrics(probe, "the table's registry", |t| {
            sample(t, r#"pullgate_registry_health{registry="local"}"#).is_some()
        })
    })
    .await
    .unwrap();
    assert_every_readme_metric(&text, "cluster replica, not leading");
    promtool_check(&text, "cluster replica, not leading");
    assert_eq!(sample(&text, "pullgate_leader"), Some(0.0));
    assert_eq!(sample(&text, "pullgate_binding_table_stale"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            r#"pullgate_registry_api_errors_total{operation="health",registry="local"}"#
        ),
        Some(0.0),
        "a replica that does not lead calls no registry"
    );
    assert_eq!(lease_holder(&fake).as_deref(), Some("pullgate-other"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_watches_turn_the_stale_gauge_on_while_the_replica_stays_ready() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let b = cluster_binary(&fake, "pullgate-0", &["--max-staleness", "1s"]);
    let probe = b.probe;
    wait_until("ready after the first sync", || {
        get(probe, "/readyz").0 == 200
    })
    .await;

    // The only replica leads, and its probe of the unreachable registry is counted.
    let text = tokio::task::spawn_blocking(move || {
        wait_for_metrics(probe, "leadership and a failed health check", |t| {
            sample(t, "pullgate_leader") == Some(1.0)
                && sample(
                    t,
                    r#"pullgate_registry_api_errors_total{operation="health",registry="local"}"#,
                )
                .is_some_and(|n| n >= 1.0)
        })
    })
    .await
    .unwrap();
    assert_eq!(
        sample(&text, r#"pullgate_registry_health{registry="local"}"#),
        Some(0.0)
    );
    assert_eq!(
        get(probe, "/readyz"),
        (200, "text/plain; charset=utf-8".into(), "ready\n".into())
    );

    fake.set_failing(true);
    fake.break_watches();
    let text = tokio::task::spawn_blocking(move || {
        wait_for_metrics(probe, "stale", |t| {
            sample(t, "pullgate_binding_table_stale") == Some(1.0)
        })
    })
    .await
    .unwrap();
    let behind = sample(&text, "pullgate_binding_table_staleness_seconds").expect("staleness");
    assert!(
        behind >= 1.0,
        "stale after --max-staleness 1s, yet {behind}s behind"
    );
    promtool_check(&text, "cluster replica, stale");
    let (status, _, body) = get(probe, "/readyz");
    assert_eq!(status, 200, "a stale replica stays ready: {body}");
    assert!(body.contains("stale"), "{body}");

    fake.set_failing(false);
    let text = tokio::task::spawn_blocking(move || {
        wait_for_metrics(probe, "current again", |t| {
            sample(t, "pullgate_binding_table_stale") == Some(0.0)
                && sample(t, "pullgate_binding_table_staleness_seconds") == Some(0.0)
        })
    })
    .await
    .unwrap();
    assert_every_readme_metric(&text, "cluster replica, leading");
    assert_eq!(get(probe, "/readyz").2, "ready\n");
}
