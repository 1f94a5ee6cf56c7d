//! The HTTP side of the fake apiserver: paths, selectors, list, watch and writes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{stamp, Body, Evt, Inner, Key, Tx, Write};

/// A request path, split into what it names.
#[derive(Debug)]
struct Target {
    gv: String,
    plural: String,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let own = |i: usize| rest.get(i).map(|s| s.to_string());
    let namespaced = rest.first() == Some(&"namespaces")
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    Some(if namespaced {
        Target {
            gv,
            plural: rest[2].to_string(),
            ns: own(1),
            name: own(3),
            sub: own(4),
        }
    } else {
        Target {
            gv,
            plural: own(0)?,
            ns: None,
            name: own(1),
            sub: own(2),
        }
    })
}

fn query_params(q: &str) -> BTreeMap<String, String> {
    url_pairs(q).collect()
}

fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Label selector terms: `k=v`, `k==v`, `k!=v`, `k`, `!k`.
fn labels_match(selector: &str, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector.split(',').filter(|t| !t.is_empty()).all(|t| {
        let t = t.trim();
        if let Some((k, v)) = t.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = t.split_once('=') {
            let v = v.trim_start_matches('=');
            labels[k.trim()].as_str() == Some(v.trim())
        } else if let Some(k) = t.strip_prefix('!') {
            labels.get(k).is_none()
        } else {
            labels.get(t).is_some()
        }
    })
}

/// Field selector terms on `metadata.name` and `metadata.namespace`.
fn fields_match(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|t| {
        let (k, v, eq) = match t.split_once("!=") {
            Some((k, v)) => (k, v, false),
            None => match t.split_once('=') {
                Some((k, v)) => (k, v.trim_start_matches('='), true),
                None => return true,
            },
        };
        let actual = match k {
            "metadata.name" => obj["metadata"]["name"].as_str(),
            "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
            _ => return true,
        };
        (actual == Some(v)) == eq
    })
}

struct Filter {
    gv: String,
    plural: String,
    ns: Option<String>,
    labels: String,
    fields: String,
}

impl Filter {
    fn matches(&self, key: &Key, obj: &Value) -> bool {
        key.0 == self.gv
            && key.1 == self.plural
            && self.ns.as_ref().is_none_or(|n| *n == key.2)
            && labels_match(&self.labels, obj)
            && fields_match(&self.fields, obj)
    }

