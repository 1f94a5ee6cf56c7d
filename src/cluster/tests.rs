//! Tables for the pure parts of cluster mode: credential sources, desired pull Secrets,
//! the write plan, status patches and the Event rate limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use serde_json::{json, Value};

use super::leader::credentials::*;
use super::leader::pull_secrets::{desired, docker_config_json, Desired};
use super::leader::status;
use super::leader::sync::{plan, secret_object, Action};
use super::replica::events::{denial_events, Limiter, QUEUE_CAPACITY};
use super::replica::state::{Change, Item, LeaderView, PullSecret, WatchId, Watched};
use crate::api::{
    RegistryType, SecretRef, Visibility, DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE,
    MANAGED_BY_LABEL,
};
use crate::index::testing::{mk_ns, mk_registry, mk_space, mk_workspace};
use crate::index::{Objects, Snapshot};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ns: &str, name: &str, ty: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        type_: Some(ty.into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn basic(user: &str, pass: &str) -> Secret {
    secret(
        "pullgate-system",
        "src",
        BASIC_AUTH_TYPE,
        &[("username", user), ("password", pass)],
    )
}

fn docker(config: serde_json::Value) -> Secret {
    secret(
        "pullgate-system",
        "src",
        DOCKER_CONFIG_JSON_TYPE,
        &[(DOCKER_CONFIG_JSON_KEY, &config.to_string())],
    )
}

/// harbor (https, alias harbor.internal:8443) with spaces team-a (Private, ws-a, ref
/// pullgate-system/src), pub (Public), all-of-it `*` (Private, ws-b, ref).
fn objects() -> Objects {
    let with_ref = |mut s: crate::api::RegistrySpace| {
        s.spec.pull_secret_ref = Some(SecretRef {
            namespace: "pullgate-system".into(),
            name: "src".into(),
        });
        s
    };
    Objects {
        registries: vec![mk_registry(
            "harbor",
            RegistryType::Harbor,
            "https://harbor.example.com",
            &["harbor.internal:8443"],
        )],
        spaces: vec![
            with_ref(mk_space(
                "harbor.team-a",
                "harbor",
                "team-a",
                Visibility::Private,
                &["ws-a"],
            )),
            mk_space("harbor.pub", "harbor", "pub", Visibility::Public, &[]),
            with_ref(mk_space(
                "harbor.all",
                "harbor",
                "*",
                Visibility::Private,
                &["ws-b"],
            )),
        ],
        workspaces: vec![
            mk_workspace("ws-a", &["app-1", "ghost"], None, None),
            mk_workspace("ws-b", &["app-2"], None, None),
        ],
        namespaces: vec![
            mk_ns("app-1", &[]),
            mk_ns("app-2", &[]),
            mk_ns("app-3", &[]),
        ],
        namespaces_complete: true,
    }
}

fn secrets_of(s: Secret) -> BTreeMap<(String, String), Arc<Secret>> {
    [(
        ("pullgate-system".to_string(), "src".to_string()),
        Arc::new(s),
    )]
    .into()
}

fn text(d: &Desired, ns: &str) -> Option<String> {
    d.secrets
        .get(ns)
        .map(|b| String::from_utf8(b.clone()).unwrap())
}

#[test]
fn desired_secrets_follow_bindings_with_every_host_spelling() {
    let snap = Snapshot::build(&objects(), 1);
    let secrets = secrets_of(basic("robot", "pw"));
    let d = desired(&snap, &RefCredentials { secrets: &secrets });
    let auth = b64("robot:pw");
    let entry = format!(r#"{{"username":"robot","password":"pw","auth":"{auth}"}}"#);
    // app-1 (ws-a): team-a under each spelling; "ghost" does not exist: no Secret.
    assert_eq!(
        text(&d, "app-1").unwrap(),
        format!(
            r#"{{"auths":{{"harbor.example.com/team-a":{entry},"harbor.example.com:443/team-a":{entry},"harbor.internal:8443/team-a":{entry}}}}}"#
        )
    );
    // app-2 (ws-b): the `*` space is keyed by host alone.
    assert_eq!(
        text(&d, "app-2").unwrap(),
        format!(
            r#"{{"auths":{{"harbor.example.com":{entry},"harbor.example.com:443":{entry},"harbor.internal:8443":{entry}}}}}"#
        )
    );
    // app-3 is bound to nothing; the public space needs no credentials.
    assert_eq!(d.secrets.keys().collect::<Vec<_>>(), ["app-1", "app-2"]);
    assert!(d.problems.is_empty());
}

#[test]
fn a_missing_source_gives_no_entry_and_a_problem() {
    let snap = Snapshot::build(&objects(), 1);
    let none = BTreeMap::new();
    let d = desired(&snap, &RefCredentials { secrets: &none });
    assert!(d.secrets.is_empty());
    assert_eq!(
        d.problems.get("harbor.team-a").map(String::as_str),
        Some("pullSecretRef: Secret pullgate-system/src does not exist")
    );
    // A Private space with no source at all: no entry, no problem (nothing to fix here).
    let mut o = objects();
    o.spaces
        .iter_mut()
        .for_each(|s| s.spec.pull_secret_ref = None);
    let d = desired(&Snapshot::build(&o, 1), &RefCredentials { secrets: &none });
    assert_eq!(d, Desired::default());
}

#[test]
fn a_public_space_with_credentials_reaches_every_namespace() {
    let mut o = objects();
    o.spaces[1].spec.pull_secret_ref = o.spaces[0].spec.pull_secret_ref.clone();
    let secrets = secrets_of(basic("u", "p"));
    let d = desired(
        &Snapshot::build(&o, 1),
        &RefCredentials { secrets: &secrets },
    );
    assert_eq!(
        d.secrets.keys().collect::<Vec<_>>(),
        ["app-1", "app-2", "app-3"]
    );
    assert!(text(&d, "app-3")
        .unwrap()
        .contains(r#""harbor.internal:8443/pub":"#));
}

#[test]
fn dockerconfigjson_sources_match_any_spelling_and_prefer_the_space() {
    let snap = Snapshot::build(&objects(), 1);
    let reg = &snap.registries()[0];
    let cases = [
        // (auths, expected user or error fragment)
        (
            json!({"https://harbor.example.com": {"username": "a", "password": "1"}}),
            Ok("a"),
        ),
        (
            json!({"HARBOR.internal:8443": {"auth": b64("b:2")}}),
            Ok("b"),
        ),
        (
            json!({"harbor.example.com:443/v2/": {"auth": b64("c:3")}}),
            Ok("c"),
        ),
        (
            json!({"harbor.example.com": {"auth": b64("bare:0")},
                   "harbor.example.com/team-a": {"auth": b64("scoped:1")}}),
            Ok("scoped"),
        ),
        (
            json!({"other.example.com": {"auth": b64("x:y")}}),
            Err("no auths entry for registry \"harbor\""),
        ),
        (
            json!({"harbor.example.com": {"auth": "%%%"}}),
            Err("not base64"),
        ),
        (
            json!({"harbor.example.com": {"auth": b64("nocolon")}}),
            Err("not user:password"),
        ),
    ];
    for (auths, want) in cases {
        let s = docker(json!({ "auths": auths }));
        let got = from_secret(&s, reg, "team-a");
        match (got, want) {
            (Ok(c), Ok(u)) => assert_eq!(c.username, u, "{auths}"),
            (Err(e), Err(frag)) => assert!(e.contains(frag), "{auths}: {e}"),
            (got, want) => panic!("{auths}: got {got:?}, want {want:?}"),
        }
    }
    let wrong = secret("ns", "n", "Opaque", &[]);
    let e = from_secret(&wrong, reg, "team-a").unwrap_err();
    assert!(e.contains("has type \"Opaque\""), "{e}");
    // Credentials never show in Debug output.
    let c = from_secret(&basic("user", "hunter2"), reg, "team-a").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

fn managed(ns: &str, data: &[u8], rv: &str) -> Secret {
    secret_object("pullgate-pull", ns, data, Some(rv.into()))
}

#[test]
fn plan_creates_updates_deletes_and_never_touches_foreign_secrets() {
    let desired = Desired {
        secrets: [
            ("new".to_string(), b"A".to_vec()),
            ("same".to_string(), b"B".to_vec()),
            ("changed".to_string(), b"C".to_vec()),
            ("foreign".to_string(), b"D".to_vec()),
        ]
        .into(),
        problems: BTreeMap::new(),
    };
    let existing: BTreeMap<String, Arc<PullSecret>> = [
        ("same".to_string(), managed("same", b"B", "1")),
        ("changed".to_string(), managed("changed", b"old", "2")),
        (
            "foreign".to_string(),
            secret("foreign", "pullgate-pull", "Opaque", &[]),
        ),
        ("gone".to_string(), managed("gone", b"E", "3")),
        (
            "foreign-gone".to_string(),
            secret("foreign-gone", "pullgate-pull", "Opaque", &[]),
        ),
    ]
    .map(|(ns, s)| (ns, Arc::new(PullSecret::from(s))))
    .into();
    let p = plan(&desired, &existing);
    assert_eq!(
        p.actions,
        vec![
            Action::Update {
                namespace: "changed".into(),
                resource_version: Some("2".into()),
                data: b"C".to_vec()
            },
            Action::Create {
                namespace: "new".into(),
                data: b"A".to_vec()
            },
            Action::Delete {
                namespace: "gone".into(),
                resource_version: Some("3".into())
            },
        ]
    );
    assert_eq!(p.blocked, vec!["foreign".to_string()]);
}

#[test]
fn a_pull_secret_is_kept_as_what_the_plan_reads() {
    let ours = PullSecret::from(managed("app", b"{}", "7"));
    assert_eq!(
        ours,
        PullSecret {
            resource_version: Some("7".into()),
            managed: true,
            docker_config_type: true,
            config: Some(b"{}".to_vec()),
        }
    );
    // Another's Secret of that name, of another type, with other keys only.
    let foreign = PullSecret::from(secret("app", "pullgate-pull", "Opaque", &[("k", "v")]));
    assert_eq!(foreign, PullSecret::default());
    // pullgate's label with another value is not pullgate's.
    let mut other = managed("app", b"{}", "8");
    other.metadata.labels = Some([(MANAGED_BY_LABEL.to_string(), "someone".to_string())].into());
    assert!(!PullSecret::from(other).managed);
    // Same content but the wrong type: rewritten, on the version seen.
    let mut wrong_type = managed("app", b"B", "9");
    wrong_type.type_ = Some("Opaque".into());
    let desired = Desired {
        secrets: [("app".to_string(), b"B".to_vec())].into(),
        ..Desired::default()
    };
    let existing = [("app".to_string(), Arc::new(PullSecret::from(wrong_type)))].into();
    assert_eq!(
        plan(&desired, &existing).actions,
        vec![Action::Update {
            namespace: "app".into(),
            resource_version: Some("9".into()),
            data: b"B".to_vec()
        }]
    );
}

#[test]
fn docker_config_json_is_compact_and_sorted() {
    let c = |u: &str| Credential {
        username: u.into(),
        password: "p".into(),
    };
    let auths: BTreeMap<String, Credential> =
        [("b/x".to_string(), c("u2")), ("a/x".to_string(), c("u1"))].into();
    assert_eq!(
        String::from_utf8(docker_config_json(&auths)).unwrap(),
        format!(
            r#"{{"auths":{{"a/x":{{"username":"u1","password":"p","auth":"{}"}},"b/x":{{"username":"u2","password":"p","auth":"{}"}}}}}}"#,
            b64("u1:p"),
            b64("u2:p")
        )
    );
}

fn view_from(state: Watched) -> LeaderView {
    LeaderView {
        snapshot: Arc::new(Snapshot::build(&state.objects(), 1)),
        watched: state,
        broken: Vec::new(),
    }
}

fn custom(v: serde_json::Value) -> Item {
    Item::Custom(Box::new(serde_json::from_value(v).unwrap()))
}

#[test]
fn status_patches_only_when_something_changed() {
    let mut state = Watched::default();
    state.apply(Change::Reset(
        WatchId::Workspaces,
        vec![
            custom(
                json!({"apiVersion": "pullgate.io/v1alpha1", "kind": "Workspace",
                "metadata": {"name": "ws-a", "generation": 2, "resourceVersion": "7"},
                "spec": {"namespaces": ["app-1"]}}),
            ),
            custom(
                json!({"apiVersion": "pullgate.io/v1alpha1", "kind": "Workspace",
                "metadata": {"name": "bad"}, "spec": {"namespaces": 5}}),
            ),
        ],
    ));
    let view = view_from(state.clone());
    let writes = status::writes(
        &view,
        &BTreeMap::new(),
        &Default::default(),
        &Default::default(),
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(writes.len(), 2);
    let bad = &writes[0];
    assert_eq!(bad.name, "bad");
    assert_eq!(bad.patch["status"]["conditions"][0]["reason"], "Invalid");
    let ws = &writes[1];
    assert_eq!(ws.seen.as_deref(), Some("7"));
    assert_eq!(
        ws.patch,
        json!({"status": {"namespaces": ["app-1"], "conditions": [{
            "type": "Ready", "status": "True", "reason": "Resolved", "message": "1 namespace",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]}})
    );
    // Once the status is what was written, nothing more is written, whatever the time.
    state.apply(Change::Apply(
        WatchId::Workspaces,
        custom(
            json!({"apiVersion": "pullgate.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": "ws-a", "generation": 2, "resourceVersion": "8"},
            "spec": {"namespaces": ["app-1"]}, "status": ws.patch["status"].clone()}),
        ),
    ));
    let view = view_from(state);
    let writes = status::writes(
        &view,
        &BTreeMap::new(),
        &Default::default(),
        &Default::default(),
        "2030-01-01T00:00:00Z",
    );
    assert_eq!(
        writes.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        ["bad"]
    );
}

/// A Registry whose hosts another one claims gets `Conflict` (the CONFLICT column of
/// `kubectl get registries`) saying which hosts and with whom; its spec stays `Valid`.
#[test]
fn registries_sharing_a_host_get_a_conflict_condition() {
    let registry = |name: &str, url: &str, aliases: &[&str]| {
        custom(
            json!({"apiVersion": "pullgate.io/v1alpha1", "kind": "Registry",
            "metadata": {"name": name},
            "spec": {"type": "Harbor", "url": url, "aliases": aliases}}),
        )
    };
    let mut state = Watched::default();
    state.apply(Change::Reset(
        WatchId::Registries,
        vec![
            registry("harbor", "https://harbor.example.com", &["harbor.internal"]),
            registry("twin", "https://harbor.internal", &[]),
            registry("alone", "https://other.example.com", &[]),
        ],
    ));
    let writes = status::writes(
        &view_from(state),
        &BTreeMap::new(),
        &Default::default(),
        &Default::default(),
        "2026-01-01T00:00:00Z",
    );
    let condition = |name: &str, type_: &str| {
        let w = writes.iter().find(|w| w.name == name).unwrap();
        w.patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap()
    };
    let c = condition("harbor", "Conflict");
    assert_eq!(
        (&c["status"], &c["reason"]),
        (&json!("True"), &json!("HostConflict"))
    );
    assert_eq!(
        c["message"],
        "harbor.internal, harbor.internal:443 also claimed by twin; images from them are denied"
    );
    assert_eq!(
        condition("twin", "Conflict")["message"].as_str().unwrap(),
        "harbor.internal, harbor.internal:443 also claimed by harbor; images from them are denied"
    );
    assert_eq!(condition("harbor", "Valid")["status"], "True");
    // A Registry that never had a conflict carries no Conflict condition.
    let alone = writes.iter().find(|w| w.name == "alone").unwrap();
    let types: Vec<&Value> = alone.patch["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["type"])
        .collect();
    assert!(!types.contains(&&json!("Conflict")), "{types:?}");
}

#[test]
fn the_event_limiter_allows_one_per_object_per_interval() {
    let mut l = Limiter::new(Duration::from_secs(60));
    let t0 = tokio::time::Instant::now();
    assert!(l.admit("Pod", "ns", "a", t0));
    assert!(!l.admit("Pod", "ns", "a", t0 + Duration::from_secs(59)));
    assert!(l.admit("Pod", "ns", "b", t0));
    assert!(l.admit("Deployment", "ns", "a", t0));
    assert!(l.admit("Pod", "ns", "a", t0 + Duration::from_secs(61)));
}

#[test]
fn denial_reports_never_block_and_drop_when_full() {
    let (events, queue) = denial_events();
    for _ in 0..QUEUE_CAPACITY {
        assert!(events.report("Pod", "ns", "p", "denied"));
    }
    assert!(!events.report("Pod", "ns", "p", "dropped"));
    drop(queue);
    assert!(!events.report("Pod", "ns", "p", "no receiver"));
}
