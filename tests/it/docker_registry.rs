//! The Docker Registry client and probe against the real registry (distribution 2.8),
//! with images pushed by skopeo. Skipped with a notice when the binaries are missing,
//! unless PULLGATE_REQUIRE_REAL_REGISTRY is set.

use crate::support::registry as registry_support;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use pullgate::api::{Health, RegistryType};
use pullgate::index::testing::mk_registry;
use pullgate::registry::{
    self, ClientOptions, Credentials, RegistryClient, RegistryError, RobotCredentials,
};
use registry_support::{tools_available, RealRegistry, Setup, TestTls};

const USER: (&str, &str) = ("pusher", "pushpass1");

fn client(reg: &RealRegistry, creds: Option<(&str, &str)>, page_size: u32) -> RegistryClient {
    let object = mk_registry("local", RegistryType::DockerRegistry, &reg.url(), &[]);
    let options = ClientOptions {
        page_size,
        ..ClientOptions::default()
    };
    RegistryClient::new(
        &object,
        creds.map(|(u, p)| Credentials::new(u, p)),
        &options,
    )
    .expect("client")
}

fn docker(c: &RegistryClient) -> &pullgate::registry::DockerClient {
    match c {
        RegistryClient::Docker(d) => d,
        RegistryClient::Harbor(_) => panic!("not a Docker Registry client"),
    }
}

