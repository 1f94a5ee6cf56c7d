//! Pull credentials and where they come from. [`CredentialSource`] is the lookup the
//! pull-Secret sync asks, keyed by (registry, space, workspace); [`RefCredentials`]
//! answers from the Secrets named by `spec.pullSecretRef`. Other sources
//! (Harbor robot accounts) implement the same trait and are chained with [`Chain`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::index::{parse_host_port, RegistryEntry, SpaceEntry};
use crate::sensitive::{Located, Redacted, Sensitive};

use crate::api::{DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE};
/// Secret type of a basic-auth Secret.
pub const BASIC_AUTH_TYPE: &str = "kubernetes.io/basic-auth";

/// A user name and password for one registry. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// What a credential is asked for: a space of a registry, as pulled from by the
/// namespaces of `workspace` (`None` for a Public space, which has no binding).
#[derive(Clone, Copy, Debug)]
pub struct CredentialKey<'a> {
    pub registry: &'a RegistryEntry,
    pub space: &'a SpaceEntry,
    pub workspace: Option<&'a str>,
}

/// The answer of a source: a credential, nothing (the source does not serve this
/// space), or a reason the source should serve it and cannot (reported in status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Credential),
    NotServed,
    Broken(String),
}

/// A source of pull credentials.
pub trait CredentialSource {
    fn lookup(&self, key: &CredentialKey<'_>) -> Lookup;
}

/// Asks each source in turn; the first that serves the space answers.
pub struct Chain<'a>(pub Vec<&'a dyn CredentialSource>);

impl CredentialSource for Chain<'_> {
    fn lookup(&self, key: &CredentialKey<'_>) -> Lookup {
        for source in &self.0 {
            match source.lookup(key) {
                Lookup::NotServed => continue,
                answer => return answer,
            }
        }
        Lookup::NotServed
    }
}

/// Credentials from the Secrets that spaces name in `spec.pullSecretRef`.
#[derive(Clone, Copy, Debug)]
pub struct RefCredentials<'a> {
    /// The referenced Secrets that exist, by (namespace, name).
    pub secrets: &'a BTreeMap<(String, String), Arc<Secret>>,
}

impl CredentialSource for RefCredentials<'_> {
    fn lookup(&self, key: &CredentialKey<'_>) -> Lookup {
        let Some(r) = &key.space.pull_secret_ref else {
            return Lookup::NotServed;
        };
        match self.secrets.get(&(r.namespace.clone(), r.name.clone())) {
            None => Lookup::Broken(format!(
                "pullSecretRef: Secret {}/{} does not exist",
                r.namespace, r.name
            )),
            Some(s) => match from_secret(s, key.registry, &key.space.space) {
                Ok(c) => Lookup::Found(c),
                Err(e) => Lookup::Broken(format!(
                    "pullSecretRef: Secret {}/{} {e}",
                    r.namespace, r.name
                )),
            },
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// Reads a credential for `space` of `registry` out of a dockerconfigjson or
/// basic-auth Secret. Every read of the Secret's content goes through [`Sensitive`], so
/// the error names the key and field (`data[".dockerconfigjson"].auths["host"].auth`)
/// and never a value.
pub fn from_secret(
    secret: &Secret,
    registry: &RegistryEntry,
    space: &str,
) -> Result<Credential, String> {
    let object = Sensitive::new(
        "Secret",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default(),
    );
    let data = |k: &str| secret.data.as_ref().and_then(|d| d.get(k)).map(|b| &b.0);
    // The caller names the Secret; the field and problem follow, the value never.
    let redacted = |e: Redacted| {
        format!(
            "has {}: {} (the value is not shown)",
            e.field(),
            e.problem()
        )
    };
    match secret.type_.as_deref() {
        Some(BASIC_AUTH_TYPE) => {
            let field = |k: &str| {
                let bytes = data(k).ok_or_else(|| format!("has no {k:?} key"))?;
                object
                    .at("data")
                    .key(k)
                    .utf8(bytes.clone())
                    .map_err(redacted)
            };
            Ok(Credential {
                username: field("username")?,
                password: field("password")?,
            })
        }
        Some(DOCKER_CONFIG_JSON_TYPE) => {
            let raw = data(DOCKER_CONFIG_JSON_KEY)
                .ok_or_else(|| format!("has no {DOCKER_CONFIG_JSON_KEY:?} key"))?;
            let at = object.at("data").key(DOCKER_CONFIG_JSON_KEY);
            let config: DockerConfig = at.from_json(raw).map_err(redacted)?;
            entry_for(&config, registry, space)
                .and_then(|(key, entry)| decode(&at.key("auths").key(key), entry))
                .map_err(|e| e.either(redacted))
        }
        other => Err(format!(
            "has type {:?}; expected {DOCKER_CONFIG_JSON_TYPE} or {BASIC_AUTH_TYPE}",
            other.unwrap_or_default()
        )),
    }
}

/// A problem found in a Secret: a fixed description, or one about a field's value.
enum Problem {
    Plain(String),
    Field(Redacted),
}

impl Problem {
    fn either(self, redacted: impl Fn(Redacted) -> String) -> String {
        match self {
            Problem::Plain(s) => s,
            Problem::Field(r) => redacted(r),
        }
    }
}

/// The entry for the registry's host (any spelling); one scoped to the space wins over
/// a bare host entry.
fn entry_for<'c>(
    config: &'c DockerConfig,
    registry: &RegistryEntry,
    space: &str,
) -> Result<(&'c str, &'c AuthEntry), Problem> {
    let mut bare = None;
    for (key, entry) in &config.auths {
        let Some((host, path)) = split_auth_key(key) else {
            continue;
        };
        if !registry.host_keys.contains(&host) {
            continue;
        }
        match path {
            Some(p) if p == space => return Ok((key, entry)),
            Some(_) => {}
            None => bare = bare.or(Some((key.as_str(), entry))),
        }
    }
    match bare {
        Some(found) => Ok(found),
        None => Err(Problem::Plain(format!(
            "has no auths entry for registry {:?} (host {})",
            registry.name, registry.url.host
        ))),
    }
}

/// `[scheme://]host[:port][/path][/]` → the lower-case host key and the path, if any.
/// The `/v1/` and `/v2/` suffixes of old Docker config keys are not a path.
fn split_auth_key(key: &str) -> Option<(String, Option<String>)> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = parse_host_port(host).ok()?;
    let host_key = match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let path = (!path.is_empty() && path != "v1" && path != "v2").then(|| path.to_string());
    Some((host_key, path))
}

