//! The 123-byte close reason limit counts UTF-8 bytes, not characters, with multi-byte characters on both sides of the limit: in our close (123 bytes go out exactly, 124 are invalid-parameter and nothing is sent) and in the peer's (123 bytes come back whole, 124 are a protocol error, 1002).

use wsbox_tests::raw::{close_payload, frame, RawServer};
use wsbox_tests::{probe, RustPeer, Seen};

/// Runs `close:4000:{refused}` then `close:4001:{allowed}` and checks that
/// only the second went out, with its reason byte for byte.
async fn refused_then_allowed(refused: &str, allowed: &str) {
    assert_eq!((refused.len(), allowed.len()), (124, 123));
    // Fewer characters than bytes on both sides: a limit counted in
    // characters would let both through.
    assert!(refused.chars().count() < 123 && allowed.chars().count() < 123);
    let mut peer = RustPeer::echo().await;
    let refused_step = format!("close:4000:{refused}");
    let allowed_step = format!("close:4001:{allowed}");
    let out = probe(
        peer.port,
        &peer.url(),
        &[&refused_step, "query", &allowed_step, "query"],
    )
    .await;
    let result = out.result(&refused_step);
    assert!(
        result.starts_with("err(invalid-parameter: "),
        "{} bytes: {result}",
        refused.len()
    );
    assert_eq!(out.result(&allowed_step), "ok");
    // tokio-tungstenite echoes the guest's close.
    assert_eq!(
        out.results("query"),
        [
            "err(not-received)".to_string(),
            format!("ok(4001 {allowed:?})")
        ]
    );
    // The first close frame the peer got is the allowed one.
    assert_eq!(
        peer.next().await,
        Seen::Close(Some((4001, allowed.to_string())))
    );
}

#[tokio::test]
async fn two_byte_characters_61_and_an_ascii_byte_go_out_62_are_refused() {
    refused_then_allowed(&"é".repeat(62), &format!("{}a", "é".repeat(61))).await;
}

#[tokio::test]
async fn three_byte_characters_41_go_out_41_and_an_ascii_byte_are_refused() {
    refused_then_allowed(&format!("{}a", "€".repeat(41)), &"€".repeat(41)).await;
}

#[tokio::test]
async fn a_123_byte_multibyte_reason_from_the_peer_is_returned_whole() {
    let reason = format!("{}a", "é".repeat(61));
    assert_eq!(reason.len(), 123);
    let server =
        RawServer::sending(frame(0x88, &close_payload(4002, reason.as_bytes()), None)).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(server.port, &url, &["recv", "query", "close:1000"]).await;
    assert_eq!(out.result("recv"), format!("ok(close 4002 {reason:?})"));
    assert_eq!(out.result("query"), format!("ok(4002 {reason:?})"));
    assert_eq!(out.result("close:1000"), "ok");
    assert_eq!(server.answer().await, Some(Some(1000)));
}

#[tokio::test]
async fn a_124_byte_multibyte_reason_from_the_peer_is_a_protocol_error() {
    // Cut at 123 bytes, this reason would end in the middle of an `é`.
    let reason = "é".repeat(62);
    assert_eq!(reason.len(), 124);
    let server =
        RawServer::sending(frame(0x88, &close_payload(4002, reason.as_bytes()), None)).await;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = probe(server.port, &url, &["recv", "query"]).await;
    assert!(
        out.result("recv").starts_with("err(protocol-error: "),
        "{:?}",
        out.lines
    );
    assert_eq!(out.result("query"), "err(aborted)");
    assert_eq!(server.answer().await, Some(Some(1002)));
}
