//! wsbox serve with a tokio-tungstenite client: echo keeps kinds, close-reporter shows each side the other's close status in both directions, a TCP drop reads as aborted, router accepts or rejects upgrades, and a pong goes out before the echo of the message its ping interrupted.

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;
use wsbox::ServeConfig;
use wsbox_tests::{connect, http_get, next_message, read_until_close, send, serve, within};

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

#[tokio::test]
async fn echo_returns_each_message_with_its_kind_and_answers_the_close() {
    let served = serve("echo", ServeConfig::default()).await;
    let mut ws = connect(&served.url("/")).await;
    send(&mut ws, Message::text("hello handler")).await;
    send(&mut ws, Message::binary(vec![1u8, 2, 3])).await;
    send(&mut ws, Message::binary(vec![7u8; 1 << 20])).await;
    assert_eq!(next_message(&mut ws).await, Message::text("hello handler"));
    assert_eq!(
        next_message(&mut ws).await,
        Message::binary(vec![1u8, 2, 3])
    );
    assert_eq!(
        next_message(&mut ws).await,
        Message::binary(vec![7u8; 1 << 20])
    );
    send(&mut ws, close(3001, "bye")).await;
    let (_, answer) = read_until_close(&mut ws).await;
    assert_eq!(answer.map(|a| a.0), Some(3001));
    served.shutdown().await;
}

#[tokio::test]
async fn the_guest_sees_the_clients_close_and_the_client_sees_the_guests_answer() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let mut ws = connect(&served.url("/report")).await;
    send(&mut ws, Message::text("ping")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("ping"));
    send(&mut ws, close(3001, "from rust")).await;
    let (_, answer) = read_until_close(&mut ws).await;
    assert_eq!(answer, Some((4001, "seen:3001:from rust".to_string())));
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with(r#"query-close-status = ok(3001 "from rust")"#),
        "{line}"
    );
}

#[tokio::test]
async fn the_client_sees_the_guests_close_and_the_guest_sees_the_clients_answer() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let mut ws = connect(&served.url("/")).await;
    send(&mut ws, Message::text("close-me 4000 bye")).await;
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close, Some((4000, "bye".to_string())));
    assert!(served.log_line("close ->").await.ends_with("close -> ok"));
    // tungstenite answers a close by echoing its code.
    let line = served.log_line("query-close-status").await;
    assert!(line.contains("query-close-status = ok(4000"), "{line}");
}

#[tokio::test]
async fn a_client_tcp_drop_gives_the_guest_aborted() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let mut ws = connect(&served.url("/")).await;
    send(&mut ws, Message::text("x")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("x"));
    drop(ws);
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with("query-close-status = err(aborted)"),
        "{line}"
    );
}

#[tokio::test]
async fn router_accepts_chat_v1_on_chat_and_rejects_the_rest() {
    let served = serve("router", ServeConfig::default()).await;
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(served.url("/chat?room=1"))
            .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "chat.v0, chat.v1".parse().unwrap(),
    );
    let (mut ws, response) = within(
        "a websocket connection",
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert_eq!(response.headers()["x-router"], "chat");
    send(&mut ws, Message::text("hi")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("chat: hi"));
    within("our close", ws.close(None)).await.unwrap();

    for (path, expected) in [("/chat", 400), ("/elsewhere", 404)] {
        match within(
            "a websocket connection",
            tokio_tungstenite::connect_async(served.url(path)),
        )
        .await
        {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), expected, "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let (status, _) = http_get(
        served.port,
        &format!("GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 404);
}

/// A ping in the middle of a fragmented message is answered before the
/// handler's echo of that message: the pong is written before the rest of
/// the message is read.
#[tokio::test]
async fn a_pong_goes_out_before_the_echo_of_the_message_around_its_ping() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tungstenite::protocol::frame::FrameHeader;
    use wsbox_tests::raw::{connect as raw_connect, frame};
    let mask = Some([1, 2, 3, 4]);
    let served = wsbox_tests::serve("echo", wsbox::ServeConfig::default()).await;
    for round in 0..20 {
        let mut tcp = raw_connect(served.port, "/ping").await;
        let mut bytes = frame(0x01, b"frag", mask);
        bytes.extend(frame(0x89, b"ping", mask));
        bytes.extend(frame(0x80, b"ment", mask));
        within("a write to the server", tcp.write_all(&bytes))
            .await
            .unwrap();
        let mut wire = Vec::new();
        let mut opcodes = Vec::new();
        let mut chunk = [0u8; 1024];
        while opcodes.len() < 2 {
            let mut cursor = std::io::Cursor::new(&wire[..]);
            if let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) {
                let end = cursor.position() as usize + len as usize;
                if wire.len() >= end {
                    opcodes.push(u8::from(header.opcode));
                    wire.drain(..end);
                    continue;
                }
            }
            let n = tokio::time::timeout(wsbox_tests::WAIT, tcp.read(&mut chunk))
                .await
                .expect("frames in time")
                .unwrap();
            assert!(n > 0, "the server ended TCP early (round {round})");
            wire.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(opcodes, [0xa, 0x1], "pong, then the echo (round {round})");
    }
}
