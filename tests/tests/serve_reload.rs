//! Server::reload swaps the handler without dropping connections: a connection opened before the reload keeps its instance of the old version, one opened after gets the new one; a component that does not compile or is of the wrong world changes nothing; 1,000 connections held across ten reloads all keep working with the version they started with.

use std::path::{Path, PathBuf};
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;
use wsbox::{Route, ServeConfig};
use wsbox_tests::{
    guest, next_message, read_until_close, send, serve_routes, within, ClientStream,
};

/// Copies `from` over `to` the way a deploy would: written aside, then
/// renamed.
fn install(from: &Path, to: &Path) {
    let aside = to.with_extension("partial");
    std::fs::copy(from, &aside).unwrap();
    std::fs::rename(&aside, to).unwrap();
}

/// Reloads `server` with one route `/` served by `component`.
async fn reload(server: &wsbox::Server, component: &Path) -> wsbox::Result<()> {
    let server = server.clone();
    let routes = vec![Route::new("/", component)];
    within(
        "the reload",
        tokio::task::spawn_blocking(move || server.reload(routes)),
    )
    .await
    .unwrap()
}

/// Echoes `text` on `ws`, then closes with 1000 and gives the close code
/// the handler answered: 1000 from echo, 4000 from close-reporter.
async fn echo_then_close(ws: &mut ClientStream, text: &str) -> Option<u16> {
    send(ws, Message::text(text)).await;
    assert_eq!(next_message(ws).await, Message::text(text));
    let close = CloseFrame {
        code: 1000.into(),
        reason: "done".into(),
    };
    send(ws, Message::Close(Some(close))).await;
    read_until_close(ws).await.1.map(|(code, _)| code)
}

/// A folder with `handler.wasm`, a copy of echo.
fn deployed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("handler.wasm");
    install(&guest("echo"), &handler);
    (dir, handler)
}

#[tokio::test]
async fn old_connections_keep_their_version_and_new_ones_get_the_new_one() {
    let (_dir, handler) = deployed();
    let (mut served, server) =
        serve_routes(vec![Route::new("/", &handler)], ServeConfig::default()).await;
    let mut before = wsbox_tests::connect(&served.url("/before")).await;
    send(&mut before, Message::text("one")).await;
    assert_eq!(next_message(&mut before).await, Message::text("one"));

    install(&guest("close-reporter"), &handler);
    reload(&server, &handler).await.unwrap();

    let mut after = wsbox_tests::connect(&served.url("/after")).await;
    assert!(served
        .log_line("upgrade /after")
        .await
        .contains("close-reporter"));
    // The old connection is still echo's: it answers the close with the
    // client's own code; the new one is close-reporter's.
    assert_eq!(echo_then_close(&mut before, "two").await, Some(1000));
    assert_eq!(echo_then_close(&mut after, "three").await, Some(4000));

    // A file that is not a component: the reload is refused, nothing
    // changes.
    std::fs::write(handler.with_extension("partial"), b"not wasm").unwrap();
    std::fs::rename(handler.with_extension("partial"), &handler).unwrap();
    let err = reload(&server, &handler).await.unwrap_err().to_string();
    assert!(err.contains("handler.wasm"), "{err}");
    // A component of another world: refused too.
    install(&guest("echo-client"), &handler);
    let err = reload(&server, &handler).await.unwrap_err().to_string();
    assert!(err.contains("wsbox:websocket/server"), "{err}");
    // A route path that is not a path: refused.
    let bad = vec![Route::new("chat", guest("echo"))];
    let err = server.reload(bad).unwrap_err().to_string();
    assert!(err.contains("start it with `/`"), "{err}");

    let mut later = wsbox_tests::connect(&served.url("/later")).await;
    assert!(served
        .log_line("upgrade /later")
        .await
        .contains("close-reporter"));
    assert_eq!(echo_then_close(&mut later, "four").await, Some(4000));
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_held_across_ten_reloads_lose_none() {
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 100;
    let (_dir, handler) = deployed();
    let config = ServeConfig {
        // Only close-reporter's lines would come: keep them off the test's
        // output.
        guest_output: std::sync::Arc::new(|_: &wsbox::GuestLine<'_>| {}),
        ..ServeConfig::default()
    };
    let (served, server) = serve_routes(vec![Route::new("/", &handler)], config).await;
    let versions = [guest("echo"), guest("close-reporter")];
    let mut held: Vec<(ClientStream, u16)> = Vec::with_capacity(ROUNDS * PER_ROUND);
    for round in 0..ROUNDS {
        // Version `round % 2` is in service: echo answers a close with the
        // client's code, close-reporter with 4000.
        let answer = if round % 2 == 0 { 1000 } else { 4000 };
        for _ in 0..PER_ROUND {
            held.push((wsbox_tests::connect(&served.url("/held")).await, answer));
        }
        install(&versions[(round + 1) % 2], &handler);
        reload(&server, &handler).await.unwrap();
    }
    assert_eq!(held.len(), 1000);
    for (n, (ws, answer)) in held.iter_mut().enumerate() {
        let code = echo_then_close(ws, &format!("message {n}")).await;
        assert_eq!(code, Some(*answer), "connection {n}");
    }
    served.shutdown().await;
}
