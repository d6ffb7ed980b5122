//! The inbound queue is bounded in bytes: while the guest does not receive, the host stops reading and the peer's writes stall (its sent count stops rising well short of the whole, TCP backpressure); afterwards every message arrives intact.

use futures_util::SinkExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wsbox::{Config, Limits};
use wsbox_tests::{allow, probe_with, within, RustPeer, Seen};

const MESSAGES: usize = 1024;
const SIZE: usize = 64 * 1024;

#[tokio::test]
async fn a_guest_that_does_not_receive_stalls_the_peer() {
    stalls_the_peer(Limits {
        inbound_buffer: 256 * 1024,
        ..Limits::default()
    })
    .await;
}

#[tokio::test]
async fn the_instance_wide_buffer_bounds_even_a_large_socket_buffer() {
    stalls_the_peer(Limits {
        inbound_buffer: 1 << 30,
        instance_inbound_buffer: 256 * 1024,
        ..Limits::default()
    })
    .await;
}

async fn stalls_the_peer(limits: Limits) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let mut peer = RustPeer::start(move |mut ws, tx| {
        let counter = counter.clone();
        async move {
            let payload: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
            for _ in 0..MESSAGES {
                if ws
                    .send(tungstenite::Message::binary(payload.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ = tx.send(Seen::End("all sent".into()));
            let _ = ws.close(None).await;
        }
    })
    .await;
    let config = Config {
        limits,
        ..allow(peer.port)
    };
    let url = peer.url();
    let guest =
        tokio::spawn(
            async move { probe_with(config, &url, &["sleep:6000", "recv-until-close"]).await },
        );

    // The guest's sleep starts as soon as it is connected, which is when
    // the peer starts sending.
    within("the peer's first message", async {
        while sent.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // While the guest sleeps, the peer gets only as far as the inbound
    // buffer plus the kernel's socket buffers, far short of all 64 MiB,
    // and then stays there.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let stalled_at = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let still_at = sent.load(Ordering::SeqCst);
    eprintln!("the peer sent {stalled_at}, then {still_at} messages while the guest slept");
    assert!(stalled_at > 0);
    assert!(
        stalled_at < MESSAGES / 2,
        "the peer sent {stalled_at} of {MESSAGES} messages while the guest slept"
    );
    assert_eq!(
        still_at, stalled_at,
        "the peer went on sending while the guest slept: it was not stalled"
    );

    let out = within("the guest's run", guest).await.unwrap();
    let received = out.results("recv-until-close");
    assert_eq!(
        received.len(),
        MESSAGES + 1,
        "{:?}",
        &received[received.len().saturating_sub(3)..]
    );
    assert!(received[..MESSAGES]
        .iter()
        .all(|r| *r == "ok(binary 65536 bytes ok)"));
    // tungstenite's `close(None)` sends a close frame without a payload.
    assert_eq!(received[MESSAGES], r#"ok(close 1005 "")"#);
    assert_eq!(peer.next().await, Seen::End("all sent".into()));
}
