//! No secret material in any output (the audit log, SECURITY.md guarantee 8).
//!
//! One test runs every scenario that handles credentials and captures everything
//! pullgate says, then looks in all of it for every credential it used — each password
//! or robot secret as written, base64-encoded, and the `auth` form base64("user:pass"):
//!
//! - cluster mode against the fake apiserver and the fake Harbor: pull Secrets from a
//!   `kubernetes.io/basic-auth` and a `kubernetes.io/dockerconfigjson` source, Harbor
//!   admin credentials, robot accounts created, copied into namespaces and deleted on
//!   unbind. Captured: every log line at `debug` (pullgate's own at `trace`), including
//!   the audit lines; every AdmissionReview response of `/validate` and `/mutate`; every
//!   write to the fake apiserver (Events, status subresources, Leases, and the Secrets'
//!   metadata, type and labels — only a Secret's `data`/`stringData`, where credentials
//!   belong, is left out); the final state of every object but Secrets;
//! - `pullgate serve --config` (a file holding a basic-auth and a dockerconfigjson
//!   Secret) as a child process with `PULLGATE_LOG=trace`: its stdout (audit lines) and
//!   stderr (logs), the responses it gave, and its `/metrics`;
//! - `pullgate overview --config` against the fake Harbor with admin credentials (text
//!   and JSON), and `pullgate check` (`-f` and `--image`, text and JSON), stdout and stderr.
//!
//! Usernames are not secrets (robot names are printed on purpose) and are not searched.

use crate::support;

use crate::support::fake_harbor;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_harbor::{FakeHarbor, ADMIN};
use pullgate::admission::Admission;
use pullgate::policy::Policy;
use pullgate::serve::AdmissionHandler;
use pullgate::server::{Handler, Webhook};
use serde_json::{json, Value};
use support::server::{client_config, probe, Client};
use support::*;

const BASIC: (&str, &str) = ("pg-basic-user", "pg-basic-pass-7Qx2vK");
const DCJ: (&str, &str) = ("pg-dcj-user", "pg-dcj-pass-Lm40vR");
const SERVE_BASIC: (&str, &str) = ("pg-serve-user", "pg-serve-pass-K8rT3w");
const SERVE_DCJ: (&str, &str) = ("pg-serve-dcj-user", "pg-serve-dcj-pass-9HyP1");
const OVERVIEW_DOCKER: (&str, &str) = ("pg-ov-user", "pg-ov-pass-Zt6Nq");

/// Everything captured, by where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Buffer {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,pullgate=trace"))
        .with_writer(move || writer.clone())
        .init();
    buffer
}

/// The forms a credential could leak in.
fn forms(user: &str, secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        b64(secret),
        b64(&format!("{user}:{secret}")),
    ]
}

fn review(kind: &str, op: &str, ns: &str, images: &[&str]) -> Value {
    let group = match kind {
        "Deployment" => "apps",
        _ => "",
    };
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
        .collect();
    let spec = json!({"containers": containers});
    let object = match kind {
        "Pod" => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec})
        }
        _ => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
                    "spec": {"template": {"spec": spec}}}),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-secrets",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": "x"},
            "namespace": ns,
            "operation": op,
            "userInfo": {"username": "alice"},
            "object": object,
            "dryRun": false
        }
    })
}

fn dockerconfig_secret(ns: &str, name: &str, host: &str, user: &str, pass: &str) -> Value {
    let config = json!({"auths": {host: {"username": user, "password": pass,
                                         "auth": b64(&format!("{user}:{pass}"))}}});
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
           "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": b64(&config.to_string())}})
}

/// A write's body without a Secret's data (where the credentials are meant to be).
fn without_secret_data(mut v: Value) -> String {
    if let Some(o) = v.as_object_mut() {
        if o.get("kind").and_then(Value::as_str) == Some("Secret") {
            o.remove("data");
            o.remove("stringData");
        }
    }
    v.to_string()
}

