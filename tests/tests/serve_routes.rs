//! A server with routes from a manifest (the commented example `host/wsbox.example.toml`): each path prefix goes to its own component with its own origins and limits, the longest prefix on a segment boundary wins, and a path that no route takes gets 404 before any instance is made.

use std::path::{Path, PathBuf};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;
use wsbox::{Config, InstanceLimits, Manifest, ServeConfig};
use wsbox_tests::{guest, http_get, next_message, repo, send, serve_routes, within, ClientStream};

/// A folder with the manifest `text` and the sample guests it names.
fn folder(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["echo", "router"] {
        std::fs::copy(guest(name), dir.path().join(format!("{name}.wasm"))).unwrap();
    }
    let file = dir.path().join("wsbox.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// Serves the manifest at `file`, as `wsbox serve --config` does.
async fn serve_manifest(file: &Path) -> (wsbox_tests::Served, wsbox::Server) {
    let manifest = Manifest::load(file).unwrap_or_else(|e| panic!("{e}"));
    let routes = manifest
        .routes
        .iter()
        .map(|route| {
            route
                .to_route(&Config::default(), &InstanceLimits::default())
                .unwrap()
        })
        .collect();
    serve_routes(routes, ServeConfig::default()).await
}

/// Connects with an `Origin` and offered subprotocols.
async fn connect(url: &str, origin: &str, protocol: Option<&str>) -> ClientStream {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (ws, _) = within("the connection", tokio_tungstenite::connect_async(request))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    ws
}

fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn instances(server: &wsbox::Server) -> String {
    let text = server.metrics().encode();
    text.lines()
        .find_map(|line| line.strip_prefix("wsbox_instantiate_seconds_count "))
        .unwrap_or("0")
        .to_string()
}

#[tokio::test]
async fn the_example_manifest_routes_each_path_to_its_component_and_rules() {
    let example = std::fs::read_to_string(repo().join("host/wsbox.example.toml")).unwrap();
    let (_dir, file) = folder(&example);
    let (served, server) = serve_manifest(&file).await;

    // /chat: router, for browser pages of the allowed origins only.
    let mut chat = connect(
        &served.url("/chat"),
        "http://localhost:5173",
        Some("chat.v1"),
    )
    .await;
    send(&mut chat, Message::text("hi")).await;
    assert_eq!(next_message(&mut chat).await, Message::text("chat: hi"));
    // Its max-message-size is 64 KiB: more closes with 1009.
    send(&mut chat, Message::binary(vec![0u8; 100 << 10])).await;
    let (_, close) = wsbox_tests::read_until_close(&mut chat).await;
    assert_eq!(close.map(|c| c.0), Some(1009));
    let made = instances(&server);
    let evil = upgrade(
        "/chat",
        "Origin: https://evil.example\r\nSec-WebSocket-Protocol: chat.v1\r\n",
    );
    assert_eq!(http_get(served.port, &evil).await.0, 403);
    // require-origin: no Origin is refused too.
    let bare = upgrade("/chat", "Sec-WebSocket-Protocol: chat.v1\r\n");
    assert_eq!(http_get(served.port, &bare).await.0, 403);
    assert_eq!(instances(&server), made, "no instance for a refused origin");

    // Everything else: echo, with the default limits and any origin;
    // /chatroom is not under /chat.
    for path in ["/", "/chatroom", "/other/path?q=1"] {
        let mut ws = connect(&served.url(path), "https://evil.example", None).await;
        send(&mut ws, Message::binary(vec![7u8; 100 << 10])).await;
        assert_eq!(
            next_message(&mut ws).await,
            Message::binary(vec![7u8; 100 << 10]),
            "{path}"
        );
    }
    let text = server.metrics().encode();
    assert!(
        text.contains("wsbox_connections_total{route=\"/\"} 3\n")
            && text.contains("wsbox_connections_total{route=\"/chat\"} 1\n"),
        "{text}"
    );
    served.shutdown().await;
}

#[tokio::test]
async fn a_path_without_a_route_gets_404_before_any_instance() {
    let (_dir, file) = folder(
        "[[route]]\npath = \"/chat\"\ncomponent = \"router.wasm\"\n\n\
         [[route]]\npath = \"/echo/\"\ncomponent = \"echo.wasm\"\n",
    );
    let (served, server) = serve_manifest(&file).await;
    for path in ["/", "/chatroom", "/ech", "/nowhere/chat"] {
        let (status, answer) = http_get(served.port, &upgrade(path, "")).await;
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(answer.contains("No route serves this path"), "{answer}");
    }
    assert_eq!(instances(&server), "0");
    let mut ws = connect(&served.url("/echo/deep"), "https://x.example", None).await;
    send(&mut ws, Message::text("routed")).await;
    assert_eq!(next_message(&mut ws).await, Message::text("routed"));
    assert_eq!(instances(&server), "1");
}
