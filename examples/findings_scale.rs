//! The background audit at cluster scale: builds synthetic running
//! workloads, then times re-judging all of them after a binding change (a new table),
//! and the diff an admin's change computes for its warnings; prints the memory the
//! workloads take (resident set, before and after building them).
//!
//! `cargo run --release --example findings_scale [PODS] [NAMESPACES] [SPACES] [WORKSPACES]`
//! (default 100000 10000 1000 500). Each namespace runs Deployments of up to 5 pods
//! (one ReplicaSet each); pods use an image of a space bound to their workspace, a Docker Hub
//! library image, and one pod in twenty an unmanaged image.

use std::sync::Arc;
use std::time::Instant;

use pullgate::findings::{self, Owner, Use, Workload};
use pullgate::index::Snapshot;
use pullgate::object::Kind;
use pullgate::policy::{Location, Policy};

mod common;
use common::{rss_mib, World};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn uses(images: &[Arc<str>]) -> Vec<Use> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| Use {
            location: Location::Container,
            container: format!("c{i}").into(),
            image: image.clone(),
        })
        .collect()
}

fn main() {
    let (world, pods) = World::from_args();
    let policy = Policy::default();
    let before = Snapshot::build(&world.objects, 1);
    let names: Vec<(Arc<str>, Arc<str>)> = world
        .names
        .iter()
        .map(|(ns, image)| (ns.as_str().into(), image.as_str().into()))
        .collect();
    let library: Arc<str> = "docker.io/library/redis:7".into();
    let unmanaged: Arc<str> = "quay.io/acme/sidecar:2".into();

    let rss0 = rss_mib();
    let start = Instant::now();
    let mut workloads = Vec::new();
    let per_ns = pods.div_ceil(names.len());
    let mut made = 0;
    'outer: for (ns, image) in &names {
        let per_deploy = per_ns.clamp(1, 5);
        for d in 0..per_ns.div_ceil(per_deploy) {
            let deploy = format!("app-{d}");
            let rs = format!("app-{d}-5d4f8");
            let images = [image.clone(), library.clone()];
            workloads.push(Workload::new(
                Kind::Deployment,
                ns.clone(),
                deploy.as_str(),
                uses(&images),
            ));
            let mut r = Workload::new(Kind::ReplicaSet, ns.clone(), rs.as_str(), uses(&images));
            r.owner = Some(Owner {
                kind: Kind::Deployment,
                name: deploy.as_str().into(),
                uid: None,
            });
            workloads.push(r);
            for p in 0..per_deploy {
                let mut images = images.to_vec();
                if made % 20 == 0 {
                    images.push(unmanaged.clone());
                }
                let mut pod = Workload::new(
                    Kind::Pod,
                    ns.clone(),
                    format!("{rs}-{p:05}").as_str(),
                    uses(&images),
                );
                pod.owner = Some(Owner {
                    kind: Kind::ReplicaSet,
                    name: rs.as_str().into(),
                    uid: None,
                });
                workloads.push(pod);
                made += 1;
                if made == pods {
                    break 'outer;
                }
            }
        }
    }
    let built = start.elapsed();
    let rss1 = rss_mib();
    println!(
        "{} workloads ({made} pods) in {} namespaces built in {built:.2?}; resident {rss0:.1} MiB -> {rss1:.1} MiB (+{:.1} MiB)",
        workloads.len(),
        names.len(),
        rss1 - rss0
    );

    let found = findings::judge_all(&before, &policy, &workloads);
    println!("{} findings under the first table", found.len());

    // A binding change: the space the namespaces of ws-0 use is unbound from ws-0.
    let changed = world.unbound();
    let t = Instant::now();
    let after = Snapshot::build(&changed, 2);
    let rebuilt = t.elapsed();
    let t = Instant::now();
    let found = findings::judge_all(&after, &policy, &workloads);
    let judged = t.elapsed();
    println!(
        "binding change: table rebuilt in {rebuilt:.2?}; every workload re-judged in {judged:.2?}, {} findings",
        found.len()
    );
    let t = Instant::now();
    let newly = findings::newly_denied(&before, &after, &policy, &workloads);
    println!(
        "the warnings' diff (both tables judged): {:.2?}, {} workloads newly denied",
        t.elapsed(),
        newly.len()
    );
    println!("resident at the end: {:.1} MiB", rss_mib());
}
