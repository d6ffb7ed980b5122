//! Hostile clients against wsbox serve: unmasked frames, invalid UTF-8, reserved bits and opcodes, garbage and oversized messages get 1002, 1007 or 1009 and the handler sees a defined error and aborted; after failing a connection the server ends TCP first; resets at every stage cost only their connection.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsbox::{Config, Limits, ServeConfig};
use wsbox_tests::raw::{close_code, close_code_after, close_payload, connect, frame, reset};
use wsbox_tests::{drain, next_message, send, serve, within, Served};

const MASK: Option<[u8; 4]> = Some([9, 8, 7, 6]);

async fn still_serving(served: &Served) {
    let mut ws = wsbox_tests::connect(&served.url("/after")).await;
    send(&mut ws, tungstenite::Message::text("still here")).await;
    assert_eq!(
        next_message(&mut ws).await,
        tungstenite::Message::text("still here")
    );
}

#[tokio::test]
async fn every_violation_gets_its_close_code_and_the_handler_sees_aborted() {
    let config = ServeConfig {
        websocket: Config {
            limits: Limits {
                max_message_size: 4096,
                max_frame_size: 2048,
                ..Limits::default()
            },
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    let mut served = serve("close-reporter", config).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "unmasked client frame",
            frame(0x81, b"hi", None),
            1002,
            "protocol-error",
        ),
        (
            "invalid UTF-8",
            frame(0x81, &[0xff], MASK),
            1007,
            "protocol-error",
        ),
        ("RSV2 set", frame(0xa1, b"hi", MASK), 1002, "protocol-error"),
        (
            "reserved opcode",
            frame(0x84, b"", MASK),
            1002,
            "protocol-error",
        ),
        (
            "fragmented close",
            frame(0x08, &close_payload(1000, b""), MASK),
            1002,
            "protocol-error",
        ),
        (
            "close code 1006",
            frame(0x88, &close_payload(1006, b""), MASK),
            1002,
            "protocol-error",
        ),
        (
            "continuation with no message",
            frame(0x80, b"x", MASK),
            1002,
            "protocol-error",
        ),
        (
            "garbage",
            b"\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
            1002,
            "protocol-error",
        ),
        (
            "close reason over 123 bytes",
            frame(0x88, &close_payload(1000, &[b'x'; 124]), MASK),
            1002,
            "protocol-error",
        ),
        (
            "ping over 125 bytes",
            frame(0x89, &[0; 126], MASK),
            1002,
            "protocol-error",
        ),
        (
            "frame over the limit",
            frame(0x82, &[0; 3000], MASK),
            1009,
            "message-too-big",
        ),
        (
            "message over the limit",
            [
                frame(0x02, &[0; 2000], MASK),
                frame(0x00, &[0; 2000], MASK),
                frame(0x80, &[0; 2000], MASK),
            ]
            .concat(),
            1009,
            "message-too-big",
        ),
    ];
    for (name, bytes, code, error) in cases {
        let mut tcp = connect(served.port, "/hostile").await;
        within("a write to the server", tcp.write_all(&bytes))
            .await
            .unwrap();
        assert_eq!(close_code(&mut tcp).await, Some(Some(code)), "{name}");
        let line = served.log_line("receive error").await;
        assert!(line.contains(error), "{name}: {line}");
        let line = served.log_line("query-close-status").await;
        assert!(line.ends_with("err(aborted)"), "{name}: {line}");
    }
    still_serving(&served).await;
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

/// RFC 6455 section 7.1.1: after failing a connection the server ends TCP
/// first. The client reads the 1002 and then never closes: its next read
/// must see the server's FIN at once, not after the (long) close timeout.
#[tokio::test]
async fn after_failing_a_connection_the_server_ends_tcp_first() {
    let close_timeout = Duration::from_secs(30);
    let config = ServeConfig {
        websocket: Config {
            limits: Limits {
                close_timeout,
                ..Limits::default()
            },
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    let served = serve("echo", config).await;
    for (name, bytes) in [
        ("RSV2 set", frame(0xa1, b"hi", MASK)),
        ("fragmented ping", frame(0x09, b"", MASK)),
    ] {
        let mut tcp = connect(served.port, "/violation").await;
        within("a write to the server", tcp.write_all(&bytes))
            .await
            .unwrap();
        let mut ahead = Vec::new();
        assert_eq!(
            close_code_after(&mut tcp, &mut ahead).await,
            Some(Some(1002)),
            "{name}"
        );
        assert!(ahead.is_empty(), "{name}: bytes after the close frame");
        // We neither answer the close nor end TCP.
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut byte)).await;
        match read {
            Ok(Ok(0)) => {}
            Ok(other) => panic!("{name}: not the server's FIN but {other:?}"),
            Err(_) => panic!(
                "{name}: the server did not end TCP within 2 s (close timeout {close_timeout:?})"
            ),
        }
    }
    still_serving(&served).await;
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn resets_at_every_stage_cost_only_their_connection() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    // During the handshake.
    let mut tcp = within(
        "a TCP connection",
        tokio::net::TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    within(
        "a write to the server",
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgr"),
    )
    .await
    .unwrap();
    reset(tcp);
    // Mid-frame and mid-fragmented-message.
    for bytes in [
        frame(0x82, &[1; 100], MASK)[..30].to_vec(),
        frame(0x01, b"part", MASK),
    ] {
        let mut tcp = connect(served.port, "/reset").await;
        within("a write to the server", tcp.write_all(&bytes))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        reset(tcp);
        let line = served.log_line("query-close-status").await;
        assert!(line.ends_with("err(aborted)"), "{line}");
    }
    // After the handler's close, before the client's answer.
    let mut tcp = connect(served.port, "/reset").await;
    within(
        "a write to the server",
        tcp.write_all(&frame(0x81, b"close-me 4000 bye", MASK)),
    )
    .await
    .unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(Some(4000)));
    reset(tcp);
    let line = served.log_line("close ->").await;
    assert!(line.contains("close -> err("), "{line}");
    assert!(served
        .log_line("query-close-status")
        .await
        .ends_with("err(aborted)"));
    still_serving(&served).await;
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn a_connection_flood_beyond_the_maximum_gets_503_and_the_server_stays_up() {
    let served = serve(
        "echo",
        ServeConfig {
            max_connections: 4,
            ..ServeConfig::default()
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut ws = wsbox_tests::connect(&served.url("/held")).await;
        send(&mut ws, tungstenite::Message::text("hold")).await;
        assert_eq!(
            next_message(&mut ws).await,
            tungstenite::Message::text("hold")
        );
        held.push(ws);
    }
    let request = "GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let port = served.port;
    let flood: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async move { wsbox_tests::http_get(port, request).await.0 }))
        .collect();
    for attempt in flood {
        assert_eq!(within("a flood request", attempt).await.unwrap(), 503);
    }
    for ws in &mut held {
        send(ws, tungstenite::Message::text("still held")).await;
        assert_eq!(
            next_message(ws).await,
            tungstenite::Message::text("still held")
        );
    }
    for mut ws in held {
        within("our close", ws.close(None)).await.unwrap();
        drain(&mut ws).await;
    }
    // A slot frees when its connection task has finished cleaning up.
    for _ in 0..100 {
        match within(
            "a websocket connection",
            tokio_tungstenite::connect_async(served.url("/probe")),
        )
        .await
        {
            Err(tungstenite::Error::Http(response)) if response.status() == 503 => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            _ => break,
        }
    }
    still_serving(&served).await;
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}
