//! The closing handshake belongs to the guest: the host answers the peer's close only when the guest does not (close timeout, drop), `close` discards unread messages and returns the peer's answer (a later receive is `closed`), and a peer that never answers our close gives timeout and aborted.

use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use wsbox::{Config, Limits};
use wsbox_tests::raw::{accept, close_code, close_payload, frame, RawServer};
use wsbox_tests::{allow, close_of, probe, probe_with, within, PyPeer, RustPeer, Seen};

fn close_timeout(port: u16, timeout: Duration) -> Config {
    Config {
        limits: Limits {
            close_timeout: timeout,
            ..Limits::default()
        },
        ..allow(port)
    }
}

#[tokio::test]
async fn the_host_echoes_the_peers_close_when_the_guest_does_not_answer_in_time() {
    let mut peer = PyPeer::start(&["close", "4009", "your turn"]).await;
    let started = Instant::now();
    let out = probe_with(
        close_timeout(peer.port, Duration::from_millis(300)),
        &peer.url("/"),
        &["recv", "sleep:1500", "query", "send-text:late"],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(close 4009 "your turn")"#);
    assert_eq!(out.result("query"), r#"ok(4009 "your turn")"#);
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(4009));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_peer_that_never_answers_our_close_gives_timeout_and_aborted() {
    let mut peer = PyPeer::start(&["never-answer"]).await;
    let out = probe_with(
        close_timeout(peer.port, Duration::from_millis(500)),
        &peer.url("/"),
        &[
            "send-text:x",
            "recv",
            "close:1000:bye",
            "query",
            "send-text:y",
        ],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(text "x")"#);
    assert_eq!(out.result("close:1000:bye"), "err(timeout)");
    assert_eq!(out.result("query"), "err(aborted)");
    assert!(out.result("send-text:y").starts_with("err(invalid-state"));
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((1000, "bye".into())));
    assert_eq!(closed["clean"], false);
}

#[tokio::test]
async fn close_discards_unread_messages_and_returns_the_peers_answer() {
    let mut peer = PyPeer::start(&["send-then-close", "4", "4010", "done sending"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["sleep:200", "close:1000:ok", "query", "recv"],
    )
    .await;
    assert_eq!(out.result("close:1000:ok"), "ok");
    assert_eq!(out.result("query"), r#"ok(4010 "done sending")"#);
    assert_eq!(out.result("recv"), "err(closed)");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((1000, "ok".into())));
}

/// The peer's messages are queued unread when the guest closes, and the
/// peer answers the guest's close with a status of its own.
#[tokio::test]
async fn unread_messages_are_gone_after_close_and_close_returns_the_peers_answer() {
    let (got, ours) = tokio::sync::oneshot::channel();
    let server = RawServer::start(|mut tcp| async move {
        accept(&mut tcp).await;
        let unread: Vec<u8> = (0..3)
            .flat_map(|i| frame(0x81, format!("unread {i}").as_bytes(), None))
            .collect();
        tcp.write_all(&unread).await.unwrap();
        let _ = got.send(close_code(&mut tcp).await);
        tcp.write_all(&frame(0x88, &close_payload(4010, b"my answer"), None))
            .await
            .unwrap();
        None
    })
    .await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(
        server.port,
        &url,
        &["sleep:300", "close:1000:bye", "query", "recv", "query"],
    )
    .await;
    assert_eq!(
        out.steps()[1..],
        [
            ("sleep:300", "ok"),
            ("close:1000:bye", "ok"),
            ("query", r#"ok(4010 "my answer")"#),
            ("recv", "err(closed)"),
            ("query", r#"ok(4010 "my answer")"#),
        ]
    );
    assert_eq!(
        within("the server's report", ours).await.unwrap(),
        Some(Some(1000))
    );
    assert_eq!(server.answer().await, None);
}

#[tokio::test]
async fn the_default_tour_against_tokio_tungstenite() {
    let mut peer = RustPeer::echo().await;
    let out = probe(peer.port, &peer.url(), &[]).await;
    assert_eq!(
        out.steps(),
        [
            ("connect", "ok protocol=none"),
            ("query", "err(not-received)"),
            ("send-text:hello", "ok"),
            ("recv", r#"ok(text "hello")"#),
            ("close:1000:bye", "ok"),
            ("query", r#"ok(1000 "bye")"#),
            ("query", r#"ok(1000 "bye")"#),
        ]
    );
    assert_eq!(peer.next().await, Seen::Message("hello".into()));
    assert_eq!(peer.next().await, Seen::Close(Some((1000, "bye".into()))));
}

#[tokio::test]
async fn pings_from_the_peer_are_answered_by_the_host() {
    use futures_util::{SinkExt, StreamExt};
    let mut peer = RustPeer::start(|mut ws, tx| async move {
        ws.send(tungstenite::Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let tungstenite::Message::Pong(p) = msg {
                let _ = tx.send(Seen::Message(tungstenite::Message::Pong(p)));
                ws.send("pong seen".into()).await.unwrap();
            } else if msg.is_close() {
                break;
            }
        }
    })
    .await;
    let out = probe(peer.port, &peer.url(), &["recv", "close:1000"]).await;
    assert_eq!(out.result("recv"), r#"ok(text "pong seen")"#);
    assert_eq!(
        peer.next().await,
        Seen::Message(tungstenite::Message::Pong(b"are you there".to_vec().into()))
    );
}
