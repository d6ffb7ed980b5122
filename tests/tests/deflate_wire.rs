//! permessage-deflate on the wire, seen by a raw peer in both roles: a message from the threshold up goes out with RSV1 and inflates to the original, a shorter one goes out plain, the peer's compressed messages (RFC 7692's own examples included) arrive inflated, context takeover is kept across messages or reset when negotiated, and `send-fragment` compresses each piece as it is given, RSV1 on the first frame only.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsbox::{Config, DeflateConfig, ServeConfig};
use wsbox_tests::raw::{self, RawServer};
use wsbox_tests::{allow, probe_with, serve, text_pattern, within};

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// "Hello" compressed, from RFC 7692 section 7.2.3.1.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// "Hello" as an uncompressed (stored) block, from section 7.2.3.3.
const HELLO_STORED: [u8; 11] = [
    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
];

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

fn deflate_serve(deflate: DeflateConfig) -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = deflate;
    config
}

/// Sends a text message, compressed with RSV1 when `compressed`.
async fn send_text(tcp: &mut TcpStream, payload: &[u8], compressed: bool) {
    let first = if compressed { 0xc1 } else { 0x81 };
    within(
        "sending a frame",
        tcp.write_all(&raw::frame(first, payload, MASK)),
    )
    .await
    .unwrap();
}

/// Pseudo-random bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn wsbox_serve_compresses_what_it_sends_from_the_threshold_up() {
    let served = serve("echo", deflate_serve(DeflateConfig::enabled())).await;
    let (mut tcp, head) = raw::connect_with(served.port, "/", OFFER).await;
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{head}"
    );
    let mut buf = Vec::new();
    // The server keeps its context (takeover): its messages may refer to
    // the ones before.
    let mut inflater = raw::Inflater::new();

    // 10,000 bytes of JSON-like text, compressed: the echo has RSV1 and
    // inflates to the original, several times smaller on the wire.
    let text = text_pattern(10_000);
    send_text(&mut tcp, &raw::compress(text.as_bytes()), true).await;
    let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
    assert_eq!(echo.first, 0xc1, "FIN, RSV1, text");
    assert!(echo.payload.len() < 1000, "{} bytes", echo.payload.len());
    assert_eq!(inflater.message(&echo.payload), text.as_bytes());

    // RFC 7692's "Hello", compressed and as a stored block: under the
    // 1024-byte threshold, the echo goes out plain.
    for hello in [&HELLO[..], &HELLO_STORED[..]] {
        send_text(&mut tcp, hello, true).await;
        let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
        assert_eq!(echo.first, 0x81, "FIN, no RSV1, text");
        assert_eq!(echo.payload, b"Hello");
    }
    // An uncompressed message on a connection that negotiated the
    // extension is fine too.
    send_text(&mut tcp, b"plain", false).await;
    let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
    assert_eq!((echo.first, &echo.payload[..]), (0x81, &b"plain"[..]));

    // Exactly the threshold is compressed; one byte less is not.
    for (len, first) in [(1024, 0xc1), (1023, 0x81)] {
        let text = text_pattern(len);
        send_text(&mut tcp, text.as_bytes(), false).await;
        let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
        assert_eq!(echo.first, first, "{len} bytes");
        let got = if echo.rsv1() {
            inflater.message(&echo.payload)
        } else {
            echo.payload
        };
        assert_eq!(got, text.as_bytes());
    }
    tcp.write_all(&raw::frame(0x88, &raw::close_payload(1000, b""), MASK))
        .await
        .unwrap();
    assert_eq!(
        raw::close_code_after(&mut tcp, &mut buf).await,
        Some(Some(1000))
    );
}

/// The same incompressible 8 KiB message twice: with context takeover the
/// second echo refers back to the first and shrinks to a few bytes; with
/// `server_no_context_takeover` both cost the whole 8 KiB.
#[tokio::test]
async fn wsbox_serve_keeps_its_context_across_messages_unless_told_not_to() {
    let data = noise(8192, 7);
    for (offer, shrinks) in [
        (OFFER, true),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
            false,
        ),
    ] {
        let served = serve("echo", deflate_serve(DeflateConfig::enabled())).await;
        let (mut tcp, _) = raw::connect_with(served.port, "/", offer).await;
        let mut buf = Vec::new();
        let mut inflater = flate2::Decompress::new(false);
        let mut sizes = Vec::new();
        for _ in 0..2 {
            tcp.write_all(&raw::frame(0xc2, &raw::compress(&data), MASK))
                .await
                .unwrap();
            let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
            assert_eq!(echo.first, 0xc2, "FIN, RSV1, binary");
            sizes.push(echo.payload.len());
            if !shrinks {
                inflater = flate2::Decompress::new(false);
            }
            let mut input = echo.payload.clone();
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(2 * data.len());
            inflater
                .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, data);
        }
        if shrinks {
            assert!(sizes[0] > 8000 && sizes[1] < 100, "{offer}: {sizes:?}");
        } else {
            assert!(sizes[0] > 8000 && sizes[1] > 8000, "{offer}: {sizes:?}");
        }
    }
}

/// A connection that did not negotiate the extension gets no RSV1, even
/// from a server that has it on.
#[tokio::test]
async fn wsbox_serve_sends_plain_frames_without_an_offer() {
    let served = serve("echo", deflate_serve(DeflateConfig::enabled())).await;
    let (mut tcp, head) = raw::connect_with(served.port, "/", "").await;
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    let text = text_pattern(10_000);
    send_text(&mut tcp, text.as_bytes(), false).await;
    let mut buf = Vec::new();
    let echo = raw::read_frame(&mut tcp, &mut buf).await.unwrap();
    assert_eq!(echo.first, 0x81);
    assert_eq!(echo.payload, text.as_bytes());
}

