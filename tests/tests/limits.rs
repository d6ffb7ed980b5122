//! Message limits: a 16 MiB round trip works, and an inbound message or frame over the limit closes with 1009 and gives message-too-big.

use wsbox::{Config, Limits};
use wsbox_tests::{allow, close_of, probe, probe_with, PyPeer};

#[tokio::test]
async fn a_16_mib_message_round_trips() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["send-binary:16777216", "recv", "close:1000"],
    )
    .await;
    assert_eq!(out.result("recv"), "ok(binary 16777216 bytes ok)");
    let message = peer.next("message").await;
    assert_eq!(message["len"], 16777216);
    assert_eq!(message["pattern_ok"], true);
}

#[tokio::test]
async fn one_byte_over_the_default_limit_is_closed_with_1009() {
    let mut peer = PyPeer::start(&["send-big", "binary", "16777217"]).await;
    let out = probe(peer.port, &peer.url("/"), &["recv", "query", "recv"]).await;
    assert_eq!(out.results("recv"), ["err(message-too-big)", "err(closed)"]);
    assert_eq!(out.result("query"), "err(aborted)");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(1009));
}

fn limited(port: u16, message: usize, frame: usize) -> Config {
    Config {
        limits: Limits {
            max_message_size: message,
            max_frame_size: frame,
            ..Limits::default()
        },
        ..allow(port)
    }
}

#[tokio::test]
async fn configured_message_and_frame_limits_close_with_1009() {
    // Fragments of 1000 bytes: the message limit trips, not the frame limit.
    let mut peer = PyPeer::start(&["send-fragments", "binary", "5"]).await;
    let out = probe_with(limited(peer.port, 4000, 1 << 20), &peer.url("/"), &["recv"]).await;
    assert_eq!(out.result("recv"), "err(message-too-big)");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(1009));

    let mut peer = PyPeer::start(&["send-big", "binary", "100000"]).await;
    let out = probe_with(
        limited(peer.port, 1 << 20, 65536),
        &peer.url("/"),
        &["recv-frag:10"],
    )
    .await;
    assert_eq!(out.result("recv-frag:10"), "err(message-too-big)");
    let closed = peer.next("closed").await;
    assert_eq!(close_of(&closed["rcvd"]).map(|c| c.0), Some(1009));
}
