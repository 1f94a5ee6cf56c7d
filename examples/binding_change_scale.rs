//! A binding change at cluster scale, as the cluster feed handles it: a RegistrySpace or
//! Workspace watch event applied to the replica's `Watched` state, the changed list of
//! table inputs renewed, the `Snapshot` rebuilt by the feed's `Builder` (which reuses
//! what the unchanged lists gave) and stored in the `Table` admission reads. A Namespace
//! event (a new namespace) is timed the same way. Prints each step's median and worst
//! time over the runs, and the resident memory of the watched state and of the table.
//!
//! `cargo run --release --example binding_change_scale [NAMESPACES] [SPACES] [WORKSPACES] [RUNS]`
//! (default 100000 10000 2000 20). With `FULL=1` in the environment the table is built
//! from scratch from `Watched::objects` on every change instead, as the feed did before
//! its `Builder`. Added to the figure it prints is the feed's fixed coalescing window
//! (`cluster::replica::feed::COALESCE`, 10 ms).

use std::time::{Duration, Instant};

use kube::api::DynamicObject;
use pullgate::cluster::leader::sync::secret_object;
use pullgate::cluster::replica::feed::COALESCE;
use pullgate::cluster::replica::state::{Change, Item, WatchId, Watched};
use pullgate::index::testing::{mk_ns, mk_scaled};
use pullgate::index::{Builder, Inputs, Snapshot, Table};
use serde_json::json;

// Only the command line and the resident set of what the scale examples share.
#[allow(dead_code)]
mod common;
use common::{arg, rss_mib};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn dynamic(object: serde_json::Value) -> DynamicObject {
    serde_json::from_value(object).expect("an API object is a DynamicObject")
}

fn custom<T: serde::Serialize>(o: &T) -> Item {
    Item::Custom(Box::new(dynamic(json!(o))))
}

/// The feed's state and what it builds with.
struct Feed {
    watched: Watched,
    inputs: Inputs,
    builder: Builder,
    table: Table,
    revision: u64,
    full: bool,
}

impl Feed {
    /// One change as the feed handles it; returns the time to apply it and the time to
    /// rebuild and publish.
    fn change(&mut self, id: WatchId, item: Item) -> (Duration, Duration) {
        let t0 = Instant::now();
        self.watched.apply(Change::Apply(id.clone(), item));
        let t1 = Instant::now();
        self.revision += 1;
        let snapshot = if self.full {
            Snapshot::build(&self.watched.objects(), self.revision)
        } else {
            self.watched.renew_input(&mut self.inputs, &id);
            self.builder.build(&self.inputs, self.revision)
        };
        self.table.store(snapshot);
        (t1 - t0, t1.elapsed())
    }
}

fn report(label: &str, times: &mut [(Duration, Duration)]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
    };
    let (apply, apply_max) = median(&mut times.iter().map(|t| t.0).collect());
    let (publish, publish_max) = median(&mut times.iter().map(|t| t.1).collect());
    let (total, total_max) = median(&mut times.iter().map(|t| t.0 + t.1).collect());
    println!(
        "{label}: apply {apply:.2} ms (max {apply_max:.2}), rebuild+publish {publish:.1} ms (max {publish_max:.1}); total {total:.1} ms (max {total_max:.1}), with the {} ms coalescing window {:.1} ms",
        COALESCE.as_millis(),
        total + ms(COALESCE),
    );
}

fn main() {
    let namespaces = arg(1, 100_000);
    let spaces = arg(2, 10_000);
    let workspaces = arg(3, 2_000);
    let runs = arg(4, 20).max(1);
    let full = std::env::var_os("FULL").is_some();
    let rss_start = rss_mib();
    let objects = mk_scaled(namespaces, spaces, workspaces);

    let mut watched = Watched::listed(&objects);
    // A leader's watched state also holds the pull Secret of every namespace that uses a
    // Private space (here: every namespace, with one registry credential).
    let data = br#"{"auths":{"harbor.example.com":{"username":"robot$pullgate-0123456789abcdef+ns","password":"0123456789abcdef0123456789abcdef","auth":"cm9ib3QkcHVsbGdhdGUtMDEyMzQ1Njc4OWFiY2RlZituczowMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="}}}"#;
    let secrets = (watched.namespaces.keys())
        .map(|ns| {
            Item::Secret(Box::new(secret_object(
                "pullgate-pull",
                ns,
                data,
                Some("1".into()),
            )))
        })
        .collect();
    watched.apply(Change::Reset(WatchId::PullSecrets, secrets));
    drop(objects);
    let rss_watched = rss_mib();
    let started = Instant::now();
    let inputs = watched.inputs();
    let mut builder = Builder::default();
    let table = Table::new(builder.build(&inputs, 1));
    let first = started.elapsed();
    let rss_table = rss_mib();
    println!(
        "{namespaces} namespaces, {spaces} spaces, {workspaces} workspaces ({}): first build {:.1} ms",
        if full { "full rebuilds" } else { "the feed's Builder" },
        first.as_secs_f64() * 1e3
    );
    let mut feed = Feed {
        watched,
        inputs,
        builder,
        table,
        revision: 1,
        full,
    };

    // The changes: space 16 (Private, Harbor; the one the criterion benchmark changes)
    // gains and loses a binding; workspace 42 gains and loses an explicit member; a new
    // namespace with the label of workspace 7's selector comes and goes.
    let space = feed.watched.spaces["harbor.16"]
        .object
        .clone()
        .expect("space 16");
    let workspace = feed.watched.workspaces["ws-42"]
        .object
        .clone()
        .expect("workspace 42");
    let last_ws = format!("ws-{}", workspaces - 1);
    for label in [
        "RegistrySpace change",
        "Workspace change",
        "Namespace change",
    ] {
        let mut times = Vec::with_capacity(runs);
        for run in 0..runs {
            let time = match label {
                "RegistrySpace change" => {
                    let mut s = space.clone();
                    if run % 2 == 0 {
                        s.spec.workspaces.push(last_ws.clone());
                    }
                    feed.change(WatchId::Spaces, custom(&s))
                }
                "Workspace change" => {
                    let mut w = workspace.clone();
                    if run % 2 == 0 {
                        w.spec.namespaces.push("ns-0-0".into());
                    }
                    feed.change(WatchId::Workspaces, custom(&w))
                }
                _ => {
                    let ns = mk_ns(&format!("new-{run}"), &[("team", "team-7")]);
                    feed.change(WatchId::Namespaces, Item::Namespace(ns))
                }
            };
            times.push(time);
        }
        report(label, &mut times);
    }
    assert_eq!(feed.table.load().revision(), feed.revision);
    // What a leader's feed does after publishing (not on the path to admission): copy
    // the watched state into the leader loops' view.
    let started = Instant::now();
    let view = feed.watched.clone();
    println!(
        "the leader's copy of the watched state: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(view);
    let rss_end = rss_mib();
    println!(
        "resident: {rss_start:.1} MiB at start; {rss_watched:.1} MiB with the watched state; {rss_table:.1} MiB with the first table; {rss_end:.1} MiB after the changes"
    );
}
