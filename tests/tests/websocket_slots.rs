//! `--max-websockets` counts connections until their TCP is gone: a guest that connects and drops in a loop, against a peer that never answers the close, cannot pile up sockets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use wsbox::{Config, Limits};
use wsbox_tests::{allow, probe_with, raw};

/// A server that upgrades every connection and then never answers: it
/// reads (and ignores) everything, close frames included, until the client
/// ends TCP. It counts the connections open now and the most at once.
struct Silent {
    port: u16,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, m) = (open.clone(), most.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    raw::accept(&mut tcp).await;
                    let mut sink = [0u8; 1024];
                    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Silent {
            port,
            open,
            most,
            task,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn dropped_websockets_count_until_their_tcp_is_gone() {
    let peer = Silent::start().await;
    let config = Config {
        limits: Limits {
            max_websockets: 4,
            close_timeout: Duration::from_millis(1500),
            ..Limits::default()
        },
        ..allow(peer.port)
    };
    let url = format!("ws://127.0.0.1:{}/", peer.port);
    let out = probe_with(
        config,
        &url,
        &[
            // The probe's own websocket is one of the four.
            "connect-drop:10",
            // After the close timeout, the dropped ones are gone.
            "sleep:3000",
            "connect-drop:3",
        ],
    )
    .await;
    let first = out.result("connect-drop:10");
    assert!(
        first.starts_with("err(after 3: limit-exceeded"),
        "three more fit beside the probe's own, then the limit: {first}"
    );
    assert_eq!(out.result("connect-drop:3"), "ok(3 connected and dropped)");
    assert!(
        peer.most.load(Ordering::SeqCst) <= 4,
        "the peer saw {} connections at once",
        peer.most.load(Ordering::SeqCst)
    );
    // Every socket the guest opened is closed by now: the probe's own when
    // it exited, the dropped ones within their close timeout.
    let closed = async {
        while peer.open.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("every connection the guest opened was closed");
    assert_eq!(wsbox::panics(), 0);
}
