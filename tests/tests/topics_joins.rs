//! Joining a websocket to a topic: a client-role websocket gets the topic's frames masked for it alone; a joined websocket leaves every topic when it is dropped, its handler traps or returns, its peer drops TCP, or its instance ends; `--max-topics` counts joins with subscriptions; a closing websocket cannot join.

use futures_util::StreamExt;
use std::time::Duration;
use tungstenite::Message as WsMessage;
use wsbox::bindings::types::Message;
use wsbox::{Broker, Config, Exit, Limits, ServeConfig, Subscription};
use wsbox_tests::chat::{serve_chat_at, wait_topic_count, ChatClient};
use wsbox_tests::{
    allow, connect, guest, read_until_close, run_guest, send, serve, within, RustPeer, Seen,
};

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

/// A message in a few words.
fn summary(message: &WsMessage) -> String {
    match message {
        WsMessage::Text(t) => format!("text {}", t.as_str()),
        WsMessage::Binary(b) => {
            let pattern = b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8);
            let tail = if pattern && !b.is_empty() {
                ", the pattern"
            } else {
                ""
            };
            format!("binary {} bytes{tail}", b.len())
        }
        other => format!("{other:?}"),
    }
}

async fn next(subscription: &Subscription) -> Message {
    within("a topic message", subscription.receive())
        .await
        .expect("a message")
}

