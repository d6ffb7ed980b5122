//! Close-code validation: every class of code that may not be sent and the 123-byte reason limit give invalid-parameter, send nothing, and leave the connection usable; every allowed code reaches the peer.

use wsbox_tests::{close_of, probe, PyPeer};

#[tokio::test]
async fn codes_that_may_not_be_sent_are_refused_before_anything_is_sent() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let refused = [
        "close:0",
        "close:999",
        "close:1004",
        "close:1005",
        "close:1006",
        "close:1014",
        "close:1015",
        "close:1016",
        "close:2000",
        "close:2999",
        "close:5000",
        "close:65535",
        "shutdown:1005",
        "shutdown:999",
        "shutdown:1006",
        "close-long:1000:124",
        "shutdown-long:4000:124",
        "close-reason-only:why",
        "shutdown-reason-only:why",
    ];
    let mut steps: Vec<&str> = refused.to_vec();
    steps.extend([
        "send-text:still usable",
        "recv",
        "close-long:4999:123",
        "query",
    ]);
    let out = probe(peer.port, &peer.url("/"), &steps).await;
    for step in refused {
        let result = out.result(step);
        assert!(
            result.starts_with("err(invalid-parameter: "),
            "{step} -> {result}"
        );
    }
    assert_eq!(out.result("recv"), r#"ok(text "still usable")"#);
    assert_eq!(out.result("close-long:4999:123"), "ok");
    let message = peer.next("message").await;
    assert_eq!(message["data"], "still usable");
    let closed = peer.next("closed").await;
    // The only close frame the peer ever got is the valid one.
    assert_eq!(close_of(&closed["rcvd"]), Some((4999, "x".repeat(123))));
    assert_eq!(closed["clean"], true);
}

#[tokio::test]
async fn every_allowed_code_reaches_the_peer() {
    let mut peer = PyPeer::start(&["echo"]).await;
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999,
    ] {
        let step = format!("close:{code}:r{code}");
        let out = probe(peer.port, &peer.url("/"), &[&step]).await;
        assert_eq!(out.result(&step), "ok", "{code}");
        let closed = peer.next("closed").await;
        assert_eq!(close_of(&closed["rcvd"]), Some((code, format!("r{code}"))));
    }
}
