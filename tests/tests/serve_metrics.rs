//! wsbox serve's /metrics after a known workload, read with Python's reference Prometheus parser (`prometheus_client.parser`), holds exactly the counts of what happened: connections by route, upgrades by status, handshake failures by reason, traps by kind, the latency histograms and the instances alive, the traffic, and a slow consumer's close; /healthz and /readyz answer, /readyz following the accept loop and the NATS cluster.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tungstenite::Message;
use wsbox::{Broker, ClusterConfig, Config, InstanceLimits, OriginPolicy, Route, ServeConfig};
use wsbox_tests::chat::ChatClient;
use wsbox_tests::nats::NatsServer;
use wsbox_tests::{guest, http_get, next_message, send, serve_routes, within};

/// Parses Prometheus text with Python's `prometheus_client.parser` into
/// `name{labels}` (labels sorted) → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value!r}")
"#;
    let mut child = std::process::Command::new(wsbox_tests::python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peers' Python runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            (sample.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The metrics listener of `server`, serving until the test ends.
async fn metrics_port(server: &wsbox::Server) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = server.clone();
    tokio::spawn(async move { server.serve_metrics(listener, std::future::pending()).await });
    port
}

/// `GET path` on the metrics listener: (status, whole answer).
async fn get(port: u16, path: &str) -> (u16, String) {
    http_get(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await
}

/// An upgrade request for `path` with extra header lines.
fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Reads until the peer ends the connection (or resets it).
async fn until_closed(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = within(
        "the server to end the connection",
        tcp.read_to_end(&mut rest),
    )
    .await;
}

/// Sends one message to a faulty route, reads its echo, then the close
/// that follows the trap.
async fn faulty(served: &wsbox_tests::Served, path: &str) -> Option<(u16, String)> {
    let mut ws = wsbox_tests::connect(&served.url(path)).await;
    send(&mut ws, Message::text("x")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("x"), "{path}");
    wsbox_tests::read_until_close(&mut ws).await.1
}

#[tokio::test]
async fn a_known_workload_reads_back_exactly() {
    let faulty_route = |path: &str| Route::new(path, guest("faulty"));
    let routes = vec![
        Route {
            origins: OriginPolicy::new(&["https://ok.example"], false).unwrap(),
            ..Route::new("/echo", guest("echo"))
        },
        faulty_route("/trap"),
        faulty_route("/trap-upgrade"),
        Route {
            instance: InstanceLimits {
                cpu_deadline: Duration::from_millis(200),
                ..InstanceLimits::default()
            },
            ..faulty_route("/spin")
        },
        Route {
            instance: InstanceLimits {
                max_memory: 32 << 20,
                ..InstanceLimits::default()
            },
            ..faulty_route("/alloc")
        },
    ];
    let config = ServeConfig {
        max_connections: 2,
        max_handshakes: 1,
        handshake_timeout: Duration::from_millis(500),
        ..ServeConfig::default()
    };
    let (served, server) = serve_routes(routes, config).await;
    let port = metrics_port(&server).await;
    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(get(port, "/readyz").await.0, 200);

    // A silent client holds the only handshake place: the next is closed
    // at once (over_limit), the silent one at the timeout.
    let mut silent = within(
        "a TCP connection",
        TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = within(
        "a TCP connection",
        TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    until_closed(&mut over).await;
    until_closed(&mut silent).await;
    // A request cut short (closed).
    let mut cut = within(
        "a TCP connection",
        TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    within(
        "a write to the server",
        cut.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n"),
    )
    .await
    .unwrap();
    within("our FIN", cut.shutdown()).await.unwrap();
    until_closed(&mut cut).await;
    // Refusals before any instance: 404, 403, 426.
    assert_eq!(http_get(served.port, &upgrade("/nowhere", "")).await.0, 404);
    let evil = upgrade("/echo", "Origin: https://evil.example\r\n");
    assert_eq!(http_get(served.port, &evil).await.0, 403);
    let plain = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(http_get(served.port, plain).await.0, 426);
    // Traps of each kind: in handle (1011 after the echo), and in upgrade
    // (500).
    assert_eq!(faulty(&served, "/trap").await.map(|c| c.0), Some(1011));
    assert_eq!(faulty(&served, "/spin").await.map(|c| c.0), Some(1011));
    assert_eq!(faulty(&served, "/alloc").await.map(|c| c.0), Some(1011));
    let trap_upgrade = http_get(served.port, &upgrade("/trap-upgrade", "")).await;
    assert_eq!(trap_upgrade.0, 500);
    // Two echo connections fill --max-connections: the third gets 503.
    let mut first = wsbox_tests::connect(&served.url("/echo/a")).await;
    let mut second = wsbox_tests::connect(&served.url("/echo/b")).await;
    send(&mut second, Message::text("held")).await;
    assert_eq!(next_message(&mut second).await, Message::text("held"));
    assert_eq!(http_get(served.port, &upgrade("/echo", "")).await.0, 503);
    within("the first echo's close", first.close(None))
        .await
        .unwrap();
    wsbox_tests::drain(&mut first).await;

    // The first echo connection's end is counted once its instance ends.
    let samples = within("the first connection to be counted closed", async {
        loop {
            let (status, answer) = get(port, "/metrics").await;
            assert_eq!(status, 200, "{answer}");
            assert!(
                answer.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
                "{answer}"
            );
            let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
            let samples = parse(&body);
            if samples.get(r#"wsbox_connections_open{route="/echo"}"#) == Some(&1.0)
                && samples.get("wsbox_instances_alive{}") == Some(&1.0)
            {
                break samples;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let want: &[(&str, f64)] = &[
        (r#"wsbox_connections_total{route="/echo"}"#, 2.0),
        (r#"wsbox_connections_open{route="/echo"}"#, 1.0),
        (r#"wsbox_connections_total{route="/trap"}"#, 1.0),
        (r#"wsbox_connections_open{route="/trap"}"#, 0.0),
        (r#"wsbox_connections_total{route="/spin"}"#, 1.0),
        (r#"wsbox_connections_total{route="/alloc"}"#, 1.0),
        (r#"wsbox_upgrades_total{status="101"}"#, 5.0),
        (r#"wsbox_upgrades_total{status="403"}"#, 1.0),
        (r#"wsbox_upgrades_total{status="404"}"#, 1.0),
        (r#"wsbox_upgrades_total{status="426"}"#, 1.0),
        (r#"wsbox_upgrades_total{status="500"}"#, 1.0),
        (r#"wsbox_upgrades_total{status="503"}"#, 1.0),
        (
            r#"wsbox_handshake_failures_total{reason="over_limit"}"#,
            1.0,
        ),
        (r#"wsbox_handshake_failures_total{reason="timeout"}"#, 1.0),
        (r#"wsbox_handshake_failures_total{reason="closed"}"#, 1.0),
        (r#"wsbox_traps_total{kind="other"}"#, 2.0),
        (r#"wsbox_traps_total{kind="cpu-deadline"}"#, 1.0),
        (r#"wsbox_traps_total{kind="memory"}"#, 1.0),
        // Six instances: four faulty, two echo; none for the refusals.
        ("wsbox_instantiate_seconds_count{}", 6.0),
        (r#"wsbox_instantiate_seconds_bucket{le="+Inf"}"#, 6.0),
        ("wsbox_accept_to_handler_seconds_count{}", 5.0),
        ("wsbox_instances_alive{}", 1.0),
    ];
    for (sample, value) in want {
        assert_eq!(
            samples.get(*sample),
            Some(value),
            "{sample} in the parsed samples:\n{samples:#?}"
        );
    }
    // Nothing counted that did not happen.
    let upgrades = samples
        .keys()
        .filter(|k| k.starts_with("wsbox_upgrades_total"))
        .count();
    assert_eq!(upgrades, 6, "{samples:#?}");
    assert!(!samples.contains_key(r#"wsbox_handshake_failures_total{reason="tls"}"#));
    let sum = samples["wsbox_instantiate_seconds_sum{}"];
    assert!(sum > 0.0 && sum < 60.0, "{sum}");

    send(&mut second, Message::text("still")).await;
    assert_eq!(next_message(&mut second).await, Message::text("still"));
    served.shutdown().await;
    // Not accepting any more: not ready, but alive.
    assert_eq!(get(port, "/readyz").await.0, 503);
    assert_eq!(get(port, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readyz_follows_the_cluster() {
    let mut nats = NatsServer::start().await;
    let broker = Broker::connect(&ClusterConfig {
        servers: vec![nats.url()],
        prefix: "wsbox-readyz".into(),
    })
    .await
    .unwrap();
    let route = Route {
        websocket: Config {
            broker,
            ..Config::default()
        },
        ..Route::new("/", guest("echo"))
    };
    let (served, server) = serve_routes(vec![route], ServeConfig::default()).await;
    let port = metrics_port(&server).await;
    let status_becomes = |want: u16| async move {
        within(&format!("/readyz to answer {want}"), async {
            while get(port, "/readyz").await.0 != want {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    };
    status_becomes(200).await;
    assert!(server.ready());
    nats.stop().await;
    status_becomes(503).await;
    assert!(!server.ready());
    assert_eq!(get(port, "/healthz").await.0, 200);
    nats.restart().await;
    status_becomes(200).await;
    served.shutdown().await;
}

/// What the connections carried: messages and payload bytes each way
/// (echoes, a chat's welcomes and topic deliveries), close codes each way,
/// aborts by reason, topic deliveries; read back exactly.
#[tokio::test]
async fn traffic_reads_back_exactly() {
    let routes = vec![
        Route::new("/echo", guest("echo")),
        Route::new("/room", guest("chat")),
    ];
    let (served, server) = serve_routes(routes, ServeConfig::default()).await;
    let port = metrics_port(&server).await;

    // Echo: a text and a binary message, then the client closes with 4001
    // (the echo handler answers with the client's code).
    let mut echo = wsbox_tests::connect(&served.url("/echo")).await;
    send(&mut echo, Message::text("hello")).await;
    assert_eq!(next_message(&mut echo).await, Message::text("hello"));
    send(&mut echo, Message::binary(vec![7u8; 1000])).await;
    assert_eq!(
        next_message(&mut echo).await,
        Message::binary(vec![7u8; 1000])
    );
    let bye = tungstenite::protocol::CloseFrame {
        code: 4001.into(),
        reason: "bye".into(),
    };
    within("the echo's close", echo.close(Some(bye)))
        .await
        .unwrap();
    wsbox_tests::drain(&mut echo).await;
    drop(echo);

    // A client that ends TCP without a close frame: aborted, `ended`.
    let mut gone = wsbox_tests::raw::connect(served.port, "/echo").await;
    gone.shutdown().await.unwrap();
    until_closed(&mut gone).await;
    drop(gone);
    // A client that breaks the protocol (an unmasked frame): 1002 out,
    // aborted, `protocol`.
    let mut rude = wsbox_tests::raw::connect(served.port, "/echo").await;
    rude.write_all(&wsbox_tests::raw::frame(0x81, b"unmasked", None))
        .await
        .unwrap();
    assert_eq!(
        wsbox_tests::raw::close_code(&mut rude).await,
        Some(Some(1002))
    );
    drop(rude);

    // Chat: alice, then bob; bob says hi and leaves. Alice gets three
    // topic deliveries: bob's join, his line and his leave.
    let mut alice = wsbox_tests::connect(&served.url("/room/lobby?name=alice")).await;
    let welcome_alice = "* you joined lobby as alice";
    assert_eq!(next_message(&mut alice).await, Message::text(welcome_alice));
    let mut bob = wsbox_tests::connect(&served.url("/room/lobby?name=bob")).await;
    let welcome_bob = "* you joined lobby as bob";
    assert_eq!(next_message(&mut bob).await, Message::text(welcome_bob));
    let deliveries = ["* bob joined", "bob: hi", "* bob left"];
    assert_eq!(next_message(&mut alice).await, Message::text(deliveries[0]));
    send(&mut bob, Message::text("hi")).await;
    assert_eq!(next_message(&mut alice).await, Message::text(deliveries[1]));
    within("bob's close", bob.close(None)).await.unwrap();
    wsbox_tests::drain(&mut bob).await;
    drop(bob);
    assert_eq!(next_message(&mut alice).await, Message::text(deliveries[2]));
    within("alice's close", alice.close(None)).await.unwrap();
    wsbox_tests::drain(&mut alice).await;
    drop(alice);

    let bytes_in = 5 + 1000 + "hi".len();
    let bytes_out = 5
        + 1000
        + welcome_alice.len()
        + welcome_bob.len()
        + deliveries.iter().map(|d| d.len()).sum::<usize>();
    let want: BTreeMap<String, f64> = [
        (r#"wsbox_messages_total{direction="in"}"#, 3.0),
        (r#"wsbox_messages_total{direction="out"}"#, 7.0),
        (
            r#"wsbox_message_bytes_total{direction="in"}"#,
            bytes_in as f64,
        ),
        (
            r#"wsbox_message_bytes_total{direction="out"}"#,
            bytes_out as f64,
        ),
        (
            r#"wsbox_close_codes_total{code="4001",direction="in"}"#,
            1.0,
        ),
        (
            r#"wsbox_close_codes_total{code="4001",direction="out"}"#,
            1.0,
        ),
        // Bob's and Alice's close frames have no code (1005); the chat
        // handler answers each with the same.
        (
            r#"wsbox_close_codes_total{code="1005",direction="in"}"#,
            2.0,
        ),
        (
            r#"wsbox_close_codes_total{code="1005",direction="out"}"#,
            2.0,
        ),
        (
            r#"wsbox_close_codes_total{code="1002",direction="out"}"#,
            1.0,
        ),
        (r#"wsbox_aborts_total{reason="ended"}"#, 1.0),
        (r#"wsbox_aborts_total{reason="protocol"}"#, 1.0),
        ("wsbox_topic_deliveries_total{}", 3.0),
        ("wsbox_slow_consumer_closes_total{}", 0.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let traffic = |samples: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        samples
            .iter()
            .filter(|(k, _)| {
                [
                    "messages",
                    "message_bytes",
                    "close_codes",
                    "aborts",
                    "topic",
                    "slow",
                ]
                .iter()
                .any(|m| k.starts_with(&format!("wsbox_{m}")))
                    && !k.contains("_created")
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    // The last counts land as the connections end: wait for them, then
    // compare everything.
    let got = within("the traffic to be counted", async {
        loop {
            let (_, answer) = get(port, "/metrics").await;
            let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
            let got = traffic(&parse(&body));
            if got == want {
                break got;
            }
            eprintln!("not yet: {got:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(got, want);
    served.shutdown().await;
}

/// A chat member that stops reading is closed with 1013 `slow consumer`
/// once its unsent topic bytes pass `--topic-buffer`: the scrape, read
/// with the Python parser, counts exactly one such close.
#[tokio::test]
async fn a_slow_consumer_close_reads_back_as_one() {
    let broker = Broker::local();
    let route = Route {
        websocket: Config {
            broker: broker.clone(),
            limits: wsbox::Limits {
                topic_buffer: 16 << 10,
                ..wsbox::Limits::default()
            },
            ..Config::default()
        },
        ..Route::new("/room", guest("chat"))
    };
    let (served, server) = serve_routes(vec![route], ServeConfig::default()).await;
    let port = metrics_port(&server).await;
    let slow = ChatClient::join(served.port, "feed", "slow").await;
    assert_eq!(broker.topic_count(), 1);
    // From here on, `slow` is not read. Publications of 4 KiB, until the
    // broker takes the closed member out of the room, its only one.
    let line = wsbox::bindings::types::Message::Text("x".repeat(4 << 10));
    within("the slow member to be closed", async {
        while broker.topic_count() > 0 {
            for _ in 0..64 {
                broker.publish("room/feed", line.clone()).await.unwrap();
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The member reads at last: what was written, then the close, which it
    // answers.
    let mut slow = slow.into_inner();
    let (messages, close) = wsbox_tests::read_until_close(&mut slow).await;
    assert_eq!(close, Some((1013, "slow consumer".to_string())));
    assert!(messages.iter().all(|m| m.len() == 4 << 10));
    drop(slow);

    let samples = within("the close to be counted", async {
        loop {
            let (_, answer) = get(port, "/metrics").await;
            let samples = parse(answer.split_once("\r\n\r\n").unwrap().1);
            if samples.get("wsbox_instances_alive{}") == Some(&0.0) {
                break samples;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        samples.get("wsbox_slow_consumer_closes_total{}"),
        Some(&1.0),
        "{samples:#?}"
    );
    assert_eq!(
        samples.get(r#"wsbox_close_codes_total{code="1013",direction="out"}"#),
        Some(&1.0),
        "{samples:#?}"
    );
    served.shutdown().await;
}
