//! Handshake headers follow RFC 9110 on both sides: a guest's `connect` and a handler's accept may not set reserved headers (the handshake's, hop-by-hop, framing, `Proxy-*`), control characters other than HTAB in a value, or more than 8 KiB of headers; a refused `connect` touches no network, a refused accept is HTTP 500 and a log line.

use futures_util::{SinkExt, StreamExt};
use tungstenite::Message;
use wsbox::ServeConfig;
use wsbox_tests::{probe, serve, with_logs, within, CountingListener, PyPeer, WAIT};

/// The host's limit on extra header bytes, counted as `name: value\r\n`.
const LIMIT: usize = 8 * 1024;

/// `--header` arguments for eight `X-Fill-N` headers of 1 KiB each as
/// `name: value\r\n` (8 KiB in all), each value with a tab in it, plus
/// `extra` bytes on the last one.
fn header_bytes(extra: usize) -> Vec<String> {
    (0..8)
        .flat_map(|n| {
            let fill = 1024 - "X-Fill-0: a\t\r\n".len() + if n == 7 { extra } else { 0 };
            [
                "--header".to_string(),
                format!("X-Fill-{n}=a\t{}", "a".repeat(fill)),
            ]
        })
        .collect()
}

/// Runs `close-probe` against the listener with `options` and returns the
/// connect result.
async fn connect_with(listener: &CountingListener, options: &[String]) -> String {
    let url = format!("ws://127.0.0.1:{}/", listener.port);
    let args: Vec<&str> = options.iter().map(String::as_str).collect();
    probe(listener.port, &url, &args)
        .await
        .result("connect")
        .to_string()
}

#[tokio::test]
async fn reserved_headers_are_refused_before_any_network_use() {
    let listener = CountingListener::start().await;
    for name in [
        "Host",
        "Upgrade",
        "Connection",
        "Content-Length",
        "Sec-WebSocket-Extensions",
        "Transfer-Encoding",
        "TE",
        "te",
        "Trailer",
        "Expect",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "proxy-anything",
    ] {
        let result = connect_with(&listener, &["--header".into(), format!("{name}=x")]).await;
        assert!(
            result.starts_with(&format!("err(invalid-parameter: header {name} is reserved")),
            "{name}: {result}"
        );
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn control_characters_in_a_value_are_refused_before_any_network_use() {
    let listener = CountingListener::start().await;
    // NUL cannot travel in a command-line argument; the unit tests cover it.
    for byte in [0x01u8, 0x08, 0x0a, 0x0b, 0x0d, 0x1b, 0x1f, 0x7f] {
        let value = format!("a{}b", char::from(byte));
        let result = connect_with(&listener, &["--header".into(), format!("X-Note={value}")]).await;
        assert!(
            result.starts_with(&format!(
                "err(invalid-parameter: the value of header X-Note contains the control character 0x{byte:02x}"
            )),
            "0x{byte:02x}: {result}"
        );
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn more_than_8_kib_of_headers_is_refused_before_any_network_use() {
    let listener = CountingListener::start().await;
    let result = connect_with(&listener, &header_bytes(1)).await;
    assert!(
        result.starts_with("err(invalid-parameter: the extra headers take 8193 bytes")
            && result.contains(&format!("limit of {LIMIT} bytes")),
        "{result}"
    );
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn exactly_8_kib_of_headers_with_tabs_reach_the_peer() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let mut args = header_bytes(0);
    args.extend(["close:1000".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = probe(peer.port, &peer.url("/"), &args).await;
    assert_eq!(out.result("connect"), "ok protocol=none");
    let connect = peer.next("connect").await;
    for n in 0..8 {
        let value = connect["headers"][format!("x-fill-{n}")].as_str().unwrap();
        assert!(value.starts_with("a\taaa"), "x-fill-{n}: {value:?}");
        let expected = 1024 - "X-Fill-0: \r\n".len();
        assert_eq!(value.len(), expected, "x-fill-{n}");
    }
}

/// A tokio-tungstenite client's upgrade to `path` on the `faulty` handler
/// fails with this HTTP status.
async fn refused_status(url: &str) -> u16 {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the server answered in time")
    {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
        Ok(_) => panic!("{url}: the upgrade succeeded"),
    }
}

#[tokio::test]
async fn a_handler_setting_bad_headers_gets_the_client_500_and_a_log_line() {
    let served = serve("faulty", ServeConfig::default()).await;
    for (path, logged) in [
        ("/bad-header-te", "header TE is reserved"),
        (
            "/bad-header-control",
            "the value of header X-Note contains the control character 0x07",
        ),
        ("/bad-header-oversize", "the extra headers take 8193 bytes"),
    ] {
        let (status, logs) = with_logs(refused_status(&served.url(path))).await;
        assert_eq!(status, 500, "{path}");
        assert!(
            logs.contains("the handler's accept is invalid") && logs.contains(logged),
            "{path}: {logs}"
        );
    }
    // Exactly at the limit, with tabs, the 101 answer carries them.
    let (mut ws, response) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(served.url("/big-headers")),
    )
    .await
    .expect("upgraded in time")
    .expect("upgraded");
    for n in 0..8 {
        let value = response.headers()[format!("x-fill-{n}").as_str()].as_bytes();
        assert!(value.starts_with(b"a\taaa"), "x-fill-{n}");
        assert_eq!(value.len(), 1024 - "X-Fill-0: \r\n".len(), "x-fill-{n}");
    }
    within("a send", ws.send(Message::text("still fine")))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("echo in time");
    assert_eq!(echoed.unwrap().unwrap(), Message::text("still fine"));
}
