//! Pulls without Secrets (README, "Pulls without Secrets"), end to end: `pullgate credential-provider` run as
//! the kubelet runs it (a CredentialProviderRequest on stdin, the `args` and `env` of its
//! CredentialProviderConfig) against `pullgate serve --pull-credentials provider` in
//! cluster mode, whose apiserver (the fake) answers TokenReviews; the credentials it
//! prints pull from a real Docker Registry with htpasswd auth. Also the example
//! CredentialProviderConfig, read against the kubelet's own v1 types.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::binary::Binary;
use crate::support::fake_apiserver::token_review::{TokenInfo, API_AUDIENCE};
use crate::support::registry::{tools_available, RealRegistry};
use crate::support::*;

const PUSHER: (&str, &str) = ("pusher", "push-Pw-4417");
/// The login of the space's pullSecretRef, which only the provider hands out.
const PULLER: (&str, &str) = ("puller", "pull-Pw-9902");

/// Tokens: made long and distinct, so that any appearance in a log is found.
const TOKEN_APP1: &str = "eyJ.tok-app1-6f1c0e2a9b7d4c1e8f3a5b6c7d8e9f00";
const TOKEN_APP2: &str = "eyJ.tok-app2-1b2c3d4e5f60718293a4b5c6d7e8f901";
const TOKEN_OTHER_AUDIENCE: &str = "eyJ.tok-aud-9a8b7c6d5e4f30211203f4e5d6c7b8a9";
const TOKEN_UNKNOWN: &str = "eyJ.tok-unknown-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const TOKENS: [&str; 4] = [TOKEN_APP1, TOKEN_APP2, TOKEN_OTHER_AUDIENCE, TOKEN_UNKNOWN];

