//! The report objects of the background audit (README, "Background audit and reports"), built purely from one namespace's findings: an
//! OpenReports `openreports.io/v1alpha1` `Report` (or a `wgpolicyk8s.io/v1alpha2`
//! `PolicyReport`, the same shape without the top-level `source`), one result per
//! finding. [`build`] splits a namespace's findings over as many objects as it takes to
//! keep each far below what etcd stores, under names fixed by their position
//! (`pullgate`, `pullgate-2`, ...), and gives each a hash of its content (times left
//! out), so an unchanged report is never written again, even by a new leader.
//!
//! How a finding reads: `policy` is `pullgate-image-pull`, `rule` the reason code
//! (`notBound`, `unmanaged`, ...), `result` is `fail` where admission enforces, `warn`
//! where it only warns or audits, `error` for an object that cannot be read; the
//! object is in `resources`, and `properties` carry image, container, location, reason,
//! mode, registry and space.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::api::Enforcement;
pub use crate::api::ReportFormat;
use crate::findings::{Finding, UNREADABLE};

/// Label on every report pullgate writes (what its list selects).
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_VALUE: &str = "pullgate";
/// Annotation holding the hash of a report's content (times left out).
pub const HASH_ANNOTATION: &str = "pullgate.io/findings-hash";
/// Name of a namespace's first report; the next are `pullgate-2`, `pullgate-3`, ...
pub const REPORT_NAME: &str = "pullgate";
/// `source` of the reports and of each result.
pub const SOURCE: &str = "pullgate";
/// `policy` of each result: the one rule set pullgate applies.
pub const POLICY: &str = "pullgate-image-pull";

/// The most results in one report: keeps a report readable with `kubectl get -o yaml`
/// and far below etcd's limit even if every field of every result reached
/// [`MAX_FIELD_BYTES`].
pub const MAX_RESULTS: usize = 500;
/// The most bytes of results in one report. etcd refuses requests above 1.5 MiB
/// (`--max-request-bytes` 1,572,864); the object also carries metadata and
/// `managedFields`, so a third of it is kept as the margin a mature writer leaves.
pub const MAX_REPORT_BYTES: usize = 512 * 1024;
/// The most bytes of one text field of a result (image, message, names): an invalid
/// image reference can be long, and one result must never fill a report alone.
pub const MAX_FIELD_BYTES: usize = 1024;

/// What a result's timestamp adds to it once set (`,"timestamp":{"nanos":0,"seconds":`
/// and up to 20 digits): counted before it is set.
const TIMESTAMP_BYTES: usize = 64;

/// One report object to write.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportObject {
    pub name: String,
    /// Hash of the content without times (also in [`HASH_ANNOTATION`]).
    pub hash: String,
    pub object: Value,
}

/// The reports of one namespace (none when it has no findings). `now` is the time of
/// the results, in seconds since the Unix epoch.
pub fn build(
    format: ReportFormat,
    namespace: &str,
    findings: &[Finding],
    now: i64,
) -> Vec<ReportObject> {
    let Some((group, version, kind, _)) = format.resource() else {
        return Vec::new();
    };
    let mut findings: Vec<&Finding> = findings.iter().collect();
    findings.sort_by(|a, b| {
        (
            a.kind,
            &a.name,
            a.location.map(|l| l.as_str()),
            &a.container,
            &a.image,
        )
            .cmp(&(
                b.kind,
                &b.name,
                b.location.map(|l| l.as_str()),
                &b.container,
                &b.image,
            ))
    });
    let mut chunks: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for f in findings {
        let r = result(f);
        let size = r.to_string().len() + TIMESTAMP_BYTES;
        match chunks.last_mut() {
            Some(c) if c.len() < MAX_RESULTS && bytes + size <= MAX_REPORT_BYTES => {
                c.push(r);
                bytes += size;
            }
            _ => {
                chunks.push(vec![r]);
                bytes = size;
            }
        }
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, results)| {
            let name = name_of(i);
            let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
            for r in &results {
                if let Some(k) = r["result"].as_str() {
                    summary[k] = json!(summary[k].as_i64().unwrap_or(0) + 1);
                }
            }
            let mut object = json!({
                "apiVersion": format!("{group}/{version}"),
                "kind": kind,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {MANAGED_LABEL: MANAGED_VALUE},
                },
                "scope": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
                "summary": summary,
                "results": results,
            });
            if format == ReportFormat::OpenReports {
                object["source"] = json!(SOURCE);
            }
            let hash = content_hash(&object);
            object["metadata"]["annotations"] = json!({HASH_ANNOTATION: hash});
            if let Some(rs) = object["results"].as_array_mut() {
                for r in rs {
                    r["timestamp"] = json!({"seconds": now, "nanos": 0});
                }
            }
            ReportObject { name, hash, object }
        })
        .collect()
}

/// The name [`build`] gives to a namespace's report at position `index`.
pub fn name_of(index: usize) -> String {
    if index == 0 {
        REPORT_NAME.to_string()
    } else {
        format!("{REPORT_NAME}-{}", index + 1)
    }
}

