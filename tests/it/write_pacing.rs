//! The client-side rate limit of cluster mode's writes (`--kube-api-qps`,
//! `--kube-api-burst`) against the fake apiserver: the writes the fake receives stay
//! within the token bucket, none is lost or turned into an error, the Lease is renewed
//! whatever the backlog, and a replica stops at once even with writes waiting. The
//! ignored `converge_*` test measures how long 10,000 namespaces' pull Secrets take.

use crate::support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pullgate::cluster::{Hook, WriteRate};
use serde_json::json;
use support::*;

/// Registry `reg` with a private space team-a bound to workspace ws-a, which selects
/// the `n` namespaces `ns-00000`... by label (credentials u/p from a basic-auth Secret).
fn seed(fake: &FakeApiServer, n: usize) {
    fake.put(registry("reg", "http://127.0.0.1:5000", &[]));
    fake.put(with_ref(
        space("reg.team-a", "reg", "team-a", "Private", &["ws-a"]),
        OWN_NS,
        "team-a-puller",
    ));
    fake.put(workspace("ws-a", &[], Some(json!({"team": "a"}))));
    fake.put(basic_auth_secret(OWN_NS, "team-a-puller", "u", "p"));
    for i in 0..n {
        fake.put(namespace(&format!("ns-{i:05}"), json!({"team": "a"})));
    }
}

/// How many of the `n` namespaces hold the pull Secret with u/p's content.
fn converged(fake: &FakeApiServer, n: usize) -> usize {
    let want = expected_config(&["127.0.0.1:5000/team-a"], "u", "p");
    (0..n)
        .filter(|i| {
            fake.get("v1", "Secret", &format!("ns-{i:05}"), PULL)
                .is_some_and(|s| docker_config(&s) == want)
        })
        .count()
}

/// Polls until every namespace holds its pull Secret, for up to `limit`.
async fn wait_converged(fake: &FakeApiServer, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let done = converged(fake, n);
        if done == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {n} pull Secrets after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the wait hook and the sync hook were told.
#[derive(Clone, Default)]
struct Told {
    paced: Arc<AtomicU64>,
    waited_micros: Arc<AtomicU64>,
    sync_errors: Arc<AtomicU64>,
}

impl Told {
    fn hooks(&self, opts: &mut pullgate::cluster::ClusterOptions) {
        let t = self.clone();
        opts.write_wait = Hook(Some(Arc::new(move |waited: Duration| {
            t.paced.fetch_add(1, Ordering::SeqCst);
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            t.waited_micros.fetch_add(micros, Ordering::SeqCst);
        })));
        let t = self.clone();
        opts.pull_secret_syncs = Hook(Some(Arc::new(move |result: &str| {
            if result == "error" {
                t.sync_errors.fetch_add(1, Ordering::SeqCst);
            }
        })));
    }
}

/// The writes `who` made, Lease renewals aside, in order of arrival.
fn paced_writes(fake: &FakeApiServer, who: &str) -> Vec<fake_apiserver::Write> {
    let mut writes: Vec<_> = fake
        .writes()
        .into_iter()
        .filter(|w| w.client == who && !w.path.contains("/leases"))
        .collect();
    writes.sort_by_key(|w| w.at);
    writes
}

#[tokio::test]
async fn leader_writes_keep_to_the_rate_and_none_is_lost() {
    const NAMESPACES: usize = 40;
    let rate = WriteRate {
        qps: 10.0,
        burst: 5,
    };
    let fake = FakeApiServer::start().await;
    seed(&fake, NAMESPACES);
    let told = Told::default();
    let mut opts = options("pod-a");
    opts.write_rate = rate;
    told.hooks(&mut opts);
    // Before the bucket exists: by any moment t, at most burst + qps × (t - start)
    // tokens can have been taken, so at most that many writes can have arrived.
    let start = Instant::now();
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    // 40 Secrets and a few statuses at 10/s: about 4 s; the limit is for a slow machine.
    wait_converged(&fake, NAMESPACES, Duration::from_secs(60)).await;

    let writes = paced_writes(&fake, "pod-a");
    assert!(writes.len() >= NAMESPACES, "{} writes", writes.len());
    for (k, w) in writes.iter().enumerate() {
        let elapsed = w.at.duration_since(start).as_secs_f64();
        // + 1: the bucket's own rounding; nothing here depends on how fast the machine is.
        let allowed = f64::from(rate.burst) + rate.qps * elapsed + 1.0;
        assert!(
            (k + 1) as f64 <= allowed,
            "write {} ({} {}) arrived {elapsed:.3}s after the start: more than burst {} + {}/s allow",
            k + 1,
            w.method,
            w.path,
            rate.burst,
            rate.qps
        );
    }
    // Nothing lost or failed on the way: every pull-Secret write was accepted.
    let secret_writes: Vec<_> = writes
        .iter()
        .filter(|w| w.path.contains("/secrets"))
        .collect();
    assert!(
        secret_writes.iter().all(|w| w.status < 300),
        "{:?}",
        secret_writes
            .iter()
            .map(|w| (&w.method, &w.path, w.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(told.sync_errors.load(Ordering::SeqCst), 0);
    // Read after the fake's list: every write that arrived was told first.
    let paced = told.paced.load(Ordering::SeqCst);
    assert!(paced >= writes.len() as u64, "{paced} < {}", writes.len());
    assert!(
        told.waited_micros.load(Ordering::SeqCst) > 0,
        "writes beyond the burst waited"
    );
    r.stop().await;
}

/// A bucket that is empty after one write: the Lease is still taken and renewed (it is
/// not paced), the other writes wait instead of failing, and the replica stops at once
/// although its leader loops are waiting for a token.
#[tokio::test]
async fn the_lease_is_not_paced_and_waiting_writes_do_not_hold_up_a_stop() {
    let fake = FakeApiServer::start().await;
    seed(&fake, 5);
    let told = Told::default();
    let mut opts = options("pod-a");
    opts.write_rate = WriteRate {
        qps: 0.001,
        burst: 1,
    };
    told.hooks(&mut opts);
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("pod-a leads", || {
        lease_holder(&fake).as_deref() == Some("pod-a")
    })
    .await;
    // Renewals every lease_duration / 3 (2 s / 3): several while writes wait.
    let lease_writes = || {
        fake.writes()
            .iter()
            .filter(|w| w.client == "pod-a" && w.path.contains("/leases"))
            .count()
    };
    let before = lease_writes();
    wait_until("three Lease renewals", || lease_writes() >= before + 3).await;
    assert_eq!(lease_holder(&fake).as_deref(), Some("pod-a"));

    let writes = paced_writes(&fake, "pod-a");
    let what: Vec<_> = writes.iter().map(|w| (&w.method, &w.path)).collect();
    assert!(writes.len() <= 1, "the burst is 1: {what:?}");
    assert!(converged(&fake, 5) <= 1, "5 pull Secrets wait for tokens");
    assert_eq!(
        told.sync_errors.load(Ordering::SeqCst),
        0,
        "waiting is no error"
    );
    // Within Replica::stop's 10 s, though the next token is 1,000 s away.
    r.stop().await;
}

/// A replica that loses the Lease in the middle of a paced pass stops writing: the rest
/// of the pass is the new leader's, not two writers' at once.
#[tokio::test]
async fn a_paced_pass_ends_when_the_lease_is_lost() {
    const NAMESPACES: usize = 20;
    let fake = FakeApiServer::start().await;
    seed(&fake, NAMESPACES);
    let mut opts = options("pod-a");
    opts.write_rate = WriteRate { qps: 4.0, burst: 1 };
    let lost: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let at = lost.clone();
    opts.leadership = pullgate::cluster::Hook(Some(Arc::new(move |leading: bool| {
        if !leading {
            at.lock().unwrap().get_or_insert_with(Instant::now);
        }
    })));
    let mut r = Replica::start(&fake, opts);
    r.synced().await;
    wait_until("a few pull Secrets written", || {
        converged(&fake, NAMESPACES) >= 2
    })
    .await;
    // Another replica takes the Lease over (as after a partition): pod-a sees a
    // holder that is not itself at its next renewal and steps down.
    fake.put(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "pullgate-leader", "namespace": OWN_NS},
        "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 60,
                 "renewTime": "2026-01-01T00:00:00.000000Z"}
    }));
    wait_until("pod-a steps down", || lost.lock().unwrap().is_some()).await;
    let stepped_down = lost.lock().unwrap().expect("set");
    // Four tokens a second: were the pass still going, 2 s would bring 8 more writes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<_> = paced_writes(&fake, "pod-a")
        .into_iter()
        .filter(|w| w.at > stepped_down)
        .map(|w| (w.method, w.path))
        .collect();
    // At most the one write already granted when the word came.
    assert!(after.len() <= 1, "written after stepping down: {after:?}");
    assert!(
        converged(&fake, NAMESPACES) < NAMESPACES,
        "the pass was cut, not finished"
    );
    r.stop().await;
}

