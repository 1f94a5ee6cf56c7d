//! A fake Harbor (API v2.0) that follows the swagger for the endpoints pullgate uses:
//! health (switchable unhealthy component), statistics, projects (list with `page` /
//! `page_size` ≤ 100, `X-Total-Count` and a path-only `Link` joined by `" , "`; get, create
//! with 409 on duplicates, update, summary), robots (create with the secret returned once
//! and the name `robot$<project>+<name>`, list by `q=Level=project,ProjectID=<id>`,
//! refresh secret, delete) and `users/current`. HTTP Basic auth: 401 without or with bad
//! credentials, 403 for a non-admin on admin operations; a system robot
//! (`robot$<name>`, [`FakeHarbor::add_system_robot`]) may do what its permissions say
//! (projects and robots). Faults on demand: a create answered 409 because a robot of
//! that name appeared meanwhile, a robot that vanishes just before its delete (404). Metadata values are strings, as
//! in Harbor (`"public": "true"`); a boolean is a 400. Every request is recorded.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

mod routes;
use routes::handle;

pub const ADMIN: (&str, &str) = ("admin", "Harbor12345");
pub const DEVELOPER: (&str, &str) = ("dev", "Dev12345");
/// The access of a system robot that may manage projects and robots (what pullgate's
/// Harbor management needs), for [`FakeHarbor::add_system_robot`].
pub const MANAGER_ACCESS: &[(&str, &str)] = &[
    ("project", "list"),
    ("project", "read"),
    ("project", "create"),
    ("project", "update"),
    ("robot", "list"),
    ("robot", "create"),
    ("robot", "delete"),
];

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query, e.g. `/api/v2.0/projects/team-a`.
    pub path: String,
    pub query: String,
    /// The `X-Is-Resource-Name` header, if sent.
    pub is_resource_name: Option<String>,
    /// The authenticated user, if any.
    pub user: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct FakeProject {
    pub id: i64,
    pub name: String,
    /// Stored as Harbor stores it: a string.
    pub public: String,
    pub repo_count: u64,
    pub storage: i64,
}

#[derive(Clone, Debug)]
pub struct FakeRobot {
    pub id: i64,
    pub project_id: i64,
    /// Full name `robot$<project>+<name>`.
    pub name: String,
    pub secret: String,
    pub disable: bool,
    pub expires_at: i64,
    pub permissions: Value,
    pub description: String,
    /// Who created it (login name), or "" for one the test put there.
    pub creator: String,
}

/// A system robot: `robot$<name>` with the listed system permissions.
#[derive(Clone, Debug)]
pub struct SystemRobot {
    pub name: String,
    pub secret: String,
    /// (resource, action) pairs, e.g. ("robot", "create").
    pub access: Vec<(String, String)>,
}

#[derive(Default)]
pub struct State {
    pub projects: BTreeMap<String, FakeProject>,
    pub robots: Vec<FakeRobot>,
    pub unhealthy: Option<String>,
    pub requests: Vec<Recorded>,
    pub system_robots: Vec<SystemRobot>,
    /// The next this many robot creates find a robot of that name made a moment before
    /// (by someone else) and answer 409.
    pub conflicts_on_create: u32,
    /// The next this many robot deletes find the robot gone already (404).
    pub vanish_on_delete: u32,
    /// Every robot deleted: (who asked, the robot).
    pub deleted: Vec<(String, FakeRobot)>,
    next_project_id: i64,
    next_robot_id: i64,
    secrets_made: u64,
}

/// A running fake Harbor; stops when dropped.
pub struct FakeHarbor {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHarbor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHarbor {
    /// Starts on 127.0.0.1 with a free port, with the `library` project Harbor always has.
    pub async fn start() -> FakeHarbor {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake harbor");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            next_project_id: 1,
            next_robot_id: 1,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let fake = FakeHarbor { addr, state, task };
        fake.add_project("library", true, 0, 0);
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_project(&self, name: &str, public: bool, repo_count: u64, storage: i64) {
        let mut s = self.state.lock().unwrap();
        let id = s.next_project_id;
        s.next_project_id += 1;
        s.projects.insert(
            name.to_string(),
            FakeProject {
                id,
                name: name.to_string(),
                public: public.to_string(),
                repo_count,
                storage,
            },
        );
    }

    /// Makes `component` report unhealthy (or all healthy with `None`).
    pub fn set_unhealthy(&self, component: Option<&str>) {
        self.state.lock().unwrap().unhealthy = component.map(str::to_string);
    }

    pub fn project(&self, name: &str) -> Option<FakeProject> {
        self.state.lock().unwrap().projects.get(name).cloned()
    }

    pub fn robots(&self) -> Vec<FakeRobot> {
        self.state.lock().unwrap().robots.clone()
    }

    /// Adds a system robot `robot$<name>` holding `access` ((resource, action) pairs);
    /// returns its login name.
    pub fn add_system_robot(&self, name: &str, secret: &str, access: &[(&str, &str)]) -> String {
        self.state.lock().unwrap().system_robots.push(SystemRobot {
            name: format!("robot${name}"),
            secret: secret.to_string(),
            access: access
                .iter()
                .map(|(r, a)| (r.to_string(), a.to_string()))
                .collect(),
        });
        format!("robot${name}")
    }

    /// Every robot deleted so far: (who asked, the robot).
    pub fn deleted(&self) -> Vec<(String, FakeRobot)> {
        self.state.lock().unwrap().deleted.clone()
    }

    /// Whether `user`/`secret` would log in as a robot (what a pull would present).
    pub fn robot_login_ok(&self, user: &str, secret: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .robots
            .iter()
            .any(|r| r.name == user && r.secret == secret && !r.disable)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// Recorded requests of one method whose path starts with `/api/v2.0{prefix}`.
    pub fn calls(&self, method: &str, prefix: &str) -> Vec<Recorded> {
        let full = format!("/api/v2.0{prefix}");
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(&full))
            .collect()
    }
}

enum Who {
    Anonymous,
    User {
        name: String,
        admin: bool,
    },
    Robot {
        name: String,
        project_id: i64,
    },
    System {
        name: String,
        access: Vec<(String, String)>,
    },
}

impl Who {
    /// Whether this caller may do `action` on `resource` system-wide.
    fn may(&self, resource: &str, action: &str) -> bool {
        match self {
            Who::User { admin, .. } => *admin,
            Who::System { access, .. } => access.iter().any(|(r, a)| r == resource && a == action),
            _ => false,
        }
    }

