//! The kubelet's exec credential provider API, `credentialprovider.kubelet.k8s.io/v1`
//! (k8s.io/kubelet/pkg/apis/credentialprovider/v1): the request the kubelet writes on
//! the plugin's stdin and the response it reads from its stdout.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::server::credentials::AuthConfig;

/// The API version pullgate speaks; the response always carries the request's.
pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// Earlier versions of the same API, with the same fields; answered in their version.
pub const OLDER_VERSIONS: &[&str] = &[
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// `cacheKeyType: Image`: the kubelet keeps the answer for this image only. The auth
/// keys are scoped to one registry space (`host/space`), so a `Registry` or `Global`
/// cache key would answer the next image of another space of the same host with keys
/// that do not match it.
pub const CACHE_KEY_TYPE: &str = "Image";

/// What the kubelet sends. Its `Debug` never shows the token.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderRequest {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub image: String,
    /// Sent only when the provider's config sets `tokenAttributes`.
    #[serde(default)]
    pub service_account_token: String,
    #[serde(default)]
    pub service_account_annotations: BTreeMap<String, String>,
}

impl fmt::Debug for CredentialProviderRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialProviderRequest")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("image", &self.image)
            .field("service_account_token", &"<redacted>")
            .field(
                "service_account_annotations",
                &self.service_account_annotations,
            )
            .finish()
    }
}

/// What the kubelet reads back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderResponse {
    pub api_version: String,
    pub kind: String,
    pub cache_key_type: String,
    /// A Go duration (`300s`); `0s` tells the kubelet not to keep the answer.
    pub cache_duration: String,
    /// Keys are `host[:port][/path]` matched against the image; empty: no credentials.
    pub auth: BTreeMap<String, AuthConfig>,
}

impl CredentialProviderResponse {
    /// Credentials the kubelet may keep for `cache_seconds`.
    pub fn with(api_version: &str, auth: BTreeMap<String, AuthConfig>, cache_seconds: u64) -> Self {
        CredentialProviderResponse {
            api_version: api_version.to_string(),
            kind: RESPONSE_KIND.to_string(),
            cache_key_type: CACHE_KEY_TYPE.to_string(),
            cache_duration: format!("{cache_seconds}s"),
            auth,
        }
    }

    /// No credentials, not to be kept: the kubelet falls back to whatever else it has
    /// and asks again at the next pull.
    pub fn none(api_version: &str) -> Self {
        Self::with(api_version, BTreeMap::new(), 0)
    }
}