/// What one run of the provider printed.
struct Ran {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

impl Ran {
    fn response(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    fn auth(&self) -> BTreeMap<String, Value> {
        let r = self.response();
        serde_json::from_value(r["auth"].clone()).expect("auth is a map")
    }

    /// The kubelet accepts it and gets no credentials.
    fn assert_none(&self, why: &str) {
        assert_eq!(self.code, Some(0), "exit 0: {}", self.stderr);
        let r = self.response();
        assert_eq!(r["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
        assert_eq!(r["kind"], "CredentialProviderResponse");
        assert_eq!(r["cacheKeyType"], "Image");
        assert_eq!(r["cacheDuration"], "0s", "a refusal is not kept");
        assert!(self.auth().is_empty(), "no credentials: {}", self.stdout);
        assert!(
            self.stderr.contains(why),
            "stderr says why ({why:?}): {}",
            self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "one line: {}", self.stderr);
    }
}

/// Everything any provider run printed, stdout and stderr, for the check that no token
/// appears in any output.
static PRINTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Runs the provider exactly as the kubelet does: the executable with the config's
/// `args`, its `env` added to the environment, the request on stdin.
fn run_provider(args: &[String], env: &[(&str, &str)], request: &Value) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the provider");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("provider output");
    let ran = Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    };
    eprintln!("provider stderr: {}", ran.stderr.trim_end());
    let mut printed = PRINTED.lock().unwrap();
    printed.push(ran.stdout.clone());
    printed.push(ran.stderr.clone());
    ran
}

fn request(image: &str, token: &str) -> Value {
    json!({
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": image,
        "serviceAccountToken": token,
        "serviceAccountAnnotations": {}
    })
}

/// A dockerconfigjson with every entry of a provider's `auth` (all three fields, as the
/// kubelet hands them to the runtime).
fn authfile(dir: &Path, auth: &BTreeMap<String, Value>) -> std::path::PathBuf {
    let auths: serde_json::Map<String, Value> = auth
        .iter()
        .map(|(k, v)| {
            let (u, p) = (
                v["username"].as_str().unwrap(),
                v["password"].as_str().unwrap(),
            );
            let both = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            (
                k.clone(),
                json!({"username": u, "password": p, "auth": both}),
            )
        })
        .collect();
    let path = dir.join("auth.json");
    std::fs::write(&path, json!({ "auths": auths }).to_string()).unwrap();
    path
}

fn metric(probe: SocketAddr, series: &str) -> f64 {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(probe).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_gets_credentials_only_for_entitled_namespaces() {
    if !tools_available() {
        return;
    }
    let registry = RealRegistry::start_with_users(Some(PUSHER), &[PULLER]);
    registry.push("team-a/app", "1");
    let host = registry.host();
    let image = format!("{host}/team-a/app:1");

    let fake = FakeApiServer::start().await;
    fake.put(registry_object(&registry.url()));
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(space("reg.pub", "reg", "pub", "Public", &[]));
    fake.put(workspace("ws-a", &["app-1"], None));
    fake.put(basic_auth_secret(
        OWN_NS,
        "team-a-puller",
        PULLER.0,
        PULLER.1,
    ));
    for ns in ["app-1", "app-2"] {
        fake.put(namespace(ns, json!({})));
    }
    // A pull Secret pullgate wrote before the switch to the provider: the leader removes it.
    fake.put(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": PULL, "namespace": "app-1", "labels": {"pullgate.io/managed-by": "pullgate"}},
        "data": {".dockerconfigjson": b64(r#"{"auths":{}}"#)}}));
    fake.add_token(
        TOKEN_APP1,
        TokenInfo::service_account("app-1", "default", "pullgate", "node-1"),
    );
    fake.add_token(
        TOKEN_APP2,
        TokenInfo::service_account("app-2", "default", "pullgate", "node-1"),
    );
    fake.add_token(
        TOKEN_OTHER_AUDIENCE,
        TokenInfo::service_account("app-1", "default", API_AUDIENCE, "node-1"),
    );

    let b = Binary::in_cluster(
        &fake.url(),
        "pullgate-0",
        &["--drain-period", "200ms", "--pull-credentials", "provider"],
    );
    b.ready().await;
    let probe = b.probe;
    let ca_file = b.dir.path().join("ca.crt");
    // As a CredentialProviderConfig passes them: the server in `args`, the CA in `env`.
    let args = vec![
        "credential-provider".to_string(),
        format!("--server=https://{}", b.addr),
    ];
    let env = [("PULLGATE_CA_FILE", ca_file.to_str().unwrap())];

    // The entitled namespace's token: credentials for the space, which pull.
    let granted =
        tokio::task::block_in_place(|| run_provider(&args, &env, &request(&image, TOKEN_APP1)));
    assert_eq!(granted.code, Some(0), "{}", granted.stderr);
    assert!(granted.stderr.is_empty(), "{}", granted.stderr);
    let response = granted.response();
    assert_eq!(
        response["apiVersion"],
        "credentialprovider.kubelet.k8s.io/v1"
    );
    assert_eq!(response["kind"], "CredentialProviderResponse");
    assert_eq!(response["cacheKeyType"], "Image");
    assert_eq!(
        response["cacheDuration"], "300s",
        "--credential-cache-duration"
    );
    let auth = granted.auth();
    let key = format!("{host}/team-a");
    assert_eq!(
        auth.keys().collect::<Vec<_>>(),
        [&key],
        "keyed host:port/space"
    );
    assert_eq!(
        auth[&key],
        json!({"username": PULLER.0, "password": PULLER.1})
    );
    let files = tempfile::tempdir().unwrap();
    let with = authfile(files.path(), &auth);
    tokio::task::block_in_place(|| registry.pull_with_authfile("team-a/app:1", &with))
        .expect("skopeo pulls with the provider's credentials");
    let no_files = tempfile::tempdir().unwrap();
    let empty = authfile(no_files.path(), &BTreeMap::new());
    let refused =
        tokio::task::block_in_place(|| registry.pull_with_authfile("team-a/app:1", &empty));
    assert!(refused.is_err(), "the registry needs credentials at all");

    // The unbound namespace, another audience, an unknown token: nothing.
    let reviews = fake.token_reviews();
    for (token, why) in [
        (
            TOKEN_APP2,
            "not bound to a workspace of namespace \"app-2\"",
        ),
        (
            TOKEN_OTHER_AUDIENCE,
            "not accepted for audience \"pullgate\"",
        ),
        (TOKEN_UNKNOWN, "invalid bearer token"),
    ] {
        let ran =
            tokio::task::block_in_place(|| run_provider(&args, &env, &request(&image, token)));
        ran.assert_none(why);
    }
    assert_eq!(fake.token_reviews(), reviews + 3, "each was reviewed");
    // A public space needs no credentials; the reviewed token is not reviewed again.
    let public = format!("{host}/pub/tool:1");
    let ran =
        tokio::task::block_in_place(|| run_provider(&args, &env, &request(&public, TOKEN_APP1)));
    ran.assert_none("needs no credentials");
    assert_eq!(
        fake.token_reviews(),
        reviews + 3,
        "the positive review is cached"
    );

    // No token at all: refused before any TokenReview, by the provider and the server.
    let ran = tokio::task::block_in_place(|| run_provider(&args, &env, &request(&image, "")));
    ran.assert_none("no service-account token");
    let body = json!({"image": image}).to_string();
    let (status, answer) =
        crate::support::webhook::post_tls(b.addr, &b.ca_pem, "/credentials", body.as_bytes())
            .unwrap();
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        fake.token_reviews(),
        reviews + 3,
        "no review without a token"
    );

    // A server that is down: nothing, exit 0, and why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = vec![
        "credential-provider".to_string(),
        format!("--server=https://{}", closed.local_addr().unwrap()),
    ];
    drop(closed);
    let ran =
        tokio::task::block_in_place(|| run_provider(&down, &env, &request(&image, TOKEN_APP1)));
    ran.assert_none("cannot reach pullgate");

    // A config that forgets a flag: still an answer the kubelet reads, and exit 0.
    let ran =
        tokio::task::block_in_place(|| run_provider(&args, &[], &request(&image, TOKEN_APP1)));
    ran.assert_none("--ca-file");

    // Counted by outcome.
    for (outcome, at_least) in [
        ("issued", 1.0),
        ("denied", 1.0),
        ("unauthenticated", 2.0),
        ("not_needed", 1.0),
        ("no_token", 1.0),
    ] {
        let series = format!(r#"pullgate_credential_requests_total{{outcome="{outcome}"}}"#);
        assert!(metric(probe, &series) >= at_least, "{series}");
    }

    // With the provider, admission injects no pull Secret and the leader removes its own.
    let pod = pullgate::admission::testing::review(
        "Pod",
        "CREATE",
        pullgate::admission::testing::object(
            "Pod",
            pullgate::admission::testing::pod_spec(&[&image]),
        ),
        None,
    );
    let pod = pullgate::admission::testing::in_ns(pod, "app-1");
    let (status, answer) =
        crate::support::webhook::post_tls(b.addr, &b.ca_pem, "/mutate", pod.to_string().as_bytes())
            .unwrap();
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(answer["response"]["patch"].is_null(), "no patch: {answer}");
    wait_until("the leader deletes its pull Secret", || {
        fake.get("v1", "Secret", "app-1", PULL).is_none()
    })
    .await;

    // No token in any output of either process.
    let mut logs = vec![
        b.log.lock().unwrap().join("\n"),
        b.audit.lock().unwrap().join("\n"),
    ];
    logs.extend(PRINTED.lock().unwrap().iter().cloned());
    assert!(logs.len() >= 2 + 2 * 8, "every run's output is checked");
    for text in &logs {
        for token in TOKENS {
            assert!(!text.contains(token), "a token in the output:\n{text}");
            // Not even its distinctive part.
            assert!(!text.contains(&token[4..20]), "part of a token in:\n{text}");
        }
    }
}

/// A node over its budget is refused before its token costs a TokenReview; the budget is
/// per node, and no rate refills it here (`--node-credential-rate 0`), so the count is
/// exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_its_budget_is_refused_before_any_token_review() {
    let fake = FakeApiServer::start().await;
    fake.put(registry_object("http://127.0.0.1:5000"));
    fake.put(namespace("app-1", json!({})));
    let b = Binary::in_cluster(
        &fake.url(),
        "pullgate-0",
        &[
            "--pull-credentials",
            "both",
            "--node-credential-rate",
            "0",
            "--node-credential-burst",
            "3",
        ],
    );
    b.ready().await;
    let probe = b.probe;
    let ca_file = b.dir.path().join("ca.crt");
    let args = vec![
        "credential-provider".to_string(),
        format!("--server=https://{}", b.addr),
        format!("--ca-file={}", ca_file.display()),
    ];
    let image = "127.0.0.1:5000/team-a/app:1";
    for _ in 0..3 {
        let ran = tokio::task::block_in_place(|| {
            run_provider(&args, &[], &request(image, TOKEN_UNKNOWN))
        });
        ran.assert_none("invalid bearer token");
    }
    assert_eq!(fake.token_reviews(), 3);
    let ran =
        tokio::task::block_in_place(|| run_provider(&args, &[], &request(image, TOKEN_UNKNOWN)));
    ran.assert_none("pullgate answered 429");
    assert_eq!(fake.token_reviews(), 3, "no review once over the budget");
    let series = r#"pullgate_credential_requests_total{outcome="rate_limited"}"#;
    assert_eq!(metric(probe, series), 1.0);
}

fn registry_object(url: &str) -> Value {
    json!({"apiVersion": PG, "kind": "Registry", "metadata": {"name": "reg"},
           "spec": {"type": "DockerRegistry", "url": url}})
}

// The kubelet's `kubelet.config.k8s.io/v1` CredentialProviderConfig, field for field
// (k8s.io/kubelet/config/v1 types.go): an unknown or misspelt field is an error here, as
// the kubelet's strict decoding makes it one at start.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialProviderConfig {
    api_version: String,
    kind: String,
    providers: Vec<CredentialProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialProvider {
    name: String,
    match_images: Vec<String>,
    default_cache_duration: String,
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<ExecEnvVar>,
    token_attributes: Option<ServiceAccountTokenAttributes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceAccountTokenAttributes {
    service_account_token_audience: String,
    cache_type: String,
    require_service_account: Option<bool>,
    #[serde(default)]
    required_service_account_annotation_keys: Vec<String>,
    #[serde(default)]
    optional_service_account_annotation_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecEnvVar {
    name: String,
    value: String,
}

/// The example config follows the kubelet's schema and the rules its validation
/// applies, and what it passes to the provider is what `pullgate credential-provider`
/// accepts.
#[test]
fn the_example_credential_provider_config_is_what_the_kubelet_reads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/overlays/credential-provider/credential-provider-config.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the example config");
    let config: CredentialProviderConfig =
        serde_yaml::from_str(&text).expect("a CredentialProviderConfig, field for field");
    assert_eq!(config.api_version, "kubelet.config.k8s.io/v1");
    assert_eq!(config.kind, "CredentialProviderConfig");
    let [p] = config.providers.as_slice() else {
        panic!("one provider")
    };
    assert_eq!(
        p.name, "pullgate",
        "the name of the executable in the bin dir"
    );
    assert_eq!(p.api_version, "credentialprovider.kubelet.k8s.io/v1");
    assert!(!p.match_images.is_empty());
    for m in &p.match_images {
        // Globs only in the host; a port and a path may follow.
        let host = m.split('/').next().unwrap();
        let (name, port) = host.split_once(':').unwrap_or((host, ""));
        assert!(port.chars().all(|c| c.is_ascii_digit()), "{m}");
        assert!(!m[host.len()..].contains('*') && !port.contains('*'), "{m}");
        assert!(name.split('.').all(|part| !part.is_empty()), "{m}");
    }
    let cache = humantime::parse_duration(&p.default_cache_duration).expect("a duration");
    assert!(cache > std::time::Duration::ZERO);
    let t = p.token_attributes.as_ref().expect("tokenAttributes");
    assert_eq!(
        t.service_account_token_audience, "pullgate",
        "--token-audience"
    );
    assert_eq!(t.cache_type, "ServiceAccount");
    assert!(["Token", "ServiceAccount"].contains(&t.cache_type.as_str()));
    assert_eq!(t.require_service_account, Some(true));
    assert!(t.required_service_account_annotation_keys.is_empty());
    assert!(t.optional_service_account_annotation_keys.is_empty());
    let mut names: Vec<&str> = p.env.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), p.env.len(), "env names are unique");

    // The args and env, as the kubelet passes them, parse as the command's flags.
    use clap::Parser as _;
    let cli = pullgate::cli::Cli::try_parse_from(
        std::iter::once("pullgate".to_string()).chain(p.args.iter().cloned()),
    );
    let cli = match cli {
        Ok(c) => c,
        // --ca-file comes from the env of the config.
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            assert!(
                p.env
                    .iter()
                    .any(|e| e.name == "PULLGATE_CA_FILE" && !e.value.is_empty()),
                "{e}"
            );
            let mut args = p.args.clone();
            let ca = &p
                .env
                .iter()
                .find(|e| e.name == "PULLGATE_CA_FILE")
                .unwrap()
                .value;
            args.push(format!("--ca-file={ca}"));
            pullgate::cli::Cli::try_parse_from(std::iter::once("pullgate".to_string()).chain(args))
                .expect("the config's args parse")
        }
        Err(e) => panic!("the config's args do not parse: {e}"),
    };
    let pullgate::cli::Command::CredentialProvider(args) = cli.command else {
        panic!("args run the credential-provider command")
    };
    assert!(args.server.starts_with("https://"), "{}", args.server);
    assert_eq!(
        args.tls_server_name.as_deref(),
        Some("pullgate.pullgate-system.svc"),
        "a name the serving certificate holds"
    );
}
