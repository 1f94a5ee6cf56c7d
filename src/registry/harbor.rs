//! Harbor API v2.0 client (`/api/v2.0`, HTTP Basic auth): health, statistics, projects
//! (list with pagination, get, create, public flag, summary), project robot accounts
//! (list, create, refresh secret, delete) and which kind of credential is in use (an
//! admin user, or a system robot with project and robot permissions: [`CredentialKind`]).
//! Project lookups, robot lists and the current user are cached for the client's TTL;
//! writes drop what they make stale.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::docker::json;
use super::error::from_status;
use super::http::{encode, next_link, resolve_link, Http, Response};
use super::{ClientOptions, Credentials, RegistryError, TlsSettings};

const API: &str = "/api/v2.0";
/// Harbor's largest page.
const MAX_PAGE_SIZE: u32 = 100;
/// Most pages followed in one listing: a guard against a `Link` that loops.
const MAX_PAGES: usize = 10_000;

/// Login credentials of a robot account: what a dockerconfigjson entry carries.
/// The secret never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotCredentials {
    /// Harbor's robot id.
    pub id: i64,
    /// Login user, `robot$<project>+<name>`.
    pub username: String,
    pub secret: String,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
}

impl fmt::Debug for RobotCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobotCredentials")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl RobotCredentials {
    /// The `auths` entry of a `.dockerconfigjson`: `username`, `password` and `auth`
    /// (base64 of `user:password`), all three, since some clients read only `auth`.
    pub fn docker_auth_entry(&self) -> serde_json::Value {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.secret));
        serde_json::json!({
            "username": self.username,
            "password": self.secret,
            "auth": auth,
        })
    }
}

/// `GET /health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarborHealth {
    /// `healthy` or `unhealthy`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub components: Vec<ComponentHealth>,
}

/// One component of `GET /health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentHealth {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HarborHealth {
    pub fn is_healthy(&self) -> bool {
        self.status == "healthy"
    }

    /// The unhealthy components and their errors, for the status message.
    pub fn problem(&self) -> String {
        let bad: Vec<String> = self
            .components
            .iter()
            .filter(|c| c.status != "healthy")
            .map(|c| match &c.error {
                Some(e) if !e.is_empty() => format!("{}: {e}", c.name),
                _ => c.name.clone(),
            })
            .collect();
        if bad.is_empty() {
            format!("Harbor reports status {:?}", self.status)
        } else {
            format!("Harbor components unhealthy: {}", bad.join("; "))
        }
    }
}

/// `GET /statistics` (the totals are an admin's view).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarborStatistics {
    #[serde(default)]
    pub private_project_count: u64,
    #[serde(default)]
    pub public_project_count: u64,
    #[serde(default)]
    pub total_project_count: u64,
    #[serde(default)]
    pub private_repo_count: u64,
    #[serde(default)]
    pub public_repo_count: u64,
    #[serde(default)]
    pub total_repo_count: u64,
    #[serde(default)]
    pub total_storage_consumption: u64,
}

/// A Harbor project, as listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    #[serde(default)]
    pub repo_count: u64,
    /// String-valued metadata (`"public": "true"`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Project {
    pub fn is_public(&self) -> bool {
        self.metadata.get("public").map(String::as_str) == Some("true")
    }
}

/// `GET /projects/{name}/summary`: repositories and storage of one project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectSummary {
    pub repo_count: u64,
    /// `quota.used.storage`; absent when Harbor keeps no quota for the project.
    pub storage_used_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct SummaryBody {
    #[serde(default)]
    repo_count: u64,
    #[serde(default)]
    quota: Option<QuotaBody>,
}

#[derive(Deserialize)]
struct QuotaBody {
    #[serde(default)]
    used: BTreeMap<String, i64>,
}

/// A robot account, as listed (no secret: Harbor returns it only at creation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Robot {
    pub id: i64,
    /// Full login name, `robot$<project>+<name>`.
    pub name: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub disable: bool,
    /// Unix seconds; -1 never.
    #[serde(default = "never")]
    pub expires_at: i64,
    /// Free text; pullgate writes its ownership marker here.
    #[serde(default)]
    pub description: String,
}

fn never() -> i64 {
    -1
}

#[derive(Deserialize)]
struct RobotCreated {
    id: i64,
    name: String,
    secret: String,
    #[serde(default = "never")]
    expires_at: i64,
}

#[derive(Deserialize)]
struct RobotSec {
    #[serde(default)]
    secret: String,
}

/// `GET /users/current`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub sysadmin_flag: bool,
}

