//! wsbox serve under failure: traps in upgrade (500) and handle (1011), a CPU loop and a memory bomb (1011) cost only their own connection; idle waiting is not CPU time; bad accepts, 426, 503 and graceful shutdown with 1001.

use std::time::Duration;
use tungstenite::Message;
use wsbox::{InstanceLimits, ServeConfig};
use wsbox_tests::{connect, http_get, next_message, read_until_close, send, serve, within};

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

fn limited(cpu_deadline: Duration, max_memory: usize) -> ServeConfig {
    ServeConfig {
        instance: InstanceLimits {
            cpu_deadline,
            max_memory,
            ..InstanceLimits::default()
        },
        ..ServeConfig::default()
    }
}

/// Sends one message, expects its echo, then the server's close code.
async fn close_code_after_one_message(url: &str) -> Option<u16> {
    let mut ws = connect(url).await;
    send(&mut ws, Message::text("one")).await;
    let (messages, close) = read_until_close(&mut ws).await;
    assert_eq!(messages, [Message::text("one")]);
    close.map(|c| c.0)
}

#[tokio::test]
async fn a_trap_in_handle_gives_1011_while_a_parallel_connection_keeps_working() {
    let served = serve("faulty", ServeConfig::default()).await;
    let mut healthy = connect(&served.url("/fine")).await;
    send(&mut healthy, Message::text("before")).await;
    assert_eq!(next_message(&mut healthy).await, Message::text("before"));
    assert_eq!(
        close_code_after_one_message(&served.url("/trap")).await,
        Some(1011)
    );
    send(&mut healthy, Message::text("after")).await;
    assert_eq!(next_message(&mut healthy).await, Message::text("after"));
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
    send(&mut ws, Message::text("ok")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("ok"));
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
    send(&mut idle, Message::text("still here")).await;
    assert_eq!(next_message(&mut idle).await, Message::text("still here"));
}

#[tokio::test]
async fn a_memory_bomb_is_trapped_at_the_instance_limit() {
    let served = serve("faulty", limited(Duration::from_secs(10), 64 << 20)).await;
    assert_eq!(
        close_code_after_one_message(&served.url("/alloc")).await,
        Some(1011)
    );
    let mut ws = connect(&served.url("/after")).await;
    send(&mut ws, Message::text("fine")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("fine"));
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
    send(&mut first, Message::text("holding")).await;
    assert_eq!(next_message(&mut first).await, Message::text("holding"));
    let (status, _) = http_get(served.port, &upgrade_request("/")).await;
    assert_eq!(status, 503);
    send(&mut first, Message::text("still served")).await;
    assert_eq!(
        next_message(&mut first).await,
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
    let mut tcp = within(
        "a TCP connection",
        tokio::net::TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    within(
        "a write to the server",
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n"),
    )
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
        send(&mut ws, Message::text(format!("client {i}"))).await;
        assert_eq!(
            next_message(&mut ws).await,
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
        let close = within("a client's read until the close", reader).await;
        assert_eq!(close.unwrap().map(|c| c.0), Some(1001));
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
    send(&mut ws, Message::text("pooled")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("pooled"));
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
    send(&mut ws, Message::text("still pooled")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("still pooled"));
}
