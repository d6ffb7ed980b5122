//! The inbound buffer counts the memory queued pieces really hold: a peer that sends 100,000 tiny frames, one TCP segment each, to a guest that does not read, cannot grow the host past a small multiple of the buffer.

use std::io::Write;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use wsbox::{Config, Limits};
use wsbox_tests::{allow, probe_with, raw, raw::RawServer};

const FRAMES: usize = 100_000;
const BUFFER: usize = 1 << 20;
const PAUSE: Duration = Duration::from_micros(10);

/// This process's resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn flood(payload: &'static [u8]) {
    let (grown_tx, grown_rx) = tokio::sync::oneshot::channel();
    let server = RawServer::start(move |mut tcp| async move {
        raw::accept(&mut tcp).await;
        tcp.set_nodelay(true).unwrap();
        // The guest is connected and asleep: measure from here.
        let before = rss();
        let frame = raw::frame(0x82, payload, None);
        // A blocking socket on a thread of its own: one write, one
        // segment, as fast as the host reads them.
        let std_tcp = tcp.into_std().unwrap();
        std_tcp.set_nonblocking(false).unwrap();
        let writer = std::thread::spawn(move || {
            let mut std_tcp = std_tcp;
            let mut sent = 0;
            std_tcp
                // A host that stops reading stalls the writer: that is
                // the backpressure, not a failure.
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            for _ in 0..FRAMES {
                if std_tcp.write_all(&frame).is_err() {
                    break;
                }
                sent += 1;
                // A pause, so that the host reads about one frame per read,
                // the case where each piece could pin a read buffer.
                let paused = std::time::Instant::now();
                while paused.elapsed() < PAUSE {
                    std::hint::spin_loop();
                }
            }
            (std_tcp, sent)
        });
        let (std_tcp, sent) = tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        // Let the host read what it will.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = grown_tx.send((sent, rss().saturating_sub(before)));
        std_tcp.set_nonblocking(true).unwrap();
        let mut tcp = tokio::net::TcpStream::from_std(std_tcp).unwrap();
        let _ = tcp.shutdown().await;
        None
    })
    .await;
    let config = Config {
        limits: Limits {
            inbound_buffer: BUFFER,
            ..Limits::default()
        },
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let probe =
        tokio::spawn(async move { probe_with(config, &url, &["sleep:4000", "abort"]).await });
    let (sent, grown) = tokio::time::timeout(Duration::from_secs(60), grown_rx)
        .await
        .expect("the flood finished in time")
        .expect("the server measured");
    assert!(
        sent > BUFFER / (payload.len() + 128),
        "the peer wrote only {sent} frames"
    );
    assert!(
        grown < 8 * BUFFER,
        "{FRAMES} frames of {} bytes grew the host by {grown} bytes; the inbound buffer is {BUFFER}",
        payload.len()
    );
    let out = tokio::time::timeout(Duration::from_secs(60), probe)
        .await
        .expect("the guest finished")
        .unwrap();
    assert_eq!(out.result("abort"), "ok");
    assert_eq!(wsbox::panics(), 0);
}

/// One test, so that nothing else in this process moves its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_one_byte_and_empty_frames_stay_within_the_buffer() {
    flood(b"x").await;
    flood(b"").await;
}