/// `PULLGATE_CONVERGE_NAMESPACES` (default 10000) namespaces' pull Secrets, from a
/// replica's start until every one exists, for each rate of `PULLGATE_CONVERGE_RATES`
/// (default `50/100,200/400,0`: the default, four times it, and no limit):
/// `cargo test --test it write_pacing::converge -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (minutes); run by hand"]
async fn converge_namespaces_at_scale() {
    let n: usize = std::env::var("PULLGATE_CONVERGE_NAMESPACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rates =
        std::env::var("PULLGATE_CONVERGE_RATES").unwrap_or_else(|_| "50/100,200/400,0".into());
    for spec in rates.split(',') {
        let (qps, burst) = spec.split_once('/').unwrap_or((spec, "1"));
        let rate = WriteRate {
            qps: qps.parse().expect("qps"),
            burst: burst.parse().expect("burst"),
        };
        let fake = FakeApiServer::start().await;
        seed(&fake, n);
        let told = Told::default();
        let mut opts = options("pod-a");
        opts.write_rate = rate;
        // The test default (2 s) would start a new pass every 2 s during the first one.
        opts.resync = Duration::from_secs(600);
        told.hooks(&mut opts);
        let start = Instant::now();
        let mut r = Replica::start(&fake, opts);
        r.synced().await;
        let synced = start.elapsed();
        wait_converged(&fake, n, Duration::from_secs(3600)).await;
        let total = start.elapsed();
        let writes = paced_writes(&fake, "pod-a").len();
        let waited = Duration::from_micros(told.waited_micros.load(Ordering::SeqCst));
        println!(
            "{n} namespaces, --kube-api-qps={} --kube-api-burst={}: synced {:.1}s, every pull Secret {:.1}s after start ({:.0} writes/s over {writes} writes; waited {:.0}s in all)",
            rate.qps,
            rate.burst,
            synced.as_secs_f64(),
            total.as_secs_f64(),
            writes as f64 / total.as_secs_f64(),
            waited.as_secs_f64(),
        );
        assert_eq!(told.sync_errors.load(Ordering::SeqCst), 0);
        r.stop().await;
    }
}
