//! Typed errors of the registry clients. Each message says what went wrong and, where an
//! admin can do something about it, what to fix.

use serde::Deserialize;

/// Why a call to a registry failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The Registry object or its credentials cannot be used as written.
    #[error("invalid registry settings: {0}")]
    Settings(String),
    /// No connection could be made (refused, DNS, TLS handshake).
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The registry accepted the connection but did not answer in time.
    #[error("{url} did not answer within {seconds}s")]
    Timeout { url: String, seconds: u64 },
    /// HTTP 401: the credentials are missing or wrong.
    #[error("{url}: credentials rejected (HTTP 401{}): check username and password in the Registry's credentialsSecretRef", detail(.message))]
    Unauthorized { url: String, message: String },
    /// HTTP 403, or a Harbor user that is not a system admin where one is needed.
    #[error("{url}: permission denied (HTTP 403{}): the credentials in credentialsSecretRef need Harbor system admin rights for this", detail(.message))]
    Forbidden { url: String, message: String },
    /// The credentials work but are neither a Harbor system admin's nor a system robot's.
    #[error("user {username:?} is not a Harbor system admin: statistics, project creation and robot accounts need an admin user, or a system robot with project and robot permissions, in credentialsSecretRef")]
    NotAdmin { username: String },
    /// HTTP 404.
    #[error("{url}: not found{}", detail(.message))]
    NotFound { url: String, message: String },
    /// HTTP 409: the resource already exists.
    #[error("{url}: already exists{}", detail(.message))]
    Conflict { url: String, message: String },
    /// Any other unexpected status.
    #[error("{method} {url}: HTTP {status}{}", detail(.message))]
    Status {
        method: String,
        url: String,
        status: u16,
        /// Harbor's error code (e.g. `BAD_REQUEST`), when the body carried one.
        code: Option<String>,
        message: String,
    },
    /// The registry answered something that is not what its API promises.
    #[error("{url}: unexpected response: {reason}")]
    InvalidResponse { url: String, reason: String },
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl RegistryError {
    /// The HTTP status that caused the error, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::Forbidden { .. } => Some(403),
            RegistryError::NotFound { .. } => Some(404),
            RegistryError::Conflict { .. } => Some(409),
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Harbor's error body: `{"errors":[{"code":"CONFLICT","message":"…"}]}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The first error code and all messages of an error body; a body in another format
/// becomes the message itself (shortened), so nothing the registry said is lost.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if !parsed.errors.is_empty() {
            let code = parsed
                .errors
                .iter()
                .map(|e| e.code.clone())
                .find(|c| !c.is_empty());
            let message = parsed
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return (code, message);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    const MAX: usize = 200;
    let short: String = text.chars().take(MAX).collect();
    (None, short)
}

/// Maps a non-success status to a typed error.
pub(crate) fn from_status(method: &str, url: &str, status: u16, body: &[u8]) -> RegistryError {
    let (code, message) = parse_error_body(body);
    let url = url.to_string();
    match status {
        401 => RegistryError::Unauthorized { url, message },
        403 => RegistryError::Forbidden { url, message },
        404 => RegistryError::NotFound { url, message },
        409 => RegistryError::Conflict { url, message },
        _ => RegistryError::Status {
            method: method.to_string(),
            url,
            status,
            code,
            message,
        },
    }
}
