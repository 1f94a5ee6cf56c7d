//! `pullgate audit` and `--what-if` over a kubectl `List` dump (tests/data/audit):
//! findings, folding of pods under their controllers, exit codes, JSON output.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::cli::text;

const CURRENT: &str = "tests/data/audit/current.yaml";
const PROPOSED: &str = "tests/data/audit/proposed.yaml";
const FIXED: &str = "tests/data/audit/fixed.yaml";
const RUNNING: &str = "tests/data/audit/running.yaml";

fn pullgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The file configurations only: never a cluster of the environment.
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("PULLGATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pullgate");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait")
}

/// `audit` of the running workloads against the current configuration, `--what-if`
/// the configuration `proposed`, with `extra` arguments.
fn what_if(proposed: &str, extra: &[&str]) -> Output {
    let args = [
        "audit",
        "--config",
        CURRENT,
        "-f",
        RUNNING,
        "--what-if",
        proposed,
    ];
    pullgate(&[&args[..], extra].concat(), None)
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn findings_exit_1_once_per_workload_under_its_controller() {
    let o = pullgate(&["audit", "--config", CURRENT, "-f", RUNNING], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("NAMESPACE  KIND"), "{out}");
    assert!(
        rows[1].starts_with("app-1      Deployment  api     api        harbor.example.com/team-b/api:2.0  notBound   Enforce"),
        "{out}"
    );
    assert!(
        rows[2].starts_with("app-3      CronJob     report  report     quay.io/acme/report:1              unmanaged  Warn"),
        "{out}"
    );
    // The ReplicaSet and the Pod of api say the same: folded under the Deployment.
    assert!(!out.contains("api-7c9b4d"), "{out}");
    assert!(
        out.contains("2 findings in 2 of 10 workloads, 1 objects not judged"),
        "{out}"
    );
}

#[test]
fn findings_as_one_json_document() {
    let o = pullgate(
        &["audit", "--config", CURRENT, "-f", RUNNING, "-o", "json"],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["workloads"], 10);
    assert_eq!(v["workloadsWithFindings"], 2);
    assert_eq!(v["notJudged"], 1);
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "Deployment");
    assert_eq!(f["namespace"], "app-1");
    assert_eq!(f["name"], "api");
    assert_eq!(f["location"], "container");
    assert_eq!(f["container"], "api");
    assert_eq!(f["image"], "harbor.example.com/team-b/api:2.0");
    assert_eq!(f["registry"], "harbor-prod");
    assert_eq!(f["space"], "team-b");
    assert_eq!(f["reason"], "notBound");
    assert_eq!(f["mode"], "Enforce");
    assert!(f["message"].as_str().unwrap().contains("not bound"));
    assert_eq!(v["findings"][1]["reason"], "unmanaged");
    assert_eq!(v["findings"].as_array().unwrap().len(), 2);
}

#[test]
fn no_findings_exit_0() {
    let o = pullgate(&["audit", "--config", FIXED, "-f", RUNNING], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 findings in 0 of 10 workloads"));
    // The dump read from stdin says the same.
    let dump =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(RUNNING))
            .unwrap();
    let o = pullgate(&["audit", "--config", FIXED, "-f", "-"], Some(&dump));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn what_if_lists_newly_denied_first_and_exits_1() {
    let o = what_if(PROPOSED, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let denied = out.find("NEWLY DENIED  Deployment app-1/web").expect(&out);
    let allowed = out.find("NEWLY ALLOWED Deployment app-1/api").expect(&out);
    assert!(denied < allowed, "{out}");
    assert!(
        out.contains("1 workloads newly denied, 1 newly allowed"),
        "{out}"
    );

    let o = what_if(PROPOSED, &["-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    let changes: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                format!("{}/{}/{}", c["kind"], c["namespace"], c["name"]).replace('"', ""),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("newlyDenied".into(), "Deployment/app-1/web".into()),
            ("newlyAllowed".into(), "Deployment/app-1/api".into()),
        ]
    );
    assert_eq!(
        v["changes"][0]["newlyDenied"][0]["image"],
        "harbor.example.com/team-a/web:1.4"
    );
    assert_eq!(v["newlyDenied"], 1);
}

#[test]
fn what_if_that_only_allows_exits_0() {
    let o = what_if(FIXED, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(!out.contains("NEWLY DENIED"), "{out}");
    assert!(out.contains("NEWLY ALLOWED Deployment app-1/api"), "{out}");
    assert!(out.contains("NEWLY ALLOWED CronJob app-3/report"), "{out}");
}

#[test]
fn bad_input_exits_2() {
    let unknown = "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x, namespace: a}\n";
    let unreadable =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: a}\nspec: {containers: 5}\n";
    for (input, expected) in [
        (unknown, "unknown kind \"Deploymnet\""),
        (unreadable, "invalid Pod"),
        ("", "holds no objects"),
    ] {
        let o = pullgate(&["audit", "--config", CURRENT, "-f", "-"], Some(input));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(expected), "{}", text(&o));
    }
    let o = pullgate(&["audit", "--config", "-", "-f", "-"], Some(""));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = what_if("tests/data/audit/missing.yaml", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--what-if"), "{}", text(&o));
    // Without --config and without a cluster: bad input, saying why.
    let o = pullgate(&["audit", "-f", RUNNING], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read the cluster"), "{}", text(&o));
}

/// Without --config and -f, the table and the workloads come from the cluster (the fake
/// apiserver, through a kubeconfig): the same findings as from the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reads_the_live_cluster() {
    use crate::support::cli::pullgate_in_cluster;
    use crate::support::{kubeconfig, namespace, FakeApiServer};

    let fake = FakeApiServer::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [CURRENT, RUNNING] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for o in pullgate::input::parse_text(file, &text).unwrap() {
            fake.put(o.value);
        }
    }
    for ns in ["app-1", "app-2", "app-3", "kube-system"] {
        fake.put(namespace(ns, serde_json::json!({})));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = kubeconfig(dir.path(), &fake.url());
    let run = |args: &'static [&'static str]| pullgate_in_cluster(args, &config);
    let o = run(&["audit", "-o", "json"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    let found: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}/{} {}",
                f["kind"], f["namespace"], f["name"], f["reason"]
            )
            .replace('"', "")
        })
        .collect();
    assert_eq!(
        found,
        [
            "Deployment/app-1/api notBound",
            "CronJob/app-3/report unmanaged"
        ],
        "{v}"
    );
    // The live table with a proposed one: web is newly denied.
    let o = run(&["audit", "--what-if", PROPOSED]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).starts_with("NEWLY DENIED  Deployment app-1/web"),
        "{}",
        text(&o)
    );
    // A file's table over the live workloads: nothing left.
    let o = run(&["audit", "--config", FIXED]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
