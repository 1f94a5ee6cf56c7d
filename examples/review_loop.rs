//! Runs `Admission::review` N times on one body, with its audit line, for instruction
//! counts under `valgrind --tool=callgrind` (per review = total / N):
//! `review_loop BODY.json N [--parse-only]`.
use std::sync::Arc;

use pullgate::admission::review::Request;
use pullgate::admission::{Admission, Webhook};
use pullgate::index::testing::mk_scaled;
use pullgate::index::{Snapshot, Table};
use pullgate::policy::Policy;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let body = std::fs::read(&args[1]).expect("body");
    let n: usize = args[2].parse().expect("count");
    let objects = mk_scaled(10_000, 1_000, 500);
    let admission = Admission {
        policy: Policy::default(),
        pull_secret_name: "pullgate-pull".into(),
        table: Arc::new(Table::new(Snapshot::build(&objects, 1))),
        changes: None,
    };
    let parse_only = args.get(3).is_some_and(|a| a == "--parse-only");
    let mut allowed = 0;
    let mut line = Vec::new();
    for _ in 0..n {
        if parse_only {
            allowed += usize::from(Request::parse(std::hint::black_box(&body)).is_ok());
        } else {
            let r = admission.review(Webhook::Validate, std::hint::black_box(&body));
            // The audit line, as the server writes it after each review.
            line.clear();
            if let Some(record) = &r.audit {
                record.write(&mut line);
            }
            allowed += usize::from(r.status == 200 && !line.is_empty());
        }
    }
    println!("{allowed} of {n}");
}
