//! The admission server's life over real TLS on 127.0.0.1: certificate rotation under
//! load, graceful shutdown, and the bound on open connections.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use pullgate::server::ServerOptions;
use support::server::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificate_rotation_under_load_fails_no_request() {
    let names = ["localhost".to_owned()];
    let pairs: Vec<_> = (0..3)
        .map(|_| pullgate::certs::generate(&names).unwrap())
        .collect();
    let serials: Vec<_> = pairs.iter().map(|p| serial_of_pem(&p.cert_pem)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut volume = SecretVolume::create(dir.path(), &pairs[0].cert_pem, &pairs[0].key_pem);
    let opts = local_options(volume.source());
    let mut server = start_with(opts, tempfile::tempdir().unwrap()).await;
    server.cas = pairs.iter().map(|p| p.ca_cert_pem.clone()).collect();
    let config = server.client_config();

    // Clients on new connections, each noting the serial it was shown.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (stop, seen, failures, config) =
            (stop.clone(), seen.clone(), failures.clone(), config.clone());
        let addr = server.addr;
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let outcome = async {
                    let mut client = Client::connect(addr, config.clone())
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let response = client
                        .post("/validate", "{}")
                        .await
                        .map_err(|e| format!("request: {e}"))?;
                    if response.status != StatusCode::OK {
                        return Err(format!("status {}", response.status));
                    }
                    Ok(client.serial)
                }
                .await;
                match outcome {
                    Ok(serial) => seen.lock().unwrap().push(serial),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    let wait_for_serial = |serial: String| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if seen
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(5)
                    .any(|s| *s == serial)
                {
                    return;
                }
                assert!(Instant::now() < deadline, "serial {serial} never observed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    wait_for_serial(serials[0].clone()).await;
    volume.update(&pairs[1].cert_pem, &pairs[1].key_pem);
    wait_for_serial(serials[1].clone()).await;

    // A broken pair is ignored: B stays in use over several reload intervals.
    volume.update(
        &pairs[2].cert_pem,
        "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let marker = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let seen = seen.lock().unwrap();
        assert!(seen.len() > marker, "load stalled");
        assert!(seen[marker..].iter().all(|s| *s == serials[1]));
    }

    volume.update(&pairs[2].cert_pem, &pairs[2].key_pem);
    wait_for_serial(serials[2].clone()).await;

    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 20, "only {} requests", seen.len());
    assert!(seen.iter().all(|s| serials.contains(s)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_loses_no_request() {
    let drain = Duration::from_millis(800);
    let mut server = start(|o| o.drain_period = drain).await;
    let config = server.client_config();
    let addr = server.addr;

    #[derive(Default)]
    struct Tally {
        ok: usize,
        ok_while_draining: usize,
        other_status: Vec<StatusCode>,
        broken: Vec<String>,
    }
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let draining = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (tally, draining, config) = (tally.clone(), draining.clone(), config.clone());
        load.push(tokio::spawn(async move {
            // Bounded: the loop ends when the server stops accepting, or after 20s.
            let end = Instant::now() + Duration::from_secs(20);
            'connections: while Instant::now() < end {
                let Ok(mut client) = Client::connect(addr, config.clone()).await else {
                    break; // no longer accepting: done
                };
                loop {
                    match client.post("/validate", "sleep:30").await {
                        Ok(response) => {
                            let mut t = tally.lock().unwrap();
                            if response.status == StatusCode::OK {
                                t.ok += 1;
                                if draining.load(Ordering::SeqCst) {
                                    t.ok_while_draining += 1;
                                }
                            } else {
                                t.other_status.push(response.status);
                            }
                            if response.closes() {
                                continue 'connections;
                            }
                        }
                        Err(e) => {
                            tally.lock().unwrap().broken.push(e.to_string());
                            continue 'connections;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.trigger_shutdown();
    draining.store(true, Ordering::SeqCst);
    let shutdown_at = Instant::now();
    // Readiness turns off while the server still accepts and answers (the drain).
    loop {
        if probe(server.probe_addr, "/readyz").await.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            shutdown_at.elapsed() < Duration::from_secs(10),
            "/readyz still 200"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut unready = Client::connect(addr, config.clone())
        .await
        .expect("accepting while not ready");
    let answer = unready.post("/validate", "sleep:0").await;
    assert_eq!(
        answer.expect("answered while not ready").status,
        StatusCode::OK
    );
    assert_eq!(
        probe(server.probe_addr, "/healthz").await.status,
        StatusCode::OK
    );

    // A request in flight when the drain ends still completes.
    tokio::time::sleep(drain - Duration::from_millis(300)).await;
    let mut late = Client::connect(addr, config.clone())
        .await
        .expect("still accepting");
    let late = tokio::spawn(async move { late.post("/validate", "sleep:700").await });

    server.stop().await;
    // `run` returned only after the drain period and after the late request's answer.
    let stopped = shutdown_at.elapsed();
    assert!(
        stopped >= drain + Duration::from_millis(300),
        "returned after {stopped:?}"
    );
    let late = late.await.unwrap().expect("in-flight request answered");
    assert_eq!(late.status, StatusCode::OK);
    assert!(late.closes());
    for task in load {
        task.await.unwrap();
    }
    let t = tally.lock().unwrap();
    assert!(
        t.broken.is_empty(),
        "requests broken by the shutdown: {:?}",
        t.broken
    );
    assert!(
        t.other_status.is_empty(),
        "non-200 answers: {:?}",
        t.other_status
    );
    assert!(t.ok > 10, "only {} requests", t.ok);
    assert!(
        t.ok_while_draining > 5,
        "only {} during the drain",
        t.ok_while_draining
    );
}

/// The open connections stay within the limit. A connection whose request has begun to
/// arrive is never closed to make room, so with every connection halfway through a head,
/// one more waits, unserved, until one of them is done (here: cut at the header
/// timeout). Then a connection idle long enough is closed to make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_connections_are_bounded() {
    let header_timeout = Duration::from_secs(8);
    let server = start(|o| {
        o.max_in_flight = 1;
        o.header_timeout = header_timeout;
    })
    .await;
    let limit = ServerOptions {
        max_in_flight: 1,
        ..ServerOptions::default()
    }
    .max_connections();
    let mut open = Vec::new();
    for _ in 0..limit {
        let mut stream = tls_connect(server.addr, server.client_config())
            .await
            .unwrap();
        stream
            .write_all(b"POST /validate HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        open.push(stream);
    }
    let filled = Instant::now();
    // One more waits: its handshake does not complete...
    let config = server.client_config();
    let addr = server.addr;
    let waiting = tokio::spawn(async move { tls_connect(addr, config).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished() || filled.elapsed() >= header_timeout,
        "connection {} was accepted",
        limit + 1
    );
    // ...until the half heads are cut off at the header timeout.
    let mut stream = tokio::time::timeout(header_timeout + Duration::from_secs(5), waiting)
        .await
        .expect("accepted once a connection closed")
        .unwrap()
        .expect("handshake");
    drop(open);
    // The newcomer now idles; once the port is full again, it is closed to make room.
    let mut others = Vec::new();
    for _ in 1..limit {
        others.push(
            tls_connect(server.addr, server.client_config())
                .await
                .unwrap(),
        );
    }
    let last = tokio::time::timeout(
        Duration::from_secs(10),
        tls_connect(server.addr, server.client_config()),
    )
    .await
    .expect("a connection idle for long was closed to make room")
    .expect("handshake");
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the connection idle longest is still open");
    drop((last, others));
    server.stop().await;
}
