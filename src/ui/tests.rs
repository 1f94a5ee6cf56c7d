use super::denials::{Denial, DeniedImage};
use super::page::{esc, render, View};
use super::*;
use crate::api::{Health, RegistryType, Visibility};
use crate::overview::{RegistryRow, SpaceRow, WorkspaceRow};

const HOSTILE: &str = "<script>alert(1)</script>\"'&\u{202e}x";

fn mk_registry(name: &str, health: Health) -> RegistryRow {
    RegistryRow {
        name: name.into(),
        registry_type: RegistryType::Harbor,
        url: format!("https://{name}.example"),
        health,
        message: String::new(),
        space_count: Some(4),
        storage_used_bytes: Some(3 << 30),
        storage_used: Some("3.0 GiB".into()),
        credential_kind: Some("SystemRobot".into()),
        problems: vec![],
        spaces: vec![SpaceRow {
            objects: vec![format!("{name}.team-a")],
            space: "team-a".into(),
            visibility: Visibility::Private,
            workspaces: vec!["ws-a".into()],
            bound_namespaces: 2,
            exists_on_registry: Some(true),
            repo_count: Some(7),
            storage_used_bytes: None,
        }],
    }
}

fn mk_view<'a>(o: Option<&'a Overview>, denials: &'a [Denial]) -> View<'a> {
    View {
        source: "standalone · config.yaml",
        global_mode: Enforcement::Enforce,
        overview: o,
        collected_at: Some(SystemTime::UNIX_EPOCH),
        error: None,
        denials,
        findings: None,
        refresh_seconds: 30,
    }
}

fn mk_denial(name: &str) -> Denial {
    Denial {
        time: "2026-01-01T10:11:12.123456Z".into(),
        decision: "deny",
        operation: "CREATE",
        kind: "Pod".into(),
        namespace: "app-1".into(),
        name: name.into(),
        user: "alice".into(),
        dry_run: false,
        images: vec![DeniedImage {
            image: name.into(),
            container: name.into(),
            reason: "notBound",
            message: format!("image {name:?} is not allowed"),
        }],
        more: 0,
    }
}

#[test]
fn escaping_covers_markup_quotes_and_invisible_characters() {
    assert_eq!(
        esc(HOSTILE),
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;\\u{202e}x"
    );
    assert_eq!(
        esc("plain-name.example:5000/a"),
        "plain-name.example:5000/a"
    );
}

/// Every value from objects and requests is escaped wherever it appears: no raw `<`
/// from a name reaches the document.
#[test]
fn hostile_values_are_escaped_everywhere() {
    let mut r = mk_registry(HOSTILE, Health::Unhealthy);
    r.url = HOSTILE.into();
    r.message = HOSTILE.into();
    r.problems = vec![HOSTILE.into()];
    r.spaces[0].space = HOSTILE.into();
    r.spaces[0].workspaces = vec![HOSTILE.into()];
    let o = Overview {
        registries: vec![r],
        workspaces: vec![WorkspaceRow {
            name: HOSTILE.into(),
            enforcement: None,
            namespaces: vec![HOSTILE.into()],
            spaces: vec![HOSTILE.into()],
        }],
    };
    let mut d = mk_denial(HOSTILE);
    d.user = HOSTILE.into();
    d.kind = HOSTILE.into();
    let findings = [WorkspaceFindings {
        workspace: HOSTILE.into(),
        total: 1,
        findings: vec![Finding {
            kind: HOSTILE.into(),
            namespace: HOSTILE.into(),
            name: HOSTILE.into(),
            image: HOSTILE.into(),
            reason: HOSTILE.into(),
        }],
    }];
    let mut view = mk_view(Some(&o), std::slice::from_ref(&d));
    view.source = HOSTILE;
    view.error = Some(HOSTILE);
    view.findings = Some(&findings);
    let html = render(&view);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains('\u{202e}'));
    let escaped = html.matches("&lt;script&gt;alert(1)").count();
    // source, error, registry name (id and cell), url, message, problem, space, its
    // workspace, workspace name, namespace, bound space, finding (6), denial (kind, name,
    // user, image, container, message).
    assert!(escaped >= 22, "{escaped} escaped copies in\n{html}");
}

#[test]
fn health_is_coloured_and_storage_drawn_as_bars() {
    let mut sick = mk_registry("sick", Health::Unhealthy);
    sick.storage_used_bytes = None;
    sick.storage_used = None;
    sick.space_count = None;
    let o = Overview {
        registries: vec![
            mk_registry("fine", Health::Healthy),
            sick,
            mk_registry("new", Health::Unknown),
        ],
        workspaces: vec![],
    };
    let html = render(&mk_view(Some(&o), &[]));
    assert!(html.contains("<span class=\"pill ok\"><span class=\"dot ok\"></span>Healthy"));
    assert!(html.contains("<span class=\"pill bad\"><span class=\"dot bad\"></span>Unhealthy"));
    assert!(html.contains("<span class=\"pill warn\"><span class=\"dot warn\"></span>Unknown"));
    // Full bars: storage and spaces of the two registries that report them, and the
    // repositories of the three spaces; the unknown values: hatched empty bars.
    assert_eq!(html.matches("<rect width=\"100.0\"").count(), 2 + 2 + 3);
    assert!(html.contains("class=\"bar none\""));
    assert!(html.contains("3.0 GiB"));
}

