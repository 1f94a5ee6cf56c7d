//! `pullgate check`: judge manifests (or one image) offline with the admission code
//! path, for CI pipelines. Exit 0 when everything is allowed, 1 when anything is denied,
//! 2 on bad input.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::admission::audit::{self, AuditImage};
use crate::admission::object::{Kind, Object};
use crate::admission::Admission;
use crate::api::DEFAULT_PULL_SECRET_NAME;
use crate::cli::{CheckArgs, Output};
use crate::config;
use crate::index::{Resolution, Snapshot, Table};
use crate::policy::{self, ImageRef, ImageUse, Location, Verdict};

pub const EXIT_ALLOWED: i32 = 0;
pub const EXIT_DENIED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;

/// The result for one object of a manifest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    pub file: String,
    pub document: usize,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub decision: &'static str,
    pub messages: Vec<String>,
    pub images: Vec<AuditImage>,
}

/// Runs the command, printing to stdout; returns the exit code.
pub fn run(args: &CheckArgs) -> i32 {
    match run_inner(args) {
        Ok((out, code)) => {
            print!("{out}");
            code
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_BAD_INPUT
        }
    }
}

fn run_inner(args: &CheckArgs) -> Result<(String, i32), String> {
    let cfg = config::load(&args.config).map_err(|e| e.to_string())?;
    let snapshot = Snapshot::build(&cfg.objects, 1);
    for p in snapshot.problems() {
        eprintln!("warning: {} {:?}: {}", p.kind, p.name, p.message);
    }
    let admission = Admission {
        policy: args.policy.policy(),
        pull_secret_name: DEFAULT_PULL_SECRET_NAME.to_string(),
        table: Arc::new(Table::new(snapshot)),
    };
    if let Some(image) = &args.image {
        let ns = args.target_namespace.as_deref().unwrap_or("default");
        return Ok(explain_image(&admission, image, ns, args.output));
    }
    let mut results = Vec::new();
    for file in &args.files {
        let text = read(file)?;
        results.extend(check_text(
            &admission,
            &file.display().to_string(),
            &text,
            args.target_namespace.as_deref(),
        )?);
    }
    let code = if results.iter().any(|r| r.decision == "deny") {
        EXIT_DENIED
    } else {
        EXIT_ALLOWED
    };
    let out = match args.output {
        Output::Json => {
            json_line(&serde_json::json!({ "allowed": code == EXIT_ALLOWED, "results": results }))
        }
        Output::Text => text_report(&results),
    };
    Ok((out, code))
}

fn read(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// Judges every object of a multi-document manifest (a `List` is expanded). Objects of
/// kinds pullgate does not judge are skipped.
pub fn check_text(
    admission: &Admission,
    file: &str,
    text: &str,
    namespace: Option<&str>,
) -> Result<Vec<ObjectResult>, String> {
    let docs = config::documents(text).map_err(|e| format!("{file}: {e}"))?;
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let items = match doc.get("items").and_then(|v| v.as_array()) {
            Some(items) if doc.get("kind").and_then(|k| k.as_str()) == Some("List") => {
                items.iter().collect()
            }
            _ => vec![doc],
        };
        for item in items {
            let at = |e: String| format!("{file}: document {}: {e}", i + 1);
            let (api_version, kind_name) = config::type_of(item).map_err(at)?;
            let Some(kind) = Kind::from_api_version(&api_version, &kind_name) else {
                continue;
            };
            let json = item.to_string();
            let object =
                Object::parse(&json).map_err(|e| at(format!("invalid {kind_name}: {e}")))?;
            let ns = namespace
                .map(str::to_string)
                .or_else(|| {
                    object
                        .metadata
                        .as_ref()
                        .and_then(|m| m.namespace.as_deref())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "default".to_string());
            let d = admission.judge_object(kind, &object, &ns);
            out.push(ObjectResult {
                file: file.to_string(),
                document: i + 1,
                kind: kind_name,
                name: object.display_name().to_string(),
                namespace: ns.clone(),
                decision: d.verdict().as_str(),
                messages: d.denial_messages(),
                images: audit::images_of(d.images, &ns, true),
            });
        }
    }
    Ok(out)
}

fn text_report(results: &[ObjectResult]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(
            s,
            "{:<5} {} {}/{} ({}, document {})",
            r.decision.to_uppercase(),
            r.kind,
            r.namespace,
            r.name,
            r.file,
            r.document
        );
        for img in &r.images {
            let mark = if img.verdict == "allow" {
                "ok  "
            } else {
                "DENY"
            };
            let _ = writeln!(s, "  {mark} {}", img.message.as_deref().unwrap_or_default());
        }
    }
    let denied = results.iter().filter(|r| r.decision == "deny").count();
    let _ = writeln!(s, "{} objects checked, {denied} denied", results.len());
    s
}

