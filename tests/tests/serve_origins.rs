//! wsbox serve with --allow-origin: a browser page from an allowed origin opens a WebSocket, a page from another origin (another port) gets 403 before any instance is made; clients without an Origin are accepted unless --require-origin is set.

use wsbox::{OriginPolicy, Route, ServeConfig};
use wsbox_tests::browser::{run_browser_with, Launch};
use wsbox_tests::{event, guest, http_get, py_client, serve_routes};

/// A page listener on 127.0.0.1: the page's origin is
/// `http://127.0.0.1:PORT`.
async fn page() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, origin)
}

/// close-reporter on every path, which logs each `upgrade` it is asked.
async fn serve_with(origins: OriginPolicy) -> (wsbox_tests::Served, wsbox::Server) {
    let route = Route {
        origins,
        ..Route::new("/", guest("close-reporter"))
    };
    serve_routes(vec![route], ServeConfig::default()).await
}

/// How many instances the server made so far.
fn instances(server: &wsbox::Server) -> String {
    let text = server.metrics().encode();
    text.lines()
        .find_map(|line| line.strip_prefix("wsbox_instantiate_seconds_count "))
        .unwrap_or("0")
        .to_string()
}

#[tokio::test]
async fn a_page_from_an_allowed_origin_opens_and_one_from_another_gets_403() {
    let (allowed_page, allowed) = page().await;
    let (refused_page, refused) = page().await;
    let origins = OriginPolicy::new(&[allowed.as_str()], false).unwrap();
    let (mut served, server) = serve_with(origins).await;
    let url = served.url("/room");

    let launch = Launch {
        page: Some(allowed_page),
        ..Launch::default()
    };
    let report = run_browser_with(launch, &url, "echo", &[]).await.json;
    assert_eq!(report["opened"], true, "{report:#}");
    assert_eq!(report["messages"][0]["data"], "hello from the browser");
    assert_eq!(report["close"]["code"], 4001, "{report:#}");
    let upgrade = served.log_line("upgrade /room").await;
    assert!(
        upgrade.contains("close-reporter: upgrade /room"),
        "{upgrade}"
    );
    served.log_line("query-close-status").await;
    assert_eq!(instances(&server), "1");

    let launch = Launch {
        page: Some(refused_page),
        ..Launch::default()
    };
    let report = run_browser_with(launch, &url, "echo", &[]).await.json;
    assert_eq!(report["opened"], false, "{report:#}");
    assert_eq!(report["close"]["code"], 1006, "{report:#}");
    assert!(served.logged().is_empty(), "no instance was asked");
    assert_eq!(instances(&server), "1", "no instance was made");
    let text = server.metrics().encode();
    assert!(
        text.contains("wsbox_upgrades_total{status=\"403\"} 1\n"),
        "{text}"
    );

    // The same refusal, read raw: 403 with a body that says why.
    let (status, answer) = http_get(
        served.port,
        &format!(
            "GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Origin: {refused}\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("origin"), "{answer}");
    assert_eq!(instances(&server), "1");
}

#[tokio::test]
async fn clients_without_an_origin_pass_unless_it_is_required() {
    let allowed = "https://app.example.com";
    let (mut served, _) = serve_with(OriginPolicy::new(&[allowed], false).unwrap()).await;
    // tokio-tungstenite sends no Origin.
    let mut ws = wsbox_tests::connect(&served.url("/no-origin")).await;
    wsbox_tests::send(&mut ws, tungstenite::Message::text("hi")).await;
    assert_eq!(
        wsbox_tests::next_message(&mut ws).await,
        tungstenite::Message::text("hi")
    );
    served.log_line("upgrade /no-origin").await;
    // Python websockets with an allowed and a refused Origin.
    let events = py_client(&["--origin", allowed, &served.url("/py"), "echo-check", "1"]).await;
    assert_eq!(event(&events, "message")["data"], "msg 0");
    let events = py_client(&[
        "--origin",
        "https://evil.example",
        &served.url("/py"),
        "echo-check",
        "1",
    ])
    .await;
    assert_eq!(event(&events, "rejected")["status"], 403, "{events:#?}");

    let (served, server) = serve_with(OriginPolicy::new(&[allowed], true).unwrap()).await;
    let events = py_client(&[&served.url("/py"), "echo-check", "1"]).await;
    assert_eq!(event(&events, "rejected")["status"], 403, "{events:#?}");
    let events = py_client(&["--origin", allowed, &served.url("/py"), "echo-check", "1"]).await;
    assert_eq!(event(&events, "message")["data"], "msg 0");
    assert_eq!(instances(&server), "1", "only the allowed client got one");
}
