//! The admin's and the newcomer's first commands: `check`'s namespace flags, `--mode` in
//! the Workspace's spelling, wording and help text, `--ca-out` into a new directory, and
//! a `--config` with a misspelt field.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{pullgate, text};
use std::time::{Duration, Instant};

const CONFIG: &str = "examples/config.yaml";
/// In private space team-b, bound to ws-b only; app-1 is in ws-a.
const TEAM_B: &str = "harbor.internal:8443/team-b/api:1.2";

/// `check --namespace app-1` judges in app-1, like `-n` (and kubectl): it used to set
/// pullgate's own namespace, which made app-1 exempt and the image allowed.
#[test]
fn check_namespace_is_the_namespace_to_judge_in() {
    for flag in ["--namespace", "-n"] {
        let o = pullgate(&[
            "check", "--config", CONFIG, "--image", TEAM_B, flag, "app-1",
        ]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{flag}: {out}");
        assert!(out.contains("namespace:  app-1"), "{out}");
        assert!(!out.contains("exempt"), "{out}");
    }
    // pullgate's own namespace has its own name, and is exempt.
    let o = pullgate(&[
        "check",
        "--config",
        CONFIG,
        "--image",
        TEAM_B,
        "-n",
        "app-1",
        "--pullgate-namespace",
        "app-1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("the namespace is exempt"), "{}", text(&o));
}

/// `serve` names its own namespace `--pullgate-namespace`; the old `--namespace` still
/// works (existing Deployments pass it) but is no longer offered.
#[test]
fn serve_help_names_pullgates_own_namespace() {
    let o = pullgate(&["serve", "--help"]);
    let help = text(&o);
    assert!(
        help.contains("--pullgate-namespace <PULLGATE_NAMESPACE>"),
        "{help}"
    );
    assert!(!help.contains("--namespace "), "{help}");
}

/// `--mode` takes the Workspace's spelling (`Warn`) as well as `warn`.
#[test]
fn mode_takes_the_workspace_spelling() {
    for mode in ["Warn", "warn", "WARN"] {
        let o = pullgate(&[
            "check",
            "--config",
            CONFIG,
            "--image",
            "quay.io/someone/tool:1",
            "-n",
            "no-workspace",
            "--mode",
            mode,
        ]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{mode}: {out}");
        assert!(out.contains("mode:       warn"), "{mode}: {out}");
    }
    let o = pullgate(&[
        "check", "--config", CONFIG, "--image", "x", "-n", "a", "--mode", "Warnn",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// One object is "1 object", and `--image` names no container: there is none.
#[test]
fn wording_of_counts_and_of_the_explained_image() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: app-1}\nspec:\n  containers: [{name: web, image: docker.io/library/nginx:1.27}]\n",
    )
    .unwrap();
    let o = pullgate(&["check", "--config", CONFIG, "-f", pod.to_str().unwrap()]);
    assert!(
        text(&o).contains("1 object checked, 0 denied"),
        "{}",
        text(&o)
    );
    let o = pullgate(&[
        "check", "--config", CONFIG, "--image", TEAM_B, "-n", "app-1",
    ]);
    let out = text(&o);
    assert!(
        out.contains(&format!(
            "verdict:    image {TEAM_B:?} is in private registry space"
        )),
        "{out}"
    );
    assert!(!out.contains("container"), "{out}");
}

/// Every `-o` says what it chooses.
#[test]
fn output_flags_have_help() {
    for cmd in ["check", "overview"] {
        let help = text(&pullgate(&[cmd, "--help"]));
        // The text from the flag to the next one (help is on its line or the next).
        let entry = help
            .split("-o, --output")
            .nth(1)
            .and_then(|rest| rest.split("\n  -").next())
            .unwrap_or_default();
        assert!(entry.contains("Output format: text"), "{cmd}: {help}");
    }
}

/// `check --image image -n ns` with `config` as its `--config` file: the exit code and
/// what it printed.
fn check_with_config(config: &str, image: &str, ns: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    let o = pullgate(&[
        "check",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        image,
        "-n",
        ns,
    ]);
    (o.status.code(), text(&o))
}

/// A misspelt field of `--config` is refused (exit 2), named with its path and its line,
/// rather than read as absent (`visiblity: Public` would leave a Private space).
#[test]
fn config_refuses_unknown_fields_with_their_line() {
    let (code, out) = check_with_config(
        "apiVersion: pullgate.io/v1alpha1\n\
         kind: Registry\n\
         metadata: {name: harbor}\n\
         spec: {type: Harbor, url: https://harbor.example.com}\n\
         ---\n\
         apiVersion: pullgate.io/v1alpha1\n\
         kind: RegistrySpace\n\
         metadata: {name: harbor.team-a}\n\
         spec:\n  registry: harbor\n  space: team-a\n  visiblity: Public\n",
        "harbor.example.com/team-a/app:1",
        "app-1",
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(r#"document 2: RegistrySpace "harbor.team-a": unknown field "spec.visiblity" at line 12"#),
        "{out}"
    );
}

/// A value of the wrong kind is named the same way, by field and line.
#[test]
fn config_names_the_field_and_line_of_a_bad_value() {
    let (code, out) = check_with_config(
        "apiVersion: pullgate.io/v1alpha1\nkind: RegistrySpace\nmetadata: {name: s}\n\
         spec:\n  registry: r\n  space: a\n  visibility: public\n",
        "x",
        "a",
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(r#"invalid object: "spec.visibility" at line 7: unknown variant `public`"#),
        "{out}"
    );
}

/// `serve --ca-out` writes into a directory that does not exist yet, as the README's
/// first command does on a fresh clone.
#[test]
fn ca_out_creates_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("new/dir/ca.crt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config", CONFIG])
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .arg("--ca-out")
        .arg(&ca)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while !written(&ca) && Instant::now() < until && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(written(&ca), "no CA at {}", ca.display());
}

fn written(p: &Path) -> bool {
    std::fs::read_to_string(p).is_ok_and(|s| s.contains("END CERTIFICATE"))
}
