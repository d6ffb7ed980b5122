//! Fragments in both directions: send-fragment (UTF-8 checked across pieces, kinds, states) and receive-fragment (bounded pieces, final flags, no mixing with receive).

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