    /// The watch event for a change, as seen through this filter.
    fn event(&self, e: &Evt) -> Option<Value> {
        let old = e.old.as_ref().filter(|o| self.matches(&e.key, o));
        let new = e.new.as_ref().filter(|n| self.matches(&e.key, n));
        let (ty, obj) = match (old, new) {
            (Some(_), Some(n)) => ("MODIFIED", n),
            (None, Some(n)) => ("ADDED", n),
            (Some(o), None) => {
                let mut o = o.clone();
                if let Some(n) = &e.new {
                    o = n.clone();
                }
                return Some(json!({"type": "DELETED", "object": o}));
            }
            (None, None) => return None,
        };
        Some(json!({"type": ty, "object": obj}))
    }
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn reply(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap()
}

fn error(code: u16, reason: &str, message: &str) -> Response<Body> {
    reply(code, &status_body(code, reason, message))
}

pub(crate) async fn handle(inner: &Arc<Inner>, req: Request<Incoming>) -> Response<Body> {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    if inner.failing.load(Ordering::SeqCst) {
        return error(
            500,
            "InternalError",
            "the fake apiserver is failing on purpose",
        );
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |h: &str| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header("content-type");
    let client = header("x-client");
    let at = std::time::Instant::now();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return error(400, "BadRequest", "unreadable body"),
    };
    if method == Method::POST && path == super::token_review::PATH {
        let (code, answer) = super::token_review::review(inner, &body);
        return reply(code, &answer);
    }
    if method == Method::GET {
        if let ["apis", g, v] = path.trim_matches('/').split('/').collect::<Vec<_>>()[..] {
            let gv = format!("{g}/{v}");
            return match inner.apis.lock().unwrap().get(&gv) {
                Some(rs) => {
                    let resources: Vec<Value> = rs
                        .iter()
                        .map(|(plural, kind)| json!({"name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}))
                        .collect();
                    reply(
                        200,
                        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
                    )
                }
                None => error(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            };
        }
    }
    let Some(target) = parse_path(&path) else {
        return error(404, "NotFound", "no such path");
    };
    let params = query_params(&query);
    let failing_reads = inner.fail_reads.lock().unwrap().clone();
    if method == Method::GET && failing_reads.as_deref() == Some(target.plural.as_str()) {
        return error(500, "InternalError", "reads of this kind fail on purpose");
    }
    if method == Method::GET {
        return match (&target.name, params.get("watch").map(String::as_str)) {
            (None, Some("true" | "1")) => watch_response(inner, &target, &params),
            (None, _) => list(inner, &target, &params),
            (Some(name), _) => {
                let key = (
                    target.gv.clone(),
                    target.plural.clone(),
                    target.ns.clone().unwrap_or_default(),
                    name.clone(),
                );
                match inner.store.lock().unwrap().objects.get(&key) {
                    Some(o) => reply(200, o),
                    None => error(
                        404,
                        "NotFound",
                        &format!("{} {name:?} not found", target.plural),
                    ),
                }
            }
        };
    }
    // A write: refused on purpose when its kind is, else done; recorded either way.
    let refused = inner.refuse.lock().unwrap().clone();
    let resp = match refused.filter(|(p, _)| *p == target.plural) {
        Some((plural, code)) => error(code, "Invalid", &format!("{plural} refused on purpose")),
        None => write(inner, &method, &target, &params, &content_type, &body),
    };
    let mut store = inner.store.lock().unwrap();
    store.writes.push(Write {
        method: method.to_string(),
        path,
        query,
        content_type,
        body,
        client,
        status: resp.status().as_u16(),
        at,
    });
    resp
}

fn list(inner: &Inner, t: &Target, params: &BTreeMap<String, String>) -> Response<Body> {
    let filter = filter_of(t, params);
    let store = inner.store.lock().unwrap();
    let items: Vec<&Value> = store
        .objects
        .iter()
        .filter(|(k, v)| filter.matches(k, v))
        .map(|(_, v)| v)
        .collect();
    reply(
        200,
        &json!({"kind": "List", "apiVersion": t.gv, "metadata": {"resourceVersion": store.rv.to_string()}, "items": items}),
    )
}

fn filter_of(t: &Target, params: &BTreeMap<String, String>) -> Filter {
    Filter {
        gv: t.gv.clone(),
        plural: t.plural.clone(),
        ns: t.ns.clone(),
        labels: params.get("labelSelector").cloned().unwrap_or_default(),
        fields: params.get("fieldSelector").cloned().unwrap_or_default(),
    }
}

fn watch_response(
    inner: &Arc<Inner>,
    t: &Target,
    params: &BTreeMap<String, String>,
) -> Response<Body> {
    let filter = filter_of(t, params);
    let since: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(300));
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let line = |v: Value| Bytes::from(format!("{v}\n"));
    {
        let store = inner.store.lock().unwrap();
        if since != 0 && since < store.floor {
            inner.gone.fetch_add(1, Ordering::SeqCst);
            let gone = json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")});
            let _ = tx.try_send(line(gone));
            drop(tx);
            return stream_reply(rx);
        }
        let backlog: Vec<Value> = if since == 0 {
            store
                .objects
                .iter()
                .filter(|(k, v)| filter.matches(k, v))
                .map(|(_, v)| json!({"type": "ADDED", "object": v}))
                .collect()
        } else {
            store
                .history
                .iter()
                .filter(|e| e.rv > since)
                .filter_map(|e| filter.event(e))
                .collect()
        };
        let last = store.rv;
        let mut events = inner.events.subscribe();
        let mut breaks = inner.breaks.subscribe();
        let generation = *breaks.borrow_and_update();
        drop(store);
        tokio::spawn(async move {
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            for v in backlog {
                if tx.send(line(v)).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    e = events.recv() => {
                        let Ok(e) = e else { return };
                        if *breaks.borrow() != generation {
                            return;
                        }
                        if e.rv <= last {
                            continue;
                        }
                        if let Some(v) = filter.event(&e) {
                            if tx.send(line(v)).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ = breaks.changed() => return,
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                }
            }
        });
    }
    stream_reply(rx)
}

fn stream_reply(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed_unsync())
        .unwrap()
}

fn write(
    inner: &Inner,
    method: &Method,
    t: &Target,
    params: &BTreeMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Response<Body> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut tx = Tx {
        store: inner.store.lock().unwrap(),
        inner,
    };
    let ns = t.ns.clone().unwrap_or_default();
    let key_named = |name: &str| (t.gv.clone(), t.plural.clone(), ns.clone(), name.to_string());
    if t.gv == "v1" && t.plural == "events" && matches!(method.as_str(), "POST" | "PUT") {
        if let Some(problem) = parsed.as_ref().and_then(invalid_event) {
            return error(422, "Invalid", &format!("Event is invalid: {problem}"));
        }
    }
    match (method.as_str(), &t.name) {
        ("POST", None) => {
            let Some(mut obj) = parsed else {
                return error(400, "BadRequest", "body is not JSON");
            };
            if obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                let prefix = obj["metadata"]["generateName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                tx.store.names += 1;
                obj["metadata"]["name"] = json!(format!("{prefix}{:05}", tx.store.names));
            }
            if !ns.is_empty() {
                obj["metadata"]["namespace"] = json!(ns);
            }
            let key = key_named(obj["metadata"]["name"].as_str().unwrap_or_default());
            if tx.store.objects.contains_key(&key) {
                return error(
                    409,
                    "AlreadyExists",
                    &format!("{} {:?} already exists", t.plural, key.3),
                );
            }
            let new = stamp(obj, None, false);
            reply(201, &tx.commit(key, None, Some(new)).unwrap_or_default())
        }
        ("PUT", Some(name)) => {
            let Some(obj) = parsed else {
                return error(400, "BadRequest", "body is not JSON");
            };
            let key = key_named(name);
            let Some(old) = tx.store.objects.get(&key).cloned() else {
                return error(404, "NotFound", &format!("{name:?} not found"));
            };
            if let Some(rv) = obj["metadata"]["resourceVersion"].as_str() {
                if old["metadata"]["resourceVersion"].as_str() != Some(rv) {
                    return error(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
                }
            }
            let new = if t.sub.as_deref() == Some("status") {
                let mut n = old.clone();
                n["status"] = obj["status"].clone();
                stamp(n, Some(&old), true)
            } else {
                let mut n = obj;
                n["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                if n["status"].is_null() {
                    n.as_object_mut().map(|o| o.remove("status"));
                }
                stamp(n, Some(&old), false)
            };
            reply(
                200,
                &tx.commit(key, Some(old), Some(new)).unwrap_or_default(),
            )
        }
        ("PATCH", Some(name)) => {
            let Some(patch) = parsed else {
                return error(400, "BadRequest", "body is not JSON");
            };
            let key = key_named(name);
            let old = tx.store.objects.get(&key).cloned();
            let status_only = t.sub.as_deref() == Some("status");
            let mut new = match (content_type, &old) {
                (ct, Some(o)) if ct.starts_with("application/merge-patch+json") => {
                    let mut n = o.clone();
                    json_patch::merge(&mut n, &patch);
                    n
                }
                (ct, Some(o)) if ct.starts_with("application/json-patch+json") => {
                    let mut n = o.clone();
                    let Ok(p) = serde_json::from_value::<json_patch::Patch>(patch) else {
                        return error(400, "BadRequest", "bad JSON patch");
                    };
                    if json_patch::patch(&mut n, &p).is_err() {
                        return error(422, "Invalid", "JSON patch does not apply");
                    }
                    n
                }
                (ct, old) if ct.starts_with("application/apply-patch") => {
                    if params.get("fieldManager").is_none() {
                        return error(422, "Invalid", "fieldManager is required for apply");
                    }
                    if let Some(rv) = patch["metadata"]["resourceVersion"].as_str() {
                        let current = old
                            .as_ref()
                            .and_then(|o| o["metadata"]["resourceVersion"].as_str());
                        if current != Some(rv) {
                            return error(409, "Conflict", "the object has been modified");
                        }
                    }
                    apply(old.as_ref(), patch, &ns)
                }
                (_, None) => return error(404, "NotFound", &format!("{name:?} not found")),
                _ => return error(415, "UnsupportedMediaType", "unsupported patch type"),
            };
            if status_only {
                let Some(o) = &old else {
                    return error(404, "NotFound", "not found");
                };
                let mut n = o.clone();
                n["status"] = new["status"].clone();
                new = n;
            }
            let new = stamp(new, old.as_ref(), status_only);
            let code = if old.is_some() { 200 } else { 201 };
            reply(code, &tx.commit(key, old, Some(new)).unwrap_or_default())
        }
        ("DELETE", Some(name)) => {
            let key = key_named(name);
            let Some(old) = tx.store.objects.get(&key).cloned() else {
                return error(404, "NotFound", &format!("{name:?} not found"));
            };
            if let Some(rv) = parsed
                .as_ref()
                .and_then(|p| p["preconditions"]["resourceVersion"].as_str())
            {
                if old["metadata"]["resourceVersion"].as_str() != Some(rv) {
                    return error(409, "Conflict", "precondition failed: resourceVersion");
                }
            }
            reply(200, &tx.commit(key, Some(old), None).unwrap_or_default())
        }
        _ => error(405, "MethodNotAllowed", "method not allowed"),
    }
}

/// Server-side apply, simplified: the applied object's fields replace the stored ones
/// (labels and annotations included); what it does not mention is kept.
fn apply(old: Option<&Value>, applied: Value, ns: &str) -> Value {
    let mut out = old.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    if let Value::Object(fields) = applied {
        for (k, v) in fields {
            if k == "metadata" {
                for (mk, mv) in v.as_object().cloned().unwrap_or_default() {
                    if mk != "resourceVersion" {
                        out["metadata"][mk] = mv;
                    }
                }
            } else {
                out[k] = v;
            }
        }
    }
    if !ns.is_empty() {
        out["metadata"]["namespace"] = json!(ns);
    }
    out
}

/// What the apiserver's validation of a core/v1 Event (create and update through the v1
/// API: pkg/apis/core/validation/events.go) refuses in `e`, if anything. A generated
/// name is not known yet and is not checked.
fn invalid_event(e: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let name = text(&e["metadata"]["name"]);
    if !name.is_empty() && !is_dns_subdomain(&name) {
        return Some(format!("metadata.name {name:?} is not a DNS subdomain"));
    }
    let ns = text(&e["metadata"]["namespace"]);
    if !ns.is_empty() && !is_dns_subdomain(&ns) {
        return Some(format!("metadata.namespace {ns:?} is not a DNS subdomain"));
    }
    if e["eventTime"].is_null() {
        return None;
    }
    let within = |field: &str, limit: usize| {
        let v = text(&e[field]);
        if v.is_empty() {
            Some(format!("{field}: Required value"))
        } else if v.len() > limit {
            Some(format!("{field}: can have at most {limit} characters"))
        } else {
            None
        }
    };
    within("reportingComponent", 316)
        .or_else(|| within("reportingInstance", 128))
        .or_else(|| within("action", 128))
        .or_else(|| within("reason", 128))
        .or_else(|| {
            (text(&e["message"]).len() > 1024)
                .then(|| "message: can have at most 1024 characters".to_string())
        })
}

/// `IsDNS1123Subdomain`: at most 253 characters, dot-separated labels of lower-case
/// letters, digits and `-`, each starting and ending with a letter or digit.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}
