//! A peer that stops reading holds nothing forever: a guest's `send` gets `timeout` after the send timeout, its `close` returns within the close timeout even while the host's pongs are stuck, and a stalled client costs its server slot and socket only until then.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbox::{Config, Limits, ServeConfig};
use wsbox_tests::{allow, probe_with, raw, raw::RawServer, serve, within};

/// The tests of this file one at a time: the last counts this process's
/// file descriptors.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Keeps the upgraded connection open without ever reading from it.
async fn never_reading(mut tcp: TcpStream) -> Option<TcpStream> {
    raw::accept(&mut tcp).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    None
}

#[tokio::test]
async fn a_send_to_a_peer_that_never_reads_times_out_and_aborts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = RawServer::start(never_reading).await;
    let config = Config {
        limits: Limits {
            send_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..allow(server.port)
    };
    // 64 MiB in all: far more than the socket buffers hold.
    let mut steps = vec!["send-binary:4194304"; 16];
    steps.extend(["send-text:after", "query"]);
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe_with(config, &url, &steps).await;
    let results = out.results("send-binary:4194304");
    let stuck = results
        .iter()
        .position(|r| *r != "ok")
        .expect("some send must stall");
    assert_eq!(results[stuck], "err(timeout)", "{results:?}");
    assert!(
        results[stuck + 1..].iter().all(|r| *r == "err(closed)"),
        "after the timeout the connection is aborted: {results:?}"
    );
    assert_eq!(out.result("send-text:after"), "err(closed)");
    assert_eq!(out.result("query"), "err(aborted)");
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn close_returns_within_the_close_timeout_while_pongs_are_stuck() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The peer floods pings and never reads: the host's pongs fill the
    // socket and the pong write blocks (the send timeout is long).
    let server = RawServer::start(|mut tcp| async move {
        raw::accept(&mut tcp).await;
        let ping = raw::frame(0x89, &[7u8; 125], None);
        let flood = async {
            loop {
                if tcp.write_all(&ping).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), flood).await;
        None
    })
    .await;
    let config = Config {
        limits: Limits {
            send_timeout: Duration::from_secs(120),
            close_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let started = Instant::now();
    let out = probe_with(config, &url, &["sleep:1500", "close:1000", "query"]).await;
    assert_eq!(out.result("close:1000"), "err(timeout)");
    assert_eq!(out.result("query"), "err(aborted)");
    // Bounded by the close timeout, not the send timeout: nothing waited
    // for the stuck pong (1.5 s of sleep, 0.5 s of close, the connection
    // ended at the close timeout).
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run took {:?}",
        started.elapsed()
    );
    assert_eq!(wsbox::panics(), 0);
}

/// The open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Upgrades to the server at `port`; `None` if it answered something else
/// (the status line is returned in the error).
async fn upgrade(port: u16) -> Result<TcpStream, String> {
    let mut tcp = within("a TCP connection", TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    within("the upgrade request", tcp.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answered in time");
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        Ok(tcp)
    } else {
        Err(head.lines().next().unwrap_or_default().to_string())
    }
}

#[tokio::test]
async fn a_stalled_client_holds_its_slot_and_socket_only_until_the_send_timeout() {
    let _one = ONE_AT_A_TIME.lock().await;
    let config = ServeConfig {
        max_connections: 1,
        websocket: Config {
            limits: Limits {
                send_timeout: Duration::from_millis(500),
                close_timeout: Duration::from_millis(500),
                ..Limits::default()
            },
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    let served = serve("echo", config).await;
    let before = fds();

    // A client that sends and never reads: the echo's sends fill the
    // socket, then time out.
    let mut stalled = upgrade(served.port)
        .await
        .expect("the first client is upgraded");
    let message = raw::frame(0x82, &vec![1u8; 1 << 20], Some([1, 2, 3, 4]));
    let (mut read_half, mut write_half) = stalled.split();
    let flood = async {
        loop {
            if write_half.write_all(&message).await.is_err() {
                break;
            }
        }
    };
    // The flood ends when the server gives up on the connection.
    tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("the server aborted the stalled connection");
    // Its slot is free again: a new client is served, and echoed.
    let mut next = None;
    for _ in 0..50 {
        match upgrade(served.port).await {
            Ok(tcp) => {
                next = Some(tcp);
                break;
            }
            Err(status) => {
                assert!(status.contains("503"), "{status}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut next = next.expect("the slot was freed within 5 s");
    next.write_all(&raw::frame(0x81, b"hi", Some([9, 9, 9, 9])))
        .await
        .unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), next.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echo, b"\x81\x02hi");
    // Drain what the stalled connection had, so that closing ours sends no
    // reset that matters, then close both.
    let mut sink = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(read_half.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    drop(stalled);
    next.write_all(&raw::frame(
        0x88,
        &raw::close_payload(1000, b""),
        Some([1, 1, 1, 1]),
    ))
    .await
    .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(next.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    drop(next);
    // Nothing of either connection is left in this process.
    let settled = async {
        while fds() > before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .unwrap_or_else(|_| panic!("{} file descriptors, {before} before", fds()));
    served.shutdown().await;
    assert_eq!(wsbox::panics(), 0);
}
