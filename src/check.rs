//! `pullgate check`: judge manifests (or one image) offline with the admission code
//! path, for CI pipelines. Exit 0 when everything is allowed, 1 when anything is denied,
//! 2 on bad input. Manifests are read by the shared [`input`] loader, as kubectl reads
//! them; every object is either judged, or known and reported as not judged (a built-in
//! kind without a pod, a custom resource), or bad input (an unknown kind, an object that
//! cannot be read) — never silently skipped.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::admission::Admission;
use crate::api::DEFAULT_PULL_SECRET_NAME;
use crate::audit_record::{self, AuditImage};
use crate::cli::{CheckArgs, Output};
use crate::config;
use crate::index::{Resolution, Snapshot, Table};
use crate::input::{self, escape, Class};
use crate::object::Object;
use crate::policy::{self, ImageRef, ImageUse, Location, Verdict};

pub const EXIT_ALLOWED: i32 = 0;
pub const EXIT_DENIED: i32 = 1;
pub use crate::input::EXIT_BAD_INPUT;

/// The result for one judged object of a manifest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    pub file: String,
    pub document: usize,
    /// The list items that led to the object (`items[2]`), when it came from a list.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub item: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub decision: &'static str,
    pub messages: Vec<String>,
    pub images: Vec<AuditImage>,
}

/// An object of a known kind that holds nothing the webhook judges.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotJudged {
    pub file: String,
    pub document: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub item: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub reason: &'static str,
}

/// Every object of the input, judged or not.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<ObjectResult>,
    pub not_judged: Vec<NotJudged>,
}

const BUILT_IN_REASON: &str = "a built-in kind without pods";
const CUSTOM_REASON: &str =
    "a custom resource: the webhook judges the pods its controller creates, not the resource";

/// Runs the command, printing to stdout; returns the exit code.
pub fn run(args: &CheckArgs) -> i32 {
    input::finish(run_inner(args))
}

fn run_inner(args: &CheckArgs) -> Result<(String, i32), Vec<String>> {
    let one = |e: String| vec![e];
    let stdin = |p: &std::path::Path| p.as_os_str() == "-";
    if stdin(&args.config) && args.files.iter().any(|f| stdin(f)) {
        return Err(one(
            "stdin (-) can be read for --config or for -f, not both".into(),
        ));
    }
    let cfg = config::load(&args.config).map_err(|e| one(e.to_string()))?;
    let snapshot = Snapshot::build(&cfg.objects, 1);
    for p in snapshot.problems() {
        eprintln!("warning: {} {:?}: {}", p.kind, p.name, escape(&p.message));
    }
    let admission = Admission {
        policy: args.policy.policy(&args.pullgate_namespace),
        pull_secret_name: DEFAULT_PULL_SECRET_NAME.to_string(),
        table: Arc::new(Table::new(snapshot)),
        changes: None,
    };
    if let Some(image) = &args.image {
        let ns = args.target_namespace.as_deref().unwrap_or("default");
        return Ok(explain_image(&admission, image, ns, args.output));
    }
    let objects = input::load(&args.files).map_err(|e| one(e.to_string()))?;
    if objects.is_empty() {
        return Err(one(
            "the input holds no objects (give manifests with -f FILE, DIR or -)".into(),
        ));
    }
    let report = check_objects(&admission, &objects, args.target_namespace.as_deref())?;
    let code = if report.results.iter().any(|r| r.decision == "deny") {
        EXIT_DENIED
    } else {
        EXIT_ALLOWED
    };
    let out = match args.output {
        Output::Json => json_line(&serde_json::json!({
            "allowed": code == EXIT_ALLOWED,
            "results": report.results,
            "notJudged": report.not_judged,
        })),
        Output::Text => text_report(&report),
    };
    Ok((out, code))
}

/// Judges every object of a multi-document manifest text (lists expanded); see
/// [`check_objects`].
pub fn check_text(
    admission: &Admission,
    file: &str,
    text: &str,
    namespace: Option<&str>,
) -> Result<Report, Vec<String>> {
    let objects = input::parse_text(file, text).map_err(|e| vec![e.to_string()])?;
    check_objects(admission, &objects, namespace)
}

