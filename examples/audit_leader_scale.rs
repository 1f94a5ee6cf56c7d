//! The leader's side of the background audit at cluster scale, on the
//! code cluster mode runs: watched objects (as the apiserver sends them) converted and
//! kept by the workload store, the first judgement of every namespace, a binding
//! change (every namespace re-judged; how many namespaces' reports it rewrites), and one
//! pod changing (one namespace re-judged). Prints times and the memory the store keeps.
//!
//! `cargo run --release --example audit_leader_scale [PODS] [NAMESPACES] [SPACES] [WORKSPACES]`
//! (default 100000 10000 1000 500). Each namespace runs Deployments of 5 pods (one
//! ReplicaSet each) on an image of a space bound to its workspace and a library image;
//! one pod in twenty adds an unmanaged image (a finding under the default policy).

use std::sync::Arc;
use std::time::Instant;

use pullgate::cluster::leader::audit::{judge_namespaces, summarize, Todo};
use pullgate::cluster::replica::workloads::{convert, Store, WorkloadChange};
use pullgate::index::Snapshot;
use pullgate::object::Kind;
use pullgate::policy::Policy;
use serde_json::json;

mod common;
use common::{rss_mib, World};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn uid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn template(images: &[&str]) -> serde_json::Value {
    let containers: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image, "imagePullPolicy": "IfNotPresent", "resources": {}}))
        .collect();
    json!({"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"})
}

/// Hands every object (kind, JSON) to `emit` one at a time, as a watch delivers them.
fn objects(names: &[(String, String)], pods: usize, emit: &mut dyn FnMut(Kind, serde_json::Value)) {
    let library = "docker.io/library/redis:7";
    let unmanaged = "quay.io/acme/sidecar:2";
    let per_ns = pods.div_ceil(names.len());
    let mut made = 0;
    let mut n = 0;
    'outer: for (ns, image) in names {
        for d in 0..per_ns.div_ceil(5) {
            let (deploy, rs) = (format!("app-{d}"), format!("app-{d}-5d4f8"));
            let (du, ru) = (uid(n), uid(n + 1));
            n += 2;
            let spec = template(&[image, library]);
            emit(
                Kind::Deployment,
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": deploy, "namespace": ns, "uid": du},
                "spec": {"replicas": 5, "template": {"spec": spec}}}),
            );
            emit(
                Kind::ReplicaSet,
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs, "namespace": ns, "uid": ru, "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy, "uid": du, "controller": true}]},
                "spec": {"replicas": 5, "template": {"spec": spec}}}),
            );
            for p in 0..5 {
                let spec = if made % 20 == 0 {
                    template(&[image, library, unmanaged])
                } else {
                    template(&[image, library])
                };
                emit(
                    Kind::Pod,
                    json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{rs}-{p:05}"), "namespace": ns, "uid": uid(n),
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": ru, "controller": true}]},
                    "spec": spec, "status": {"phase": "Running"}}),
                );
                n += 1;
                made += 1;
                if made == pods {
                    break 'outer;
                }
            }
        }
    }
}

fn main() {
    let (world, pods) = World::from_args();
    let names = &world.names;
    let policy = Policy::default();
    let before = Arc::new(Snapshot::build(&world.objects, 1));

    let rss0 = rss_mib();
    let mut store = Store::default();
    let t = Instant::now();
    let mut by_kind: Vec<(Kind, Vec<_>)> = Kind::ALL.iter().map(|k| (*k, Vec::new())).collect();
    let mut count = 0;
    objects(names, pods, &mut |kind, value| {
        let obj = serde_json::from_value(value).expect("an object");
        if let Some(w) = convert(kind, obj) {
            if let Some((_, list)) = by_kind.iter_mut().find(|(k, _)| *k == kind) {
                list.push(w);
                count += 1;
            }
        }
    });
    for (kind, list) in by_kind {
        store.apply(WorkloadChange::Reset(kind, list));
    }
    let running = store.publish().expect("a first publication");
    let converted = t.elapsed();
    let rss1 = rss_mib();
    println!(
        "{count} objects ({pods} pods) in {} namespaces converted and published in {converted:.2?}; resident {rss0:.1} MiB -> {rss1:.1} MiB (+{:.1} MiB kept by the store)",
        running.namespaces.len(),
        rss1 - rss0
    );

    // The list arrives whole (as a watch's first list does), so building briefly holds
    // it twice; jemalloc's background threads return the freed pages within ~10 s.
    std::thread::sleep(std::time::Duration::from_secs(12));
    let rss2 = rss_mib();
    println!(
        "settled: resident {rss2:.1} MiB (+{:.1} MiB kept by the store)",
        rss2 - rss0
    );

    let all = |r: &pullgate::cluster::Running| -> Vec<Todo> {
        r.namespaces
            .iter()
            .map(|(ns, ws)| (ns.clone(), Some(ws.clone())))
            .collect()
    };
    let t = Instant::now();
    let first = judge_namespaces(&before, &policy, all(&running));
    let first_time = t.elapsed();
    let with_findings = first.iter().filter(|(_, _, f)| !f.is_empty()).count();
    println!(
        "first judgement: {first_time:.2?}, {} findings in {with_findings} namespaces",
        first.iter().map(|(_, _, f)| f.len()).sum::<usize>()
    );

    // A binding change: the space the namespaces of ws-0 use is unbound from ws-0.
    let changed = world.unbound();
    let t = Instant::now();
    let after = Arc::new(Snapshot::build(&changed, 2));
    let rebuilt = t.elapsed();
    let t = Instant::now();
    let second = judge_namespaces(&after, &policy, all(&running));
    let rejudged = t.elapsed();
    let rewritten = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a.2 != b.2)
        .count();
    let findings: std::collections::BTreeMap<Arc<str>, Vec<_>> = second
        .iter()
        .filter(|(_, _, f)| !f.is_empty())
        .map(|(ns, _, f)| (ns.clone(), f.clone()))
        .collect();
    let t = Instant::now();
    let summary = summarize(&after, &findings, &running, &[]);
    let summed = t.elapsed();
    println!(
        "binding change: table rebuilt in {rebuilt:.2?}; every namespace re-judged in {rejudged:.2?}; counts in {summed:.2?}; {} findings; reports to write: {rewritten} namespaces",
        summary.total
    );

    // One pod changes image: one namespace gets a new list, and only it is re-judged.
    let t = Instant::now();
    let (ns, image) = &names[names.len() / 2];
    let pod: serde_json::Value = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app-0-5d4f8-00000", "namespace": ns, "uid": uid(1 << 40)},
        "spec": template(&[image, "quay.io/acme/other:1"]), "status": {"phase": "Running"}});
    let obj = serde_json::from_value(pod).expect("an object");
    if let Some(w) = convert(Kind::Pod, obj) {
        store.apply(WorkloadChange::Apply(Kind::Pod, w));
    }
    let next = store.publish().expect("a publication");
    let todo: Vec<Todo> = next
        .namespaces
        .iter()
        .filter(|(n, ws)| !Arc::ptr_eq(ws, &running.namespaces[*n]))
        .map(|(n, ws)| (n.clone(), Some(ws.clone())))
        .collect();
    let changed_ns = todo.len();
    let one = judge_namespaces(&after, &policy, todo);
    println!(
        "one pod changed: {changed_ns} namespace re-judged ({} findings there) in {:.2?} (publication included)",
        one.first().map_or(0, |(_, _, f)| f.len()),
        t.elapsed()
    );
    println!("resident at the end: {:.1} MiB", rss_mib());
}
