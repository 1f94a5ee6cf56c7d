//! The admission server over real TLS on 127.0.0.1, driven by rustls and hyper clients:
//! TLS versions and ALPN, routes, body and header limits, overload, deadlines, probes.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use support::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_over_tls13_and_tls12_with_keep_alive() {
    let server = start(|_| {}).await;
    let versions = [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ];
    for (version, expected) in versions {
        let config = client_config(&server.cas, &[version]);
        let mut client = Client::connect(server.addr, config).await.expect("connect");
        assert_eq!(client.version, Some(expected));
        assert_eq!(client.alpn.as_deref(), Some(&b"http/1.1"[..]));
        // One connection, many requests: keep-alive holds.
        for i in 0..20 {
            let (path, name) = if i % 2 == 0 {
                ("/validate", "validate")
            } else {
                ("/mutate", "mutate")
            };
            let response = client
                .post(&format!("{path}?timeout=10s"), "x".repeat(i))
                .await
                .expect("request on the kept-alive connection");
            assert_eq!(response.status, StatusCode::OK);
            assert_eq!(
                response.text(),
                format!(r#"{{"len":{i},"endpoint":"{name}"}}"#)
            );
            assert_eq!(response.headers["content-type"], "application/json");
            assert!(!response.closes());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn alpn_is_http11_only() {
    let server = start(|_| {}).await;
    // A client that prefers h2 (as curl does) gets HTTP/1.1.
    let mut config = (*server.client_config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut client = Client::connect(server.addr, Arc::new(config.clone()))
        .await
        .expect("connect");
    assert_eq!(client.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        client.post("/validate", "{}").await.unwrap().status,
        StatusCode::OK
    );
    // One that speaks only h2 is refused.
    config.alpn_protocols = vec![b"h2".to_vec()];
    assert!(tls_connect(server.addr, Arc::new(config)).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn tls10_and_tls11_are_refused() {
    let server = start(|_| {}).await;
    for version in [[3, 1], [3, 2]] {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(&legacy_client_hello(version)).await.unwrap();
        let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed, "connection left open for TLS {version:?}");
        // An alert record (0x15) saying protocol_version (70), no ServerHello (0x16).
        assert_eq!(answer.first(), Some(&0x15), "{answer:02x?}");
        assert_eq!(answer.get(6), Some(&70), "{answer:02x?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed() {
    let server = start(|_| {}).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = start(|_| {}).await;
    let mut client = server.connect().await;
    let response = client.post("/admit", "{}").await.unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.text().contains(r#""kind":"Status""#));
    for path in ["/validate", "/mutate"] {
        let response = client.request("GET", path, "").await.unwrap();
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers["allow"], "POST");
    }
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test]
async fn handler_statuses_and_panics() {
    let server = start(|_| {}).await;
    let mut client = server.connect().await;
    let response = client.post("/validate", "status:400").await.unwrap();
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let response = client.post("/validate", "panic").await.unwrap();
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The connection survives the handler's panic.
    let response = client.post("/validate", "{}").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_oversized_body_is_refused_before_it_is_sent() {
    let server = start(|_| {}).await;
    let stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        8 * MIB
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // Send a little of the 8 MiB, then wait for the answer with the rest unsent.
    let sent = 64 * 1024;
    writer.write_all(&vec![b' '; sent]).await.unwrap();
    writer.flush().await.unwrap();
    let (answer, closed) = read_until_closed(&mut reader, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(closed, "the connection closes after a 413");
    assert!(sent < 8 * MIB / 100, "answered with 99% of the body unsent");
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_chunked_body_is_cut_at_the_limit() {
    let server = start(|_| {}).await;
    let stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let feeder = tokio::spawn(async move {
        let head = "POST /mutate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        // Bounded: 64 MiB at most, far past the 7 MiB limit.
        for _ in 0..1024 {
            writer.write_all(chunk.as_bytes()).await?;
            counter.fetch_add(0x10000, Ordering::SeqCst);
        }
        std::io::Result::Ok(())
    });
    let (answer, _) = read_until_closed(&mut reader, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let feeder = tokio::time::timeout(Duration::from_secs(5), feeder)
        .await
        .expect("the server stopped reading");
    assert!(
        feeder.unwrap().is_err(),
        "the connection was closed on the sender"
    );
    let written = written.load(Ordering::SeqCst);
    assert!(
        written < 32 * MIB,
        "cut near the limit, not after {written} bytes"
    );
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test]
async fn half_a_request_head_is_cut_off_but_idle_keep_alive_is_not() {
    let header_timeout = Duration::from_millis(300);
    let server = start(|o| {
        o.header_timeout = header_timeout;
        o.idle_timeout = Duration::from_secs(10);
    })
    .await;

    // A fresh connection that sends half a head.
    let mut stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /validate HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(closed, "still open after 5s");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");

    // A kept-alive connection that stays idle longer than the header timeout still works.
    let mut client = server.connect().await;
    assert_eq!(
        client.post("/validate", "{}").await.unwrap().status,
        StatusCode::OK
    );
    tokio::time::sleep(header_timeout * 3).await;
    assert_eq!(
        client.post("/validate", "{}").await.unwrap().status,
        StatusCode::OK
    );

    // After a complete request, half of the next head is cut off too.
    let mut stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    stream
        .write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    stream.write_all(b"POST /val").await.unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_answered_503_at_once() {
    let server = start(|o| o.max_in_flight = 2).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut client = server.connect().await;
        slow.push(tokio::spawn(async move {
            client.post("/validate", "gate").await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.handler.entered.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the two slow requests never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut third = server.connect().await;
    let started = Instant::now();
    let response = third.post("/validate", "{}").await.unwrap();
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers["retry-after"], "1");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.handler.open_gate();
    for request in slow {
        assert_eq!(request.await.unwrap().unwrap().status, StatusCode::OK);
    }
    // Slots are free again.
    assert_eq!(
        third.post("/validate", "{}").await.unwrap().status,
        StatusCode::OK
    );
    assert!(server
        .metrics
        .encode()
        .contains(r#"decision="overload",endpoint="validate"} 1"#));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_answers_are_504_never_200() {
    let server = start(|_| {}).await;
    let mut client = server.connect().await;
    let response = client
        .post("/validate?timeout=1s", "sleep:1200")
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(response.text().contains("timeout"), "{}", response.text());
    // A quick answer within the same timeout is fine.
    let response = client.post("/validate?timeout=1s", "{}").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert!(server
        .metrics
        .encode()
        .contains(r#"decision="timeout",endpoint="validate"} 1"#));
    server.stop().await;
}

#[tokio::test]
async fn slow_body_is_cut_at_the_deadline() {
    let server = start(|_| {}).await;
    let mut stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    stream
        .write_all(b"POST /validate?timeout=1s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .await
        .unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    server.stop().await;
}

/// Sends `len` bytes of body, `step` bytes every `every`, announced by Content-Length;
/// then the server's answer.
async fn paced_body(server: &TestServer, len: usize, step: usize, every: Duration) -> String {
    let stream = tls_connect(server.addr, server.client_config())
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head =
        format!("POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n");
    let feeder = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let mut sent = 0;
        while sent < len {
            let n = step.min(len - sent);
            writer.write_all(&vec![b' '; n]).await?;
            sent += n;
            tokio::time::sleep(every).await;
        }
        std::io::Result::Ok(writer)
    });
    let (answer, _) = read_until_closed(&mut reader, Duration::from_secs(15)).await;
    feeder.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn body_slower_than_the_floor_is_cut_before_the_deadline() {
    // A floor of 1 KiB/s: at least 2 KiB in every 2s window.
    let server = start(|o| o.min_body_rate = 1024).await;
    // 500 bytes/s, well within the default 10s deadline: cut by the floor, not the deadline.
    let answer = paced_body(&server, 20 * 1024, 100, Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("slower than 1024 bytes per second"),
        "{answer}"
    );
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    // 4 KiB/s over about three seconds: above the floor in every window, judged.
    let answer = paced_body(&server, 12 * 1024, 1024, Duration::from_millis(250)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""len":12288"#), "{answer}");
    server.stop().await;
}

/// Someone who can reach the probe port opens connections and sends nothing, more than
/// the port keeps open. The kubelet's probe must still be answered at once, not after a
/// timeout frees a connection (long here, so waiting for one fails the test).
#[tokio::test]
async fn connections_held_open_cannot_keep_the_probes_out() {
    let server = start(|o| {
        o.header_timeout = Duration::from_secs(120);
        o.idle_timeout = Duration::from_secs(120);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(server.probe_addr).await.unwrap());
    }
    let answered = tokio::time::timeout(
        Duration::from_secs(60),
        probe(server.probe_addr, "/healthz"),
    )
    .await
    .expect("the probe waited behind the held connections");
    assert_eq!(answered.status, StatusCode::OK);
    // Room was made by closing the connections open longest.
    let mut oldest = held.remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(60), oldest.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the oldest held connection is still open: {read:?}"
    );
    server.stop().await;
}

/// Someone who can reach the admission port fills its connection limit with connections
/// that asked once and then idle (for the idle timeout, long here). A new connection, the
/// apiserver's say, must still be served: the connection idle longest is closed to make
/// room. The oldest connection has a request in progress and is never the one closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_cannot_keep_a_new_one_out() {
    let server = start(|o| {
        o.max_in_flight = 1;
        o.idle_timeout = Duration::from_secs(120);
    })
    .await;
    let limit = pullgate::server::ServerOptions {
        max_in_flight: 1,
        ..pullgate::server::ServerOptions::default()
    }
    .max_connections();
    let mut busy = server.connect().await;
    let in_progress = tokio::spawn(async move {
        let answer = busy.post("/validate", "gate").await;
        (answer, busy)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.handler.entered.load(Ordering::SeqCst) < 1 {
        assert!(Instant::now() < deadline, "the held request never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every other connection asks once (503: the one slot is taken) and idles.
    let mut idle = Vec::new();
    for _ in 1..limit {
        let mut client = server.connect().await;
        let answer = client.post("/validate", "{}").await.unwrap();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        idle.push(client);
    }
    let mut newcomer = tokio::time::timeout(Duration::from_secs(30), server.connect())
        .await
        .expect("the new connection waited behind the idle ones");
    let answer = newcomer.post("/validate", "{}").await.unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    // The request in progress is answered; the connection idle longest was closed.
    server.handler.open_gate();
    let (answer, _busy) = in_progress.await.unwrap();
    assert_eq!(answer.unwrap().status, StatusCode::OK);
    assert!(
        idle[0].post("/validate", "{}").await.is_err(),
        "the connection idle longest is still open"
    );
    assert_eq!(
        idle[1].post("/validate", "{}").await.unwrap().status,
        StatusCode::OK
    );
    assert!(server
        .metrics
        .encode()
        .contains("pullgate_connections_closed_to_make_room_total 1\n"));
    server.stop().await;
}

#[tokio::test]
async fn probes_and_metrics() {
    let server = start(|_| {}).await;
    server.health.set_synced(false);
    assert_eq!(
        probe(server.probe_addr, "/healthz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        probe(server.probe_addr, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.health.set_synced(true);
    assert_eq!(
        probe(server.probe_addr, "/readyz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        probe(server.probe_addr, "/other").await.status,
        StatusCode::NOT_FOUND
    );

    let mut client = server.connect().await;
    client.post("/validate", "{}").await.unwrap();
    client.post("/mutate", "status:400").await.unwrap();
    server
        .metrics
        .set_binding_table(3, std::time::SystemTime::now());
    server.metrics.set_registry_health("harbor-prod", true);
    server.metrics.inc_pull_secret_sync("created");

    let metrics = probe(server.probe_addr, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    for family in [
        r#"pullgate_admission_requests_total{decision="allow",endpoint="validate"} 1"#,
        r#"pullgate_admission_requests_total{decision="invalid",endpoint="mutate"} 1"#,
        "pullgate_admission_duration_seconds_bucket",
        "pullgate_binding_table_revision 3",
        "pullgate_binding_table_age_seconds",
        r#"pullgate_registry_health{registry="harbor-prod"} 1"#,
        r#"pullgate_pull_secret_syncs_total{result="created"} 1"#,
    ] {
        assert!(text.contains(family), "missing {family:?} in\n{text}");
    }
    server.stop().await;
}