/// Which kind of credential a Harbor registry's `credentialsSecretRef` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialKind {
    /// A Harbor user with `sysadmin_flag`.
    AdminUser,
    /// A Harbor system robot (`robot$<name>`, Harbor ≥ 2.14.1) that holds the project and
    /// robot permissions pullgate needs and nothing else.
    SystemRobot,
    /// A user that is not a system admin: probes only.
    User,
}

impl CredentialKind {
    /// The name in status and `overview`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AdminUser => "AdminUser",
            CredentialKind::SystemRobot => "SystemRobot",
            CredentialKind::User => "User",
        }
    }

    /// Whether these credentials may manage projects and robots.
    pub fn manages(self) -> bool {
        self != CredentialKind::User
    }
}

/// Harbor's prefix of robot login names (`robot$<name>` for a system robot; Harbor's
/// default `robot_name_prefix`).
pub const ROBOT_LOGIN_PREFIX: &str = "robot$";

/// Client of one Harbor instance.
#[derive(Clone)]
pub struct HarborClient {
    http: Http,
    credentials: Option<Credentials>,
    page_size: u32,
    projects: moka::future::Cache<String, Project>,
    robots: moka::future::Cache<i64, Vec<Robot>>,
    user: moka::future::Cache<(), CurrentUser>,
}

