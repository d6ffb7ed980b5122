//! Hostile servers against a client guest: every RFC 6455 violation, garbage and oversized frames fail the connection with the right close code (1002, 1007, 1009) and a defined error, nothing follows our close frame, TCP resets at every stage read as aborted, and the host stays up.

use tokio::io::AsyncWriteExt;
use wsbox::{Config, Limits};
use wsbox_tests::raw::{accept, close_code, close_payload, frame, reset, RawServer};
use wsbox_tests::{allow, probe_with};

/// Runs `recv query` against a server that sends `bytes` after the upgrade;
/// returns the guest's results and the close code the server got back.
async fn against(
    bytes: Vec<u8>,
    config: impl Fn(u16) -> Config,
) -> (String, String, Option<Option<u16>>) {
    let server = RawServer::sending(bytes).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe_with(config(server.port), &url, &["recv", "query"]).await;
    let (recv, query) = (
        out.result("recv").to_string(),
        out.result("query").to_string(),
    );
    (recv, query, server.answer().await)
}

#[tokio::test]
async fn every_violation_gets_its_close_code_and_a_defined_error() {
    let long_reason = close_payload(1000, &[b'x'; 124]);
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (
            "invalid UTF-8 in text",
            frame(0x81, &[0x68, 0xff, 0xfe], None),
            "err(protocol-error: ",
            1007,
        ),
        (
            "UTF-8 cut short at the end",
            frame(0x81, &[0xe2, 0x82], None),
            "err(protocol-error: ",
            1007,
        ),
        (
            "close code 999",
            frame(0x88, &close_payload(999, b""), None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "close code 1005 on the wire",
            frame(0x88, &close_payload(1005, b""), None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "close with a one-byte payload",
            frame(0x88, &[3], None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "close reason over 123 bytes",
            frame(0x88, &long_reason, None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "close reason not UTF-8",
            frame(0x88, &close_payload(1000, &[0xff]), None),
            "err(protocol-error: ",
            1007,
        ),
        (
            "masked frame from the server",
            frame(0x81, b"hi", Some([1, 2, 3, 4])),
            "err(protocol-error: ",
            1002,
        ),
        (
            "reserved data opcode",
            frame(0x83, b"", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "reserved control opcode",
            frame(0x8b, b"", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "RSV1 without an extension",
            frame(0xc1, b"hi", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "RSV3 without an extension",
            frame(0x91, b"hi", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "fragmented ping",
            frame(0x09, b"", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "ping over 125 bytes",
            frame(0x89, &[0; 126], None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "continuation with no message",
            frame(0x80, b"x", None),
            "err(protocol-error: ",
            1002,
        ),
        (
            "new message inside a fragmented one",
            [frame(0x01, b"a", None), frame(0x81, b"b", None)].concat(),
            "err(protocol-error: ",
            1002,
        ),
        (
            "garbage after the handshake",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "err(protocol-error: ",
            1002,
        ),
    ];
    let count = cases.len();
    for (name, bytes, error, code) in cases {
        let (recv, query, answer) = against(bytes, allow).await;
        assert!(recv.starts_with(error), "{name}: recv -> {recv}");
        assert_eq!(query, "err(aborted)", "{name}");
        assert_eq!(answer, Some(Some(code)), "{name}");
    }
    assert_eq!(count, 17);
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn oversized_frames_and_messages_get_1009() {
    let limited = |port| Config {
        limits: Limits {
            max_frame_size: 1024,
            max_message_size: 4096,
            ..Limits::default()
        },
        ..allow(port)
    };
    let big_frame = frame(0x82, &[0; 1025], None);
    let (recv, _, answer) = against(big_frame, limited).await;
    assert_eq!(
        (recv.as_str(), answer),
        ("err(message-too-big)", Some(Some(1009)))
    );
    let pieces: Vec<u8> = [frame(0x02, &[0; 1000], None)]
        .into_iter()
        .chain(std::iter::repeat_n(frame(0x00, &[0; 1000], None), 4))
        .flatten()
        .collect();
    let (recv, _, answer) = against(pieces, limited).await;
    assert_eq!(
        (recv.as_str(), answer),
        ("err(message-too-big)", Some(Some(1009)))
    );
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn a_reset_during_the_handshake_is_connect_failed() {
    let server = RawServer::start(|tcp| async move {
        let mut tcp = tcp;
        let mut buf = [0u8; 64];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
        reset(tcp);
        None
    })
    .await;
    let out = probe_with(
        allow(server.port),
        &format!("ws://127.0.0.1:{}/", server.port),
        &[],
    )
    .await;
    assert!(
        out.result("connect").starts_with("err(connect-failed: "),
        "{}",
        out.result("connect")
    );
    assert_eq!(server.answer().await, None);
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn resets_mid_frame_and_mid_message_read_as_aborted() {
    let cut_frame = frame(0x82, &[7; 100], None)[..20].to_vec();
    let first_fragment = frame(0x01, b"part", None);
    for (name, bytes) in [
        ("mid-frame", cut_frame),
        ("mid-fragmented-message", first_fragment),
    ] {
        let server = RawServer::start(move |mut tcp| async move {
            accept(&mut tcp).await;
            tcp.write_all(&bytes).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            reset(tcp);
            None
        })
        .await;
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let out = probe_with(allow(server.port), &url, &["recv", "query", "recv"]).await;
        let first = out.results("recv")[0];
        assert!(
            first == "err(closed)" || first.starts_with("err(other: "),
            "{name}: {first}"
        );
        assert_eq!(out.result("query"), "err(aborted)", "{name}");
        assert_eq!(out.results("recv")[1], "err(closed)", "{name}");
    }
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn a_reset_after_our_close_before_the_answer_reads_as_aborted() {
    let server = RawServer::start(|mut tcp| async move {
        accept(&mut tcp).await;
        let got = close_code(&mut tcp).await;
        assert_eq!(got, Some(Some(1000)));
        reset(tcp);
        None
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe_with(
        allow(server.port),
        &url,
        &["close:1000:bye", "query", "send-text:x"],
    )
    .await;
    let close = out.result("close:1000:bye");
    assert!(
        close == "err(closed)" || close.starts_with("err(other: "),
        "{close}"
    );
    assert_eq!(out.result("query"), "err(aborted)");
    assert!(out.result("send-text:x").starts_with("err(invalid-state"));
    server.answer().await;
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

/// After the host failed the connection (its close frame is out), a
/// guest's `send` is `closed` and nothing follows the close on the wire.
#[tokio::test]
async fn nothing_follows_the_hosts_close_frame() {
    use tokio::io::AsyncReadExt;
    use tungstenite::protocol::frame::FrameHeader;
    let server = RawServer::start(|mut tcp| async move {
        accept(&mut tcp).await;
        tcp.write_all(&frame(0x83, b"", None)).await.unwrap();
        // Everything the client sends until it ends TCP.
        let mut wire = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tcp.read_to_end(&mut wire),
        )
        .await;
        let mut opcodes = Vec::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let mut cursor = std::io::Cursor::new(rest);
            let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) else {
                break;
            };
            opcodes.push(u8::from(header.opcode));
            let end = cursor.position() as usize + len as usize;
            rest = &rest[end.min(rest.len())..];
        }
        assert_eq!(opcodes, [0x8], "only our close frame: {opcodes:?}");
        None
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let config = Config {
        limits: Limits {
            close_timeout: std::time::Duration::from_secs(1),
            ..Limits::default()
        },
        ..allow(server.port)
    };
    let out = probe_with(
        config,
        &url,
        &["sleep:500", "send-text:late", "recv", "query"],
    )
    .await;
    assert_eq!(out.result("send-text:late"), "err(closed)");
    assert!(
        out.result("recv").starts_with("err(protocol-error: "),
        "{:?}",
        out.lines
    );
    assert_eq!(out.result("query"), "err(aborted)");
    assert_eq!(server.answer().await, None);
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

#[tokio::test]
async fn sizes_that_would_overflow_are_message_too_big() {
    // With no size limits, a continuation frame whose length would
    // overflow the message's size is still only too big.
    let mut bytes = frame(0x02, b"0123456789", None);
    bytes.extend_from_slice(&[0x80, 127]);
    bytes.extend_from_slice(&(u64::MAX - 5).to_be_bytes());
    let server = RawServer::sending(bytes).await;
    let config = Config {
        limits: Limits {
            max_message_size: usize::MAX,
            max_frame_size: usize::MAX,
            ..Limits::default()
        },
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe_with(config, &url, &["recv", "query"]).await;
    assert_eq!(out.result("recv"), "err(message-too-big)");
    assert_eq!(out.result("query"), "err(aborted)");
    assert_eq!(server.answer().await, Some(Some(1009)));
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}
