//! Unit tests of the metrics endpoint over real loopback sockets.

use super::*;
use crate::close_code::CloseCode;
use crate::metrics::{
    AbortReason, AliveInstance, Direction, HandshakeFailure, OpenConnection, TrapKind,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(metrics: Arc<Metrics>, ready: Readiness, timeout: Duration) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, metrics, ready, timeout, async {
        let _ = stopped.await;
    }));
    Running {
        address,
        stop: Some(stop),
        task,
    }
}

fn always() -> Readiness {
    Arc::new(|| true)
}

/// Sends `request` raw and returns (status, head, body).
async fn fetch(address: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(address).await.unwrap();
        tcp.write_all(request).await.unwrap();
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    fetch(address, request.as_bytes()).await
}

/// The samples of Prometheus text as `name{labels}` → value, labels
/// sorted by name (`{}` for none). A plain reading of the sample lines,
/// enough for this registry's text; the end-to-end test
/// (`tests/tests/serve_metrics.rs`) reads a server's with Python's
/// reference parser.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match sample.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
                None => (sample, ""),
            };
            let mut labels: Vec<&str> = labels.split(',').filter(|l| !l.is_empty()).collect();
            labels.sort();
            (format!("{name}{{{}}}", labels.join(",")), value)
        })
        .collect()
}

/// Counts a known workload into `metrics`; returns the guards of the
/// connections open on `/chat` and on `/`, and of the instance alive.
fn known_workload(metrics: &Metrics) -> (OpenConnection, OpenConnection, AliveInstance) {
    let chat: Arc<str> = "/chat".into();
    let root: Arc<str> = "/".into();
    let open_chat = metrics.connection_opened(&chat);
    drop(metrics.connection_opened(&chat));
    let open_root = metrics.connection_opened(&root);
    for status in [101, 101, 101, 403, 404, 503] {
        metrics.upgrade_answered(status);
    }
    metrics.handshake_failed(HandshakeFailure::Tls);
    metrics.handshake_failed(HandshakeFailure::Tls);
    metrics.handshake_failed(HandshakeFailure::Timeout);
    metrics.message(Direction::In, 5);
    metrics.message(Direction::In, 7);
    metrics.message(Direction::Out, 100);
    metrics.close_code(Direction::In, CloseCode::Normal);
    metrics.close_code(Direction::Out, CloseCode::from(4001));
    metrics.close_code(Direction::Out, CloseCode::from(4001));
    metrics.close_code(Direction::In, CloseCode::from(2999));
    metrics.close_code(Direction::In, CloseCode::from(1));
    metrics.aborted(AbortReason::Ended);
    metrics.aborted(AbortReason::Keepalive);
    metrics.trapped(TrapKind::CpuDeadline);
    metrics.trapped(TrapKind::Memory);
    metrics.trapped(TrapKind::Memory);
    metrics.instantiated(Duration::from_millis(3));
    metrics.instantiated(Duration::from_millis(3));
    metrics.instantiated(Duration::from_secs(2));
    metrics.accept_to_handler(Duration::from_micros(50));
    let alive = metrics.instance_alive();
    drop(metrics.instance_alive());
    metrics.topic_delivered(41);
    metrics.topic_delivered(1);
    metrics.slow_consumer_closed();
    (open_chat, open_root, alive)
}

