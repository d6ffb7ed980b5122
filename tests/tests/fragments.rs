//! Fragments in both directions: send-fragment (UTF-8 checked across pieces, kinds, states) and receive-fragment (bounded pieces, final flags, no mixing with receive); inbound UTF-8 split across frames arrives whole, and an invalid byte in a later frame fails the connection with 1007.

use wsbox_tests::raw::{close_payload, frame, RawServer};
use wsbox_tests::{probe, PyPeer};

#[tokio::test]
async fn sent_fragments_arrive_as_one_message() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "send-frag:text:hel:0",
            "send-frag:text:lo:1",
            "recv",
            "send-frag:binary:abc:0",
            "send-frag:binary:def:1",
            "recv",
            "close:1000",
        ],
    )
    .await;
    assert_eq!(out.results("recv")[0], r#"ok(text "hello")"#);
    assert!(
        out.results("recv")[1].starts_with("ok(binary 6 bytes"),
        "{:?}",
        out.lines
    );
    let text = peer.next("message").await;
    assert_eq!(
        (text["type"].as_str(), text["data"].as_str()),
        (Some("text"), Some("hello"))
    );
    let binary = peer.next("message").await;
    assert_eq!(
        (binary["type"].as_str(), binary["len"].as_u64()),
        (Some("binary"), Some(6))
    );
}

#[tokio::test]
async fn utf8_may_split_across_fragments_but_invalid_pieces_are_refused_and_not_sent() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "send-frag-hex:text:e2:0",
            "send-frag-hex:text:ff:0",
            "send-frag-hex:text:82:0",
            "send-frag-hex:text:c3:1",
            "send-frag-hex:text:ac:1",
            "recv",
            "close:1000",
        ],
    )
    .await;
    assert_eq!(out.result("send-frag-hex:text:e2:0"), "ok");
    assert!(out
        .result("send-frag-hex:text:ff:0")
        .starts_with("err(invalid-parameter: "));
    assert_eq!(out.result("send-frag-hex:text:82:0"), "ok");
    // A final piece that leaves a sequence incomplete is refused too.
    assert!(out
        .result("send-frag-hex:text:c3:1")
        .starts_with("err(invalid-parameter: "));
    assert_eq!(out.result("send-frag-hex:text:ac:1"), "ok");
    assert_eq!(out.result("recv"), r#"ok(text "€")"#);
    let message = peer.next("message").await;
    assert_eq!(message["data"], "€");
    assert_eq!(message["len"], 3);
}

#[tokio::test]
async fn fragment_kinds_and_states_are_enforced() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "send-frag:text:a:0",
            "send-frag:binary:b:1",
            "send-text:whole",
            "ping:still fine",
            "send-frag:text:b:1",
            "recv",
            "shutdown:1000",
            "send-frag:text:c:1",
        ],
    )
    .await;
    assert!(out
        .result("send-frag:binary:b:1")
        .starts_with("err(invalid-parameter: "));
    assert!(out
        .result("send-text:whole")
        .starts_with("err(invalid-state: "));
    assert_eq!(out.result("ping:still fine"), "ok");
    assert_eq!(out.result("send-frag:text:b:1"), "ok");
    assert_eq!(out.result("recv"), r#"ok(text "ab")"#);
    assert!(out
        .result("send-frag:text:c:1")
        .starts_with("err(invalid-state: "));
    let message = peer.next("message").await;
    assert_eq!(message["data"], "ab");
}

#[tokio::test]
async fn fragmented_messages_from_the_peer_are_reassembled_by_receive() {
    let mut peer = PyPeer::start(&["send-fragments", "text", "5"]).await;
    let out = probe(peer.port, &peer.url("/"), &["recv", "close:1000"]).await;
    assert_eq!(
        out.result("recv"),
        r#"ok(text "frag0frag1frag2frag3frag4")"#
    );
    peer.next("closed").await;
}

