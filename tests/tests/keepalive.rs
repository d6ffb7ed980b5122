//! Keepalive (`--keepalive`, `--keepalive-timeout`): a peer that goes silent without a FIN (a paused process, a socket that stops answering) is pinged, then aborted within the interval plus the timeout, in both roles; a live but idle peer is pinged and kept; a peer whose bytes wait behind a guest that does not read is not taken for silent; guests never see the pings or pongs.

use futures_util::StreamExt;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tungstenite::Message;
use wsbox::{Config, InstanceLimits, KeepaliveConfig, Limits, OriginPolicy, Route, ServeConfig};
use wsbox_tests::raw;
use wsbox_tests::{guest, probe_with, python, repo, send, serve_routes, within, PyPeer, Served};

fn keepalive(interval_ms: u64, timeout_ms: u64) -> Option<KeepaliveConfig> {
    Some(KeepaliveConfig {
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
    })
}

fn limits(keepalive: Option<KeepaliveConfig>) -> Limits {
    Limits {
        keepalive,
        ..Limits::default()
    }
}

/// Serves `handler` on `/` with `keepalive`; gives the server too, for its
/// metrics.
async fn serve_with(handler: &str, keepalive: Option<KeepaliveConfig>) -> (Served, wsbox::Server) {
    let route = Route {
        path: "/".into(),
        component: guest(handler),
        websocket: Config {
            limits: limits(keepalive),
            ..Config::default()
        },
        instance: InstanceLimits::default(),
        origins: OriginPolicy::default(),
    };
    serve_routes(vec![route], ServeConfig::default()).await
}

/// The value of the sample `name{labels}` in the server's metrics (0 when
/// absent).
fn sample(server: &wsbox::Server, sample: &str) -> f64 {
    server
        .metrics()
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
        .unwrap_or(0.0)
}

/// A server on 127.0.0.1:0 that completes the handshake of its first
/// connection and then never answers: it reads (and keeps) what the client
/// sends until the client ends TCP, and never writes or closes.
async fn silent_server() -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        raw::accept(&mut tcp).await;
        let mut got = Vec::new();
        let _ = within("the client to end TCP", tcp.read_to_end(&mut got)).await;
        got
    });
    (port, task)
}

/// The frames in `bytes`: (first header byte, masked, unmasked payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, bool, Vec<u8>)> {
    use tungstenite::protocol::frame::FrameHeader;
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let first = bytes[0];
        let mut cursor = std::io::Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor)
            .unwrap()
            .expect("whole frames");
        let start = cursor.position() as usize;
        let end = start + len as usize;
        let mut payload = bytes[start..end].to_vec();
        if let Some(mask) = header.mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= mask[i % 4]);
        }
        frames.push((first, header.mask.is_some(), payload));
        bytes = &bytes[end..];
    }
    frames
}

/// `peer.py client URL say-then-wait TEXT` (Python `websockets`, which
/// answers pings and sends none of its own), read line by line.
struct PyClient {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl PyClient {
    fn start(url: &str, text: &str) -> PyClient {
        let mut child = Command::new(python())
            .arg(repo().join("tests/peers/peer.py"))
            .args(["client", "--timeout", "60", url, "say-then-wait", text])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python client runs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        PyClient { child, lines }
    }