/// A wsbox client: its offer, RSV1 on what it sends from the threshold up,
/// and the server's compressed messages arriving inflated.
#[tokio::test]
async fn a_wsbox_client_compresses_from_the_threshold_up_and_inflates_what_it_gets() {
    let (frames_tx, frames_rx) = tokio::sync::oneshot::channel();
    let server = RawServer::start(move |mut tcp| async move {
        let request =
            raw::accept_with(&mut tcp, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        for _ in 0..3 {
            frames.push(raw::read_frame(&mut tcp, &mut buf).await.unwrap());
        }
        // RFC 7692's examples, and a 100 KiB message, from the server.
        for payload in [&HELLO[..], &HELLO_STORED[..]] {
            tcp.write_all(&raw::frame(0xc1, payload, None))
                .await
                .unwrap();
        }
        let big = raw::compress(text_pattern(100_000).as_bytes());
        tcp.write_all(&raw::frame(0xc1, &big, None)).await.unwrap();
        let _ = frames_tx.send((request, frames));
        Some(tcp)
    })
    .await;
    let config = Config {
        deflate: DeflateConfig::enabled(),
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let probe = probe_with(
        config,
        &url,
        &[
            "send-text-pattern:10000",
            "send-text:short",
            "send-binary:5000",
            "recv",
            "recv",
            "recv",
            "close:1000",
        ],
    )
    .await;
    assert_eq!(
        probe.results("recv"),
        [
            r#"ok(text "Hello")"#,
            r#"ok(text "Hello")"#,
            "ok(text 100000 bytes pattern-ok)"
        ],
        "{probe:#?}"
    );
    let (request, frames) = within("the raw server's frames", frames_rx).await.unwrap();
    assert!(
        request
            .contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
        "{request}"
    );
    assert_eq!(frames[0].first, 0xc1, "FIN, RSV1, text");
    assert!(frames[0].payload.len() < 1000);
    // The client keeps its context: the third message may refer to the
    // first.
    let mut inflater = raw::Inflater::new();
    assert_eq!(
        inflater.message(&frames[0].payload),
        text_pattern(10_000).as_bytes()
    );
    assert_eq!(frames[1].first, 0x81, "FIN, no RSV1: under the threshold");
    assert_eq!(frames[1].payload, b"short");
    assert_eq!(frames[2].first, 0xc2, "FIN, RSV1, binary");
    let pattern: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
    assert_eq!(inflater.message(&frames[2].payload), pattern);
    assert_eq!(server.answer().await, Some(Some(1000)));
}

/// `send-fragment` with the extension negotiated: each piece is compressed
/// as it is given and goes out at once as a frame of its own, RSV1 on the
/// first frame only; each frame inflates to its piece as it arrives, and
/// the three together, with the tail put back, to the whole message.
#[tokio::test]
async fn a_wsbox_client_compresses_each_fragment_as_it_is_given() {
    // One line: the probe prints each step's text and result as a line.
    let text = text_pattern(9000).replace('\n', " ");
    let pieces = [&text[..3000], &text[3000..6000], &text[6000..]];
    let (frames_tx, frames_rx) = tokio::sync::oneshot::channel();
    let server = RawServer::start(move |mut tcp| async move {
        raw::accept_with(&mut tcp, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        for _ in 0..3 {
            frames.push(raw::read_frame(&mut tcp, &mut buf).await.unwrap());
        }
        let code = raw::close_code_after(&mut tcp, &mut buf).await;
        let _ = tcp
            .write_all(&raw::frame(0x88, &raw::close_payload(1000, b""), None))
            .await;
        let _ = frames_tx.send((frames, code));
        None
    })
    .await;
    let config = Config {
        deflate: DeflateConfig::enabled(),
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let steps = [
        format!("send-frag:text:{}:0", pieces[0]),
        format!("send-frag:text:{}:0", pieces[1]),
        format!("send-frag:text:{}:1", pieces[2]),
        "close:1000".to_string(),
    ];
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let probe = probe_with(config, &url, &steps).await;
    for step in &steps[..3] {
        assert_eq!(probe.result(step), "ok", "{probe:#?}");
    }
    let (frames, code) = within("the raw server's frames", frames_rx).await.unwrap();
    assert_eq!(code, Some(Some(1000)));
    let firsts: Vec<u8> = frames.iter().map(|f| f.first).collect();
    assert_eq!(
        firsts,
        [0x41, 0x00, 0x80],
        "RSV1 + text, then continuation, then FIN + continuation, RSV1 on the first only"
    );
    // Compressed: the repeated records shrink the 9000 bytes severalfold.
    let wire: usize = frames.iter().map(|f| f.payload.len()).sum();
    assert!(wire < 3000, "{wire} bytes on the wire for 9000");
    // One inflater over the frames in order: each frame's piece comes out
    // whole as soon as its frame is in (a sync flush per piece).
    let mut inflater = flate2::Decompress::new(false);
    let mut whole = Vec::new();
    for (i, (frame, piece)) in frames.iter().zip(pieces).enumerate() {
        let mut input = frame.payload.clone();
        if i == 2 {
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        let mut out = Vec::with_capacity(2 * piece.len() + 64);
        let start = inflater.total_in();
        inflater
            .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(inflater.total_in() - start, input.len() as u64, "frame {i}");
        assert_eq!(out, piece.as_bytes(), "frame {i}");
        whole.extend(out);
    }
    assert_eq!(whole, text.as_bytes());
}
