use super::*;
use crate::api::RegistrySpec;
use crate::config;
use crate::findings::workload;
use crate::input;
use crate::object::Kind;
use crate::policy::Unmanaged;

/// The audit tests' configuration and dump (tests/data/audit).
fn current() -> Current {
    let cfg = config::parse(include_str!("../../tests/data/audit/current.yaml")).unwrap();
    let dump = include_str!("../../tests/data/audit/running.yaml");
    let workloads = input::parse_text("running.yaml", dump)
        .unwrap()
        .iter()
        .filter_map(|o| {
            let kind = Kind::from_api_version(o.api_version(), o.kind())?;
            Some(workload::from_value(kind, &o.value))
        })
        .collect::<Vec<_>>();
    Current {
        objects: Arc::new(cfg.objects),
        workloads: by_namespace(workloads),
    }
}

/// The workloads named, judged only where the change reaches, and the same judged
/// everywhere.
fn both_ways(
    current: &Current,
    change: impl FnOnce(&mut Objects),
    kind: CrKind,
    name: &str,
    policy: &Policy,
) -> Vec<String> {
    let mut after = (*current.objects).clone();
    change(&mut after);
    let names = |scoped| -> Vec<String> {
        newly_denied(current, &after, kind, name, policy, scoped)
            .into_iter()
            .map(|n| n.workload)
            .collect()
    };
    let scoped = names(true);
    assert_eq!(scoped, names(false), "the scope left a workload out");
    scoped
}

#[test]
fn the_scope_of_a_change_leaves_out_only_what_it_cannot_reach() {
    let c = current();
    let p = Policy::default();
    let unbind = |o: &mut Objects| {
        let s = o
            .spaces
            .iter_mut()
            .find(|s| s.spec.space == "team-a")
            .unwrap();
        s.spec.workspaces.clear();
    };
    assert_eq!(
        both_ways(&c, unbind, CrKind::RegistrySpace, "harbor-prod.team-a", &p),
        ["Deployment app-1/web"]
    );
    let drop_ws_b = |o: &mut Objects| o.workspaces.retain(|w| w.name_any() != "ws-b");
    assert_eq!(
        both_ways(&c, drop_ws_b, CrKind::Workspace, "ws-b", &p),
        ["Pod app-3/debug"]
    );
    // A Registry spelled wrong is skipped, yet claims its hosts (fail closed): the
    // scope cannot list its hosts, so everything is judged.
    let break_url = |o: &mut Objects| {
        let r = o
            .registries
            .iter_mut()
            .find(|r| r.name_any() == "harbor-prod")
            .unwrap();
        r.spec.url = "https://harbor.example.com/v2".into();
    };
    assert_eq!(
        both_ways(&c, break_url, CrKind::Registry, "harbor-prod", &p),
        ["Deployment app-1/web", "Pod app-3/debug"]
    );
    // With unmanaged images allowed, declaring quay.io without a space newly denies
    // the CronJob that pulls from it.
    let allow = Policy {
        unmanaged: Unmanaged::Allow,
        ..Policy::default()
    };
    let quay = |o: &mut Objects| {
        o.registries.push(Registry::new(
            "quay",
            RegistrySpec {
                url: "https://quay.io".into(),
                ..RegistrySpec::default()
            },
        ))
    };
    assert_eq!(
        both_ways(&c, quay, CrKind::Registry, "quay", &allow),
        ["CronJob app-3/report"]
    );
}

fn named(i: usize) -> Named {
    Named {
        workload: format!("Deployment ns-{i}/{}", "x".repeat(300)),
        image: "i".repeat(300),
        reason: "notBound",
        more: 0,
    }
}

#[test]
fn twenty_are_named_then_counted_within_the_apiservers_limits() {
    let all: Vec<Named> = (0..25).map(named).collect();
    let w = warn_of(&all);
    assert_eq!(w.len(), 1 + MAX_NAMED + 1);
    assert!(w[0].contains("newly deny 25 running workloads"), "{}", w[0]);
    assert_eq!(w[MAX_NAMED + 1], "and 5 more");
    assert!(w.iter().all(|l| l.len() <= 256));
    assert!(w.iter().map(String::len).sum::<usize>() <= WARNINGS_BYTES);
    let w = warn_of(&all[..MAX_NAMED]);
    assert_eq!(w.len(), 1 + MAX_NAMED);
    assert!(warn_of(&[]).is_empty());
}