    async fn next_event(&mut self) -> Value {
        let line = within("the python client's next event", self.lines.next_line())
            .await
            .unwrap()
            .expect("the python client reports more");
        eprintln!("python client: {line}");
        serde_json::from_str(&line).unwrap()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

/// A Python client that is paused (SIGSTOP: no FIN, no answer; the kernel
/// still acknowledges its TCP segments) is aborted after the interval and
/// the timeout: the handler sees `aborted`, the abort is counted as
/// `keepalive`, and the client finds, once resumed, a connection that
/// ended without a close frame.
#[tokio::test]
async fn a_paused_client_is_aborted_within_interval_plus_timeout() {
    let (mut served, server) = serve_with("close-reporter", keepalive(1000, 1000)).await;
    let mut client = PyClient::start(&served.url("/"), "hello");
    assert_eq!(client.next_event().await["event"], "connect");
    let echo = client.next_event().await;
    assert_eq!(
        (&echo["event"], &echo["data"]),
        (&"message".into(), &"hello".into())
    );
    client.signal("STOP");
    let paused = Instant::now();

    let line = served.log_line("query-close-status").await;
    let took = paused.elapsed();
    client.signal("CONT");
    assert!(line.contains("aborted"), "{line}");
    // Silent from the echo on: a ping at 1 s, the abort 1 s later.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "aborted {took:?} after the pause"
    );
    assert_eq!(
        sample(&server, r#"wsbox_aborts_total{reason="keepalive"}"#),
        1.0
    );

    let closed = client.next_event().await;
    assert_eq!(closed["event"], "closed", "{closed}");
    assert_eq!(closed["rcvd"], Value::Null, "no close frame: {closed}");
    assert_eq!(closed["clean"], false, "{closed}");
    served.shutdown().await;
}

/// A Python client that stays connected and says nothing for many
/// intervals answers the pings and is kept; an echo still works after, and
/// the handler received only the client's message.
#[tokio::test]
async fn a_live_idle_python_client_is_kept() {
    let (mut served, server) = serve_with("close-reporter", keepalive(200, 300)).await;
    let mut client = PyClient::start(&served.url("/"), "hello");
    assert_eq!(client.next_event().await["event"], "connect");
    assert_eq!(client.next_event().await["data"], "hello");
    // Ten intervals, each long enough for a ping and its timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sample(&server, "wsbox_aborts_total{reason=\"keepalive\"}"),
        0.0
    );
    assert!(served
        .logged()
        .iter()
        .all(|l| !l.contains("query-close-status")));

    // The graceful shutdown's 1001 reaches an open connection.
    let shutdown = tokio::spawn(served.shutdown());
    let closed = client.next_event().await;
    assert_eq!(closed["event"], "closed", "{closed}");
    assert_eq!(closed["rcvd"]["code"], 1001, "{closed}");
    assert_eq!(closed["clean"], true, "{closed}");
    within("the shutdown", shutdown).await.unwrap();
}

/// An idle tokio-tungstenite client gets the host's pings (payload
/// `wsbox-keepalive`) about once per interval, answers them, and is kept;
/// the echo handler never sees a ping or pong: the only message that comes
/// back is the echo of the client's own.
#[tokio::test]
async fn an_idle_client_is_pinged_and_its_pongs_never_reach_the_guest() {
    let (served, server) = serve_with("echo", keepalive(200, 1000)).await;
    let (mut ws, _) = within("connect", tokio_tungstenite::connect_async(served.url("/")))
        .await
        .unwrap();
    let mut pings = 0;
    let idle_until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(next) = tokio::time::timeout_at(idle_until, ws.next()).await {
        match next.expect("open").unwrap() {
            // tokio-tungstenite queues the pong and writes it as it reads.
            Message::Ping(payload) => {
                assert_eq!(&payload[..], b"wsbox-keepalive");
                pings += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // About one ping per 200 ms of silence (each pong restarts it).
    assert!((5..=12).contains(&pings), "{pings} pings in 2 s");
    send(&mut ws, Message::text("still here")).await;
    loop {
        match within("the echo", ws.next()).await.expect("open").unwrap() {
            Message::Ping(_) => {}
            Message::Text(text) => {
                assert_eq!(text.as_str(), "still here");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        sample(&server, "wsbox_aborts_total{reason=\"keepalive\"}"),
        0.0
    );
    // The client's one message in, its echo out: no pong became a message.
    assert_eq!(
        sample(&server, "wsbox_messages_total{direction=\"in\"}"),
        1.0
    );
    assert_eq!(
        sample(&server, "wsbox_messages_total{direction=\"out\"}"),
        1.0
    );
    within("our close", ws.close(None)).await.unwrap();
    served.shutdown().await;
}

/// Client role: a server that completes the handshake and then stops
/// answering (reads nothing, sends nothing, keeps TCP open) gets one ping,
/// then the connection is dropped: the guest's `recv` fails and
/// `query-close-status` gives `aborted`.
#[tokio::test]
async fn a_server_that_stops_answering_is_aborted() {
    let (port, server) = silent_server().await;
    let config = Config {
        limits: limits(keepalive(300, 300)),
        ..wsbox_tests::allow(port)
    };
    let started = Instant::now();
    let url = format!("ws://127.0.0.1:{port}/");
    let probe = probe_with(config, &url, &["recv", "query"]).await;
    let took = started.elapsed();
    assert!(
        probe.result("recv").contains("silent"),
        "{:#?}",
        probe.lines
    );
    assert_eq!(probe.result("query"), "err(aborted)");
    assert!(took >= Duration::from_millis(550), "aborted after {took:?}");

    // On the wire: one masked ping `wsbox-keepalive`, and no close frame.
    let got = within("the server's script", server).await.unwrap();
    let frames = frames(&got);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, 0x89, "a ping with FIN");
    assert!(frames[0].1, "masked: we are the client");
    assert_eq!(frames[0].2, b"wsbox-keepalive");
}

/// Without `--keepalive` (`wsbox run`'s default) an idle connection gets no
/// ping.
#[tokio::test]
async fn keepalive_is_off_by_default_for_clients() {
    let (port, server) = silent_server().await;
    let url = format!("ws://127.0.0.1:{port}/");
    let probe = probe_with(wsbox_tests::allow(port), &url, &["sleep:1500", "abort"]).await;
    assert_eq!(probe.result("abort"), "ok");
    assert_eq!(Limits::default().keepalive, None);
    let got = within("the server's script", server).await.unwrap();
    assert!(got.is_empty(), "sent {:?}", frames(&got));
}

/// A peer whose frames wait unread (the guest does not receive, the inbound
/// buffer is full, TCP pushes back) is not silent: its pong is behind them.
/// The guest sleeps for many keepalive timeouts, then gets every byte.
#[tokio::test]
async fn a_peer_held_back_by_a_guest_that_does_not_read_is_not_silent() {
    // 4 MiB, four times the 1 MiB inbound buffer.
    let peer = PyPeer::start(&["send-big", "binary", "4194304"]).await;
    let config = Config {
        limits: limits(keepalive(200, 200)),
        ..wsbox_tests::allow(peer.port)
    };
    let probe = probe_with(config, &peer.url("/"), &["sleep:2000", "recv", "close"]).await;
    assert!(
        probe.result("recv") == "ok(binary 4194304 bytes ok)",
        "{:#?}",
        probe.lines
    );
    assert!(
        probe.result("close").starts_with("ok"),
        "{:#?}",
        probe.lines
    );
}
