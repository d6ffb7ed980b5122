//! wsbox serve over wss://: tokio-tungstenite, Python `websockets` and headless Chromium, each trusting only a CA made in the test, talk to a handler through TLS; a client that ends TCP without TLS's close_notify ends like any TCP end (`aborted`, counted as `ended`); a client that speaks plain text (or no TLS at all) on the TLS port fails cleanly, is counted as a TLS handshake failure and never reaches a guest; a client still in its TLS handshake holds a `--max-handshakes` slot.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tungstenite::Message;
use wsbox::{Route, ServeConfig};
use wsbox_tests::browser::{run_browser_with, Launch};
use wsbox_tests::pki::TestPki;
use wsbox_tests::{close_of, event, guest, next_message, py_client, serve_routes, within, Served};

/// `name` served on every path over TLS with `pki`'s certificate.
async fn serve_tls(name: &str, pki: &TestPki, config: ServeConfig) -> (Served, wsbox::Server) {
    let config = ServeConfig {
        tls: Some(pki.server_config()),
        ..config
    };
    serve_routes(vec![Route::new("/", guest(name))], config).await
}

/// A value of the server's metrics text, `0` when the sample is absent.
fn sample(server: &wsbox::Server, name: &str) -> f64 {
    let text = server.metrics().encode();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn tokio_tungstenite_echoes_over_wss() {
    let pki = TestPki::new();
    let (mut served, _server) = serve_tls("close-reporter", &pki, ServeConfig::default()).await;
    let mut ws = pki.connect(served.port, "/secure").await;
    // The client offered h2 and http/1.1: the server picks HTTP/1.1, the
    // protocol an upgrade runs on.
    assert_eq!(
        ws.get_ref().get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    wsbox_tests::send(&mut ws, Message::text("over tls")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("over tls"));
    within(
        "the close",
        ws.close(Some(tungstenite::protocol::CloseFrame {
            code: 3000.into(),
            reason: "tls bye".into(),
        })),
    )
    .await
    .unwrap();
    wsbox_tests::drain(&mut ws).await;
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with(r#"query-close-status = ok(3000 "tls bye")"#),
        "{line}"
    );
}

/// A TLS client that ends TCP with neither a close frame nor TLS's
/// `close_notify` has ended TCP: `aborted` for the guest, counted as
/// `ended`, not as a socket failure.
#[tokio::test]
async fn a_tls_client_gone_without_close_notify_ended_tcp() {
    let pki = TestPki::new();
    let (mut served, server) = serve_tls("close-reporter", &pki, ServeConfig::default()).await;
    let mut ws = pki.connect(served.port, "/gone").await;
    wsbox_tests::send(&mut ws, Message::text("hi")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("hi"));
    // rustls sends no close_notify when dropped.
    drop(ws);
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with("query-close-status = err(aborted)"),
        "{line}"
    );
    within("the abort to be counted", async {
        while sample(&server, r#"wsbox_aborts_total{reason="ended"}"#) != 1.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(sample(&server, r#"wsbox_aborts_total{reason="io"}"#), 0.0);
}

#[tokio::test]
async fn python_websockets_echoes_over_wss_and_sees_the_close() {
    let pki = TestPki::new();
    let (mut served, _server) = serve_tls("close-reporter", &pki, ServeConfig::default()).await;
    let ca = pki.ca.to_str().unwrap();
    let events = py_client(&["--ca", ca, &served.wss_url("/py"), "echo-check", "2"]).await;
    let echoed: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(echoed, ["msg 0", "msg 1"], "{events:#?}");
    let closed = event(&events, "closed");
    assert_eq!(
        close_of(&closed["rcvd"]),
        Some((4000, "seen:1000:py done".into()))
    );
    assert_eq!(closed["clean"], true);
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with(r#"query-close-status = ok(1000 "py done")"#),
        "{line}"
    );
    // Python trusts only the test's CA: without it, the certificate is
    // refused before any upgrade.
    let refused = py_client(&[&served.wss_url("/py"), "echo-check", "1"]).await;
    let error = event(&refused, "error")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("CERTIFICATE_VERIFY_FAILED"), "{error}");
}

#[tokio::test]
async fn chromium_trusting_only_the_test_ca_echoes_over_wss() {
    let pki = TestPki::new();
    let (served, _server) = serve_tls("close-reporter", &pki, ServeConfig::default()).await;
    let launch = Launch {
        trusted_spki: vec![pki.ca_spki_sha256.clone()],
        ..Launch::default()
    };
    let report = run_browser_with(launch, &served.wss_url("/browser"), "echo", &[])
        .await
        .json;
    assert_eq!(report["opened"], true, "{report:#}");
    assert_eq!(report["messages"][0]["data"], "hello from the browser");
    assert_eq!(report["messages"][1]["len"], 1000, "{report:#}");
    assert_eq!(report["close"]["code"], 4001, "{report:#}");
    assert_eq!(report["close"]["wasClean"], true);

    // The same browser with another CA's key trusted refuses the
    // certificate: the trust above came from the flag, not from accepting
    // anything.
    let other = TestPki::new();
    let launch = Launch {
        trusted_spki: vec![other.ca_spki_sha256.clone()],
        ..Launch::default()
    };
    let report = run_browser_with(launch, &served.wss_url("/browser"), "echo", &[])
        .await
        .json;
    assert_eq!(report["opened"], false, "{report:#}");
    assert_eq!(report["close"]["code"], 1006, "{report:#}");
}

#[tokio::test]
async fn plain_text_on_the_tls_port_fails_cleanly_and_reaches_no_guest() {
    let pki = TestPki::new();
    let config = ServeConfig {
        handshake_timeout: Duration::from_millis(500),
        ..ServeConfig::default()
    };
    let (mut served, server) = serve_tls("close-reporter", &pki, config).await;

    // An HTTP upgrade in plain text: no HTTP answer, the connection ends.
    let mut tcp = within(
        "a TCP connection",
        tokio::net::TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    let request = "GET /plain HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    within("the request", tcp.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = within("the end of the connection", tcp.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plain-text client gets no HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // A plain ws:// client fails its handshake instead of hanging.
    let plain = tokio_tungstenite::connect_async(served.url("/plain"));
    assert!(within("a ws:// connect to the TLS port", plain)
        .await
        .is_err());
    // A client that connects and says nothing is dropped at the handshake
    // timeout.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", served.port))
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let ended = within("the silent client's end", silent.read(&mut byte)).await;
    assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");

    assert_eq!(
        sample(&server, r#"wsbox_handshake_failures_total{reason="tls"}"#),
        3.0,
        "{}",
        server.metrics().encode()
    );
    assert_eq!(sample(&server, "wsbox_instantiate_seconds_count"), 0.0);
    assert!(served.logged().is_empty(), "no guest ran");

    // The server still serves TLS clients (close-reporter closes first
    // when the first message says so).
    let mut ws = pki.connect(served.port, "/after").await;
    wsbox_tests::send(&mut ws, Message::text("close-me 4000 bye")).await;
    let close = loop {
        match next_message(&mut ws).await {
            Message::Close(frame) => {
                break frame.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            _ => continue,
        }
    };
    assert_eq!(close, Some((4000, "bye".into())));
    assert!(served.log_line("upgrade /after").await.contains("/after"));
}

/// A `wss://` client trusting `pki`'s CA, or the error that ended its TLS
/// or WebSocket handshake.
async fn try_wss(pki: &TestPki, port: u16) -> std::io::Result<wsbox_tests::pki::TlsClient> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(pki.client_config())
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await?;
    let url = format!("wss://localhost:{port}/");
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .map_err(std::io::Error::other)?;
    Ok(ws)
}

/// A connection that is still in its TLS handshake holds a slot of
/// `--max-handshakes`: with one slot, a silent TCP client on the TLS port
/// makes the next `wss://` client be closed at once (counted as
/// `over_limit`), and once it is gone a `wss://` client gets through.
#[tokio::test]
async fn a_pending_tls_handshake_counts_against_max_handshakes() {
    let pki = TestPki::new();
    let config = ServeConfig {
        max_handshakes: 1,
        handshake_timeout: Duration::from_secs(60),
        ..ServeConfig::default()
    };
    let (served, server) = serve_tls("echo", &pki, config).await;
    let silent = within(
        "a TCP connection",
        tokio::net::TcpStream::connect(("127.0.0.1", served.port)),
    )
    .await
    .unwrap();
    // Give the server time to accept it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refused = tokio::time::timeout(Duration::from_secs(5), try_wss(&pki, served.port))
        .await
        .expect("the second client was closed long before the handshake timeout");
    assert!(
        refused.is_err(),
        "a second client got through past the limit"
    );
    assert_eq!(
        sample(
            &server,
            r#"wsbox_handshake_failures_total{reason="over_limit"}"#
        ),
        1.0,
        "{}",
        server.metrics().encode()
    );

    drop(silent);
    let mut ws = within("a wss:// client after the silent one left", async {
        loop {
            match try_wss(&pki, served.port).await {
                Ok(ws) => break ws,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    wsbox_tests::send(&mut ws, Message::text("through")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("through"));
    drop(ws);
    served.shutdown().await;
}
