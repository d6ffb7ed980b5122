//! wsbox serve with Python `websockets` as the client: each side's view of the close matches what the other sent, in both directions, plus a TCP drop, a subprotocol and a 16 MiB message.

use wsbox::ServeConfig;
use wsbox_tests::{close_of, event, py_client, serve};

#[tokio::test]
async fn the_guest_sees_the_python_clients_close_and_python_sees_the_answer() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let events = py_client(&[&served.url("/py"), "echo-check", "3"]).await;
    let echoed: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(echoed, ["msg 0", "msg 1", "msg 2"]);
    let closed = event(&events, "closed");
    assert_eq!(close_of(&closed["sent"]), Some((1000, "py done".into())));
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
}

#[tokio::test]
async fn python_sees_the_guests_close() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let events = py_client(&[&served.url("/"), "say-then-wait", "close-me 4000 bye"]).await;
    let closed = event(&events, "closed");
    assert_eq!(close_of(&closed["rcvd"]), Some((4000, "bye".into())));
    assert_eq!(closed["clean"], true);
    let line = served.log_line("query-close-status").await;
    // websockets answers a close by echoing its code.
    assert!(line.contains("query-close-status = ok(4000"), "{line}");
}

#[tokio::test]
async fn a_python_client_that_drops_tcp_reads_as_aborted() {
    let mut served = serve("close-reporter", ServeConfig::default()).await;
    let events = py_client(&[&served.url("/"), "drop-after-send", "going"]).await;
    assert_eq!(event(&events, "message")["data"], "going");
    let line = served.log_line("query-close-status").await;
    assert!(
        line.ends_with("query-close-status = err(aborted)"),
        "{line}"
    );
}

#[tokio::test]
async fn router_negotiates_chat_v1_with_python() {
    let served = serve("router", ServeConfig::default()).await;
    let events = py_client(&[
        "--protocol",
        "chat.v1",
        "--timeout",
        "3",
        &served.url("/chat"),
        "say-then-wait",
        "hi",
    ])
    .await;
    let connect = event(&events, "connect");
    assert_eq!(connect["subprotocol"], "chat.v1");
    assert_eq!(connect["headers"]["x-router"], "chat");
    assert_eq!(event(&events, "message")["data"], "chat: hi");
}

#[tokio::test]
async fn a_16_mib_message_round_trips_through_a_handler() {
    let served = serve("echo", ServeConfig::default()).await;
    let events = py_client(&[&served.url("/"), "send-binary", "16777216"]).await;
    let message = event(&events, "message");
    assert_eq!(message["len"], 16777216);
    assert_eq!(message["pattern_ok"], true);
    assert_eq!(
        close_of(&event(&events, "closed")["rcvd"]).map(|c| c.0),
        Some(1000)
    );
}