/// The samples [`known_workload`] makes, as `parse` reads them.
const EXPECTED: &[(&str, f64)] = &[
    (r#"wsbox_connections_open{route="/chat"}"#, 1.0),
    (r#"wsbox_connections_open{route="/"}"#, 1.0),
    (r#"wsbox_connections_total{route="/chat"}"#, 2.0),
    (r#"wsbox_connections_total{route="/"}"#, 1.0),
    (r#"wsbox_upgrades_total{status="101"}"#, 3.0),
    (r#"wsbox_upgrades_total{status="403"}"#, 1.0),
    (r#"wsbox_upgrades_total{status="404"}"#, 1.0),
    (r#"wsbox_upgrades_total{status="503"}"#, 1.0),
    (r#"wsbox_handshake_failures_total{reason="tls"}"#, 2.0),
    (r#"wsbox_handshake_failures_total{reason="timeout"}"#, 1.0),
    (r#"wsbox_messages_total{direction="in"}"#, 2.0),
    (r#"wsbox_messages_total{direction="out"}"#, 1.0),
    (r#"wsbox_message_bytes_total{direction="in"}"#, 12.0),
    (r#"wsbox_message_bytes_total{direction="out"}"#, 100.0),
    (
        r#"wsbox_close_codes_total{code="1000",direction="in"}"#,
        1.0,
    ),
    (
        r#"wsbox_close_codes_total{code="4001",direction="out"}"#,
        2.0,
    ),
    (
        r#"wsbox_close_codes_total{code="invalid",direction="in"}"#,
        2.0,
    ),
    (r#"wsbox_aborts_total{reason="ended"}"#, 1.0),
    (r#"wsbox_aborts_total{reason="keepalive"}"#, 1.0),
    (r#"wsbox_traps_total{kind="cpu-deadline"}"#, 1.0),
    (r#"wsbox_traps_total{kind="memory"}"#, 2.0),
    (r#"wsbox_instantiate_seconds_count{}"#, 3.0),
    (r#"wsbox_instantiate_seconds_bucket{le="0.0016"}"#, 0.0),
    (r#"wsbox_instantiate_seconds_bucket{le="0.0032"}"#, 2.0),
    (r#"wsbox_instantiate_seconds_bucket{le="1.6384"}"#, 2.0),
    (r#"wsbox_instantiate_seconds_bucket{le="3.2768"}"#, 3.0),
    (r#"wsbox_instantiate_seconds_bucket{le="+Inf"}"#, 3.0),
    (r#"wsbox_accept_to_handler_seconds_count{}"#, 1.0),
    (
        r#"wsbox_accept_to_handler_seconds_bucket{le="0.0001"}"#,
        1.0,
    ),
    (r#"wsbox_instances_alive{}"#, 1.0),
    (r#"wsbox_topic_deliveries_total{}"#, 42.0),
    (r#"wsbox_slow_consumer_closes_total{}"#, 1.0),
];

/// After a known workload, `/metrics` answers the Prometheus text type,
/// with exactly the counts that went in.
#[tokio::test]
async fn scrape_reads_exact_counts() {
    let metrics = Arc::new(Metrics::new());
    let (open_chat, _open_root, alive) = known_workload(&metrics);

    let server = start(metrics.clone(), always(), REQUEST_TIMEOUT).await;
    let panics_before = crate::panics();
    let (status, head, body) = get(server.address, "/metrics").await;
    let panics_after = crate::panics();
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    let samples = parse(&body);
    for (sample, value) in EXPECTED {
        assert_eq!(
            samples.get(*sample),
            Some(value),
            "{sample} in the parsed samples:\n{samples:#?}"
        );
    }
    // The process-wide panic count (another unit test panics on purpose).
    let panics = samples["wsbox_panics_total{}"];
    assert!(
        (panics_before as f64..=panics_after as f64).contains(&panics),
        "{panics} panics, not {panics_before}..={panics_after}"
    );
    let sum = samples["wsbox_instantiate_seconds_sum{}"];
    assert!((sum - 2.006).abs() < 1e-9, "sum {sum}");
    // Nothing counted that did not happen: no other upgrade status, no
    // other trap kind.
    let upgrades = samples
        .keys()
        .filter(|k| k.starts_with("wsbox_upgrades_total"))
        .count();
    assert_eq!(upgrades, 4);
    assert!(!samples.contains_key(r#"wsbox_traps_total{kind="other"}"#));

    drop((open_chat, alive));
    let (_, _, body) = get(server.address, "/metrics").await;
    let samples = parse(&body);
    assert_eq!(samples[r#"wsbox_connections_open{route="/chat"}"#], 0.0);
    assert_eq!(samples["wsbox_instances_alive{}"], 0.0);
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_other_paths() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let server = start(
        Arc::new(Metrics::new()),
        Arc::new(move || flag.load(Ordering::SeqCst)),
        REQUEST_TIMEOUT,
    )
    .await;
    let address = server.address;
    assert_eq!(get(address, "/healthz").await.0, 200);
    assert_eq!(get(address, "/readyz").await.0, 503);
    ready.store(true, Ordering::SeqCst);
    let (status, _, body) = get(address, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(get(address, "/metrics?name[]=x").await.0, 200);
    let (status, _, body) = get(address, "/").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(get(address, "/metricsx").await.0, 404);
    assert_eq!(get(address, "/healthz/").await.0, 404);

    let (status, head, body) = fetch(address, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(body.is_empty(), "HEAD has no body: {body:?}");
    assert!(!head.contains("Content-Length: 0\r"), "{head}");
    let (status, head, _) = fetch(
        address,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
    assert_eq!(fetch(address, b"NOT HTTP\r\n\r\n").await.0, 400);
    server.stop().await;
}

/// A request head past the bound gets 431, a client that sends nothing
/// is dropped at the timeout, and clients past the cap are closed at
/// once while the first ones wait.
#[tokio::test]
async fn requests_are_bounded_in_size_time_and_number() {
    let timeout = Duration::from_millis(600);
    let server = start(Arc::new(Metrics::new()), always(), timeout).await;
    let address = server.address;

    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while huge.len() <= MAX_REQUEST {
        huge.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    // Not all of it is read: the answer may race the rest of the send.
    let exchange = async {
        let mut tcp = TcpStream::connect(address).await.unwrap();
        let _ = tcp.write_all(&huge).await;
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange).await.unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let started = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..MAX_CLIENTS {
        silent.push(TcpStream::connect(address).await.unwrap());
    }
    // Let the server take them all before the one past the cap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(address).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_millis(400), extra.read(&mut byte))
        .await
        .expect("the client past the cap is closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "closed without an answer");
    for mut tcp in silent {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)));
    }
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout * 4,
        "silent clients dropped after {took:?}"
    );
    // The slots are free again.
    assert_eq!(get(address, "/healthz").await.0, 200);
    server.stop().await;
}
