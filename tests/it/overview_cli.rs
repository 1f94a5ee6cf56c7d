//! `pullgate overview --config` with a live Docker Registry (the real one, with
//! credentials from a Secret of the configuration) and one that is not running.

use crate::support::cli::pullgate;
use crate::support::closed_port;
use crate::support::registry::{overview_config, tools_available, RealRegistry};

use std::process::Command;

const USER: (&str, &str) = ("admin", "adminpass1");

#[test]
fn overview_of_a_live_and_a_stopped_registry() {
    if !tools_available() {
        return;
    }
    let live = RealRegistry::start(Some(USER));
    for repo in ["team-a/app", "team-a/api", "tools/ci", "other/x"] {
        live.push(repo, "1");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, overview_config(&live, USER, closed_port())).unwrap();
    let file = file.to_str().unwrap();

    let text = pullgate(&["overview", "--config", file]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&text.stderr)
    );
    // The first line whose leading words are `start` (whitespace-separated), split.
    let line = |start: &str| {
        let want: Vec<&str> = start.split_whitespace().collect();
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.starts_with(&want))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
    };
    assert_eq!(
        line("NAME"),
        ["NAME", "TYPE", "URL", "HEALTH", "SPACES", "STORAGE"]
    );
    assert_eq!(
        line("live DockerRegistry"),
        [
            "live",
            "DockerRegistry",
            live.url().as_str(),
            "Healthy",
            "3",
            "-"
        ]
    );
    assert_eq!(line("stopped DockerRegistry")[3], "Unhealthy");
    assert!(out.contains("stopped: cannot reach"), "{out}");
    assert_eq!(
        line("REGISTRY"),
        [
            "REGISTRY",
            "SPACE",
            "VISIBILITY",
            "WORKSPACES",
            "NAMESPACES",
            "EXISTS",
            "REPOS",
            "STORAGE"
        ]
    );
    assert_eq!(
        line("live team-a"),
        ["live", "team-a", "Private", "ws-a", "2", "yes", "2", "-"]
    );
    assert_eq!(line("live tools")[5..7], ["yes", "1"]);
    assert_eq!(
        line("stopped team-c"),
        ["stopped", "team-c", "Private", "ws-a", "2", "-", "-", "-"]
    );

    let json = pullgate(&["overview", "--config", file, "-o", "json"]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON output");
    let regs = v["registries"].as_array().unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0]["name"], "live");
    assert_eq!(regs[0]["type"], "DockerRegistry");
    assert_eq!(regs[0]["health"], "Healthy");
    assert_eq!(regs[0]["spaceCount"], 3);
    assert_eq!(regs[0]["storageUsedBytes"], serde_json::Value::Null);
    assert_eq!(regs[0]["spaces"][0]["space"], "team-a");
    assert_eq!(regs[0]["spaces"][0]["repoCount"], 2);
    assert_eq!(regs[0]["spaces"][0]["boundNamespaces"], 2);
    assert_eq!(regs[1]["health"], "Unhealthy");
    assert!(regs[1]["message"]
        .as_str()
        .unwrap()
        .contains("cannot reach"));
    // The API password never reaches the output.
    assert!(!String::from_utf8_lossy(&json.stdout).contains(USER.1));
    assert!(!out.contains(USER.1));
}

#[test]
fn overview_without_config_or_cluster_says_it_needs_one() {
    // Without --config the cluster is read; here there is none to find.
    let o = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("overview")
        .env_remove("PULLGATE_CONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--config") && err.contains("cluster"), "{err}");
}

#[test]
fn overview_with_a_bad_config_exits_2() {
    let o = pullgate(&["overview", "--config", "/nonexistent/pullgate.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}
