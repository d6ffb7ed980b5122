//! A guest's own `subscription` on one node: it receives what the instances
//! sharing its broker publish, in order, through `poll` and `receive`; names
//! are checked and literal; a queue past `--topic-buffer` ends with
//! `limit-exceeded` then `closed`; `--max-topics` holds.

use wsbox::bindings::types::Message;
use wsbox::{Config, Exit, Limits};
use wsbox_tests::{run_guest, within};

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