#[tokio::test]
async fn ping_is_healthy_with_and_without_auth() {
    if !tools_available() {
        return;
    }
    let open = RealRegistry::start(None);
    let c = client(&open, None, 100);
    docker(&c).ping().await.expect("open registry answers 200");
    let report = registry::probe(&c, &[]).await;
    assert_eq!(report.health, Health::Healthy, "{report:?}");
    assert_eq!(report.space_count, Some(0));
    assert_eq!(report.storage_used_bytes, None, "no storage API");

    let locked = RealRegistry::start(Some(USER));
    let anonymous = client(&locked, None, 100);
    docker(&anonymous)
        .ping()
        .await
        .expect("401 still means the API is up");
    assert_eq!(
        registry::probe(&anonymous, &[]).await.health,
        Health::Healthy
    );
    let err = docker(&anonymous).catalog().await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let authed = client(&locked, Some(USER), 100);
    docker(&authed).ping().await.expect("ping with credentials");
    assert_eq!(
        docker(&authed).catalog().await.unwrap(),
        Vec::<String>::new()
    );
    let wrong = client(&locked, Some(("pusher", "nope")), 100);
    assert!(matches!(
        docker(&wrong).catalog().await,
        Err(RegistryError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn stopped_registry_is_unhealthy() {
    if !tools_available() {
        return;
    }
    let mut reg = RealRegistry::start(None);
    let c = client(&reg, None, 100);
    assert_eq!(
        registry::probe(&c, &["team-a"]).await.health,
        Health::Healthy
    );
    reg.stop();
    let report = registry::probe(&c, &["team-a"]).await;
    assert_eq!(report.health, Health::Unhealthy);
    assert!(
        report.message.contains("cannot reach"),
        "{}",
        report.message
    );
    assert_eq!(report.space("team-a").unwrap().exists, None);
    let status = registry::registry_status(&report, None, std::time::SystemTime::now());
    assert_eq!(status.health, Health::Unhealthy);
    assert_eq!(status.conditions[0].status, "False");
}

/// A raw GET of the catalog, to see the registry's own `Link` header.
fn raw_catalog_link(reg: &RealRegistry, n: u32) -> Option<String> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", USER.0, USER.1));
    let mut s = TcpStream::connect(reg.host()).expect("connect");
    write!(
        s,
        "GET /v2/_catalog?n={n} HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\r\n",
        reg.host()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("link:"))
        .map(|l| l[5..].trim().to_string())
}

#[tokio::test]
async fn catalog_across_pages_and_spaces_from_repositories() {
    if !tools_available() {
        return;
    }
    let reg = RealRegistry::start(Some(USER));
    let repos = [
        "team-a/app",
        "team-a/api",
        "team-b/web",
        "teams/x/svc",
        "lone",
    ];
    for r in repos {
        reg.push(r, "1.0");
    }
    // The registry's own Link header, as the client reads it.
    let link = raw_catalog_link(&reg, 2).expect("a Link header on a partial page");
    let next = registry::next_link(&link).expect("rel=next");
    assert!(next.starts_with("/v2/_catalog?"), "{next}");
    assert!(next.contains("n=2"), "{next}");

    let c = client(&reg, Some(USER), 2);
    let mut want: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    want.sort();
    assert_eq!(
        docker(&c).catalog().await.unwrap(),
        want,
        "all 3 pages read"
    );

    let report = registry::probe(&c, &["team-a", "teams/x", "team-b", "missing", "*"]).await;
    assert_eq!(report.health, Health::Healthy);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.space_count, Some(4), "team-a, team-b, teams, lone");
    let count = |s: &str| {
        let r = report.space(s).unwrap();
        (r.exists, r.repo_count)
    };
    assert_eq!(count("team-a"), (Some(true), Some(2)));
    assert_eq!(count("teams/x"), (Some(true), Some(1)));
    assert_eq!(count("team-b"), (Some(true), Some(1)));
    assert_eq!(count("missing"), (Some(false), Some(0)));
    assert_eq!(
        count("*"),
        (Some(true), Some(1)),
        "only `lone` is left over"
    );
    let status = registry::space_status(
        report.space("team-a"),
        Some(2),
        None,
        std::time::SystemTime::now(),
    );
    assert_eq!(status.repo_count, Some(2));
    assert_eq!(status.storage_used_bytes, None);
}

#[tokio::test]
async fn robot_style_credentials_work_as_a_dockerconfigjson_entry() {
    if !tools_available() {
        return;
    }
    let robot = RobotCredentials {
        id: 1,
        username: "robot$team-a+pullgate-ws-a".into(),
        secret: "R0botSecret".into(),
        expires_at: -1,
    };
    let reg = RealRegistry::start_with_users(Some(USER), &[(&robot.username, &robot.secret)]);
    reg.push("team-a/app", "1.0");
    let authfile = reg.dir().join("config.json");
    let key = format!("{}/team-a", reg.host());
    let config = serde_json::json!({"auths": {key: robot.docker_auth_entry()}});
    std::fs::write(&authfile, config.to_string()).unwrap();
    reg.inspect_with_authfile("team-a/app:1.0", &authfile)
        .expect("the entry pulls");
    let empty = reg.dir().join("empty.json");
    std::fs::write(&empty, r#"{"auths":{}}"#).unwrap();
    let err = reg
        .inspect_with_authfile("team-a/app:1.0", &empty)
        .unwrap_err();
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
}

#[tokio::test]
async fn tls_with_ca_bundle_or_insecure_skip_verify() {
    if !tools_available() {
        return;
    }
    let tls = TestTls::new();
    let reg = RealRegistry::start_with(Setup {
        tls: Some(&tls),
        ..Setup::default()
    });
    assert!(reg.url().starts_with("https://"));
    let options = ClientOptions::default();
    let mut object = mk_registry("tls", RegistryType::DockerRegistry, &reg.url(), &[]);

    let untrusted = RegistryClient::new(&object, None, &options).unwrap();
    let report = registry::probe(&untrusted, &[]).await;
    assert_eq!(report.health, Health::Unhealthy, "unknown CA is refused");
    assert!(report.message.contains("certificate"), "{}", report.message);

    object.spec.ca_bundle = Some(tls.ca_pem.clone());
    let trusted = RegistryClient::new(&object, None, &options).unwrap();
    assert_eq!(registry::probe(&trusted, &[]).await.health, Health::Healthy);

    object.spec.ca_bundle = None;
    object.spec.insecure_skip_tls_verify = true;
    let insecure = RegistryClient::new(&object, None, &options).unwrap();
    assert_eq!(
        registry::probe(&insecure, &[]).await.health,
        Health::Healthy
    );

    object.spec.insecure_skip_tls_verify = false;
    object.spec.ca_bundle = Some("not a certificate".into());
    let err = RegistryClient::new(&object, None, &options).unwrap_err();
    assert!(err.to_string().contains("caBundle"), "{err}");
}

/// A registry with token auth, faked: `/v2/…` wants a Bearer token, which `/token`
/// hands out for Basic credentials. Counts the token requests.
async fn token_auth_registry() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Response, StatusCode};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let tokens = Arc::new(AtomicUsize::new(0));
    let (realm, count) = (format!("{base}/token"), tokens.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (realm, count) = (realm.clone(), count.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let (realm, count) = (realm.clone(), count.clone());
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let basic = format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode("puller:pullpass1")
                        );
                        let (status, body, challenge) = match req.uri().path() {
                            "/token" if auth == basic => {
                                count.fetch_add(1, Ordering::SeqCst);
                                let q = req.uri().query().unwrap_or("");
                                assert!(q.contains("service=fake-registry"), "{q}");
                                assert!(q.contains("scope=registry%3Acatalog%3A%2A"), "{q}");
                                (
                                    StatusCode::OK,
                                    r#"{"token":"tok-1","expires_in":300}"#,
                                    false,
                                )
                            }
                            "/token" => (StatusCode::UNAUTHORIZED, "{}", false),
                            _ if auth == "Bearer tok-1" => {
                                (StatusCode::OK, r#"{"repositories":["team-a/app"]}"#, false)
                            }
                            _ => (
                                StatusCode::UNAUTHORIZED,
                                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                                true,
                            ),
                        };
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        *r.status_mut() = status;
                        if challenge {
                            let value = format!(
                                r#"Bearer realm="{realm}",service="fake-registry",scope="registry:catalog:*""#
                            );
                            r.headers_mut()
                                .insert("www-authenticate", value.parse().unwrap());
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (base, tokens)
}

#[tokio::test]
async fn bearer_token_is_fetched_from_the_realm_and_reused() {
    let (base, tokens) = token_auth_registry().await;
    let object = mk_registry("tok", RegistryType::DockerRegistry, &base, &[]);
    let options = ClientOptions::default();
    let c = RegistryClient::new(
        &object,
        Some(Credentials::new("puller", "pullpass1")),
        &options,
    )
    .unwrap();
    docker(&c)
        .ping()
        .await
        .expect("401 with a Bearer challenge is up");
    assert_eq!(docker(&c).catalog().await.unwrap(), ["team-a/app"]);
    assert_eq!(docker(&c).catalog().await.unwrap(), ["team-a/app"]);
    assert_eq!(
        tokens.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the token is cached"
    );
    let wrong =
        RegistryClient::new(&object, Some(Credentials::new("puller", "x")), &options).unwrap();
    let err = docker(&wrong).catalog().await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
}
