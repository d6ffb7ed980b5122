//! Many websockets in one guest through subscribe and wasi:io/poll, and what the peer sees when a guest drops a websocket or exits without closing.

use wsbox::Exit;
use wsbox_tests::{allow, close_of, probe, run_guest, PyPeer, RustPeer, Seen};

#[tokio::test]
async fn one_guest_multiplexes_connections_through_poll() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = run_guest("multiplex", allow(peer.port), &[&peer.url("/"), "5", "10"]).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("multiplex: 5 connections, 50 replies, all matched"),
        "{}",
        out.stdout
    );
    let mut conns = std::collections::HashSet::new();
    for _ in 0..5 {
        let closed = peer.next("closed").await;
        assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(1000));
        conns.insert(closed["conn"].as_u64());
    }
    assert_eq!(conns.len(), 5);
}

#[tokio::test]
async fn dropping_an_open_websocket_sends_1001() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["send-text:x", "recv", "drop", "query"],
    )
    .await;
    assert_eq!(out.result("drop"), "ok");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((1001, String::new())));
    assert_eq!(closed["clean"], true);
}

#[tokio::test]
async fn dropping_after_the_peers_close_echoes_its_code() {
    let mut peer = PyPeer::start(&["close", "4005", "bye"]).await;
    probe(peer.port, &peer.url("/"), &["recv", "drop"]).await;
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(4005));
}

#[tokio::test]
async fn a_guest_that_exits_with_open_websockets_closes_them_with_1001() {
    let mut peer = RustPeer::echo().await;
    let out = probe(peer.port, &peer.url(), &["send-text:bye", "recv", "exit"]).await;
    assert_eq!(out.result("recv"), r#"ok(text "bye")"#);
    assert_eq!(peer.next().await, Seen::Message("bye".into()));
    assert_eq!(peer.next().await, Seen::Close(Some((1001, String::new()))));
}