#[test]
fn empty_states_say_what_is_missing() {
    let o = Overview {
        registries: vec![],
        workspaces: vec![],
    };
    let html = render(&mk_view(Some(&o), &[]));
    assert!(html.contains("No registries are declared."));
    assert!(html.contains("No audit data"));
    assert!(html.contains("No denials since this replica started."));
    let before = render(&mk_view(None, &[]));
    assert!(before.contains("Collecting the overview"));
}

#[test]
fn findings_from_a_provider_replace_the_empty_state() {
    let o = Overview {
        registries: vec![],
        workspaces: vec![],
    };
    let findings = [WorkspaceFindings {
        workspace: "ws-a".into(),
        total: 12,
        findings: vec![Finding {
            kind: "Deployment".into(),
            namespace: "app-1".into(),
            name: "api".into(),
            image: "harbor.example/team-b/api:1".into(),
            reason: "not bound".into(),
        }],
    }];
    let mut view = mk_view(Some(&o), &[]);
    view.findings = Some(&findings);
    let html = render(&view);
    assert!(!html.contains("No audit data"));
    assert!(html.contains("Deployment app-1/api"));
    assert!(html.contains("and 11 more"));
}

#[test]
fn a_workspace_with_many_namespaces_lists_a_few_and_counts_the_rest() {
    let o = Overview {
        registries: vec![],
        workspaces: vec![WorkspaceRow {
            name: "big".into(),
            enforcement: Some(Enforcement::Warn),
            namespaces: (0..1000).map(|i| format!("ns-{i:04}")).collect(),
            spaces: vec![],
        }],
    };
    let html = render(&mk_view(Some(&o), &[]));
    assert!(html.contains("ns-0000") && !html.contains("ns-0999"));
    assert!(html.contains("and 960 more"));
    assert!(html.contains("tag warnmode\">Warn"));
}

#[test]
fn findings_are_the_running_workloads_judged_against_the_live_table() {
    use crate::api::RegistryType::Harbor;
    use crate::findings::{Use, Workload};
    use crate::index::testing::{mk_registry, mk_space, mk_workspace};
    use crate::index::{Objects, Snapshot, Table};
    use crate::object::Kind;
    use crate::policy::{Location, Policy};
    use crate::whatif::Shared;

    let objects = Objects {
        registries: vec![mk_registry("hp", Harbor, "https://harbor.example.com", &[])],
        spaces: vec![
            mk_space("hp.a", "hp", "team-a", Visibility::Private, &["ws-a"]),
            mk_space("hp.b", "hp", "team-b", Visibility::Private, &["ws-b"]),
        ],
        workspaces: vec![
            mk_workspace("ws-a", &["app-1"], None, None),
            mk_workspace("ws-b", &["app-2"], None, None),
        ],
        ..Objects::default()
    };
    let running = Arc::new(Shared::default());
    let source = findings::Judged {
        running: running.clone(),
        table: Arc::new(Table::new(Snapshot::build(&objects, 1))),
        policy: Policy::default(),
    };
    // No workloads watched (standalone): no audit data rather than "nothing found".
    assert_eq!(source.findings(), None);
    let pod = |ns: &str, name: &str, image: &str| {
        let image = Use {
            location: Location::Container,
            container: "c".into(),
            image: image.into(),
        };
        Workload::new(Kind::Pod, ns, name, [image])
    };
    running.set_objects(Arc::new(objects));
    running.set_workloads(vec![
        pod("app-1", "ok", "harbor.example.com/team-a/x:1"),
        pod("app-1", "bad", "harbor.example.com/team-b/x:1"),
        pod("elsewhere", "lost", "harbor.example.com/team-a/x:1"),
    ]);
    let found = source.findings().expect("workloads are watched");
    let of = |ws: &str| found.iter().find(|w| w.workspace == ws).cloned();
    let a = of("ws-a").expect("every workspace is listed");
    assert_eq!((a.total, a.findings[0].name.as_str()), (1, "bad"));
    assert!(
        a.findings[0].reason.contains("team-b"),
        "{:?}",
        a.findings[0]
    );
    assert_eq!(of("ws-b").map(|w| w.total), Some(0));
    assert_eq!(of("(no workspace)").map(|w| w.total), Some(1));
}