/// One result (without its timestamp).
fn result(f: &Finding) -> Value {
    let outcome = if f.reason == UNREADABLE {
        "error"
    } else if f.mode == Enforcement::Enforce {
        "fail"
    } else {
        "warn"
    };
    let mode = f.mode.as_str();
    let mut properties = Map::new();
    let mut prop = |k: &str, v: &str| {
        if !v.is_empty() {
            properties.insert(k.to_string(), json!(bounded(v)));
        }
    };
    prop("image", &f.image);
    prop("container", &f.container);
    prop("location", f.location.map_or("", |l| l.as_str()));
    prop("reason", f.reason);
    prop("mode", mode);
    prop("registry", f.registry.as_deref().unwrap_or_default());
    prop("space", f.space.as_deref().unwrap_or_default());
    json!({
        "source": SOURCE,
        "policy": POLICY,
        "rule": f.reason,
        "category": "Image pull",
        "severity": if outcome == "fail" { "high" } else { "medium" },
        "result": outcome,
        "scored": true,
        "resources": [{
            "apiVersion": f.kind.api_version(),
            "kind": f.kind.as_str(),
            "namespace": bounded(&f.namespace),
            "name": bounded(&f.name),
        }],
        "message": bounded(&f.message),
        "properties": properties,
    })
}

/// `s` cut to [`MAX_FIELD_BYTES`] on a character boundary, marked when cut.
fn bounded(s: &str) -> String {
    if s.len() <= MAX_FIELD_BYTES {
        return s.to_string();
    }
    let mut end = MAX_FIELD_BYTES - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A stable hash of a report's content: SHA-256 of its JSON text (serde_json keeps
/// object keys sorted), first 16 bytes in hex.
fn content_hash(object: &Value) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, object.to_string().as_bytes());
    let mut out = String::with_capacity(32);
    for b in &digest.as_ref()[..16] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::policy::Location;

    fn finding(name: &str, image: &str, mode: Enforcement) -> Finding {
        Finding {
            kind: Kind::Pod,
            namespace: "app-1".into(),
            name: name.into(),
            location: Some(Location::Container),
            container: "app".into(),
            image: image.into(),
            registry: Some("reg".into()),
            space: Some("team-a".into()),
            reason: "notBound",
            message: format!("image {image:?} is not bound"),
            mode,
        }
    }

    #[test]
    fn one_result_per_finding_with_a_summary() {
        let fs = [
            finding("a", "r/x:1", Enforcement::Enforce),
            finding("b", "r/y:1", Enforcement::Warn),
        ];
        let reports = build(ReportFormat::OpenReports, "app-1", &fs, 1_700_000_000);
        assert_eq!(reports.len(), 1);
        let r = &reports[0].object;
        assert_eq!(r["source"], "pullgate");
        assert_eq!(r["metadata"]["name"], "pullgate");
        assert_eq!(r["summary"]["fail"], 1);
        assert_eq!(r["summary"]["warn"], 1);
        assert_eq!(r["results"][0]["resources"][0]["name"], "a");
        assert_eq!(r["results"][1]["properties"]["mode"], "Warn");
        assert_eq!(r["results"][0]["timestamp"]["seconds"], 1_700_000_000);
        let wg = build(ReportFormat::WgPolicy, "app-1", &fs, 0);
        assert_eq!(wg[0].object["kind"], "PolicyReport");
        assert!(wg[0].object.get("source").is_none());
        assert!(build(ReportFormat::None, "app-1", &fs, 0).is_empty());
        assert!(build(ReportFormat::OpenReports, "app-1", &[], 0).is_empty());
    }

    /// An object that cannot be read is a result of its own: `error`, without image.
    #[test]
    fn an_unreadable_object_is_an_error_result() {
        let mut f = finding("odd", "", Enforcement::Enforce);
        f.reason = UNREADABLE;
        f.location = None;
        f.container = String::new();
        f.registry = None;
        f.space = None;
        let r = &build(ReportFormat::OpenReports, "app-1", &[f], 0)[0].object;
        assert_eq!(r["results"][0]["result"], "error");
        assert_eq!(r["summary"]["error"], 1);
        assert!(r["results"][0]["properties"].get("image").is_none());
        assert_eq!(r["results"][0]["properties"]["reason"], "unreadable");
    }

    /// Time alone never changes the hash, so an unchanged report is not written again.
    #[test]
    fn the_hash_ignores_time_and_follows_content() {
        let fs = [finding("a", "r/x:1", Enforcement::Enforce)];
        let at = |t| {
            build(ReportFormat::OpenReports, "app-1", &fs, t)[0]
                .hash
                .clone()
        };
        assert_eq!(at(1), at(2));
        let other = [finding("a", "r/x:2", Enforcement::Enforce)];
        assert_ne!(
            at(1),
            build(ReportFormat::OpenReports, "app-1", &other, 1)[0].hash
        );
    }

    /// Many findings, or long ones, are split: no report over the byte bound (plus its
    /// small frame), no more results than the count bound, names by position.
    #[test]
    fn large_namespaces_are_split_under_the_bounds() {
        let long = "x".repeat(100_000);
        let fs: Vec<Finding> = (0..3000)
            .map(|i| {
                finding(
                    &format!("p{i:05}"),
                    &format!("r/{long}{i}"),
                    Enforcement::Enforce,
                )
            })
            .collect();
        let reports = build(ReportFormat::OpenReports, "app-1", &fs, 0);
        assert!(reports.len() > 1);
        let mut total = 0;
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r.name, name_of(i));
            let n = r.object["results"].as_array().unwrap().len();
            assert!(n <= MAX_RESULTS);
            total += n;
            assert!(r.object.to_string().len() < MAX_REPORT_BYTES + 4096);
            let image = r.object["results"][0]["properties"]["image"]
                .as_str()
                .unwrap();
            assert!(image.len() <= MAX_FIELD_BYTES && image.ends_with("..."));
        }
        assert_eq!(total, 3000);
    }
}
