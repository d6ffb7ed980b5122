//! Connections still in their handshake are bounded (`--max-handshakes`): past the limit a new connection is closed at once, the server serves again when they are gone, and a request head that trickles in a byte at a time is still read.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbox::ServeConfig;
use wsbox_tests::{connect, serve, within, WAIT};

#[tokio::test]
async fn connections_past_the_handshake_limit_are_closed_at_once() {
    let served = serve(
        "echo",
        ServeConfig {
            max_handshakes: 4,
            handshake_timeout: Duration::from_secs(60),
            ..ServeConfig::default()
        },
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            within(
                "a TCP connection",
                TcpStream::connect(("127.0.0.1", served.port)),
            )
            .await
            .unwrap(),
        );
    }
    // Give the server time to accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut extra = within(
        "a TCP connection",
        TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    let mut byte = [0u8; 1];
    let ended = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte))
        .await
        .expect("the fifth connection was closed long before the handshake timeout");
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");

    // The idle ones still count: they are closed only by their own end.
    drop(idle);
    let mut served_again = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(served.url("/")),
        )
        .await
        {
            within("a send", ws.send(tungstenite::Message::text("again")))
                .await
                .unwrap();
            let echo = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
            assert_eq!(echo.unwrap().unwrap(), tungstenite::Message::text("again"));
            served_again = true;
            break;
        }
    }
    assert!(
        served_again,
        "the server serves once the idle connections are gone"
    );
    served.shutdown().await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn a_request_head_that_trickles_in_is_read() {
    let served = serve("echo", ServeConfig::default()).await;
    let mut tcp = within(
        "a TCP connection",
        TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    tcp.set_nodelay(true).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        served.port
    );
    for byte in request.as_bytes() {
        within("a write to the server", tcp.write_all(&[*byte]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head))
        .await
        .expect("answered in time")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    drop(tcp);
    // The server is unharmed.
    let mut ws = connect(&served.url("/")).await;
    within("a send", ws.send(tungstenite::Message::text("x")))
        .await
        .unwrap();
    let echo = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert_eq!(echo.unwrap().unwrap(), tungstenite::Message::text("x"));
    served.shutdown().await;
}
