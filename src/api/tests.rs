//! Tests of the API: the committed CRDs, their descriptions and columns, and every rule
//! the apiserver checks at apply time, run over good and bad objects from
//! `tests/data/api-objects.yaml` and `tests/data/api-values.yaml`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel;
use serde_json::{json, Value};

use super::*;

/// `CrKind` names the three resources as their types do, and reads back from the name.
#[test]
fn cr_kinds_are_the_resources_kinds() {
    use kube::Resource;
    let kinds = [
        Registry::kind(&()),
        RegistrySpace::kind(&()),
        Workspace::kind(&()),
    ];
    for (k, kind) in CrKind::ALL.into_iter().zip(kinds) {
        assert_eq!(k.as_str(), kind);
        assert_eq!(CrKind::from_kind(&kind), Some(k));
    }
    assert_eq!(CrKind::from_kind("Secret"), None);
    assert_eq!(CrKind::from_kind("registry"), None);
}

/// A mode's two names are the ones its CRD field and `--mode` take.
#[test]
fn enforcement_names_are_its_serde_and_flag_forms() {
    use clap::ValueEnum;
    for e in [Enforcement::Audit, Enforcement::Warn, Enforcement::Enforce] {
        assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
        assert_eq!(e.to_possible_value().unwrap().get_name(), e.flag_name());
    }
}

/// The committed manifests/base/crds.yaml must be exactly what `pullgate crds` prints.
#[test]
fn committed_crds_match_generated() {
    let committed = include_str!("../../manifests/base/crds.yaml");
    assert!(
        committed == crds_yaml(),
        "manifests/base/crds.yaml is stale: run `cargo run -- crds > manifests/base/crds.yaml`"
    );
}

#[test]
fn crds_are_cluster_scoped_with_short_names_and_descriptions() {
    for (crd, short) in [
        (Registry::crd(), "preg"),
        (RegistrySpace::crd(), "rspace"),
        (Workspace::crd(), "ws"),
    ] {
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_string()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
        let schema = serde_json::to_value(&v.schema).unwrap();
        assert_described(&schema["openAPIV3Schema"]["properties"]["spec"], "spec");
    }
}

/// Every property of a spec has a description, so `kubectl explain` is useful.
fn assert_described(schema: &serde_json::Value, path: &str) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            assert!(
                prop.get("description").is_some(),
                "{here} has no description"
            );
            assert_described(prop, &here);
            assert_described(&prop["items"], &here);
        }
    }
}

#[test]
fn crds_are_in_the_pullgate_category_with_ready_and_conflict_columns() {
    let column = |crd: &CustomResourceDefinition, name: &str| {
        crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .find(|c| c.name == name)
            .map(|c| c.json_path.clone())
    };
    for crd in [Registry::crd(), RegistrySpace::crd(), Workspace::crd()] {
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["pullgate".to_string()])
        );
    }
    let ready = r#".status.conditions[?(@.type=="Ready")].status"#;
    assert_eq!(
        column(&RegistrySpace::crd(), "Ready").as_deref(),
        Some(ready)
    );
    assert_eq!(column(&Workspace::crd(), "Ready").as_deref(), Some(ready));
    assert_eq!(
        column(&Registry::crd(), "Conflict").as_deref(),
        Some(r#".status.conditions[?(@.type=="Conflict")].message"#)
    );
}

// --- The apiserver's checks at apply time, run here ------------------------------------
//
// `apply` answers what the apiserver would answer to a create (or, given the old object,
// an update): the structural checks of the OpenAPI schema (types, enums, required,
// patterns with the `regex` crate, lengths and counts), unknown fields (kubectl's strict
// field validation), and the CEL rules, evaluated by kube-cel with Kubernetes' CEL
// libraries and `self`/`oldSelf` bound at each rule's node as the apiserver binds them.

fn schema_of(kind: &str) -> Value {
    let crd = match kind {
        "Registry" => Registry::crd(),
        "RegistrySpace" => RegistrySpace::crd(),
        "Workspace" => Workspace::crd(),
        other => panic!("no CRD for kind {other}"),
    };
    serde_json::to_value(
        &crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema,
    )
    .unwrap()
}

