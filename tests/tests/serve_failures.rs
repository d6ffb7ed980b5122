//! wsbox serve under failure: traps in upgrade (500) and handle (1011), a CPU loop and a memory bomb (1011) cost only their own connection; idle waiting is not CPU time; bad accepts, 426, 503 and graceful shutdown with 1001.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tungstenite::Message;
use wsbox::{Config, Limits, ServeConfig};
use wsbox_tests::{connect, http_get, read_until_close, serve};

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

fn limited(cpu_deadline: Duration, max_memory: usize) -> ServeConfig {
    ServeConfig {
        websocket: Config {
            limits: Limits {
                cpu_deadline,
                max_memory,
                ..Limits::default()
            },
            ..Config::default()
        },
        ..ServeConfig::default()
    }
}

/// Sends one message, expects its echo, then the server's close code.
async fn close_code_after_one_message(url: &str) -> Option<u16> {
    let mut ws = connect(url).await;
    ws.send(Message::text("one")).await.unwrap();
    let (messages, close) = read_until_close(&mut ws).await;
    assert_eq!(messages, [Message::text("one")]);
    close.map(|c| c.0)
}

#[tokio::test]
async fn a_trap_in_handle_gives_1011_while_a_parallel_connection_keeps_working() {
    let served = serve("faulty", ServeConfig::default()).await;
    let mut healthy = connect(&served.url("/fine")).await;
    healthy.send(Message::text("before")).await.unwrap();
    assert_eq!(
        healthy.next().await.unwrap().unwrap(),
        Message::text("before")
    );
    assert_eq!(
        close_code_after_one_message(&served.url("/trap")).await,
        Some(1011)
    );
    healthy.send(Message::text("after")).await.unwrap();
    assert_eq!(
        healthy.next().await.unwrap().unwrap(),
        Message::text("after")
    );
    served.shutdown().await;
}

#[tokio::test]
async fn a_trap_in_upgrade_and_invalid_accepts_give_500() {
    let served = serve("faulty", ServeConfig::default()).await;
    for path in [
        "/trap-upgrade",
        "/bad-protocol",
        "/bad-header",
        "/reject-999",
    ] {
        let (status, _) = http_get(served.port, &upgrade_request(path)).await;
        assert_eq!(status, 500, "{path}");
    }
    let mut ws = connect(&served.url("/still-serving")).await;
    ws.send(Message::text("ok")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ok"));
}

#[tokio::test]
async fn a_guest_stuck_in_a_loop_is_trapped_but_waiting_is_not_cpu_time() {
    let served = serve("faulty", limited(Duration::from_millis(300), 256 << 20)).await;
    let mut idle = connect(&served.url("/idle")).await;
    assert_eq!(
        close_code_after_one_message(&served.url("/spin")).await,
        Some(1011)
    );
    // The idle handler has waited in `receive` far longer than the deadline.
    tokio::time::sleep(Duration::from_millis(900)).await;
    idle.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        idle.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
}

#[tokio::test]
async fn a_memory_bomb_is_trapped_at_the_instance_limit() {
    let served = serve("faulty", limited(Duration::from_secs(10), 64 << 20)).await;
    assert_eq!(
        close_code_after_one_message(&served.url("/alloc")).await,
        Some(1011)
    );
    let mut ws = connect(&served.url("/after")).await;
    ws.send(Message::text("fine")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("fine"));
}

#[tokio::test]
async fn a_handler_that_returns_without_closing_closes_with_1000() {
    let served = serve("faulty", ServeConfig::default()).await;
    assert_eq!(
        close_code_after_one_message(&served.url("/return-open")).await,
        Some(1000)
    );
}

#[tokio::test]
async fn a_plain_http_request_gets_426() {
    let served = serve("echo", ServeConfig::default()).await;
    let (status, answer) = http_get(served.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 426);
    assert!(answer.contains("This is a WebSocket endpoint"), "{answer}");
}

#[tokio::test]
async fn over_capacity_upgrades_get_503() {
    let served = serve(
        "echo",
        ServeConfig {
            max_connections: 1,
            ..ServeConfig::default()
        },
    )
    .await;
    let mut first = connect(&served.url("/")).await;
    first.send(Message::text("holding")).await.unwrap();
    assert_eq!(
        first.next().await.unwrap().unwrap(),
        Message::text("holding")
    );
    let (status, _) = http_get(served.port, &upgrade_request("/")).await;
    assert_eq!(status, 503);
    first.send(Message::text("still served")).await.unwrap();
    assert_eq!(
        first.next().await.unwrap().unwrap(),
        Message::text("still served")
    );
}

#[tokio::test]
async fn a_slow_handshake_is_dropped_at_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let served = serve(
        "echo",
        ServeConfig {
            handshake_timeout: Duration::from_millis(300),
            ..ServeConfig::default()
        },
    )
    .await;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", served.port))
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

#[tokio::test]
async fn graceful_shutdown_sends_1001_to_every_client() {
    let served = serve("echo", ServeConfig::default()).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut ws = connect(&served.url("/")).await;
        ws.send(Message::text(format!("client {i}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("client {i}"))
        );
        clients.push(ws);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { read_until_close(&mut ws).await.1 }))
        .collect();
    served.shutdown().await;
    for reader in readers {
        assert_eq!(reader.await.unwrap().map(|c| c.0), Some(1001));
    }
}

#[tokio::test]
async fn the_pooling_allocator_serves_and_isolates_instances_too() {
    let config = ServeConfig {
        pooling: true,
        max_connections: 8,
        ..limited(Duration::from_secs(10), 64 << 20)
    };
    let served = serve("faulty", config).await;
    let mut ws = connect(&served.url("/pooled")).await;
    ws.send(Message::text("pooled")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("pooled"));
    assert_eq!(
        close_code_after_one_message(&served.url("/alloc")).await,
        Some(1011)
    );
    assert_eq!(
        close_code_after_one_message(&served.url("/trap")).await,
        Some(1011)
    );
    for i in 0..20 {
        assert_eq!(
            close_code_after_one_message(&served.url("/return-open")).await,
            Some(1000),
            "round {i}"
        );
    }
    ws.send(Message::text("still pooled")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("still pooled")
    );
}
