//! `pullgate overview` without `--config`: the objects are read from the cluster (here
//! the fake apiserver, through a kubeconfig) and the status the leader recorded is shown.

use crate::support;

use serde_json::json;
use support::cli::pullgate_in_cluster;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_reads_the_cluster_and_its_recorded_status() {
    let fake = FakeApiServer::start().await;
    let mut live = registry("live", "http://127.0.0.1:5000", &[]);
    live["status"] = json!({"health": "Healthy", "spaceCount": 2, "storageUsedBytes": 52428800,
        "storageUsed": "50.0 MiB", "lastProbeTime": "2026-01-01T00:00:00Z"});
    fake.put(live);
    let mut stopped = registry("stopped", "http://127.0.0.1:5001", &[]);
    stopped["status"] = json!({"health": "Unhealthy", "message": "cannot reach http://127.0.0.1:5001/v2/: connection refused"});
    fake.put(stopped);
    let mut team_a = space("live.team-a", "live", "team-a", "Private", &["ws-a"]);
    team_a["status"] =
        json!({"existsOnRegistry": true, "repoCount": 7, "storageUsedBytes": 1048576});
    fake.put(team_a);
    fake.put(space("live.tools", "live", "tools", "Public", &[]));
    fake.put(workspace("ws-a", &["app-1", "app-2"], None));
    for ns in ["app-1", "app-2", "app-3"] {
        fake.put(namespace(ns, json!({})));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = kubeconfig(dir.path(), &fake.url());
    let run = |args: &'static [&'static str]| pullgate_in_cluster(args, &config);
    let out = run(&["overview"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let has = |row: &[&str]| lines.iter().any(|l| l.as_slice() == row);
    assert!(
        has(&["NAME", "TYPE", "URL", "HEALTH", "SPACES", "STORAGE"]),
        "{text}"
    );
    assert!(
        has(&[
            "live",
            "DockerRegistry",
            "http://127.0.0.1:5000",
            "Healthy",
            "2",
            "50.0",
            "MiB"
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "stopped",
            "DockerRegistry",
            "http://127.0.0.1:5001",
            "Unhealthy",
            "-",
            "-"
        ]),
        "{text}"
    );
    assert!(
        text.contains("stopped: cannot reach http://127.0.0.1:5001/v2/"),
        "{text}"
    );
    assert!(
        has(&["live", "team-a", "Private", "ws-a", "2", "yes", "7", "1.0", "MiB"]),
        "{text}"
    );
    assert!(
        has(&["live", "tools", "Public", "-", "3", "-", "-", "-"]),
        "{text}"
    );

    let out = run(&["overview", "-o", "json"]).await;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["registries"][0]["name"], "live");
    assert_eq!(v["registries"][0]["storageUsedBytes"], 52428800);
    assert_eq!(v["registries"][0]["spaces"][0]["repoCount"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_without_a_cluster_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    let config = kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"));
    let out = pullgate_in_cluster(&["overview"], &config).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the cluster"), "{err}");
}