/// Every error the apiserver would answer, as `path: message`.
fn apply(object: &Value, old: Option<&Value>) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let schema = schema_of(kind);
    let mut errors = Vec::new();
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            map.remove(k);
        }
    }
    structural(&schema, &body, "", &mut errors);
    for p in unknown_fields(API_VERSION, kind, object).unwrap() {
        errors.push(format!("{p}: unknown field"));
    }
    let compiled = cel::compile_schema(&schema);
    assert!(
        !compiled.has_errors(),
        "{:?}",
        compiled.compilation_errors()
    );
    if let Err(e) = cel::Validator::new().validate_compiled(&compiled, object, old) {
        for err in e {
            assert_eq!(
                err.kind,
                cel::ErrorKind::ValidationFailure,
                "a rule that cannot run: {err}"
            );
            errors.push(err.to_string());
        }
    }
    errors
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The OpenAPI checks of a structural schema (what CEL does not cover).
fn structural(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let err = |errors: &mut Vec<String>, m: String| errors.push(format!("{path}: {m}"));
    if v.is_null() {
        if schema["nullable"] != true {
            err(errors, "Invalid value: null".into());
        }
        return;
    }
    let ok_type = match schema["type"].as_str() {
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        _ => true,
    };
    if !ok_type {
        err(errors, format!("Invalid type: expected {}", schema["type"]));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            err(errors, format!("Unsupported value: {v}"));
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(max) = schema["maxLength"].as_u64() {
            if s.chars().count() as u64 > max {
                err(
                    errors,
                    format!("Too long: may not be more than {max} characters"),
                );
            }
        }
        if let Some(p) = schema["pattern"].as_str() {
            if !regex::Regex::new(p).unwrap().is_match(s) {
                err(errors, format!("should match '{p}'"));
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = schema["maxItems"].as_u64() {
            if items.len() as u64 > max {
                err(errors, format!("Too many: must have at most {max} items"));
            }
        }
        for (i, item) in items.iter().enumerate() {
            structural(&schema["items"], item, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(map) = v.as_object() {
        if let Some(max) = schema["maxProperties"].as_u64() {
            if map.len() as u64 > max {
                err(
                    errors,
                    format!("Too many: must have at most {max} properties"),
                );
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !map.contains_key(r) {
                errors.push(format!("{}: Required value", join(path, r)));
            }
        }
        for (k, child) in map {
            let sub = schema["properties"]
                .get(k)
                .or(schema.get("additionalProperties"));
            if let Some(sub) = sub {
                structural(sub, child, &join(path, k), errors);
            }
        }
    }
}

/// One case of `tests/data/api-objects.yaml`.
#[derive(serde::Deserialize)]
struct Case {
    case: String,
    object: Value,
    #[serde(default)]
    old: Option<Value>,
    /// Each expected error, as a part of `path: message`; none: accepted.
    #[serde(default)]
    expect: Vec<String>,
}

fn yaml_docs<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// Good and bad objects, creates and updates, each with the errors the apiserver gives.
#[test]
fn apply_time_rules_over_good_and_bad_objects() {
    let cases: Vec<Case> = yaml_docs(include_str!("../../tests/data/api-objects.yaml"));
    assert!(cases.len() > 10);
    let mut failures = Vec::new();
    for c in &cases {
        let got = apply(&c.object, c.old.as_ref());
        let unexpected: Vec<&String> = got
            .iter()
            .filter(|g| !c.expect.iter().any(|e| g.contains(e.as_str())))
            .collect();
        let missing: Vec<&String> = c
            .expect
            .iter()
            .filter(|e| !got.iter().any(|g| g.contains(e.as_str())))
            .collect();
        if !unexpected.is_empty() || !missing.is_empty() {
            failures.push(format!(
                "{}: unexpected {unexpected:?}, missing {missing:?}",
                c.case
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// One field of `tests/data/api-values.yaml`: values tried in `template` (where the
/// string `VALUE` stands).
#[derive(serde::Deserialize)]
struct Field {
    field: String,
    template: Value,
    good: Vec<String>,
    bad: Vec<String>,
    /// Refused at apply time though pullgate would read them (unusual spellings).
    #[serde(default)]
    stricter: Vec<String>,
}

fn with_value(template: &Value, value: &str) -> Value {
    match template {
        Value::String(s) if s == "VALUE" => Value::String(value.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(|t| with_value(t, value)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, t)| (k.clone(), with_value(t, value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What pullgate's binding table makes of the object: the problems it reports on it.
fn table_problems(object: &Value) -> Vec<String> {
    let mut objects = crate::index::Objects::default();
    let registry = |url: &str| -> Registry {
        serde_json::from_value(json!({"apiVersion": API_VERSION, "kind": "Registry",
            "metadata": {"name": "r"}, "spec": {"type": "DockerRegistry", "url": url}}))
        .unwrap()
    };
    match object["kind"].as_str().unwrap() {
        "Registry" => objects
            .registries
            .push(serde_json::from_value(object.clone()).unwrap()),
        "RegistrySpace" => {
            objects.registries.push(registry("https://r.example.com"));
            objects
                .spaces
                .push(serde_json::from_value(object.clone()).unwrap());
        }
        "Workspace" => objects
            .workspaces
            .push(serde_json::from_value(object.clone()).unwrap()),
        other => panic!("{other}"),
    }
    crate::index::Snapshot::build(&objects, 1)
        .problems()
        .iter()
        .filter(|p| p.kind.as_str() == object["kind"])
        .map(|p| p.message.clone())
        .collect()
}

/// Field by field: good values pass; bad ones are refused at that field, and pullgate's
/// own reading refuses them too (so the rules never refuse what pullgate can use, but
/// for the listed `stricter` spellings).
#[test]
fn apply_time_rules_over_good_and_bad_values() {
    let fields: Vec<Field> =
        serde_yaml::from_str(include_str!("../../tests/data/api-values.yaml")).unwrap();
    let mut failures = Vec::new();
    for f in &fields {
        for v in &f.good {
            let errors = apply(&with_value(&f.template, v), None);
            if !errors.is_empty() {
                failures.push(format!("{} = {v:?} refused: {errors:?}", f.field));
            }
        }
        for (v, stricter) in f
            .bad
            .iter()
            .map(|v| (v, false))
            .chain(f.stricter.iter().map(|v| (v, true)))
        {
            let object = with_value(&f.template, v);
            let errors = apply(&object, None);
            if !errors
                .iter()
                .any(|e| e.starts_with(&format!("{}: ", f.field)))
            {
                failures.push(format!(
                    "{} = {v:?} not refused at that field: {errors:?}",
                    f.field
                ));
            }
            let problems = table_problems(&object);
            if problems.is_empty() != stricter {
                failures.push(format!(
                    "{} = {v:?}: pullgate's table reports {problems:?}, but the list says {}",
                    f.field,
                    if stricter {
                        "it reads the value"
                    } else {
                        "it refuses it"
                    }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every schema node with its path, parents first.
fn nodes<'a>(schema: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), schema));
    for (k, child) in schema["properties"].as_object().into_iter().flatten() {
        nodes(child, join(&path, k), out);
    }
    if schema["items"].is_object() {
        nodes(&schema["items"], format!("{path}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        nodes(&schema["additionalProperties"], format!("{path}{{}}"), out);
    }
}

/// The apiserver prices each CEL rule before it accepts the CRD, from the bounds of what
/// the rule reads, times the number of values it runs on (the `maxItems` or
/// `maxProperties` of every list or map above it). An unbounded string is priced at the
/// largest request (3 MB), which puts a `matches` over budget; so every rule's node is
/// bounded, so is every list and map above it, and the estimate (cel-go's factors:
/// 0.1 per character traversed, 0.25 per regex character) stays under the 1,000,000 a
/// single evaluation may cost. Patterns use only what ECMA-262 and RE2 read alike.
#[test]
fn rules_fit_the_apiservers_cost_budget_and_regex_dialects() {
    let mut rules = 0;
    for kind in ["Registry", "RegistrySpace", "Workspace"] {
        let schema = schema_of(kind);
        let mut all = Vec::new();
        nodes(&schema, String::new(), &mut all);
        for (path, node) in &all {
            if let Some(p) = node["pattern"].as_str() {
                assert!(
                    !p.contains('\\')
                        && !p.contains("(?")
                        && p.starts_with('^')
                        && p.ends_with('$'),
                    "{kind} {path}: pattern {p} uses more than the common regex subset"
                );
                regex::Regex::new(p).unwrap();
            }
            let Some(list) = node["x-kubernetes-validations"].as_array() else {
                continue;
            };
            // Values the rule runs on: the product of the bounds of lists and maps above.
            let mut cardinality: u64 = 1;
            for (above, parent) in &all {
                let inside = path.starts_with(&format!("{above}[]"))
                    || path.starts_with(&format!("{above}{{}}"));
                if inside && path != above {
                    let bound = parent["maxItems"]
                        .as_u64()
                        .or(parent["maxProperties"].as_u64());
                    cardinality *= bound.unwrap_or_else(|| {
                        panic!("{kind} {above} holds a rule but has no maxItems/maxProperties")
                    });
                }
            }
            let size = match node["type"].as_str() {
                Some("string") => node["maxLength"].as_u64(),
                Some("array") => node["maxItems"].as_u64(),
                Some("object") => Some(node["maxProperties"].as_u64().unwrap_or(1)),
                _ => Some(1),
            }
            .unwrap_or_else(|| panic!("{kind} {path} holds a rule but is unbounded"));
            let compiled = cel::compile_schema(node);
            for r in list {
                rules += 1;
                let text = r["rule"].as_str().unwrap();
                let mut cost = text.len() as f64;
                for part in text.split("matches(r'").skip(1) {
                    let regex = part.split("')").next().unwrap();
                    cost += (size as f64 * 0.1).ceil() * (regex.len() as f64 * 0.25).ceil();
                }
                cost += text.matches("startsWith(").count() as f64 * (size as f64 * 0.1).ceil();
                assert!(
                    cost * cardinality as f64 <= 1_000_000.0,
                    "{kind} {path}: {text} costs about {cost} x {cardinality}"
                );
                let warnings = cel::analyze_rule(text, &compiled, cel::ScopeContext::CrdValidation);
                assert!(
                    warnings
                        .iter()
                        .all(|w| w.kind != cel::WarningKind::CostExceeded
                            && w.kind != cel::WarningKind::WrongScope),
                    "{kind} {path}: {warnings:?}"
                );
                assert!(
                    r["message"].is_string(),
                    "{kind} {path}: {text} has no message"
                );
            }
        }
    }
    assert!(rules >= 5, "{rules} rules");
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let space = json!({"apiVersion": API_VERSION, "kind": "RegistrySpace",
        "metadata": {"name": "s", "lables": {}},
        "spec": {"registry": "r", "space": "a", "visiblity": "Public",
                 "pullSecretRef": {"namespace": "n", "name": "x", "key": "k"}}});
    let got: Vec<String> = unknown_fields(API_VERSION, "RegistrySpace", &space)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "metadata.lables",
            "spec.pullSecretRef.key",
            "spec.visiblity"
        ]
    );
    let ws = json!({"apiVersion": API_VERSION, "kind": "Workspace", "metadata": {"name": "w",
        "labels": {"a/b": "c"}, "annotations": {"x": "y"}},
        "spec": {"namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "In",
        "values": ["v"], "value": "v"}], "matchLabels": {"team": "a"}}}});
    let got: Vec<String> = unknown_fields(API_VERSION, "Workspace", &ws)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, ["spec.namespaceSelector.matchExpressions[0].value"]);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}, "strinData": {}});
    let got: Vec<String> = unknown_fields("v1", "Secret", &secret)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, ["strinData"]);
    assert!(unknown_fields("v1", "Pod", &secret).is_none());
}
