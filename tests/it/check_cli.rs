//! `pullgate check` on the shipped examples: the command a CI pipeline runs.

use std::process::{Command, Output};

use crate::support::cli::pullgate;

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

/// Runs `check` on `manifest` written to a temporary file, in namespace app-1.
fn check_manifest(manifest: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, manifest).unwrap();
    let mut args = vec!["check", "--config", CONFIG, "-f", file.to_str().unwrap()];
    args.extend(extra);
    pullgate(&args)
}

const DENIED: &str = "harbor.example.com/team-b/fetcher:1.0";
const ALLOWED: &str = "harbor.example.com/team-a/web:1.4";

/// Issue #22 class 4: containers that come from a YAML merge key are judged.
#[test]
fn containers_from_a_merge_key_are_judged() {
    let manifest = format!(
        "x-pod: &pod\n  containers:\n  - {{name: c, image: \"{DENIED}\"}}\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: merged, namespace: app-1}}\nspec:\n  <<: *pod\n"
    );
    let o = check_manifest(&manifest, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("DENY  Pod app-1/merged"),
        "{}",
        stdout(&o)
    );
}

/// Issue #22 class 4: every `*List` and nested lists are expanded and their items judged.
#[test]
fn items_of_every_list_kind_and_nested_lists_are_judged() {
    let pod = |name: &str, image: &str| {
        format!("{{apiVersion: v1, kind: Pod, metadata: {{name: {name}, namespace: app-1}}, spec: {{containers: [{{name: c, image: \"{image}\"}}]}}}}")
    };
    let deployment = format!(
        "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: d, namespace: app-1}}, spec: {{template: {{spec: {{containers: [{{name: c, image: \"{DENIED}\"}}]}}}}}}}}"
    );
    let manifest = format!(
        "apiVersion: v1\nkind: PodList\nitems: [{}]\n---\n\
         apiVersion: apps/v1\nkind: DeploymentList\nitems: [{deployment}]\n---\n\
         apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: [{}]\n",
        pod("listed", ALLOWED),
        pod("nested", DENIED)
    );
    let o = check_manifest(&manifest, &["-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    let got: Vec<(String, String, String)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("decision"), s("item"))
        })
        .collect();
    let want = [
        ("listed", "allow", "items[0]"),
        ("d", "deny", "items[0]"),
        ("nested", "deny", "items[0].items[0]"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// Issue #22 class 4: an unknown kind is bad input, never "0 objects checked".
#[test]
fn an_unknown_kind_exits_2_naming_it() {
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {{name: typo}}\nspec: {{template: {{spec: {{containers: [{{name: c, image: \"{DENIED}\"}}]}}}}}}\n"
    );
    let o = check_manifest(&manifest, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}{stderr}", stdout(&o));
    assert!(
        stderr
            .contains("m.yaml, document 1: unknown kind \"Deploymnet\" of apiVersion \"apps/v1\""),
        "{stderr}"
    );
    assert!(!stdout(&o).contains("objects checked"), "{}", stdout(&o));
    // With nothing at all to check, it is bad input too.
    let o = check_manifest("# nothing\n", &[]);
    assert_eq!(o.status.code(), Some(2));
}

/// Known kinds without pods are listed as not judged, and do not change the verdict.
#[test]
fn built_in_and_custom_kinds_are_reported_not_judged() {
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n---\n\
                    apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: cert}\n";
    let o = check_manifest(manifest, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("-     Service svc (")
            && out.contains("not judged: a built-in kind without pods"),
        "{out}"
    );
    assert!(
        out.contains("Certificate cert (") && out.contains("not judged: a custom resource"),
        "{out}"
    );
    assert!(
        out.contains("0 objects checked, 0 denied, 2 not judged"),
        "{out}"
    );
}

/// Issue #22 class 4: names from input reach the terminal escaped.
#[test]
fn names_are_printed_escaped() {
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: \"evil\\e[31m\\rALLOW\", namespace: app-1}}\nspec: {{containers: [{{name: c, image: \"{DENIED}\"}}]}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: \"svc\\e[2J\"}}\n"
    );
    let o = check_manifest(&manifest, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\r'),
        "raw control characters: {out:?}"
    );
    assert!(
        out.contains("DENY  Pod app-1/evil\\u{1b}[31m\\rALLOW ("),
        "{out}"
    );
    assert!(out.contains("Service svc\\u{1b}[2J ("), "{out}");
}

/// Issue #22 class 4: a directory (its .yaml/.yml/.json files, sorted) and stdin.
#[test]
fn a_directory_and_stdin_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "examples/manifests/allowed.yaml",
        dir.path().join("1-allowed.yaml"),
    )
    .unwrap();
    std::fs::copy(
        "examples/manifests/denied.yaml",
        dir.path().join("2-denied.yml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "-f",
        dir.path().to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    // --config is read the same way: a directory holding the example config.
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::copy(CONFIG, config_dir.path().join("config.yaml")).unwrap();
    let config_dir = config_dir.path().to_str().unwrap();
    let again = pullgate(&[
        "check",
        "--config",
        config_dir,
        "-f",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        stdout(&again),
        out,
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let (allowed, denied) = (
        out.find("1-allowed.yaml").unwrap(),
        out.find("2-denied.yml").unwrap(),
    );
    assert!(allowed < denied, "sorted by name: {out}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["check", "--config", CONFIG, "-f", "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let manifest = std::fs::read("examples/manifests/allowed.yaml").unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &manifest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("ALLOW Pod app-1/web (<stdin>, document 1)"),
        "{}",
        stdout(&o)
    );
}