async fn cluster_scenario(out: &mut Outputs, secrets: &mut Vec<String>) {
    let harbor = FakeHarbor::start().await;
    let fake = FakeApiServer::start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reg = format!("{dead}");
    fake.put(registry("reg", &format!("http://{reg}"), &[]));
    fake.put(with_ref(
        space("reg.basic", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "basic-puller",
    ));
    fake.put(with_ref(
        space("reg.dcj", "reg", "team-d", "Private", &["ws-a"]),
        OWN_NS,
        "dcj-puller",
    ));
    fake.put(basic_auth_secret(OWN_NS, "basic-puller", BASIC.0, BASIC.1));
    fake.put(dockerconfig_secret(
        OWN_NS,
        "dcj-puller",
        &reg,
        DCJ.0,
        DCJ.1,
    ));
    fake.put(
        json!({"apiVersion": PG, "kind": "Registry", "metadata": {"name": "h"},
                    "spec": {"type": "Harbor", "url": harbor.url(),
                             "credentialsSecretRef": {"namespace": OWN_NS, "name": "h-admin"}}}),
    );
    fake.put(basic_auth_secret(OWN_NS, "h-admin", ADMIN.0, ADMIN.1));
    fake.put(space("h.team-h", "h", "team-h", "Private", &["ws-a"]));
    fake.put(workspace("ws-a", &["app-1"], None));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    let mut opts = options("pod-a");
    opts.probe_interval = Duration::from_millis(200);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;

    let harbor_host = harbor.url().trim_start_matches("http://").to_string();
    // The robot of (team-h, ws-a), whatever its generation.
    let robot_prefix = "robot$team-h+pullgate-";
    wait_until("app-1's pull Secret holds all three sources", || {
        let Some(robot) = harbor
            .robots()
            .into_iter()
            .find(|x| x.name.starts_with(robot_prefix))
        else {
            return false;
        };
        fake.get("v1", "Secret", "app-1", PULL).is_some_and(|s| {
            let c = docker_config(&s);
            c.contains(BASIC.1)
                && c.contains(DCJ.1)
                && c.contains(&robot.secret)
                && c.contains(&harbor_host)
        })
    })
    .await;
    for robot in harbor.robots() {
        secrets.extend(forms(&robot.name, &robot.secret));
    }

    // Admission: the handler `serve` uses, with denial Events on.
    let handler = AdmissionHandler {
        admission: Admission {
            policy: Policy::default(),
            pull_secret_name: PULL.into(),
            table: r.table.clone(),
            changes: None,
        },
        events: Some(r.events.clone()),
        denials: None,
    };
    let images = [
        format!("{reg}/team-a/app:1"),
        format!("{reg}/team-d/app:1"),
        format!("{harbor_host}/team-h/app:1"),
    ];
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    for (endpoint, kind, ns) in [
        (Webhook::Validate, "Pod", "app-1"),
        (Webhook::Mutate, "Pod", "app-1"),
        (Webhook::Validate, "Pod", "app-2"),
        (Webhook::Validate, "Deployment", "app-2"),
        (Webhook::Mutate, "Pod", "app-2"),
    ] {
        let body = review(kind, "CREATE", ns, &images).to_string();
        let reply = handler.handle(endpoint, body.as_bytes());
        assert_eq!(reply.status, 200);
        out.add(
            format!("{endpoint:?} {kind} in {ns}: response"),
            String::from_utf8_lossy(&reply.body),
        );
    }
    wait_until("the denial Event is written", || {
        fake.writes().iter().any(|w| w.path.contains("/events"))
    })
    .await;
    // Status written for every object.
    wait_until("registry statuses written", || {
        fake.list(PG, "Registry")
            .iter()
            .all(|r| r["status"]["health"].is_string())
    })
    .await;

    // Unbind: the namespace leaves (its Secret goes), the binding goes (the robot goes).
    fake.put(workspace("ws-a", &[], None));
    fake.put(space("h.team-h", "h", "team-h", "Private", &[]));
    wait_until("app-1's pull Secret deleted", || {
        fake.get("v1", "Secret", "app-1", PULL).is_none()
    })
    .await;
    wait_until("the robot deleted", || harbor.robots().is_empty()).await;
    r.stop().await;

    for w in fake.writes() {
        out.add(
            format!("apiserver write {} {} ({})", w.method, w.path, w.status),
            format!("{} {}", w.query, without_secret_data(w.body_json())),
        );
    }
    for kind in ["Registry", "RegistrySpace", "Workspace"] {
        for o in fake.list(PG, kind) {
            out.add(format!("final {kind}"), o.to_string());
        }
    }
    for (api, kind) in [
        ("v1", "Event"),
        ("events.k8s.io/v1", "Event"),
        ("coordination.k8s.io/v1", "Lease"),
    ] {
        for o in fake.list(api, kind) {
            out.add(format!("final {api} {kind}"), o.to_string());
        }
    }
}

fn standalone_config(dead: u16) -> String {
    let dcj = json!({"auths": {format!("127.0.0.1:{dead}"): {
        "username": SERVE_DCJ.0, "password": SERVE_DCJ.1,
        "auth": b64(&format!("{}:{}", SERVE_DCJ.0, SERVE_DCJ.1))}}});
    format!(
        r#"apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {{name: reg}}
spec: {{type: DockerRegistry, url: "http://127.0.0.1:{dead}"}}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {{name: reg.team-a}}
spec:
  registry: reg
  space: team-a
  visibility: Private
  workspaces: [ws-a]
  pullSecretRef: {{namespace: pullgate-system, name: basic}}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {{name: reg.team-d}}
spec:
  registry: reg
  space: team-d
  visibility: Private
  workspaces: [ws-a]
  pullSecretRef: {{namespace: pullgate-system, name: dcj}}
---
apiVersion: pullgate.io/v1alpha1
kind: Workspace
metadata: {{name: ws-a}}
spec: {{namespaces: [app-1]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: basic, namespace: pullgate-system}}
type: kubernetes.io/basic-auth
stringData: {{username: {}, password: {}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: dcj, namespace: pullgate-system}}
type: kubernetes.io/dockerconfigjson
data: {{.dockerconfigjson: {}}}
"#,
        SERVE_BASIC.0,
        SERVE_BASIC.1,
        b64(&dcj.to_string())
    )
}

async fn serve_scenario(out: &mut Outputs) {
    let dir = tempfile::tempdir().unwrap();
    let dead = closed_port();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, standalone_config(dead)).unwrap();
    let ca = dir.path().join("ca.crt");
    let (listen, probe_listen) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--probe-listen", &format!("127.0.0.1:{probe_listen}")])
        .arg("--ca-out")
        .arg(&ca)
        .args(["--log-format", "json", "--drain-period", "100ms"])
        .env("PULLGATE_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pullgate serve");
    let pid = child.id();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
    let started = Instant::now();
    let mut client = loop {
        if let Ok(pem) = std::fs::read_to_string(&ca) {
            if !pem.is_empty() {
                let config = client_config(&[pem], &[&rustls::version::TLS13]);
                if let Ok(c) = Client::connect(addr, config).await {
                    break c;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let images = [
        format!("127.0.0.1:{dead}/team-a/app:1"),
        format!("127.0.0.1:{dead}/team-d/app:1"),
    ];
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    for (path, ns) in [
        ("/validate", "app-1"),
        ("/mutate", "app-1"),
        ("/validate", "app-2"),
    ] {
        let body = review("Pod", "CREATE", ns, &images).to_string();
        let r = client.post(path, body).await.unwrap();
        assert_eq!(r.status, hyper::StatusCode::OK);
        out.add(format!("serve {path} in {ns}: response"), r.text());
    }
    let bad = client.post("/validate", "{not json").await.unwrap();
    out.add("serve 400 response", bad.text());
    let probe_addr = format!("127.0.0.1:{probe_listen}").parse().unwrap();
    out.add("serve /metrics", probe(probe_addr, "/metrics").await.text());
    drop(client);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        stdout.contains("\"decision\":\"deny\""),
        "audit lines on stdout: {stdout}"
    );
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "verbose logs: {stderr:.500}"
    );
    out.add("serve stdout", stdout);
    out.add("serve stderr", stderr);
}

fn run(args: &[&str], out: &mut Outputs) {
    let o = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(args)
        .env("PULLGATE_LOG", "trace")
        .output()
        .expect("run pullgate");
    out.add(
        format!("{args:?} stdout"),
        String::from_utf8_lossy(&o.stdout),
    );
    out.add(
        format!("{args:?} stderr"),
        String::from_utf8_lossy(&o.stderr),
    );
}

async fn cli_scenario(out: &mut Outputs) {
    let harbor = FakeHarbor::start().await;
    harbor.add_project("team-h", false, 3, 1024);
    let dir = tempfile::tempdir().unwrap();
    let dead = closed_port();
    let mut config = standalone_config(dead);
    config.push_str(&format!(
        r#"---
apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {{name: h}}
spec:
  type: Harbor
  url: {}
  credentialsSecretRef: {{namespace: pullgate-system, name: h-admin}}
---
apiVersion: v1
kind: Secret
metadata: {{name: h-admin, namespace: pullgate-system}}
type: kubernetes.io/basic-auth
stringData: {{username: {}, password: {}}}
---
apiVersion: pullgate.io/v1alpha1
kind: RegistrySpace
metadata: {{name: h.team-h}}
spec: {{registry: h, space: team-h, visibility: Private, workspaces: [ws-a]}}
---
apiVersion: pullgate.io/v1alpha1
kind: Registry
metadata: {{name: d}}
spec:
  type: DockerRegistry
  url: "http://127.0.0.1:{}"
  credentialsSecretRef: {{namespace: pullgate-system, name: d-api}}
---
apiVersion: v1
kind: Secret
metadata: {{name: d-api, namespace: pullgate-system}}
type: kubernetes.io/basic-auth
stringData: {{username: {}, password: {}}}
"#,
        harbor.url(),
        ADMIN.0,
        ADMIN.1,
        closed_port(),
        OVERVIEW_DOCKER.0,
        OVERVIEW_DOCKER.1
    ));
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, config).unwrap();
    let file = file.to_str().unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: app-2}}\nspec:\n  containers:\n  - {{name: a, image: \"127.0.0.1:{dead}/team-a/app:1\"}}\n  - {{name: d, image: \"127.0.0.1:{dead}/team-d/app:1\"}}\n"
        ),
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();
    let image = format!("127.0.0.1:{dead}/team-d/app:1");
    // The overview calls Harbor with the admin credentials from a blocking process.
    let file_owned = file.to_string();
    let manifest_owned = manifest.to_string();
    let collected = tokio::task::spawn_blocking(move || {
        let mut out = Outputs::default();
        let file = file_owned.as_str();
        run(&["overview", "--config", file], &mut out);
        run(&["overview", "--config", file, "-o", "json"], &mut out);
        run(
            &["check", "--config", file, "-f", &manifest_owned],
            &mut out,
        );
        run(
            &[
                "check",
                "--config",
                file,
                "-f",
                &manifest_owned,
                "-o",
                "json",
            ],
            &mut out,
        );
        for ns in ["app-1", "app-2"] {
            run(
                &["check", "--config", file, "--image", &image, "-n", ns],
                &mut out,
            );
            run(
                &[
                    "check", "--config", file, "--image", &image, "-n", ns, "-o", "json",
                ],
                &mut out,
            );
        }
        out
    })
    .await
    .unwrap();
    let overview = &collected.0[0].1;
    assert!(
        overview.contains("team-h"),
        "the overview reached Harbor: {overview}"
    );
    assert!(
        !harbor.calls("GET", "/").is_empty(),
        "the overview used the admin credentials"
    );
    out.0.extend(collected.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_any_output() {
    let logs = capture_logs();
    let mut out = Outputs::default();
    let mut secrets: Vec<String> = Vec::new();
    for (user, pass) in [BASIC, DCJ, ADMIN, SERVE_BASIC, SERVE_DCJ, OVERVIEW_DOCKER] {
        secrets.extend(forms(user, pass));
    }

    cluster_scenario(&mut out, &mut secrets).await;
    serve_scenario(&mut out).await;
    cli_scenario(&mut out).await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logs.contains("pull Secret created"), "logs were captured");
    assert!(
        logs.contains("pullgate::audit"),
        "audit lines were captured"
    );
    out.add("in-process logs", logs);

    let total: usize = out.0.iter().map(|(_, t)| t.len()).sum();
    eprintln!(
        "searched {} outputs ({total} bytes) for {} secret forms",
        out.0.len(),
        secrets.len()
    );
    let mut leaks = Vec::new();
    for (what, text) in &out.0 {
        for s in &secrets {
            if let Some(at) = text.find(s.as_str()) {
                let from = at.saturating_sub(120);
                let to = (at + s.len() + 40).min(text.len());
                let context = text
                    .get(from..to)
                    .unwrap_or("(context not on a char boundary)");
                leaks.push(format!("{what}: {s:?} in …{context}…"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secret material in output:\n{}",
        leaks.join("\n")
    );
    let _ = std::io::stderr().flush();
}

/// Secrets in `--config` whose values cannot be read: (YAML of the bad Secret, the
/// field the error must name, what it must say, the forms of the value that must not
/// appear). Issue #22 class 1.
fn unreadable_secrets() -> Vec<(String, &'static str, &'static str, Vec<String>)> {
    let meta = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: pullgate-system}\n";
    let dcj = |entry: Value| {
        format!(
            "{meta}type: kubernetes.io/dockerconfigjson\ndata: {{.dockerconfigjson: {}}}\n",
            b64(&json!({"auths": {"127.0.0.1:5000": entry}}).to_string())
        )
    };
    vec![
        (
            format!("{meta}stringData: {{username: u, password: 987654321}}\n"),
            "stringData.password",
            "expected a string, found an integer",
            vec!["987654321".into()],
        ),
        (
            format!("{meta}stringData: {{password: 31415.9265}}\n"),
            "stringData.password",
            "expected a string, found a number",
            vec!["31415".into(), "9265".into()],
        ),
        (
            format!("{meta}data: {{password: \"c2VjcmV0+Zq!x\"}}\n"),
            "data.password",
            "invalid value",
            // The base64 decoder's own message names the symbol and its offset.
            vec![
                "c2VjcmV0".into(),
                "Zq!x".into(),
                "symbol".into(),
                "offset".into(),
            ],
        ),
        // The content of a dockerconfigjson is read only where pull Secrets are made
        // (cluster mode, unit-tested in cluster::leader::credentials): loading must not show it.
        (
            dcj(json!({"auth": "%%not-base64-Jq7%%"})),
            "",
            "",
            vec!["Jq7".into()],
        ),
        (
            dcj(json!({"username": "u", "password": 55501234})),
            "",
            "",
            vec!["55501234".into()],
        ),
    ]
}

fn read_lines(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let out = buffer.clone();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            let mut b = out.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buffer
}

/// `serve --config` with `good`, then `bad` written over it: the reload's log line.
fn serve_reload_log(dir: &std::path::Path, good: &str, bad: &str) -> String {
    let config = dir.join("reload.yaml");
    std::fs::write(&config, good).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--probe-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--ca-out")
        .arg(dir.join("ca.crt"))
        .args(["--reload-interval", "50ms", "--log-format", "json"])
        .env("PULLGATE_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pullgate serve");
    let log = read_lines(child.stderr.take().unwrap());
    let wait_for = |what: &str| {
        let started = Instant::now();
        while !log.lock().unwrap().contains(what) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no {what:?} in {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("standalone mode");
    std::fs::write(&config, bad).unwrap();
    wait_for("invalid config");
    let _ = child.kill();
    let _ = child.wait();
    let text = log.lock().unwrap().clone();
    text
}

#[test]
fn errors_about_secrets_in_the_config_name_the_field_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let base = standalone_config(closed_port());
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n",
    )
    .unwrap();
    let file = dir.path().join("config.yaml");
    let mut failures = Vec::new();
    for (secret, field, problem, values) in unreadable_secrets() {
        let bad = format!("{base}---\n{secret}");
        std::fs::write(&file, &bad).unwrap();
        let file = file.to_str().unwrap();
        let mut outputs = Outputs::default();
        run(
            &["check", "--config", file, "-f", manifest.to_str().unwrap()],
            &mut outputs,
        );
        run(&["overview", "--config", file], &mut outputs);
        if !field.is_empty() {
            // serve refuses such a file at start (a valid one it would go on serving).
            run(
                &[
                    "serve",
                    "--config",
                    file,
                    "--listen",
                    &format!("127.0.0.1:{}", free_port()),
                    "--probe-listen",
                    &format!("127.0.0.1:{}", free_port()),
                    "--ca-out",
                    dir.path().join("ca-start.crt").to_str().unwrap(),
                ],
                &mut outputs,
            );
            outputs.add(
                "serve reload log",
                serve_reload_log(dir.path(), &base, &bad),
            );
            let want =
                format!("Secret pullgate-system/bad: {field}: {problem} (the value is not shown)");
            for (what, text) in &outputs.0 {
                let error_output = what.ends_with("stderr") || what.contains("reload");
                if error_output && !text.contains(&want) {
                    failures.push(format!("{what}: no {want:?} in {text}"));
                }
            }
        }
        for (what, text) in &outputs.0 {
            for v in &values {
                if text.contains(v.as_str()) {
                    failures.push(format!("{what}: {v:?} shown in {text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
