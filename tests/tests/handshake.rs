//! connect: subprotocols and extra headers reach the server, a non-101 answer is handshake-rejected, and bad URLs and options fail before any network use.

use wsbox_tests::{probe, CountingListener, PyPeer};

#[tokio::test]
async fn subprotocol_and_headers_are_negotiated() {
    let mut peer = PyPeer::start(&["subprotocol", "chat.v2"]).await;
    let out = probe(
        peer.port,
        &peer.url("/room?id=7"),
        &[
            "--protocol",
            "chat.v1",
            "--protocol",
            "chat.v2",
            "--header",
            "X-Token=abc 123",
            "protocol",
            "close:1000",
        ],
    )
    .await;
    assert_eq!(out.result("connect"), "ok protocol=chat.v2");
    assert_eq!(out.result("protocol"), "some(chat.v2)");
    let connect = peer.next("connect").await;
    assert_eq!(connect["path"], "/room?id=7");
    assert_eq!(connect["headers"]["x-token"], "abc 123");
    assert_eq!(
        connect["headers"]["sec-websocket-protocol"],
        "chat.v1, chat.v2"
    );
    assert_eq!(connect["subprotocol"], "chat.v2");
}

#[tokio::test]
async fn no_subprotocol_when_none_is_offered() {
    let peer = PyPeer::start(&["echo"]).await;
    let out = probe(peer.port, &peer.url("/"), &["protocol", "close:1000"]).await;
    assert_eq!(out.result("connect"), "ok protocol=none");
    assert_eq!(out.result("protocol"), "none");
}

#[tokio::test]
async fn a_403_answer_is_handshake_rejected() {
    let mut peer = PyPeer::start(&["reject", "403"]).await;
    let out = probe(peer.port, &peer.url("/private"), &["query"]).await;
    assert_eq!(out.result("connect"), "err(handshake-rejected: 403)");
    let rejected = peer.next("rejected").await;
    assert_eq!(rejected["status"], 403);
    assert_eq!(rejected["path"], "/private");
}

#[tokio::test]
async fn bad_urls_are_invalid_url_and_touch_no_network() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("ws://127.0.0.1:{port}/#fragment"),
        "not a url".to_string(),
        format!("127.0.0.1:{port}"),
        "ws://".to_string(),
        format!("ws://user:pw@127.0.0.1:{port}/"),
    ] {
        let out = probe(port, &url, &[]).await;
        assert!(
            out.result("connect").starts_with("err(invalid-url: "),
            "{url}: {}",
            out.result("connect")
        );
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn bad_options_are_invalid_parameter_and_touch_no_network() {
    let listener = CountingListener::start().await;
    let url = format!("ws://127.0.0.1:{}/", listener.port);
    for options in [
        &["--header", "Host=evil.example"][..],
        &["--header", "Sec-WebSocket-Key=abc"],
        &["--header", "Bad Name=x"],
        &["--protocol", "two words"],
        &["--protocol", "p", "--protocol", "p"],
    ] {
        let out = probe(listener.port, &url, options).await;
        assert!(
            out.result("connect").starts_with("err(invalid-parameter: "),
            "{options:?}: {}",
            out.result("connect")
        );
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_the_upgrade_hits_the_connect_timeout() {
    use std::time::{Duration, Instant};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let (_tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let config = wsbox::Config {
        limits: wsbox::Limits {
            connect_timeout: Duration::from_millis(300),
            ..wsbox::Limits::default()
        },
        ..wsbox_tests::allow(port)
    };
    let started = Instant::now();
    let out = wsbox_tests::probe_with(config, &format!("ws://127.0.0.1:{port}/"), &[]).await;
    assert_eq!(out.result("connect"), "err(timeout)");
    assert!(started.elapsed() < Duration::from_secs(10));
    silent.abort();
}
