//! The only place that talks to registries: a [`RegistryClient`] for Harbor (API v2.0)
//! or a Docker Registry (v2 API), built from a Registry object by
//! [`RegistryClient::new`]; the probe and the status it turns into ([`probe`],
//! [`registry_status`], [`space_status`]); and the Harbor project the leader keeps with
//! admin credentials ([`ensure_project`]). Which robot accounts exist is decided in
//! `cluster::leader::robots`, through the robot calls of [`HarborClient`].
//!
//! Nothing here stores anything in the cluster: credentials come in as arguments and
//! robot secrets go out as return values, so where they live is the caller's choice.
//! A registry failure is data (an Unhealthy report, an error value), never a panic.

mod docker;
mod error;
mod harbor;
mod http;
mod manage;
mod probe;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;

use crate::api::{Registry, RegistryType};
use crate::index::{parse_registry_url, DOCKER_HUB_HOSTS};

/// The host of Docker Hub's registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

pub use docker::DockerClient;
pub use error::RegistryError;
pub use harbor::{
    valid_project_name, ComponentHealth, CredentialKind, CurrentUser, HarborClient, HarborHealth,
    HarborStatistics, Project, ProjectSummary, Robot, RobotCredentials, ROBOT_LOGIN_PREFIX,
};
pub use http::next_link;
pub use manage::{ensure_project, ProjectChange};
pub use probe::{
    human_bytes, probe, probe_counting, registry_status, space_status, ApiOperation,
    RegistryReport, SpaceReport, READY_CONDITION,
};

/// API credentials of a registry (username and password). The password never appears in
/// `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The value of an `Authorization: Basic …` header.
    pub(crate) fn basic_header(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The API credentials in a Secret: keys `username` and `password`, from `data` (base64
/// in YAML, decoded by the Secret type) or `stringData` (which wins, as the apiserver
/// would merge it).
pub fn credentials_from_secret(secret: &Secret) -> Result<Credentials, RegistryError> {
    let name = format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let key = |k: &str| -> Option<String> {
        if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(k)) {
            return Some(v.clone());
        }
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    match (key("username"), key("password")) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Credentials::new(u, p)),
        _ => Err(RegistryError::Settings(format!(
            "Secret {name} needs the keys username and password"
        ))),
    }
}

/// TLS settings of a Registry (`spec.caBundle`, `spec.insecureSkipTLSVerify`).
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// PEM certificates trusted in addition to the public roots.
    pub ca_bundle: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Timeouts, cache lifetime and page size of a client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Whole exchange: sending the request and reading the answer.
    pub request_timeout: Duration,
    /// How long project ids, robot lists and tokens are reused; keep it a bit below the
    /// probe interval so every probe sees fresh data.
    pub cache_ttl: Duration,
    /// Items per page of list calls (Harbor's maximum, and the Docker Registry default,
    /// is 100; tests use small pages to exercise pagination).
    pub page_size: u32,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(50),
            page_size: 100,
        }
    }
}

/// A client for one registry, of the kind its `spec.type` names.
#[derive(Clone, Debug)]
pub enum RegistryClient {
    Harbor(HarborClient),
    Docker(DockerClient),
}

impl RegistryClient {
    /// Builds the client of a Registry object: its URL, TLS settings and (already
    /// resolved) credentials. Fails only on settings that can never work (a bad URL or
    /// `caBundle`); nothing is contacted here.
    pub fn new(
        registry: &Registry,
        credentials: Option<Credentials>,
        options: &ClientOptions,
    ) -> Result<RegistryClient, RegistryError> {
        let url = parse_registry_url(&registry.spec.url).map_err(RegistryError::Settings)?;
        let tls = TlsSettings {
            ca_bundle: registry.spec.ca_bundle.clone(),
            insecure_skip_verify: registry.spec.insecure_skip_tls_verify,
        };
        // Docker Hub's API is served from one host whichever spelling the Registry uses.
        let base = if DOCKER_HUB_HOSTS.contains(&url.host.as_str()) {
            format!("https://{DOCKER_HUB_API_HOST}")
        } else {
            url.base()
        };
        Ok(match registry.spec.registry_type {
            RegistryType::Harbor => {
                RegistryClient::Harbor(HarborClient::new(&base, credentials, &tls, options)?)
            }
            RegistryType::DockerRegistry => {
                RegistryClient::Docker(DockerClient::new(&base, credentials, &tls, options)?)
            }
        })
    }

    /// The Harbor client, for management calls.
    pub fn as_harbor(&self) -> Option<&HarborClient> {
        match self {
            RegistryClient::Harbor(h) => Some(h),
            RegistryClient::Docker(_) => None,
        }
    }
}
