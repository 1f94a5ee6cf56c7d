//! Docker Registry v2 API client: ping (`GET /v2/`), catalog with `Link` pagination,
//! Basic auth, and Bearer token auth (on a `WWW-Authenticate: Bearer realm=…` challenge,
//! a token is fetched from the realm with the Basic credentials, cached, and the call
//! retried).

use std::fmt;

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::error::from_status;
use super::http::{encode, next_link, resolve_link, Http, Response};
use super::{ClientOptions, Credentials, RegistryError, TlsSettings};

/// Most pages followed in one listing: a guard against a registry whose `Link` loops.
const MAX_PAGES: usize = 10_000;

/// A bearer token; printed as `<redacted>`.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Client of one Docker Registry.
#[derive(Clone)]
pub struct DockerClient {
    http: Http,
    credentials: Option<Credentials>,
    page_size: u32,
    /// Bearer tokens by scope, for registries with token auth.
    tokens: moka::future::Cache<String, Token>,
}

impl fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerClient")
            .field("url", &self.http.url(""))
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The parsed `WWW-Authenticate` challenge of a 401.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `Basic` or `Bearer` (as sent).
    pub scheme: String,
    pub realm: Option<String>,
    pub service: Option<String>,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

impl DockerClient {
    pub fn new(
        base: &str,
        credentials: Option<Credentials>,
        tls: &TlsSettings,
        options: &ClientOptions,
    ) -> Result<DockerClient, RegistryError> {
        Ok(DockerClient {
            http: Http::new(base, tls, options)?,
            credentials,
            page_size: options.page_size.max(1),
            tokens: moka::future::Cache::builder()
                .max_capacity(64)
                .time_to_live(options.cache_ttl)
                .build(),
        })
    }

    /// `GET /v2/`: the API is up when it answers 200, or 401 (it wants credentials,
    /// which says nothing about its health).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.http.url("/v2/");
        let response = self
            .http
            .send(Method::GET, &url, &self.basic_headers(), None)
            .await?;
        match response.status {
            StatusCode::OK | StatusCode::UNAUTHORIZED => Ok(()),
            s => Err(from_status("GET", &url, s.as_u16(), &response.body)),
        }
    }

    /// Every repository name, following the catalog's `Link` pages.
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let mut url = self.http.url(&format!("/v2/_catalog?n={}", self.page_size));
        let mut repositories = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.get(&url, "registry:catalog:*").await?;
            let page: CatalogPage = json(&url, &response)?;
            let names = page.repositories.unwrap_or_default();
            let empty = names.is_empty();
            repositories.extend(names);
            match response.header("link").and_then(next_link) {
                Some(target) if !empty => match resolve_link(&self.http, &target) {
                    Some(next) => url = next,
                    None => break,
                },
                _ => break,
            }
        }
        repositories.sort();
        repositories.dedup();
        Ok(repositories)
    }

    fn basic_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.credentials
            .as_ref()
            .and_then(|c| HeaderValue::from_str(&c.basic_header()).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                vec![(AUTHORIZATION, v)]
            })
            .unwrap_or_default()
    }

    /// A GET with whatever auth the registry asks for: a cached token for the scope, else
    /// Basic credentials, else the token the challenge points at.
    async fn get(&self, url: &str, scope: &str) -> Result<Response, RegistryError> {
        if let Some(token) = self.tokens.get(scope).await {
            let response = self
                .http
                .send(Method::GET, url, &bearer(&token), None)
                .await?;
            if response.status != StatusCode::UNAUTHORIZED {
                return check(url, response);
            }
            self.tokens.invalidate(scope).await;
        }
        let response = self
            .http
            .send(Method::GET, url, &self.basic_headers(), None)
            .await?;
        if response.status == StatusCode::UNAUTHORIZED {
            let challenge = response
                .header(WWW_AUTHENTICATE.as_str())
                .map(parse_challenge)
                .unwrap_or_default();
            if challenge.scheme.eq_ignore_ascii_case("bearer") {
                let token = self.fetch_token(url, &challenge, scope).await?;
                self.tokens.insert(scope.to_string(), token.clone()).await;
                let retried = self
                    .http
                    .send(Method::GET, url, &bearer(&token), None)
                    .await?;
                return check(url, retried);
            }
        }
        check(url, response)
    }

    /// Asks the challenge's realm for a token, with the Basic credentials if any.
    async fn fetch_token(
        &self,
        url: &str,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<Token, RegistryError> {
        let realm = challenge
            .realm
            .as_deref()
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: url.to_string(),
                reason: "Bearer challenge without a realm".into(),
            })?;
        let mut query = Vec::new();
        if let Some(service) = &challenge.service {
            query.push(format!("service={}", encode(service)));
        }
        query.push(format!(
            "scope={}",
            encode(challenge.scope.as_deref().unwrap_or(scope))
        ));
        if let Some(c) = &self.credentials {
            query.push(format!("account={}", encode(&c.username)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let token_url = format!("{realm}{sep}{}", query.join("&"));
        let response = self
            .http
            .send(Method::GET, &token_url, &self.basic_headers(), None)
            .await?;
        let response = check(realm, response)?;
        let parsed: TokenResponse = json(realm, &response)?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .map(Token)
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: realm.to_string(),
                reason: "token response without a token".into(),
            })
    }
}

fn bearer(token: &Token) -> Vec<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(&format!("Bearer {}", token.0))
        .ok()
        .map(|mut v| {
            v.set_sensitive(true);
            vec![(AUTHORIZATION, v)]
        })
        .unwrap_or_default()
}

fn check(url: &str, response: Response) -> Result<Response, RegistryError> {
    if response.status.is_success() {
        Ok(response)
    } else {
        Err(from_status(
            "GET",
            url,
            response.status.as_u16(),
            &response.body,
        ))
    }
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    url: &str,
    response: &Response,
) -> Result<T, RegistryError> {
    // Answers may hold credentials (a token, a robot secret): read like a Secret, so an
    // error names the field and never the value.
    let answer = crate::sensitive::Sensitive::new("answer", "", url);
    answer
        .at("")
        .from_json(&response.body)
        .map_err(|e| RegistryError::InvalidResponse {
            url: url.to_string(),
            reason: match e.field() {
                "" => format!("invalid JSON: {}", e.problem()),
                field => format!("invalid JSON: {field}: {}", e.problem()),
            },
        })
}

/// Parses `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas).
pub(crate) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut challenge = Challenge {
        scheme: scheme.to_string(),
        ..Challenge::default()
    };
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => challenge.realm = Some(value),
            "service" => challenge.service = Some(value),
            "scope" => challenge.scope = Some(value),
            _ => {}
        }
    }
    challenge
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    /// Issue #22 class 1: a registry answer that cannot be read (here a token that is a
    /// number) is reported by field, without the value.
    #[test]
    fn an_unreadable_answer_names_the_field_not_the_value() {
        let response = Response {
            status: hyper::StatusCode::OK,
            headers: Default::default(),
            body: bytes::Bytes::from_static(br#"{"token": 8675309}"#),
        };
        let Err(e) = json::<TokenResponse>("https://auth.example.com/token", &response) else {
            panic!("a number read as a token");
        };
        let text = e.to_string();
        assert!(
            text.contains("token: expected a string, found an integer"),
            "{text}"
        );
        assert!(!text.contains("8675309"), "{text}");
    }
}
