//! Objects far larger than any the apiserver sends, posted straight to the webhook port
//! of `pullgate serve --config examples/config.yaml`: the answer and the audit line stay
//! within a fixed size whatever the request, an object with more image locations than
//! the apiserver could ever store is refused with 400, and the process's resident
//! memory comes back well under the Deployment's 128 Mi limit afterwards.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::binary::Binary;
use support::webhook::post_tls;

const MIB: usize = 1024 * 1024;
const CONFIG: &str = include_str!("../../examples/config.yaml");

/// Bounds of what one review may make pullgate write, whatever its size: the answer
/// names at most 1,000 denied images, each in a sentence of at most 1 KiB and in the
/// `denied-images` annotation (at most 1 KiB); the audit line lists at most 1,000
/// images, each with image, container and message of at most 1 KiB.
const ANSWER_BOUND: usize = 1000 * 2 * 1024 + 64 * 1024;
const AUDIT_LINE_BOUND: usize = 1000 * 3 * 1024 + 64 * 1024 + 6 * 1024;

/// A Pod CREATE review in `app-1` whose containers are `containers` (JSON objects
/// without the brackets, comma-separated), built as text: serde_json's tree of a
/// million containers would cost the test more than the server.
fn pod_review(containers: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-large","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"app-1","operation":"CREATE","userInfo":{{"username":"alice"}},"object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"large"}},"spec":{{"containers":[{containers}]}}}}}}}}"#
    )
    .into_bytes()
}

/// `n` containers, each with an unmanaged image (denied under the default policy).
fn denied_containers(n: usize) -> String {
    let mut s = String::with_capacity(n * 48);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"name":"c{i}","image":"quay.io/x/app-{i}:1"}}"#
        ));
    }
    s
}

/// Empty containers filling a body of about `bytes`.
fn empty_containers(bytes: usize) -> String {
    let mut s = "{}".to_string();
    while s.len() + 3 < bytes {
        s.push_str(",{}");
    }
    s
}

fn post(server: &Binary, body: &[u8]) -> (u16, Vec<u8>) {
    post_tls(server.addr, &server.ca_pem, "/validate", body).expect("an answer")
}

fn vm_rss_kib(pid: u32) -> usize {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The longest audit line written so far, after the one for `uid` has arrived.
fn audit_line_len(server: &Binary, uid: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let lines = server.audit.lock().unwrap();
            if let Some(line) = lines.iter().find(|l| l.contains(uid)) {
                return line.len();
            }
        }
        assert!(Instant::now() < deadline, "no audit line for {uid}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn answers_and_audit_lines_of_huge_reviews_are_bounded() {
    let server = Binary::start(CONFIG, &[]);
    let long_image = format!("quay.io/x/{}:1", "a".repeat(MIB));
    let long = format!(r#"{{"name":"long","image":"{long_image}"}},"#);
    for n in [1_500, 20_000, 60_000] {
        let mut body = pod_review(&format!("{long}{}", denied_containers(n)));
        let uid = format!("u-large-{n}");
        body = String::from_utf8(body)
            .unwrap()
            .replace("u-large", &uid)
            .into_bytes();
        let (status, answer) = post(&server, &body);
        assert_eq!(status, 200, "{n} containers");
        let v: Value = serde_json::from_slice(&answer).expect("a review");
        assert_eq!(v["response"]["allowed"], false);
        let message = v["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{} images are not allowed", n + 1)),
            "the message counts every denied image: {}",
            &message[..message.len().min(300)]
        );
        let line = audit_line_len(&server, &uid);
        eprintln!(
            "{n} denied containers, body {} bytes: answer {} bytes, audit line {line} bytes",
            body.len(),
            answer.len()
        );
        assert!(
            answer.len() <= ANSWER_BOUND,
            "answer of {} bytes for {n} denied containers",
            answer.len()
        );
        assert!(
            line <= AUDIT_LINE_BOUND,
            "audit line of {line} bytes for {n} denied containers"
        );
    }
}

#[test]
fn more_image_locations_than_the_apiserver_could_send_get_400() {
    let server = Binary::start(CONFIG, &[]);
    let body = pod_review(&empty_containers(7 * MIB - 4096));
    let (status, answer) = post(&server, &body);
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
    assert!(text.contains("image locations"), "{text}");
    assert!(answer.len() < 4096, "{} bytes", answer.len());
}

#[test]
fn memory_is_returned_after_huge_reviews() {
    let server = Binary::start(CONFIG, &[]);
    let pid = server.child.id();
    let before = vm_rss_kib(pid);
    let refused = pod_review(&empty_containers(7 * MIB - 4096));
    let judged = pod_review(&denied_containers(70_000));
    let mut peak = before;
    for round in 0..3 {
        std::thread::scope(|s| {
            let mut posts = Vec::new();
            for i in 0..4 {
                let body = if i % 2 == 0 { &refused } else { &judged };
                posts.push(s.spawn(|| post(&server, body).0));
            }
            while posts.iter().any(|p| !p.is_finished()) {
                peak = peak.max(vm_rss_kib(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            for p in posts {
                let status = p.join().unwrap();
                assert!(status == 200 || status == 400, "round {round}: {status}");
            }
        });
    }
    // Give the allocator a moment to hand memory back (no timing is asserted: the bound
    // is on memory, and the wait ends as soon as it holds). Anonymous memory is what the
    // reviews cost; the file-backed rest is the binary's own pages (large in a debug
    // build), counted in the total bound.
    let (anon_bound_kib, total_bound_kib) = (24 * 1024, 64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = || (proc_status_kib(pid, "RssAnon:"), vm_rss_kib(pid));
    let (mut anon, mut after) = held();
    while (anon > anon_bound_kib || after > total_bound_kib) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        (anon, after) = held();
    }
    eprintln!(
        "resident memory: before {before} KiB, peak {peak} KiB, after {after} KiB (anonymous {anon} KiB)"
    );
    assert!(
        anon <= anon_bound_kib && after <= total_bound_kib,
        "resident memory {after} KiB ({anon} KiB anonymous) after huge reviews (before {before} KiB, peak {peak} KiB)"
    );
}

/// Six very large reviews at once (3.4 MB, 70,000 judged containers each): what waits is
/// bounded by `--max-body-memory`, and each worker thread judges one at a time, so the
/// peak resident memory of the process (`VmHWM`, whatever the timing) stays within the
/// Deployment's 128 Mi limit.
#[test]
fn large_reviews_sent_together_stay_within_the_memory_limit() {
    let server = Binary::start(CONFIG, &[]);
    let pid = server.child.id();
    let judged = pod_review(&denied_containers(70_000));
    let mut statuses = Vec::new();
    std::thread::scope(|s| {
        let posts: Vec<_> = (0..6)
            .map(|_| s.spawn(|| post(&server, &judged).0))
            .collect();
        statuses = posts.into_iter().map(|p| p.join().unwrap()).collect();
    });
    let peak = proc_status_kib(pid, "VmHWM:");
    eprintln!(
        "6 reviews of {} bytes at once: statuses {statuses:?}, peak resident memory {peak} KiB",
        judged.len()
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        peak <= 128 * 1024,
        "peak resident memory {peak} KiB with 6 large reviews at once"
    );
}
