//! `pullgate check` on the shipped examples: the command a CI pipeline runs.

use std::process::{Command, Output};

fn pullgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run pullgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const CONFIG: &str = "examples/config.yaml";

#[test]
fn allowed_manifests_exit_0() {
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "-f",
        "examples/manifests/allowed.yaml",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(out.contains("ALLOW Pod app-1/web"), "{out}");
    assert!(out.contains("ALLOW CronJob app-1/nightly"), "{out}");
    assert!(out.contains("3 objects checked, 0 denied"), "{out}");
}

#[test]
fn denied_manifests_exit_1_listing_every_denied_image() {
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "-f",
        "examples/manifests/denied.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    assert_eq!(v["allowed"], false);
    let r = &v["results"][0];
    assert_eq!(r["decision"], "deny");
    let denied: Vec<&str> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["verdict"] == "deny")
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        [
            "harbor.example.com/team-a-evil/web:1.4",
            "quay.io/prometheus/prometheus:v2.54.0",
            "harbor.example.com/Team-A/web:1.4",
            "harbor.example.com/team-b/fetcher:1.0"
        ]
    );
    assert_eq!(r["messages"].as_array().unwrap().len(), 4);
}

#[test]
fn namespace_flag_overrides_and_warn_workspace_allows() {
    // app-3 is in ws-b, whose enforcement is Warn: allowed (exit 0) with the denials shown.
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "-f",
        "examples/manifests/denied.yaml",
        "-n",
        "app-3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("WARN  Deployment app-3/sneaky"),
        "{}",
        stdout(&o)
    );
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "-f",
        "examples/manifests/allowed.yaml",
        "-n",
        "other",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn explain_one_image() {
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "--image",
        "harbor.internal:8443/team-b/api:1.2",
        "-n",
        "app-1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for line in [
        "parse:      host \"harbor.internal:8443\", path \"team-b/api\", tag \"1.2\"",
        "registry:   harbor-prod (https://harbor.example.com)",
        "space:      \"team-b\" from RegistrySpace harbor-prod.team-b, Private, bound to workspaces [ws-b]",
        "workspaces: namespace \"app-1\" belongs to [ws-a]",
        "decision:   deny",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let o = pullgate(&[
        "check", "--config", CONFIG, "--image", "nginx", "-n", "app-1",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "--image",
        "quay.io/x",
        "-n",
        "kube-system",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("exempt"));
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "--image",
        "quay.io/x",
        "-n",
        "app-1",
        "--unmanaged",
        "allow",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "kind: Pod\n  - : [").unwrap();
    let unknown_kind = dir.path().join("unknown.yaml");
    std::fs::write(
        &unknown_kind,
        "apiVersion: pullgate.io/v1alpha1\nkind: Regsitry\nmetadata: {name: x}\n",
    )
    .unwrap();
    let cases: &[&[&str]] = &[
        &[
            "check",
            "--config",
            "does-not-exist.yaml",
            "-f",
            "examples/manifests/allowed.yaml",
        ],
        &["check", "--config", CONFIG, "-f", "does-not-exist.yaml"],
        &[
            "check",
            "--config",
            CONFIG,
            "-f",
            bad_yaml.to_str().unwrap(),
        ],
        &[
            "check",
            "--config",
            unknown_kind.to_str().unwrap(),
            "-f",
            "examples/manifests/allowed.yaml",
        ],
        &[
            "check",
            "--config",
            bad_yaml.to_str().unwrap(),
            "-f",
            "examples/manifests/allowed.yaml",
        ],
    ];
    for args in cases {
        let o = pullgate(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    let o = pullgate(&[
        "check",
        "--config",
        unknown_kind.to_str().unwrap(),
        "-f",
        "x",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("unsupported object pullgate.io/v1alpha1/Regsitry"));
}

#[test]
fn crds_command_prints_the_committed_crds() {
    let o = pullgate(&["crds"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        std::fs::read_to_string("manifests/base/crds.yaml").unwrap()
    );
}

#[test]
fn certs_command_writes_the_files_and_prints_the_ca_bundle() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = pullgate(&[
        "certs",
        "--out",
        out,
        "--dns",
        "pullgate.pullgate-system.svc",
        "--dns",
        "127.0.0.1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(dir.path().join(f).exists(), "{f} written");
    }
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(stdout(&o).trim())
        .expect("stdout is base64");
    assert_eq!(bundle, std::fs::read(dir.path().join("ca.crt")).unwrap());
    assert!(!stdout(&o).contains("PRIVATE KEY"));
    let o = pullgate(&["certs", "--out", out, "--dns", "not a name!"]);
    assert_eq!(o.status.code(), Some(2));
}
