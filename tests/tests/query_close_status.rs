//! query-close-status: every case of the contract (not-received, the peer's code and reason, 1005, a 123-byte reason, aborted (a reset, or a TCP end without a close frame), after close, after shutdown, latching), against Python `websockets` and a raw TCP peer.

use wsbox_tests::raw::{frame, RawServer};
use wsbox_tests::{close_of, probe, PyPeer};

#[tokio::test]
async fn not_received_while_open_then_the_peers_answer_after_our_close() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "query",
            "send-text:hi",
            "recv",
            "query",
            "close:1000:bye",
            "query",
            "query",
        ],
    )
    .await;
    assert_eq!(
        out.results("query")[..2],
        ["err(not-received)", "err(not-received)"]
    );
    assert_eq!(out.result("recv"), r#"ok(text "hi")"#);
    assert_eq!(out.result("close:1000:bye"), "ok");
    // websockets answers a close by echoing its code.
    assert_eq!(
        out.results("query")[2..],
        [r#"ok(1000 "bye")"#, r#"ok(1000 "bye")"#]
    );
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((1000, "bye".into())));
    assert_eq!(closed["clean"], true);
}

#[tokio::test]
async fn the_peers_code_and_reason_are_returned_and_latched_and_the_guest_answers_with_its_own() {
    let mut peer = PyPeer::start(&["close", "4001", "going home"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "recv",
            "query",
            "query",
            "close:3000:my answer",
            "query",
            "abort",
            "query",
        ],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(close 4001 "going home")"#);
    assert_eq!(out.result("close:3000:my answer"), "ok");
    assert_eq!(out.results("query"), vec![r#"ok(4001 "going home")"#; 4]);
    let closed = peer.next("closed").await;
    assert_eq!(
        close_of(&closed["rcvd"]),
        Some((3000, "my answer".into())),
        "the peer got the guest's own code"
    );
    assert_eq!(close_of(&closed["sent"]), Some((4001, "going home".into())));
    assert_eq!(closed["clean"], true);
}

#[tokio::test]
async fn a_close_frame_without_payload_reads_as_1005() {
    let mut peer = PyPeer::start(&["close", "none"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["recv", "query", "close", "query"],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(close 1005 "")"#);
    assert_eq!(out.results("query"), vec![r#"ok(1005 "")"#; 2]);
    assert_eq!(out.result("close"), "ok");
    let closed = peer.next("closed").await;
    // Our answer had no payload either, which the peer reads as 1005.
    assert_eq!(close_of(&closed["rcvd"]), Some((1005, String::new())));
}

#[tokio::test]
async fn a_123_byte_multibyte_reason_comes_back_whole_in_both_directions() {
    let reason = "€".repeat(41);
    assert_eq!(reason.len(), 123);
    let mut peer = PyPeer::start(&["close", "4123", &reason]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["recv", "query", &format!("close:4000:{reason}")],
    )
    .await;
    assert_eq!(out.result("recv"), format!("ok(close 4123 {reason:?})"));
    assert_eq!(out.result("query"), format!("ok(4123 {reason:?})"));
    assert_eq!(out.result(&format!("close:4000:{reason}")), "ok");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((4000, reason)));
}

#[tokio::test]
async fn a_tcp_drop_reads_as_aborted() {
    let mut peer = PyPeer::start(&["drop-after", "1"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["send-text:one", "recv", "query", "recv", "query", "recv"],
    )
    .await;
    assert_eq!(out.results("recv")[0], r#"ok(text "one")"#);
    let second = out.results("recv")[1];
    assert!(
        second == "err(closed)" || second.starts_with("err(other:"),
        "{second}"
    );
    assert_eq!(out.results("query"), ["err(not-received)", "err(aborted)"]);
    assert_eq!(out.results("recv")[2], "err(closed)");
    let closed = peer.next("closed").await;
    assert!(closed["rcvd"].is_null());
}

/// The server ends TCP cleanly (FIN) without a close frame: exactly
/// `closed` from receive and `aborted` from query, never `other`.
#[tokio::test]
async fn a_tcp_end_without_a_close_frame_reads_exactly_as_aborted() {
    let server = RawServer::sending_then_fin(frame(0x81, b"one", None)).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(
        server.port,
        &url,
        &["recv", "recv", "query", "recv", "query"],
    )
    .await;
    assert_eq!(
        out.steps()[1..],
        [
            ("recv", r#"ok(text "one")"#),
            ("recv", "err(closed)"),
            ("query", "err(aborted)"),
            ("recv", "err(closed)"),
            ("query", "err(aborted)"),
        ]
    );
    server.answer().await;
}

#[tokio::test]
async fn after_shutdown_the_receive_side_stays_open_until_the_peers_close() {
    let mut peer = PyPeer::start(&["send-then-close", "3", "4002", "after three"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "shutdown:1000:early",
            "query",
            "recv-until-close",
            "query",
            "send-text:late",
        ],
    )
    .await;
    assert_eq!(out.result("shutdown:1000:early"), "ok");
    assert_eq!(out.results("query")[0], "err(not-received)");
    assert_eq!(
        out.results("recv-until-close"),
        [
            r#"ok(text "msg 0")"#,
            r#"ok(text "msg 1")"#,
            r#"ok(text "msg 2")"#,
            r#"ok(close 4002 "after three")"#
        ]
    );
    assert_eq!(out.results("query")[1], r#"ok(4002 "after three")"#);
    assert!(
        out.result("send-text:late")
            .starts_with("err(invalid-state"),
        "{}",
        out.result("send-text:late")
    );
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]), Some((1000, "early".into())));
}

#[tokio::test]
async fn abort_drops_tcp_without_a_close_frame() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "send-text:x",
            "recv",
            "abort",
            "query",
            "send-text:y",
            "recv",
            "close",
        ],
    )
    .await;
    assert_eq!(out.result("abort"), "ok");
    assert_eq!(out.result("query"), "err(aborted)");
    assert_eq!(out.result("send-text:y"), "err(closed)");
    assert_eq!(out.results("recv")[1], "err(closed)");
    assert_eq!(out.result("close"), "err(closed)");
    let closed = peer.next("closed").await;
    assert!(closed["rcvd"].is_null(), "{closed}");
    assert_eq!(closed["clean"], false);
}
