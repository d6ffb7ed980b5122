//! Hostile permessage-deflate peers in both roles: RSV1 on a control frame, on a continuation frame or without the extension gives 1002, a truncated or garbage stream 1007, a bad offer is declined (no extension, the handshake goes on), a bad answer fails the client's connect with `protocol-error`; no host task panics.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsbox::{Config, DeflateConfig, ServeConfig};
use wsbox_tests::raw::{self, RawServer};
use wsbox_tests::{allow, probe_with, serve, text_pattern, within, Served};

const MASK: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
const ANSWER: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

/// The first half of a compressed message, then the rest: its first frame
/// has RSV1 and FIN clear.
fn halves() -> (Vec<u8>, Vec<u8>) {
    let mut compressed = raw::compress(text_pattern(5000).as_bytes());
    let rest = compressed.split_off(compressed.len() / 2);
    (compressed, rest)
}

/// A stream cut short: the first part of a message that does not end on a
/// block boundary (pseudo-random data, so that it has no short encoding).
fn truncated() -> Vec<u8> {
    let mut x = 99u32;
    let data: Vec<u8> = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    let mut compressed = raw::compress(&data);
    compressed.truncate(compressed.len() / 2);
    compressed
}

/// The frames each violation sends, unmasked (a server's) or masked (a
/// client's), and the close code it must get.
fn violations(mask: Option<[u8; 4]>) -> Vec<(&'static str, Vec<u8>, u16)> {
    let (first, rest) = halves();
    let concat = |frames: &[Vec<u8>]| frames.concat();
    vec![
        ("RSV1 on a ping", raw::frame(0xc9, b"ping", mask), 1002),
        (
            "RSV1 on a close",
            raw::frame(0xc8, &raw::close_payload(1000, b""), mask),
            1002,
        ),
        (
            "RSV1 on a continuation frame",
            concat(&[
                raw::frame(0x41, &first, mask),
                raw::frame(0xc0, &rest, mask),
            ]),
            1002,
        ),
        (
            "RSV2 on a compressed message",
            raw::frame(0xe1, &raw::compress(b"hello"), mask),
            1002,
        ),
        (
            "a truncated stream",
            raw::frame(0xc2, &truncated(), mask),
            1007,
        ),
        (
            "garbage (a reserved block type)",
            raw::frame(0xc2, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], mask),
            1007,
        ),
        (
            "garbage in a later frame",
            concat(&[
                raw::frame(0x42, &first, mask),
                raw::frame(0x80, &[0x07, 0xff, 0xff, 0xff], mask),
            ]),
            1007,
        ),
        (
            "a stored block whose length check fails",
            raw::frame(
                0xc1,
                &[
                    0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o', 0x00,
                ],
                mask,
            ),
            1007,
        ),
        (
            "compressed text that is not UTF-8",
            raw::frame(0xc1, &raw::compress(&[0xff, 0xfe, 0xfd]), mask),
            1007,
        ),
    ]
}

fn deflate_serve() -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = DeflateConfig::enabled();
    config
}

async fn answer_of(tcp: &mut TcpStream) -> Option<Option<u16>> {
    raw::close_code(tcp).await
}

