//! Polyglot chat: the `chat` handler written in Rust, Python (componentize-py) and JavaScript (componentize-js) joins and publishes alike: the same room scenario (routes, percent-decoded names, joins, messages published to the room except the sender, binary ignored, leaves, the close answered) gives the same transcript in each language, and leaves no topic behind.

use std::path::PathBuf;
use std::time::Duration;
use tungstenite::Message;
use wsbox::{Broker, Limits};
use wsbox_tests::chat::{serve_chat_at, wait_topic_count, ChatClient};
use wsbox_tests::{connect, guest, polyglot_guest, read_until_close, within};

const LANGUAGES: [&str; 3] = ["rust", "python", "js"];

fn component(language: &str) -> PathBuf {
    match language {
        "rust" => guest("chat"),
        other => polyglot_guest(other, "chat"),
    }
}

/// The HTTP status a websocket upgrade to `url` is refused with.
async fn refused(url: &str) -> u16 {
    match within("an upgrade answer", tokio_tungstenite::connect_async(url)).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("{url}: expected a refusal, got {:?}", other.map(|_| "101")),
    }
}

/// The room scenario against the chat at `port`, as lines of what each
/// side saw.
async fn scenario(port: u16) -> Vec<String> {
    let mut seen = Vec::new();
    for path in ["/nope", "/room/", "/room/%FF", "/room/%zz"] {
        let status = refused(&format!("ws://127.0.0.1:{port}{path}")).await;
        seen.push(format!("{path}: {status}"));
    }
    // A room name with a space and a euro sign, a name with `+` for a space.
    let room = "r€ 1";
    let raw = |query: &str| format!("ws://127.0.0.1:{port}/room/r%E2%82%AC%201{query}");
    let mut alice = ChatClient::join_busy_room(port, room, "Ali ce").await;
    let mut ws = connect(&raw("?name=B+ob")).await;
    let Message::Text(welcome) = within("bob's welcome", read_text(&mut ws)).await else {
        unreachable!()
    };
    seen.push(format!("bob: {}", welcome.as_str()));
    let mut anonymous = connect(&raw("")).await;
    seen.push(format!("anonymous: {}", read_text(&mut anonymous).await));
    for _ in 0..2 {
        seen.push(format!("alice: {}", alice.next_text().await));
    }
    seen.push(format!("bob: {}", read_text(&mut ws).await));

    wsbox_tests::send(&mut ws, Message::text("hi \"all\" ✓")).await;
    wsbox_tests::send(&mut ws, Message::binary(vec![1, 2, 3])).await;
    seen.push(format!("alice: {}", alice.next_text().await));
    alice.say("").await;
    for _ in 0..2 {
        seen.push(format!("anonymous: {}", read_text(&mut anonymous).await));
    }
    seen.push(format!("bob: {}", read_text(&mut ws).await));

    within(
        "anonymous's close",
        futures_util::SinkExt::send(
            &mut anonymous,
            Message::Close(Some(tungstenite::protocol::CloseFrame {
                code: 4001.into(),
                reason: "bye".into(),
            })),
        ),
    )
    .await
    .unwrap();
    let (late, close) = read_until_close(&mut anonymous).await;
    seen.push(format!("anonymous: late {late:?}, answer {close:?}"));
    seen.push(format!("alice: {}", alice.next_text().await));
    seen.push(format!("bob: {}", read_text(&mut ws).await));
    alice.nothing_more(Duration::from_millis(200)).await;
    let (late, close) = {
        within("bob's close", ws.close(None)).await.unwrap();
        read_until_close(&mut ws).await
    };
    seen.push(format!("bob: late {late:?}, answer {close:?}"));
    seen.push(format!("alice: {}", alice.next_text().await));
    seen.push(format!("alice: answer {:?}", alice.leave().await));
    seen
}

/// The next text message of a raw client.
async fn read_text(ws: &mut wsbox_tests::ClientStream) -> Message {
    loop {
        match wsbox_tests::next_message(ws).await {
            Message::Text(text) => return Message::Text(text),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_handlers_in_every_language_give_the_same_transcript() {
    let expected = [
        "/nope: 404",
        "/room/: 404",
        "/room/%FF: 400",
        "/room/%zz: 400",
        "bob: * you joined r€ 1 as B ob",
        "anonymous: * you joined r€ 1 as anonymous",
        "alice: * B ob joined",
        "alice: * anonymous joined",
        "bob: * anonymous joined",
        "alice: B ob: hi \"all\" ✓",
        "anonymous: B ob: hi \"all\" ✓",
        "anonymous: Ali ce: ",
        "bob: Ali ce: ",
        "anonymous: late [], answer Some((4001, \"\"))",
        "alice: * anonymous left",
        "bob: * anonymous left",
        "bob: late [], answer Some((1005, \"\"))",
        "alice: * B ob left",
        "alice: answer Some((1000, \"\"))",
    ];
    for language in LANGUAGES {
        let broker = Broker::local();
        let served = serve_chat_at(&component(language), &broker, Limits::default()).await;
        let seen = scenario(served.port).await;
        assert_eq!(seen, expected, "{language}");
        wait_topic_count(&broker, 0).await;
        served.shutdown().await;
    }
    assert_eq!(wsbox::panics(), 0);
}
