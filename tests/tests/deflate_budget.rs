//! The inbound buffer counts inflated bytes: a peer that sends compressed messages of zeros (each 256 KiB inflated, a few hundred bytes on the wire) to a guest that does not read stalls once the buffer holds about its size in inflated data, and the host grows by a small multiple of the buffer, not by what the compressed bytes would inflate to.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use wsbox::{Config, DeflateConfig, Limits};
use wsbox_tests::{allow, probe_with, raw, raw::RawServer, within};

/// Each message's inflated size, well below `--max-message-size`.
const MESSAGE: usize = 256 * 1024;
/// More messages than the kernel's socket buffers hold compressed (about
/// 50 MiB on the wire, 50 GiB inflated).
const MESSAGES: usize = 200_000;
const BUFFER: usize = 1 << 20;
/// Past this growth the writer gives up, so that a host that inflates
/// without counting cannot take the machine's memory.
const SAFETY: usize = 1 << 30;

/// This process's resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// One test, so that nothing else in this process moves its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_messages_to_a_guest_that_does_not_read_are_counted_inflated() {
    let payload = raw::compress(&vec![0; MESSAGE]);
    assert!(payload.len() < 1024, "{} bytes", payload.len());
    let frame = raw::frame(0xc2, &payload, None);
    let frame_len = frame.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (before_tx, before_rx) = tokio::sync::oneshot::channel();
    let server = {
        let (sent, stop) = (sent.clone(), stop.clone());
        RawServer::start(move |mut tcp| async move {
            raw::accept_with(&mut tcp, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
            // The guest is connected and asleep: measure from here.
            let before = rss();
            let _ = before_tx.send(before);
            let std_tcp = tcp.into_std().unwrap();
            std_tcp.set_nonblocking(false).unwrap();
            let writer = std::thread::spawn(move || {
                let mut std_tcp = std_tcp;
                // A host that stops reading stalls the writer: that is the
                // backpressure, not a failure; it tries again until told to
                // stop, going on from where a partial write left off.
                std_tcp
                    .set_write_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let (mut n, mut offset) = (0, 0);
                while n < MESSAGES && !stop.load(Ordering::Relaxed) {
                    match std_tcp.write(&frame[offset..]) {
                        Ok(written) => offset += written,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            continue
                        }
                        Err(_) => break,
                    }
                    if offset == frame.len() {
                        offset = 0;
                        n += 1;
                        sent.store(n, Ordering::SeqCst);
                        if n % 256 == 0 && rss().saturating_sub(before) > SAFETY {
                            break;
                        }
                    }
                }
                std_tcp
            });
            let std_tcp = tokio::task::spawn_blocking(move || writer.join().unwrap())
                .await
                .unwrap();
            std_tcp.set_nonblocking(true).unwrap();
            let mut tcp = tokio::net::TcpStream::from_std(std_tcp).unwrap();
            let _ = tcp.shutdown().await;
            None
        })
        .await
    };
    let config = Config {
        deflate: DeflateConfig::enabled(),
        limits: Limits {
            inbound_buffer: BUFFER,
            ..Limits::default()
        },
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let probe =
        tokio::spawn(async move { probe_with(config, &url, &["sleep:6000", "abort"]).await });

    let before = within("the connection", before_rx).await.unwrap();
    within("the peer's first message", async {
        while sent.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // While the guest sleeps, the peer gets as far as the inbound buffer
    // (four messages inflated) plus the kernel's socket buffers, and then
    // stays there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stalled_at = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let still_at = sent.load(Ordering::SeqCst);
    let grown = rss().saturating_sub(before);
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "the peer sent {stalled_at}, then {still_at} messages ({frame_len} bytes each on the wire) while the guest slept; the host grew by {grown} bytes"
    );
    assert!(
        stalled_at < MESSAGES / 2,
        "the peer sent {stalled_at} of {MESSAGES} messages while the guest slept"
    );
    assert_eq!(
        still_at, stalled_at,
        "the peer went on sending while the guest slept: it was not stalled"
    );
    // Far more went in than the buffer holds inflated: the kernel holds
    // the rest, still compressed.
    assert!(
        stalled_at * MESSAGE > 16 * BUFFER,
        "the peer sent only {stalled_at} messages"
    );
    assert!(
        grown < 8 * BUFFER,
        "{stalled_at} compressed messages of {MESSAGE} bytes each grew the host by {grown} bytes; the inbound buffer is {BUFFER}"
    );

    let out = within("the guest's run", probe).await.unwrap();
    assert_eq!(out.result("abort"), "ok");
    assert_eq!(wsbox::panics(), 0);
}