fn json_line(v: &serde_json::Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `check --image`: the decision for one image in a namespace, step by step.
pub fn explain_image(
    admission: &Admission,
    image: &str,
    ns: &str,
    output: Output,
) -> (String, i32) {
    let snap = admission.table.load();
    let uses = [ImageUse {
        image,
        location: Location::Container,
        name: "check",
    }];
    let req = policy::Request {
        namespace: ns,
        images: &uses,
        mirror_pod_by_node: false,
        stale: false,
    };
    let d = policy::decide(&req, &snap, &admission.policy);
    let verdict = d.verdict();
    let code = if verdict == Verdict::Deny {
        EXIT_DENIED
    } else {
        EXIT_ALLOWED
    };
    if output == Output::Json {
        let v = serde_json::json!({
            "image": image, "namespace": ns, "decision": verdict.as_str(),
            "mode": audit::mode_str(d.mode), "exempt": d.exempt,
            "images": audit::images_of(d.images, ns, true),
        });
        return (json_line(&v), code);
    }
    let mut s = String::new();
    let mut step = |label: &str, text: String| {
        let _ = writeln!(s, "{label:<11} {text}");
    };
    step("image:", format!("{image:?}"));
    step("namespace:", ns.to_string());
    if d.exempt {
        step(
            "exempt:",
            "the namespace is exempt; allowed untouched".into(),
        );
        step("decision:", "allow".into());
        return (s, code);
    }
    match ImageRef::parse(image) {
        Err(e) => step("parse:", format!("invalid: {e}")),
        Ok(r) => {
            step(
                "parse:",
                format!(
                    "host {:?}, path {:?}{}{}",
                    r.host_key(),
                    r.path(),
                    r.tag().map(|t| format!(", tag {t:?}")).unwrap_or_default(),
                    r.digest()
                        .map(|d| format!(", digest {d}"))
                        .unwrap_or_default()
                ),
            );
            match snap.resolve(&r) {
                Resolution::Unmanaged => step(
                    "registry:",
                    "none: the host is not an integrated registry".into(),
                ),
                Resolution::HostConflict(names) => step(
                    "registry:",
                    format!("conflict: claimed by {}", names.join(", ")),
                ),
                Resolution::NoSpace(reg) => step(
                    "registry:",
                    format!("{} ({}); no space matches the path", reg.name, reg.url),
                ),
                Resolution::Space(reg, space) => {
                    step("registry:", format!("{} ({})", reg.name, reg.url));
                    step(
                        "space:",
                        format!(
                            "{:?} from RegistrySpace {}, {:?}{}, bound to workspaces [{}]",
                            space.space,
                            space.objects.join(", "),
                            space.visibility,
                            if space.in_conflict() {
                                " (conflict: fail closed)"
                            } else {
                                ""
                            },
                            space.workspaces.join(", ")
                        ),
                    );
                    let member: Vec<&str> =
                        snap.workspaces_of(ns).map(|w| w.name.as_str()).collect();
                    step(
                        "workspaces:",
                        format!("namespace {ns:?} belongs to [{}]", member.join(", ")),
                    );
                }
            }
        }
    }
    step("mode:", audit::mode_str(d.mode).into());
    for v in &d.images {
        step("verdict:", policy::decide::explain(v, ns));
    }
    step("decision:", verdict.as_str().into());
    (s, code)
}
