//! Building answers of the TLS port: JSON bodies and Kubernetes `Status` errors, shared by
//! the admission routes and `/credentials`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

pub(crate) fn json(code: StatusCode, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error answer as a Kubernetes `Status`, which the apiserver can decode and show.
pub(crate) fn status(code: StatusCode, reason: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code.as_u16(),
    });
    json(code, Bytes::from(body.to_string()))
}