    fn name(&self) -> String {
        match self {
            Who::User { name, .. } | Who::Robot { name, .. } | Who::System { name, .. } => {
                name.clone()
            }
            Who::Anonymous => String::new(),
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    reply(
        status,
        json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn unauthorized() -> Reply {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized")
}

fn forbidden() -> Reply {
    error(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden")
}

/// Who the request is from; `None` for bad credentials (a 401).
fn authenticate(state: &State, req: &Request<Incoming>) -> Option<Who> {
    let Some(header) = req.headers().get("authorization") else {
        return Some(Who::Anonymous);
    };
    let decoded = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())?;
    let (user, password) = decoded.split_once(':')?;
    for (name, pass, admin) in [(ADMIN.0, ADMIN.1, true), (DEVELOPER.0, DEVELOPER.1, false)] {
        if user == name && password == pass {
            return Some(Who::User {
                name: name.to_string(),
                admin,
            });
        }
    }
    if let Some(r) = state
        .system_robots
        .iter()
        .find(|r| r.name == user && r.secret == password)
    {
        return Some(Who::System {
            name: r.name.clone(),
            access: r.access.clone(),
        });
    }
    if let Some(r) = state
        .robots
        .iter()
        .find(|r| r.name == user && r.secret == password && !r.disable)
    {
        return Some(Who::Robot {
            name: r.name.clone(),
            project_id: r.project_id,
        });
    }
    None
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// One page of `items` with Harbor's `X-Total-Count` and `Link` headers.
fn paginate(path: &str, query: &BTreeMap<String, String>, items: Vec<Value>) -> Reply {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: usize = query
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(10);
    if size > 100 || page == 0 || size == 0 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "page_size in query should be less than or equal to 100",
        );
    }
    let total = items.len();
    let chunk: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let link_to = |p: usize| {
        let mut q = query.clone();
        q.insert("page".into(), p.to_string());
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        format!("<{path}?{}>", qs.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
    }
    if page * size < total {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
    }
    let mut r = reply(StatusCode::OK, Value::Array(chunk));
    r.headers_mut()
        .insert("x-total-count", total.to_string().parse().unwrap());
    if !links.is_empty() {
        r.headers_mut()
            .insert("link", links.join(" , ").parse().unwrap());
    }
    r
}

fn project_json(p: &FakeProject) -> Value {
    json!({
        "project_id": p.id,
        "name": p.name,
        "owner_id": 1,
        "owner_name": "admin",
        "repo_count": p.repo_count,
        "metadata": {"public": p.public},
    })
}

fn robot_json(r: &FakeRobot) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "level": "project",
        "duration": -1,
        "disable": r.disable,
        "editable": true,
        "expires_at": r.expires_at,
        "permissions": r.permissions,
        "description": r.description,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split(['.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The `metadata.public` of a request body: absent, or a string "true"/"false"; a 400
/// for anything else (a boolean, as Harbor's metadata values are strings).
fn public_of(body: &Value) -> Result<Option<String>, Box<Reply>> {
    match body.pointer("/metadata/public") {
        None => Ok(None),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s.clone())),
        Some(other) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!("metadata.public in body must be of type string: {other}"),
        ))),
    }
}

fn secret_ok(s: &str) -> bool {
    (8..=128).contains(&s.len())
        && s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_digit())
}

fn new_secret(state: &mut State) -> String {
    state.secrets_made += 1;
    format!(
        "Fake{}Secret{:08}",
        state.secrets_made,
        state.secrets_made * 7919
    )
}
