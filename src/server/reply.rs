//! Building answers of the TLS port: JSON bodies and Kubernetes `Status` errors, shared by
//! the admission routes and `/credentials`; and the plain-text answers of the probe port
//! and the overview page.

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

/// A short plain-text answer.
pub(crate) fn text(code: StatusCode, body: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
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
