//! `POST /apis/authentication.k8s.io/v1/tokenreviews` as the apiserver answers it for
//! service-account tokens: a token the test registered is authenticated when one of its
//! audiences is among the review's `spec.audiences` (the apiserver's own audience when
//! none is asked), and `status.audiences` is that intersection; any other token, or one
//! made for other audiences, gets `authenticated: false` with an error. Reviews are not
//! stored and not listed among the writes (they are not objects); they are counted.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::Inner;

pub const PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// The audience of tokens made for the apiserver itself.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc";

/// A token the fake knows: whose it is and for which audiences it was made.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub username: String,
    pub audiences: Vec<String>,
    /// `user.extra` (e.g. `authentication.kubernetes.io/node-name`).
    pub extra: Value,
}

impl TokenInfo {
    /// A pod-bound token of service account `sa` in `ns`, for `audience`, on `node`.
    pub fn service_account(ns: &str, sa: &str, audience: &str, node: &str) -> TokenInfo {
        TokenInfo {
            username: format!("system:serviceaccount:{ns}:{sa}"),
            audiences: vec![audience.to_string()],
            extra: json!({"authentication.kubernetes.io/node-name": [node]}),
        }
    }
}

/// The review of the request body `body` (a TokenReview), as (HTTP status, answer).
pub(crate) fn review(inner: &Inner, body: &[u8]) -> (u16, Value) {
    inner.token_reviews.fetch_add(1, Ordering::SeqCst);
    let Ok(mut review) = serde_json::from_slice::<Value>(body) else {
        return (
            400,
            json!({"kind": "Status", "code": 400, "message": "body is not JSON"}),
        );
    };
    let token = review["spec"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut wanted: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        wanted.push(API_AUDIENCE.to_string());
    }
    let known = inner.tokens.lock().unwrap().get(&token).cloned();
    let status = match known {
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
        Some(info) => {
            let both: Vec<&String> = info
                .audiences
                .iter()
                .filter(|a| wanted.contains(a))
                .collect();
            if both.is_empty() {
                json!({"authenticated": false, "error": format!(
                    "token audiences {:?} is invalid for the target audiences {:?}", info.audiences, wanted)})
            } else {
                json!({"authenticated": true, "audiences": both,
                       "user": {"username": info.username, "uid": "uid-sa",
                                "groups": ["system:serviceaccounts"], "extra": info.extra}})
            }
        }
    };
    review["status"] = status;
    // The apiserver never echoes the token back.
    review["spec"]["token"] = Value::Null;
    (201, review)
}