#[tokio::test]
async fn wsbox_serve_fails_each_violation_with_its_code() {
    let served = serve("echo", deflate_serve()).await;
    for (what, bytes, code) in violations(MASK) {
        let (mut tcp, head) = raw::connect_with(served.port, "/", OFFER).await;
        assert!(head.contains("permessage-deflate"), "{what}: {head}");
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(answer_of(&mut tcp).await, Some(Some(code)), "{what}");
    }
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn a_wsbox_client_fails_each_violation_with_its_code() {
    for (what, bytes, code) in violations(None) {
        let server = RawServer::start(move |mut tcp| async move {
            raw::accept_with(&mut tcp, ANSWER).await;
            tcp.write_all(&bytes).await.unwrap();
            Some(tcp)
        })
        .await;
        let config = Config {
            deflate: DeflateConfig::enabled(),
            ..allow(server.port)
        };
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let probe = probe_with(config, &url, &["recv"]).await;
        assert!(
            probe.result("recv").starts_with("err(protocol-error: "),
            "{what}: {probe:#?}"
        );
        assert_eq!(server.answer().await, Some(Some(code)), "{what}");
    }
    assert_eq!(wsbox::panics(), 0);
}

/// RSV1 on a connection without the extension is a protocol error, whether
/// the host has it off, or on and the peer did not negotiate it.
#[tokio::test]
async fn rsv1_without_the_extension_is_1002_in_both_roles() {
    let compressed = raw::frame(0xc1, &raw::compress(b"hello"), MASK);
    for config in [ServeConfig::default(), deflate_serve()] {
        let served: Served = serve("echo", config).await;
        let (mut tcp, head) = raw::connect_with(served.port, "/", "").await;
        assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
        tcp.write_all(&compressed).await.unwrap();
        assert_eq!(answer_of(&mut tcp).await, Some(Some(1002)));
    }
    // A client with the extension on, and a server that did not accept it;
    // and a client with it off.
    for deflate in [DeflateConfig::enabled(), DeflateConfig::default()] {
        let server = RawServer::start(|mut tcp| async move {
            raw::accept(&mut tcp).await;
            let frame = raw::frame(0xc1, &raw::compress(b"hello"), None);
            tcp.write_all(&frame).await.unwrap();
            Some(tcp)
        })
        .await;
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let config = Config {
            deflate,
            ..allow(server.port)
        };
        let probe = probe_with(config, &url, &["recv"]).await;
        assert!(
            probe.result("recv").starts_with("err(protocol-error"),
            "{probe:#?}"
        );
        assert_eq!(server.answer().await, Some(Some(1002)));
    }
    assert_eq!(wsbox::panics(), 0);
}

/// Offers the server cannot accept are declined: the handshake succeeds
/// without the extension and the connection works, plain.
#[tokio::test]
async fn wsbox_serve_declines_bad_offers_and_goes_on_without_compression() {
    let served = serve("echo", deflate_serve()).await;
    for offer in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; foo",
        "permessage-deflate; foo=bar",
        "permessage-deflate;;",
        "permessage-deflate; client_max_window_bits=\"1 5\"",
        "x-webkit-deflate-frame",
        "deflate-frame",
    ] {
        let header = format!("Sec-WebSocket-Extensions: {offer}\r\n");
        let (mut tcp, head) = raw::connect_with(served.port, "/", &header).await;
        assert!(
            !head.contains("Sec-WebSocket-Extensions"),
            "{offer}: {head}"
        );
        tcp.write_all(&raw::frame(0x81, b"plain", MASK))
            .await
            .unwrap();
        let mut buf = Vec::new();
        let echo = within("the echo", raw::read_frame(&mut tcp, &mut buf))
            .await
            .unwrap();
        assert_eq!(
            (echo.first, &echo.payload[..]),
            (0x81, &b"plain"[..]),
            "{offer}"
        );
    }
    // A bad offer before a good one: the good one is taken.
    let header = "Sec-WebSocket-Extensions: permessage-deflate; foo, permessage-deflate; server_no_context_takeover\r\n";
    let (_tcp, head) = raw::connect_with(served.port, "/", header).await;
    assert!(
        head.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        ),
        "{head}"
    );
}

/// Answers a client cannot accept fail its connect with a protocol error
/// that names the problem; no frame is exchanged.
#[tokio::test]
async fn a_wsbox_client_fails_the_connection_on_a_bad_answer() {
    let rows: [(&str, bool, &str); 8] = [
        (
            "permessage-deflate; server_max_window_bits=16",
            true,
            "not an integer from 8 to 15",
        ),
        ("permessage-deflate; foo", true, "unknown parameter `foo`"),
        (
            "permessage-deflate; client_max_window_bits",
            true,
            "needs a value",
        ),
        ("x-webkit-deflate-frame", true, "which was not offered"),
        (
            "permessage-deflate, permessage-deflate",
            true,
            "2 extensions",
        ),
        (
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            true,
            "appears twice",
        ),
        // An answer to an offer that was never made.
        ("permessage-deflate", false, "which was not offered"),
        (
            "permessage-deflate; server_no_context_takeover",
            false,
            "which was not offered",
        ),
    ];
    for (answer, offered, why) in rows {
        let header = format!("Sec-WebSocket-Extensions: {answer}\r\n");
        let server = RawServer::start(move |mut tcp| async move {
            raw::accept_with(&mut tcp, &header).await;
            Some(tcp)
        })
        .await;
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let deflate = if offered {
            DeflateConfig::enabled()
        } else {
            DeflateConfig::default()
        };
        let config = Config {
            deflate,
            ..allow(server.port)
        };
        let probe = probe_with(config, &url, &["query"]).await;
        let connect = probe.result("connect");
        assert!(
            connect.starts_with("err(protocol-error: invalid upgrade response: ")
                && connect.contains(why)
                && connect.contains("connect to it without permessage-deflate"),
            "{answer}: {connect}"
        );
        // The client just drops TCP: the connection never opened.
        assert_eq!(server.answer().await, None, "{answer}");
    }
    // An answer asking for less than was offered is not a bad answer.
    let server = RawServer::start(|mut tcp| async move {
        raw::accept_with(
            &mut tcp,
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n",
        )
        .await;
        Some(tcp)
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let config = Config {
        deflate: DeflateConfig::enabled(),
        ..allow(server.port)
    };
    let probe = probe_with(config, &url, &["close:1000"]).await;
    assert_eq!(probe.result("connect"), "ok protocol=none");
    assert_eq!(server.answer().await, Some(Some(1000)));
    assert_eq!(wsbox::panics(), 0);
}
