//! `receive-fragment` on a compressed message streams inflated data in pieces of at most `max-bytes`, as it inflates: the guest gets the first piece of a message before the peer has sent its last frame.

use std::time::Duration;
use tokio::io::AsyncWriteExt;
use wsbox::{Config, DeflateConfig};
use wsbox_tests::raw::{self, RawServer};
use wsbox_tests::{allow, probe_with};

const ANSWER: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn deflating(port: u16) -> Config {
    Config {
        deflate: DeflateConfig::enabled(),
        ..allow(port)
    }
}

/// One frame of about 40 KiB that inflates to 8 MiB comes out in pieces
/// of at most `max-bytes`, for several sizes of it.
#[tokio::test]
async fn a_compressed_frame_comes_out_in_pieces_of_at_most_max_bytes() {
    let message = raw::compress(&pattern(8 << 20));
    assert!(message.len() < 100_000, "{}", message.len());
    for max in [1, 4096, 100_000, 1 << 20] {
        let frame = raw::frame(0xc2, &message, None);
        let server = RawServer::start(move |mut tcp| async move {
            raw::accept_with(&mut tcp, ANSWER).await;
            tcp.write_all(&frame).await.unwrap();
            Some(tcp)
        })
        .await;
        let url = format!("ws://127.0.0.1:{}/", server.port);
        // One byte at a time is slow: 64 KiB of them is enough.
        let steps: Vec<String> = if max == 1 {
            vec!["recv-frag:1".into(); 3]
        } else {
            vec![format!("recv-all-frags:{max}"), "close:1000".into()]
        };
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        let probe = probe_with(deflating(server.port), &url, &steps).await;
        if max == 1 {
            assert_eq!(
                probe.results("recv-frag:1"),
                ["ok(fragment binary 1 bytes final=false)"; 3],
                "{probe:#?}"
            );
            continue;
        }
        let result = probe.result(steps[0]);
        let largest = (8 << 20).min(max).min(64 * 1024);
        assert!(
            result.starts_with("ok(message binary 8388608 bytes in ")
                && result.ends_with(&format!(" max={largest} ok)")),
            "max-bytes {max}: {result}"
        );
        assert_eq!(server.answer().await, Some(Some(1000)));
    }
}

/// The peer sends a compressed message's first frame and waits for the
/// guest's ping, which the guest sends only once it holds the first piece;
/// then the peer sends the last frame. A host that inflated whole messages
/// before handing them over would never let the ping out.
#[tokio::test]
async fn the_guest_gets_the_first_piece_before_the_message_has_ended() {
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let server = RawServer::start(move |mut tcp| async move {
        raw::accept_with(&mut tcp, ANSWER).await;
        let mut stream = flate2::Compress::new(flate2::Compression::default(), false);
        let message = pattern(500_000);
        let first = raw::compress_piece(&mut stream, &message[..300_000]);
        let mut last = raw::compress_piece(&mut stream, &message[300_000..]);
        last.truncate(last.len() - 4);
        tcp.write_all(&raw::frame(0x42, &first, None))
            .await
            .unwrap();
        let mut buf = Vec::new();
        let ping = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match raw::read_frame(&mut tcp, &mut buf).await {
                    Some(frame) if frame.opcode() == 0x9 => return Some(frame.payload),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        let _ = sent_tx.send(ping.clone());
        if ping.is_some() {
            tcp.write_all(&raw::frame(0x80, &last, None)).await.unwrap();
        }
        Some(tcp)
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let probe = probe_with(
        deflating(server.port),
        &url,
        &[
            "recv-frag:1004",
            "ping:got-it",
            "recv-all-frags:1000",
            "close:1000",
        ],
    )
    .await;
    let ping = sent_rx.await.unwrap();
    assert_eq!(
        ping,
        Some(b"got-it".to_vec()),
        "the guest's first piece did not come before the message's end: {probe:#?}"
    );
    assert_eq!(
        probe.result("recv-frag:1004"),
        "ok(fragment binary 1004 bytes final=false)"
    );
    // The rest of the 500,000 bytes (from offset 1004, a multiple of the
    // pattern's 251), still in pieces of at most 1000.
    let rest = probe.result("recv-all-frags:1000");
    assert!(
        rest.starts_with("ok(message binary 498996 bytes in ") && rest.ends_with(" max=1000 ok)"),
        "{rest}"
    );
    assert_eq!(server.answer().await, Some(Some(1000)));
}