/// Judges the objects of judged kinds and lists those of other known kinds. Objects of
/// unknown kinds and objects that cannot be read are bad input: every such problem is
/// returned, and nothing is judged.
pub fn check_objects(
    admission: &Admission,
    objects: &[input::Object],
    namespace: Option<&str>,
) -> Result<Report, Vec<String>> {
    let mut report = Report::default();
    let mut errors = Vec::new();
    for o in objects {
        let (api_version, kind_name) = (o.api_version(), o.kind());
        let reason = match input::classify(api_version, kind_name) {
            Class::Judged(kind) => {
                let json = o.value.to_string();
                let object = match Object::parse(&json) {
                    Ok(object) => object,
                    Err(e) => {
                        errors.push(o.error(format!("invalid {kind_name}: {e}")).0);
                        continue;
                    }
                };
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
                report.results.push(ObjectResult {
                    file: o.origin.file.clone(),
                    document: o.origin.document,
                    item: o.origin.item.clone(),
                    kind: kind_name.to_string(),
                    name: object.display_name().to_string(),
                    namespace: ns.clone(),
                    decision: d.verdict().as_str(),
                    messages: d.denial_messages(),
                    images: audit_record::images_of(d.images, &ns, true),
                });
                continue;
            }
            Class::BuiltIn => BUILT_IN_REASON,
            Class::Custom => CUSTOM_REASON,
            Class::Unknown => {
                errors.push(
                    o.error(format!(
                        "unknown kind {:?} of apiVersion {:?}: not a Kubernetes kind pullgate knows, nor one of a custom API group (whose name has a dot)",
                        kind_name, api_version
                    ))
                    .0,
                );
                continue;
            }
        };
        report.not_judged.push(NotJudged {
            file: o.origin.file.clone(),
            document: o.origin.document,
            item: o.origin.item.clone(),
            api_version: api_version.to_string(),
            kind: kind_name.to_string(),
            name: o.name().to_string(),
            reason,
        });
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(errors)
    }
}

/// Where an object came from, escaped: `file, document 2[, items[0]]`.
fn origin(file: &str, document: usize, item: &str) -> String {
    input::Origin {
        file: file.to_string(),
        document,
        item: item.to_string(),
    }
    .to_string()
}

/// The text report; every field taken from input is escaped.
fn text_report(report: &Report) -> String {
    let mut s = String::new();
    for r in &report.results {
        let _ = writeln!(
            s,
            "{:<5} {} {}/{} ({})",
            r.decision.to_uppercase(),
            escape(&r.kind),
            escape(&r.namespace),
            escape(&r.name),
            origin(&r.file, r.document, &r.item)
        );
        for img in &r.images {
            let mark = if img.verdict == "allow" {
                "ok  "
            } else {
                "DENY"
            };
            let _ = writeln!(
                s,
                "  {mark} {}",
                escape(img.message.as_deref().unwrap_or_default())
            );
        }
    }
    for n in &report.not_judged {
        let _ = writeln!(
            s,
            "-     {} {} ({}): not judged: {}",
            escape(&n.kind),
            escape(&n.name),
            origin(&n.file, n.document, &n.item),
            n.reason
        );
    }
    let denied = report
        .results
        .iter()
        .filter(|r| r.decision == "deny")
        .count();
    let checked = report.results.len();
    let _ = write!(
        s,
        "{checked} object{} checked, {denied} denied",
        if checked == 1 { "" } else { "s" }
    );
    if !report.not_judged.is_empty() {
        let _ = write!(s, ", {} not judged", report.not_judged.len());
    }
    s.push('\n');
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
    // One image on its own: no container. The decision needs a location; the sentences
    // printed below leave the container out.
    let uses = [ImageUse {
        image,
        location: Location::Container,
        name: "",
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
        let sentences: Vec<String> = d
            .images
            .iter()
            .map(|v| format!("image {:?} {}", v.image, policy::decide::why(v, ns)))
            .collect();
        let mut images = audit_record::images_of(d.images, ns, true);
        for (img, sentence) in images.iter_mut().zip(sentences) {
            img.message = img.message.is_some().then_some(sentence);
        }
        let v = serde_json::json!({
            "image": image, "namespace": ns, "decision": verdict.as_str(),
            "mode": d.mode.flag_name(), "exempt": d.exempt,
            "images": images,
        });
        return (json_line(&v), code);
    }
    let mut s = String::new();
    let mut step = |label: &str, text: String| {
        // Names come from the config and the image from the command line: escaped.
        let _ = writeln!(s, "{label:<11} {}", escape(&text));
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
                Resolution::Unusable(name) => step(
                    "registry:",
                    format!("{name}, whose spec is invalid (see the warnings above); denied"),
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
    step("mode:", d.mode.flag_name().into());
    for v in &d.images {
        // One image judged alone: no container to name.
        step(
            "verdict:",
            format!("image {:?} {}", v.image, policy::decide::why(v, ns)),
        );
    }
    step("decision:", verdict.as_str().into());
    (s, code)
}
