//! A guest's own `subscription` on one node: it receives what the instances
//! sharing its broker publish, in order, through `poll` and `receive`, and
//! through one `poll` with a websocket, and through `messages()` until its
//! queue passes `--topic-buffer`; names are checked and literal; a queue past
//! `--topic-buffer` ends with `limit-exceeded` then `closed`; `--max-topics`
//! holds.

use futures_util::{SinkExt, StreamExt};
use wsbox::bindings::types::Message;
use wsbox::{Config, Exit, Limits};
use wsbox_tests::{allow, run_guest, within, ServerStream};

#[tokio::test]
async fn a_guest_subscription_receives_every_publication_in_order() {
    let config = Config::default();
    let broker = config.broker.clone();
    let ready = broker.open("news/ready", 1 << 20).await.unwrap();
    let guest = tokio::spawn(run_guest("topics-client", config, &["relay", "news", "50"]));
    let first = within("the guest's ready", ready.receive()).await.unwrap();
    assert_eq!(first, Message::Text("ready".into()));
    let mut expected = String::new();
    for i in 0..50 {
        if i % 7 == 3 {
            broker
                .publish("news", Message::Binary(vec![i; 70_000]))
                .await
                .unwrap();
            expected.push_str("got: binary 70000 bytes\n");
        } else {
            broker
                .publish("news", Message::Text(format!("item {i} ✓")))
                .await
                .unwrap();
            expected.push_str(&format!("got: item {i} ✓\n"));
        }
        // Another topic's messages never reach it.
        broker
            .publish("news2", Message::Text("other".into()))
            .await
            .unwrap();
    }
    let done = within("the guest's done", ready.receive()).await.unwrap();
    assert_eq!(done, Message::Text("done".into()));
    let out = within("the guest to end", guest).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, expected);
    assert_eq!(
        broker.topic_count(),
        1,
        "only the test's own subscription is left"
    );
}

#[tokio::test]
async fn names_budgets_and_the_topic_limit_hold_for_a_guest() {
    let config = Config {
        limits: Limits {
            topic_buffer: 1000,
            max_topics: 5,
            ..Limits::default()
        },
        ..Config::default()
    };
    let broker = config.broker.clone();
    let out = run_guest("topics-client", config, &["checks"]).await;
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expected_prefixes = [
        "open empty: invalid-parameter: a topic name may not be empty",
        "open 256 bytes: invalid-parameter: a topic name is at most 255 bytes of UTF-8; this one is 256 bytes",
        "publish control: invalid-parameter: a topic name may not contain control characters; this one has U+000A",
        "publish >: ok",
        "publish *: ok",
        "> got: text to >",
        "* got: text to *",
        "publish 600 bytes: ok",
        "publish 600 bytes: ok",
        "publish 600 bytes: ok",
        "flood: limit-exceeded: the subscription's queue passed its budget of 1000 bytes (--topic-buffer), so it ended and its 2 unreceived messages were dropped",
        "flood: closed",
        "flood: closed",
        "opened 5, then: limit-exceeded: this instance already holds 5 joins and subscriptions (the maximum)",
        "after dropping one: ok",
    ];
    assert_eq!(lines.len(), expected_prefixes.len(), "{}", out.stdout);
    for (line, prefix) in lines.iter().zip(expected_prefixes) {
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?}"
        );
    }
    assert_eq!(
        broker.topic_count(),
        0,
        "every subscription ended with the instance"
    );
}

/// The next line the guest reports on its websocket.
async fn reported(ws: &mut ServerStream) -> String {
    match within("a line from the guest", ws.next()).await {
        Some(Ok(tungstenite::Message::Text(line))) => line.as_str().to_owned(),
        other => panic!("expected a line from the guest, got {other:?}"),
    }
}

#[tokio::test]
async fn one_poll_covers_a_websocket_and_a_subscription_and_messages_ends_on_the_budget() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let budget = 4096;
    let config = Config {
        limits: Limits {
            topic_buffer: budget,
            ..Limits::default()
        },
        ..allow(port)
    };
    let broker = config.broker.clone();
    let ready = broker.open("mix/ready", 1 << 20).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}/");
    let guest = tokio::spawn(async move {
        run_guest("topics-client", config, &["both", &url, "mix", "8"]).await
    });
    let (tcp, _) = within("the guest's connection", listener.accept())
        .await
        .unwrap();
    let mut ws = within(
        "the guest's handshake",
        tokio_tungstenite::accept_async(tcp),
    )
    .await
    .unwrap();
    let first = within("the guest's ready", ready.receive()).await.unwrap();
    assert_eq!(first, Message::Text("ready".into()));

    // One at a time, each waited for, so the order is the order sent.
    let mut expected = Vec::new();
    for (socket, text) in [
        (true, "s1"),
        (false, "t1"),
        (false, "t2"),
        (true, "s2"),
        (true, "s3"),
        (false, "t3"),
    ] {
        let line = if socket {
            within(
                "a send to the guest",
                ws.send(tungstenite::Message::text(text)),
            )
            .await
            .unwrap();
            format!("socket: text {text}")
        } else {
            broker
                .publish("mix", Message::Text(text.into()))
                .await
                .unwrap();
            format!("topic: text {text}")
        };
        assert_eq!(reported(&mut ws).await, line);
        expected.push(line);
    }
    // Both at once: the loop takes each, whichever is ready first.
    within(
        "a send to the guest",
        ws.send(tungstenite::Message::text("s4")),
    )
    .await
    .unwrap();
    broker
        .publish("mix", Message::Text("t4".into()))
        .await
        .unwrap();
    let mut together = vec![reported(&mut ws).await, reported(&mut ws).await];
    expected.extend(together.iter().cloned());
    together.sort();
    assert_eq!(together, ["socket: text s4", "topic: text t4"]);

    // `messages()`: two messages, then the guest stops reading at `pause`
    // while the queue passes its budget, then reads on.
    for text in ["m1", "m2", "pause"] {
        broker
            .publish("mix", Message::Text(text.into()))
            .await
            .unwrap();
        let line = format!("messages: text {text}");
        assert_eq!(reported(&mut ws).await, line);
        expected.push(line);
    }
    for _ in 0..2 {
        broker
            .publish("mix", Message::Binary(vec![7; budget * 3 / 4]))
            .await
            .unwrap();
    }
    within(
        "a send to the guest",
        ws.send(tungstenite::Message::text("go on")),
    )
    .await
    .unwrap();
    let ended = reported(&mut ws).await;
    assert!(
        ended.starts_with(&format!(
            "messages: limit-exceeded: the subscription's queue passed its budget of {budget} bytes (--topic-buffer)"
        )),
        "{ended}"
    );
    expected.push(ended);
    assert_eq!(reported(&mut ws).await, "messages ended");
    expected.push("messages ended".into());
    match within("the guest's close", ws.next()).await {
        Some(Ok(tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1000)
        }
        other => panic!("expected the guest's close, got {other:?}"),
    }
    // tungstenite answers while the stream is read, and then ends it.
    within("the end of the connection", async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;

    let out = within("the guest to end", guest).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        broker.topic_count(),
        1,
        "only the test's own subscription is left"
    );
}