impl fmt::Debug for HarborClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HarborClient")
            .field("url", &self.http.url(""))
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Whether a name can be a Harbor project (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`).
pub fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl HarborClient {
    pub fn new(
        base: &str,
        credentials: Option<Credentials>,
        tls: &TlsSettings,
        options: &ClientOptions,
    ) -> Result<HarborClient, RegistryError> {
        Ok(HarborClient {
            http: Http::new(base, tls, options)?,
            credentials,
            page_size: options.page_size.clamp(1, MAX_PAGE_SIZE),
            projects: cache(10_000, options),
            robots: cache(10_000, options),
            user: cache(1, options),
        })
    }

    /// `GET /health` (no auth). Harbor answers 200 even when unhealthy: read the body.
    pub async fn health(&self) -> Result<HarborHealth, RegistryError> {
        let url = self.http.url(&format!("{API}/health"));
        let response = self.http.send(Method::GET, &url, &[], None).await?;
        json(&url, &check("GET", &url, response)?)
    }

    /// `GET /statistics`.
    pub async fn statistics(&self) -> Result<HarborStatistics, RegistryError> {
        let response = self.call(Method::GET, "/statistics", None).await?;
        json("/statistics", &response)
    }

    /// `GET /users/current`, cached.
    pub async fn current_user(&self) -> Result<CurrentUser, RegistryError> {
        if let Some(user) = self.user.get(&()).await {
            return Ok(user);
        }
        let response = self.call(Method::GET, "/users/current", None).await?;
        let user: CurrentUser = json("/users/current", &response)?;
        self.user.insert((), user.clone()).await;
        Ok(user)
    }

    /// Which kind of credential this client logs in with. A robot login (`robot$…`) is
    /// taken for a system robot without asking Harbor (robots have no user profile); what
    /// it may do shows in the answers to the calls themselves (403 names the call).
    pub async fn credential_kind(&self) -> Result<CredentialKind, RegistryError> {
        let Some(credentials) = &self.credentials else {
            return Err(RegistryError::Settings(
                "Harbor management needs credentials: set credentialsSecretRef on the Registry (an admin user, or a system robot with project and robot permissions)".into(),
            ));
        };
        if credentials.username.starts_with(ROBOT_LOGIN_PREFIX) {
            return Ok(CredentialKind::SystemRobot);
        }
        let user = self.current_user().await?;
        Ok(if user.sysadmin_flag {
            CredentialKind::AdminUser
        } else {
            CredentialKind::User
        })
    }

    /// The kind of credential, if it may manage projects and robots (an admin user or a
    /// system robot); else a [`RegistryError::NotAdmin`] that says what to fix.
    pub async fn require_manager(&self) -> Result<CredentialKind, RegistryError> {
        match self.credential_kind().await? {
            CredentialKind::User => Err(RegistryError::NotAdmin {
                username: self
                    .credentials
                    .as_ref()
                    .map(|c| c.username.clone())
                    .unwrap_or_default(),
            }),
            kind => Ok(kind),
        }
    }

    /// The login name of the API credentials, if any.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// Drops the cached robot lists, so the next listing asks Harbor.
    pub fn forget_robots(&self) {
        self.robots.invalidate_all();
    }

    /// Every project the credentials can see, across all pages.
    pub async fn projects(&self) -> Result<Vec<Project>, RegistryError> {
        let projects: Vec<Project> = self.list("/projects?with_detail=false").await?;
        for p in &projects {
            self.projects.insert(p.name.clone(), p.clone()).await;
        }
        Ok(projects)
    }

    /// One project by name (cached); `None` when it does not exist.
    pub async fn project(&self, name: &str) -> Result<Option<Project>, RegistryError> {
        check_project_name(name)?;
        if let Some(p) = self.projects.get(name).await {
            return Ok(Some(p));
        }
        match self
            .call(Method::GET, &format!("/projects/{}", encode(name)), None)
            .await
        {
            Ok(response) => {
                let project: Project = json("/projects/{name}", &response)?;
                self.projects
                    .insert(name.to_string(), project.clone())
                    .await;
                Ok(Some(project))
            }
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /projects`; `Ok(false)` when it already exists (409).
    pub async fn create_project(&self, name: &str, public: bool) -> Result<bool, RegistryError> {
        check_project_name(name)?;
        let body = json!({
            "project_name": name,
            "metadata": {"public": public.to_string()},
            "storage_limit": -1,
        });
        let result = self.call(Method::POST, "/projects", Some(body)).await;
        self.projects.invalidate(name).await;
        match result {
            Ok(_) => Ok(true),
            Err(RegistryError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `PUT /projects/{name}` with `metadata.public` (a string, as Harbor stores it).
    pub async fn set_project_public(&self, name: &str, public: bool) -> Result<(), RegistryError> {
        check_project_name(name)?;
        let body = json!({"metadata": {"public": public.to_string()}});
        let result = self
            .call(
                Method::PUT,
                &format!("/projects/{}", encode(name)),
                Some(body),
            )
            .await;
        self.projects.invalidate(name).await;
        result.map(drop)
    }

    /// `GET /projects/{name}/summary`.
    pub async fn project_summary(&self, name: &str) -> Result<ProjectSummary, RegistryError> {
        check_project_name(name)?;
        let path = format!("/projects/{}/summary", encode(name));
        let response = self.call(Method::GET, &path, None).await?;
        let body: SummaryBody = json(&path, &response)?;
        Ok(ProjectSummary {
            repo_count: body.repo_count,
            storage_used_bytes: body
                .quota
                .and_then(|q| q.used.get("storage").copied())
                .and_then(|s| u64::try_from(s).ok()),
        })
    }

    /// Robot accounts of a project (cached).
    pub async fn robots(&self, project_id: i64) -> Result<Vec<Robot>, RegistryError> {
        if let Some(robots) = self.robots.get(&project_id).await {
            return Ok(robots);
        }
        let query = encode(&format!("Level=project,ProjectID={project_id}"));
        let robots: Vec<Robot> = self.list(&format!("/robots?q={query}")).await?;
        self.robots.insert(project_id, robots.clone()).await;
        Ok(robots)
    }

    /// `POST /robots`: a project robot that may only pull from `project`, living
    /// `duration_days` days (-1: never expires). The answer carries the secret, which
    /// Harbor never shows again.
    pub async fn create_robot(
        &self,
        project: &str,
        name: &str,
        description: &str,
        duration_days: i64,
    ) -> Result<RobotCredentials, RegistryError> {
        check_project_name(project)?;
        let body = json!({
            "name": name,
            "description": description,
            "duration": duration_days,
            "level": "project",
            "disable": false,
            "permissions": [{
                "kind": "project",
                "namespace": project,
                "access": [{"resource": "repository", "action": "pull"}],
            }],
        });
        let result = self.call(Method::POST, "/robots", Some(body)).await;
        self.robots.invalidate_all();
        let created: RobotCreated = json("/robots", &result?)?;
        Ok(RobotCredentials {
            id: created.id,
            username: created.name,
            secret: created.secret,
            expires_at: created.expires_at,
        })
    }

    /// `PATCH /robots/{id}`: gives the robot a new secret (the old one stops working).
    pub async fn refresh_robot_secret(
        &self,
        robot: &Robot,
    ) -> Result<RobotCredentials, RegistryError> {
        let secret = new_secret()?;
        let path = format!("/robots/{}", robot.id);
        let response = self
            .call(Method::PATCH, &path, Some(json!({"secret": secret})))
            .await?;
        // Harbor echoes the secret in force; an empty answer means ours was taken.
        let answered: RobotSec = serde_json::from_slice(&response.body).unwrap_or(RobotSec {
            secret: String::new(),
        });
        Ok(RobotCredentials {
            id: robot.id,
            username: robot.name.clone(),
            secret: if answered.secret.is_empty() {
                secret
            } else {
                answered.secret
            },
            expires_at: robot.expires_at,
        })
    }

    /// `DELETE /robots/{id}`; `Ok(false)` when it was already gone.
    pub async fn delete_robot(&self, id: i64) -> Result<bool, RegistryError> {
        let result = self
            .call(Method::DELETE, &format!("/robots/{id}"), None)
            .await;
        self.robots.invalidate_all();
        match result {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        // Paths carry project names, never ids: without this header Harbor would read
        // an all-digit name as an id.
        let mut headers = vec![(
            HeaderName::from_static("x-is-resource-name"),
            HeaderValue::from_static("true"),
        )];
        if let Some(mut v) = self
            .credentials
            .as_ref()
            .and_then(|c| HeaderValue::from_str(&c.basic_header()).ok())
        {
            v.set_sensitive(true);
            headers.push((AUTHORIZATION, v));
        }
        headers
    }

    /// One authenticated call to `/api/v2.0{path}`; a non-2xx answer is an error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Response, RegistryError> {
        let url = self.http.url(&format!("{API}{path}"));
        self.call_url(method, &url, body).await
    }

    async fn call_url(
        &self,
        method: Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Response, RegistryError> {
        let body = body.map(|b| b.to_string().into_bytes());
        let response = self
            .http
            .send(method.clone(), url, &self.headers(), body)
            .await?;
        check(method.as_str(), url, response)
    }

    /// All items of a list endpoint: pages of `page_size`, following `Link` (or, without
    /// one, `X-Total-Count`).
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, RegistryError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let first = |page: usize| {
            self.http.url(&format!(
                "{API}{path}{sep}page={page}&page_size={}",
                self.page_size
            ))
        };
        let mut url = first(1);
        let mut items: Vec<T> = Vec::new();
        for page in 1..=MAX_PAGES {
            let response = self.call_url(Method::GET, &url, None).await?;
            let batch: Vec<T> = json(&url, &response)?;
            let got = batch.len();
            items.extend(batch);
            let total = response
                .header("x-total-count")
                .and_then(|t| t.trim().parse::<usize>().ok());
            let linked = response
                .header("link")
                .and_then(next_link)
                .and_then(|t| resolve_link(&self.http, &t));
            url = match (linked, total) {
                _ if got == 0 => break,
                (Some(next), _) => next,
                (None, Some(total)) if items.len() < total => first(page + 1),
                _ => break,
            };
        }
        Ok(items)
    }
}

fn cache<K, V>(capacity: u64, options: &ClientOptions) -> moka::future::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::future::Cache::builder()
        .max_capacity(capacity)
        .time_to_live(options.cache_ttl)
        .build()
}

fn check(method: &str, url: &str, response: Response) -> Result<Response, RegistryError> {
    if response.status.is_success() {
        Ok(response)
    } else if response.status == StatusCode::UNAUTHORIZED && response.body.is_empty() {
        Err(RegistryError::Unauthorized {
            url: url.to_string(),
            message: String::new(),
        })
    } else {
        Err(from_status(
            method,
            url,
            response.status.as_u16(),
            &response.body,
        ))
    }
}

fn check_project_name(name: &str) -> Result<(), RegistryError> {
    if valid_project_name(name) {
        Ok(())
    } else {
        Err(RegistryError::Settings(format!(
            "{name:?} is not a Harbor project name (lower-case letters and digits, separated by '.', '_' or '-'): a RegistrySpace of a Harbor registry names one project"
        )))
    }
}

/// A robot secret that meets Harbor's policy (8–128 characters with upper and lower case
/// letters and digits).
fn new_secret() -> Result<String, RegistryError> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const LEN: usize = 32;
    let rng = ring::rand::SystemRandom::new();
    loop {
        let mut bytes = [0u8; 64];
        rng.fill(&mut bytes)
            .map_err(|_| RegistryError::Settings("no system randomness for a secret".into()))?;
        // Rejection sampling keeps every character equally likely.
        let secret: String = bytes
            .iter()
            .filter(|b| usize::from(**b) < ALPHABET.len() * 4)
            .take(LEN)
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let ok = secret.len() == LEN
            && secret.chars().any(|c| c.is_ascii_uppercase())
            && secret.chars().any(|c| c.is_ascii_lowercase())
            && secret.chars().any(|c| c.is_ascii_digit());
        if ok {
            return Ok(secret);
        }
    }
}