#[tokio::test]
async fn receive_fragment_streams_in_bounded_pieces() {
    let peer = PyPeer::start(&["send-fragments", "binary", "5"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["recv-all-frags:300", "close:1000"],
    )
    .await;
    let result = out.result("recv-all-frags:300");
    assert!(
        result.starts_with("ok(message binary 5000 bytes in "),
        "{result}"
    );
    assert!(result.ends_with("max=300 ok)"), "{result}");
}

#[tokio::test]
async fn receive_in_the_middle_of_a_fragmented_read_is_invalid_state() {
    let peer = PyPeer::start(&["send-big", "binary", "1000"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "recv-frag:0",
            "recv-frag:100",
            "recv",
            "recv-all-frags:1000",
            "close:1000",
        ],
    )
    .await;
    assert!(out
        .result("recv-frag:0")
        .starts_with("err(invalid-parameter: "));
    assert_eq!(
        out.result("recv-frag:100"),
        "ok(fragment binary 100 bytes final=false)"
    );
    assert!(
        out.result("recv").starts_with("err(invalid-state: "),
        "{}",
        out.result("recv")
    );
    assert!(out
        .result("recv-all-frags:1000")
        .starts_with("ok(message binary 900 bytes in 1 pieces"));
}

/// `€` (E2 82 AC) as a text frame and two continuation frames, one byte
/// each.
fn euro_in_three_frames() -> Vec<u8> {
    [
        frame(0x01, &[0xe2], None),
        frame(0x00, &[0x82], None),
        frame(0x80, &[0xac], None),
    ]
    .concat()
}

#[tokio::test]
async fn inbound_utf8_split_across_frames_arrives_whole() {
    let bytes = [
        euro_in_three_frames(),
        euro_in_three_frames(),
        frame(0x88, &close_payload(1000, b"done"), None),
    ]
    .concat();
    let server = RawServer::sending(bytes).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(
        server.port,
        &url,
        &["recv", "recv-all-frags:1", "recv", "close:1000"],
    )
    .await;
    assert_eq!(
        out.steps()[1..],
        [
            ("recv", r#"ok(text "€")"#),
            (
                "recv-all-frags:1",
                "ok(message text 3 bytes in 3 pieces max=1 ok)"
            ),
            ("recv", r#"ok(close 1000 "done")"#),
            ("close:1000", "ok"),
        ]
    );
    // The connection was never failed: the server got the guest's answer.
    assert_eq!(server.answer().await, Some(Some(1000)));
}

#[tokio::test]
async fn inbound_utf8_split_piece_by_piece_has_the_final_flag_on_the_last() {
    let bytes = [
        euro_in_three_frames(),
        frame(0x88, &close_payload(1000, b""), None),
    ]
    .concat();
    let server = RawServer::sending(bytes).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(
        server.port,
        &url,
        &[
            "recv-frag:1",
            "recv-frag:1",
            "recv-frag:1",
            "recv-frag:1",
            "close:1000",
        ],
    )
    .await;
    assert_eq!(
        out.results("recv-frag:1"),
        [
            "ok(fragment text 1 bytes final=false)",
            "ok(fragment text 1 bytes final=false)",
            "ok(fragment text 1 bytes final=true)",
            r#"ok(close 1000 "")"#,
        ]
    );
    assert_eq!(out.result("close:1000"), "ok");
    assert_eq!(server.answer().await, Some(Some(1000)));
}

#[tokio::test]
async fn an_invalid_byte_in_a_later_fragment_fails_the_connection_with_1007() {
    // E2 82 is a valid start; FF in the third frame can never be UTF-8.
    let bytes = [
        frame(0x01, &[0xe2], None),
        frame(0x00, &[0x82], None),
        frame(0x80, &[0xff], None),
    ]
    .concat();
    for steps in [["recv", "query"], ["recv-all-frags:1", "query"]] {
        let server = RawServer::sending(bytes.clone()).await;
        let url = format!("ws://127.0.0.1:{}/", server.port);
        let out = probe(server.port, &url, &steps).await;
        assert!(
            out.result(steps[0]).starts_with("err(protocol-error: "),
            "{:?}",
            out.lines
        );
        assert_eq!(out.result("query"), "err(aborted)", "{:?}", out.lines);
        assert_eq!(server.answer().await, Some(Some(1007)), "{steps:?}");
    }
}
