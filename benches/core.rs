//! Micro-benchmarks of the decision core at the scale of BENCHMARKS.md's targets (10,000 namespaces, 1,000
//! spaces, 500 workspaces): image parsing, resolution, the decision per image and per
//! pod review, decoding a review's JSON (and skipping it whole with serde_json), the
//! audit line, the UPDATE diff of old and new images, snapshot rebuild after one change
//! (alone, and as the
//! cluster feed does it: apply the watch event, rebuild, publish), and the mutate patch.
//! Run: `cargo bench --bench core`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kube::api::DynamicObject;
use pullgate::admission::diff::changed;
use pullgate::admission::review::Request as Review;
use pullgate::admission::testing::uses;
use pullgate::admission::{Admission, Webhook};
use pullgate::cluster::replica::state::{Change, Item, WatchId, Watched};
use pullgate::index::testing::mk_scaled;
use pullgate::index::{Builder, Snapshot, Table};
use pullgate::policy::{decide, ImageRef, ImageUse, Location, Policy, Request};
use serde_json::json;

const IMAGES: [&str; 6] = [
    "nginx:1.27",
    "harbor.example.com/project-42/app:1.0",
    "harbor.internal:8443/project-500/sub/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "registry.example.com:5000/teams/group-3/space-101/app:2",
    "quay.io/prometheus/prometheus:v2.54.0",
    "HARBOR.EXAMPLE.COM:443/project-998/x:y",
];

/// A pod review of about `kib` KiB: realistic containers padded with env entries.
pub fn pod_review(kib: usize) -> Vec<u8> {
    let mut containers = Vec::new();
    for (i, image) in IMAGES.iter().take(4).enumerate() {
        containers.push(json!({
            "name": format!("c{i}"), "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "env": [], "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
        }));
    }
    let mut review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "ns-42-3", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "web-7d9f8c-", "namespace": "ns-42-3", "labels": {"app": "web", "pod-template-hash": "7d9f8c"}},
                "spec": {"containers": containers, "restartPolicy": "Always", "serviceAccountName": "default",
                    "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}},
            "oldObject": null, "dryRun": false
        }
    });
    let mut i = 0;
    while serde_json::to_vec(&review).map(|v| v.len()).unwrap_or(0) < kib * 1024 {
        let env = &mut review["request"]["object"]["spec"]["containers"][i % 4]["env"];
        env.as_array_mut().unwrap().push(json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-abcdefghijklmnopqrstuvwxyz")}));
        i += 1;
    }
    serde_json::to_vec(&review).unwrap()
}

fn benches(c: &mut Criterion) {
    let objects = mk_scaled(10_000, 1_000, 500);
    let snap = Snapshot::build(&objects, 1);
    let policy = Policy::default();

    c.bench_function("parse/image-ref (6 forms)", |b| {
        b.iter(|| {
            for i in IMAGES {
                let _ = black_box(ImageRef::parse(black_box(i)));
            }
        })
    });
    let parsed: Vec<ImageRef> = IMAGES.iter().map(|i| ImageRef::parse(i).unwrap()).collect();
    c.bench_function("resolve/image (6 forms)", |b| {
        b.iter(|| {
            for r in &parsed {
                black_box(snap.resolve(black_box(r)));
            }
        })
    });
    for (label, image) in [
        ("private-bound", IMAGES[1]),
        ("docker-hub", IMAGES[0]),
        ("path-prefix", IMAGES[3]),
    ] {
        let uses = [ImageUse {
            image,
            location: Location::Container,
            name: "c",
        }];
        c.bench_function(&format!("decide/per-image {label}"), |b| {
            b.iter(|| {
                let req = Request {
                    namespace: black_box("ns-42-3"),
                    images: &uses,
                    mirror_pod_by_node: false,
                    stale: false,
                };
                black_box(decide(&req, &snap, &policy))
            })
        });
    }

    let admission = Admission {
        policy: policy.clone(),
        pull_secret_name: "pullgate-pull".into(),
        table: Arc::new(Table::new(Snapshot::build(&objects, 1))),
        changes: None,
    };
    for kib in [2, 10, 25] {
        let body = pod_review(kib);
        c.bench_function(&format!("review/validate pod {kib} KiB"), |b| {
            b.iter(|| black_box(admission.review(Webhook::Validate, black_box(&body))))
        });
    }
    // Decoding alone: the same bench runs on the hand-written reader of before 12-05
    // (`review::Request::parse` is the entry point of both).
    for kib in [2, 10, 25] {
        let body = pod_review(kib);
        c.bench_function(&format!("json/decode pod review {kib} KiB"), |b| {
            b.iter(|| black_box(Review::parse(black_box(&body)).is_ok()))
        });
    }
    let body = pod_review(10);
    c.bench_function("json/skip pod review 10 KiB (serde_json IgnoredAny)", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap())
    });
    let reviewed = admission.review(Webhook::Validate, &body);
    let record = reviewed
        .audit
        .expect("a validate review has an audit record");
    c.bench_function("audit/line (4 images, as written)", |b| {
        let mut line = Vec::new();
        b.iter(|| {
            line.clear();
            black_box(&record).write(&mut line);
            black_box(line.len())
        })
    });
    c.bench_function("audit/line (4 images, serde_json)", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&record)).unwrap()))
    });
    c.bench_function("review/mutate pod 10 KiB (patch)", |b| {
        b.iter(|| black_box(admission.review(Webhook::Mutate, black_box(&body))))
    });

    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("rebuild after one change", |b| {
        b.iter_batched(
            || {
                let mut changed = objects.clone();
                changed.spaces[17].spec.workspaces.push("ws-499".into());
                changed
            },
            |changed| black_box(Snapshot::build(&changed, 2)),
            BatchSize::LargeInput,
        )
    });
    // The cluster path of one binding change, minus the feed's 10 ms coalescing window:
    // the watch event applied to the watched state, the inputs collected, the snapshot
    // rebuilt and published to admission.
    let table = Table::new(Snapshot::build(&objects, 1));
    let mut state = Watched::listed(&objects);
    let mut changed_space = objects.spaces[17].clone();
    changed_space.spec.workspaces.push("ws-499".into());
    let event = dynamic(json!(changed_space));
    let mut revision = 1;
    // As the feed builds: only the changed list renewed, the rest reused by the Builder.
    let (mut inputs, mut builder) = (state.inputs(), Builder::default());
    table.store(builder.build(&inputs, revision));
    group.bench_function("watch event applied, rebuilt and published", |b| {
        b.iter(|| {
            state.apply(Change::Apply(
                WatchId::Spaces,
                Item::Custom(Box::new(event.clone())),
            ));
            revision += 1;
            state.renew_input(&mut inputs, &WatchId::Spaces);
            table.store(builder.build(&inputs, revision));
        })
    });
    group.finish();
    diff(c);
}

/// The UPDATE diff of old and new images (only new or changed images are judged) at growing container counts: half
/// the images changed, containers and init containers alternating.
fn diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    for n in [100, 1_000, 10_000] {
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let images = |shift: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("nginx:{}", if i % 2 == 0 { i } else { i + shift }))
                .collect()
        };
        let (old_images, new_images) = (images(0), images(n));
        let old = uses(&names, &old_images);
        let new = uses(&names, &new_images);
        group.bench_function(format!("{n} containers, half changed"), |b| {
            b.iter_batched(
                || new.clone(),
                |new| black_box(changed(new, &old)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn dynamic(object: serde_json::Value) -> DynamicObject {
    serde_json::from_value(object).expect("an API object is a DynamicObject")
}

criterion_group!(core, benches);
criterion_main!(core);