/// The credential of one `auths` entry: `username`/`password`, else `auth`, the base64
/// of `user:password`.
fn decode(at: &Located<'_>, entry: &AuthEntry) -> Result<Credential, Problem> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        if !u.is_empty() {
            return Ok(Credential {
                username: u.clone(),
                password: p.clone(),
            });
        }
    }
    let auth = entry.auth.as_deref().ok_or_else(|| {
        Problem::Plain("has an auths entry with neither username/password nor auth".into())
    })?;
    let at = at.key("auth");
    let text = at
        .base64(auth)
        .and_then(|bytes| at.utf8(bytes))
        .map_err(Problem::Field)?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| Problem::Field(at.error("not user:password")))?;
    Ok(Credential {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod redaction_tests {
    use super::*;
    use crate::index::{Objects, Snapshot};
    use k8s_openapi::ByteString;
    use serde_json::json;

    const VALUE: &str = "Pw-7731-zq";

    fn dcj(content: &[u8]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("dcj".into()),
                namespace: Some("ops".into()),
                ..Default::default()
            },
            type_: Some(DOCKER_CONFIG_JSON_TYPE.into()),
            data: Some(
                [(
                    DOCKER_CONFIG_JSON_KEY.to_string(),
                    ByteString(content.to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        }
    }

    /// Issue #22 class 1: what a dockerconfigjson holds never shows in the error.
    #[test]
    fn dockerconfigjson_errors_name_the_field_not_the_value() {
        let registry: crate::api::Registry = serde_json::from_value(json!({
            "apiVersion": "pullgate.io/v1alpha1", "kind": "Registry",
            "metadata": {"name": "r"},
            "spec": {"type": "DockerRegistry", "url": "https://reg.example.com"}}))
        .unwrap();
        let objects = Objects {
            registries: vec![registry],
            ..Default::default()
        };
        let snap = Snapshot::build(&objects, 1);
        let reg = &snap.registries()[0];
        let host = "reg.example.com";
        let at = format!("data[\".dockerconfigjson\"].auths[{host:?}]");
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let cases = [
            (
                json!({"auths": {host: {"auth": format!("{VALUE}!")}}}).to_string(),
                format!("{at}.auth: not base64"),
            ),
            (
                json!({"auths": {host: {"auth": b64(VALUE)}}}).to_string(),
                format!("{at}.auth: not user:password"),
            ),
            (
                json!({"auths": {host: {"username": "u", "password": 7731}}}).to_string(),
                format!("{at}.password: expected a string, found an integer"),
            ),
            (
                format!("{{\"auths\": {{\"{host}\": {VALUE}}}}}"),
                "data[\".dockerconfigjson\"]: not valid JSON (line 1".to_string(),
            ),
        ];
        for (content, want) in cases {
            let e = from_secret(&dcj(content.as_bytes()), reg, "team").unwrap_err();
            assert!(e.contains(&want), "{e}");
            assert!(e.ends_with("(the value is not shown)"), "{e}");
            for leak in [VALUE, "7731", "symbol", "offset"] {
                assert!(!e.contains(leak), "{leak} in {e}");
            }
        }
    }
}