fn config_with(broker: &Broker, port: u16, limits: Limits) -> Config {
    Config {
        broker: broker.clone(),
        limits,
        ..allow(port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_websockets_get_their_topics_masked_for_each_socket() {
    // tokio-tungstenite as the server fails on any unmasked frame from a
    // client. Each connection reads five messages, reports them in one
    // line, then closes.
    let mut peer = RustPeer::start(|mut ws, seen| async move {
        let mut got = Vec::new();
        for _ in 0..5 {
            match ws.next().await {
                Some(Ok(message)) => got.push(summary(&message)),
                other => {
                    let _ = seen.send(Seen::End(format!("{other:?} after {got:?}")));
                    return;
                }
            }
        }
        let _ = seen.send(Seen::Message(WsMessage::text(got.join(" | "))));
        let _ = ws.close(None).await;
        while ws.next().await.is_some() {}
    })
    .await;
    let broker = Broker::local();
    let config = config_with(&broker, peer.port, Limits::default());
    let url = peer.url();
    let ready = broker.open("feed/ready", 1 << 20).await.unwrap();
    let guests: Vec<_> = (0..2)
        .map(|_| {
            let (config, url) = (config.clone(), url.clone());
            tokio::spawn(async move {
                run_guest("topics-client", config, &["join", &url, "feed"]).await
            })
        })
        .collect();
    for _ in 0..2 {
        assert_eq!(next(&ready).await, text("ready"));
    }
    let big = Message::Binary((0..70_000).map(|i| (i % 251) as u8).collect());
    let sent = [
        text("one"),
        text("twö"),
        big.clone(),
        text(""),
        Message::Binary(vec![]),
    ];
    for message in &sent {
        broker.publish("feed", message.clone()).await.unwrap();
    }
    let expected = "text one | text twö | binary 70000 bytes, the pattern | text  | binary 0 bytes";
    for _ in 0..2 {
        match peer.next().await {
            Seen::Message(got) => assert_eq!(got.to_text().unwrap(), expected),
            other => panic!("the server failed: {other:?}"),
        }
    }
    for guest in guests {
        let out = within("the guest to end", guest).await.unwrap();
        assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    }
    drop(ready);
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_websocket_leaves_its_topics_while_its_instance_goes_on() {
    let peer = RustPeer::echo().await;
    let broker = Broker::local();
    let config = config_with(&broker, peer.port, Limits::default());
    let url = peer.url();
    let ready = broker.open("t/ready", 1 << 20).await.unwrap();
    let guest = tokio::spawn(async move {
        run_guest("topics-client", config, &["join-then", "drop", &url, "t"]).await
    });
    assert_eq!(next(&ready).await, text("ready"));
    // t/ready and t.
    assert_eq!(broker.topic_count(), 2);
    // The echo server sends the topic's message back to the guest.
    broker.publish("t", text("go")).await.unwrap();
    assert_eq!(next(&ready).await, text("dropped"));
    // t/ready and the guest's t/exit: the dropped websocket left t, while
    // its instance still runs.
    wait_topic_count(&broker, 2).await;
    broker.publish("t/exit", text("exit")).await.unwrap();
    let out = within("the guest to end", guest).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "got: text go\n");
    drop(ready);
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_guest_that_traps_leaves_its_topics() {
    let peer = RustPeer::echo().await;
    let broker = Broker::local();
    let config = config_with(&broker, peer.port, Limits::default());
    let url = peer.url();
    let ready = broker.open("t/ready", 1 << 20).await.unwrap();
    let guest = tokio::spawn(async move {
        run_guest("topics-client", config, &["join-then", "trap", &url, "t"]).await
    });
    assert_eq!(next(&ready).await, text("ready"));
    assert_eq!(broker.topic_count(), 2);
    broker.publish("t", text("go")).await.unwrap();
    let out = within("the guest to end", guest).await.unwrap();
    assert!(matches!(out.exit, Exit::Trap(_)), "{:?}", out.exit);
    assert!(out.stderr.contains("trapping on purpose"), "{}", out.stderr);
    wait_topic_count(&broker, 1).await;
    drop(ready);
    assert_eq!(broker.topic_count(), 0);
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_traps_or_returns_and_a_peer_that_drops_tcp_leave_their_topics() {
    let broker = Broker::local();
    let config = ServeConfig {
        websocket: Config {
            broker: broker.clone(),
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    let served = serve("faulty", config).await;
    let watcher = broker.open("faulty", 1 << 20).await.unwrap();
    for (path, code) in [("/joined/trap", 1011), ("/joined/return-open", 1000)] {
        let mut ws = connect(&served.url(path)).await;
        send(&mut ws, WsMessage::text("hi")).await;
        // The echo says `handle` runs, joined.
        let (messages, close) = read_until_close(&mut ws).await;
        assert_eq!(messages, [WsMessage::text("hi")], "{path}");
        assert_eq!(close.map(|c| c.0), Some(code), "{path}");
        // Only the watcher is left on the topic.
        broker.publish("faulty", text(path)).await.unwrap();
        assert_eq!(next(&watcher).await, text(path));
        wait_topic_count(&broker, 1).await;
    }
    drop(watcher);
    wait_topic_count(&broker, 0).await;

    // A chat member whose TCP goes without a close frame.
    let chat = serve_chat_at(&guest("chat"), &broker, Limits::default()).await;
    let mut stays = ChatClient::join(chat.port, "r", "stays").await;
    let goes = ChatClient::join(chat.port, "r", "goes").await;
    assert_eq!(stays.next_text().await, "* goes joined");
    drop(goes.into_inner());
    assert_eq!(stays.next_text().await, "* goes left");
    stays.say("still here").await;
    stays.nothing_more(Duration::from_millis(300)).await;
    assert_eq!(broker.topic_count(), 1);
    stays.leave().await;
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_topics_counts_joins_and_a_closing_websocket_cannot_join() {
    let peer = RustPeer::echo().await;
    let broker = Broker::local();
    let limits = Limits {
        max_topics: 5,
        ..Limits::default()
    };
    let out = run_guest(
        "topics-client",
        config_with(&broker, peer.port, limits),
        &["limit", &peer.url()],
    )
    .await;
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expected = [
        "joined 4, then: limit-exceeded: this instance already holds 5 joins and subscriptions \
         (the maximum); leave a topic or drop a subscription first, or raise it with --max-topics",
        "join limit/0 again: ok",
        "leave never-joined: ok",
        "leave limit/0: ok",
        "join limit/again: ok",
        "join control: invalid-parameter: a topic name may not contain control characters; \
         this one has U+0007",
        "join after close: invalid-state: the websocket is closing or closed; only an open \
         websocket may join a topic",
    ];
    assert_eq!(lines, expected);
    wait_topic_count(&broker, 0).await;

    // The chat cannot join past the limit: its client is told why.
    let limits = Limits {
        max_topics: 0,
        ..Limits::default()
    };
    let chat = serve_chat_at(&guest("chat"), &broker, limits).await;
    let mut ws = connect(&wsbox_tests::chat::room_url(chat.port, "r", "x")).await;
    let (messages, close) = read_until_close(&mut ws).await;
    assert!(messages.is_empty(), "{messages:?}");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1013);
    assert!(
        reason.starts_with("cannot join r: limit-exceeded: this instance already holds 0 joins"),
        "{reason}"
    );
    assert!(reason.len() <= 123);
    within("the client's close", ws.close(None)).await.ok();
    assert_eq!(broker.topic_count(), 0);
    assert_eq!(wsbox::panics(), 0);
}
