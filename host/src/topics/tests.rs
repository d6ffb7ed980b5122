//! Unit tests of the in-process broker: names, frames, ordering, `except`,
//! budgets, the per-instance limit and leaving.

use super::*;
use crate::bindings::types::{ErrorCode, Message};
use crate::config::{Config, Limits};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

const WAIT: Duration = Duration::from_secs(5);

/// A joined websocket as the broker sees it: records what it is offered,
/// within a budget of frame bytes, as the connection code will.
struct Recorder {
    got: Mutex<Vec<Arc<Publication>>>,
    queued: std::sync::atomic::AtomicUsize,
    budget: usize,
    closed: AtomicBool,
}

impl Recorder {
    fn new(budget: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            got: Mutex::new(Vec::new()),
            queued: Default::default(),
            budget,
            closed: AtomicBool::new(false),
        })
    }

    fn texts(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|p| String::from_utf8(p.payload().to_vec()).unwrap())
            .collect()
    }
}

impl Receiver for Recorder {
    fn offer(&self, publication: &Arc<Publication>) -> Offered {
        if self.closed.load(Ordering::SeqCst) {
            return Offered::Gone;
        }
        let mut got = self.got.lock().unwrap();
        let len = publication.frame().len();
        if self.queued.load(Ordering::SeqCst).saturating_add(len) > self.budget {
            self.closed.store(true, Ordering::SeqCst);
            return Offered::Full;
        }
        self.queued.fetch_add(len, Ordering::SeqCst);
        got.push(publication.clone());
        Offered::Queued
    }
}

fn joined(recorder: &Arc<Recorder>) -> (ReceiverKey, Arc<dyn Receiver>) {
    (ReceiverKey::of(recorder), recorder.clone())
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

fn config(broker: &Broker, max_topics: usize, topic_buffer: usize) -> Config {
    Config {
        limits: Limits {
            max_topics,
            topic_buffer,
            ..Limits::default()
        },
        broker: broker.clone(),
        ..Config::default()
    }
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

async fn next(subscription: &Subscription) -> Result<Message, ErrorCode> {
    tokio::time::timeout(WAIT, subscription.receive())
        .await
        .expect("a message within 5 s")
}

#[test]
fn topic_names_are_1_to_255_bytes_without_control_characters() {
    for good in [
        "a",
        ">",
        "*",
        "a.*",
        "room 7",
        "€uro",
        &"x".repeat(255),
        &"€".repeat(85),
    ] {
        assert_eq!(TopicName::new(good).unwrap().as_str(), good);
    }
    let long_ascii = "x".repeat(256);
    let long_multibyte = "€".repeat(86);
    for bad in [
        "",
        &long_ascii,
        &long_multibyte,
        "a\nb",
        "tab\t",
        "nul\0",
        "del\x7f",
        "c1\u{85}",
    ] {
        match TopicName::new(bad) {
            Err(ErrorCode::InvalidParameter(why)) => assert!(!why.is_empty()),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn a_publication_is_one_unmasked_frame_as_tungstenite_writes_it() {
    for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
        for (kind, op) in [
            (MessageKind::Text, Data::Text),
            (MessageKind::Binary, Data::Binary),
        ] {
            let payload = vec![b'a'; len];
            let publication = Publication::new(kind, &payload);
            let header = FrameHeader {
                is_final: true,
                opcode: OpCode::Data(op),
                ..FrameHeader::default()
            };
            let mut expected = Vec::new();
            header.format(len as u64, &mut expected).unwrap();
            expected.extend_from_slice(&payload);
            assert_eq!(&publication.frame()[..], &expected[..], "len {len}");
            assert_eq!(publication.payload(), &payload[..]);
            assert_eq!(publication.kind(), kind);
        }
    }
}

#[tokio::test]
async fn every_receiver_gets_every_publication_once_in_order_and_except_is_left_out() {
    let broker = Broker::local();
    let room = topic("room");
    let (a, b) = (Recorder::new(usize::MAX), Recorder::new(usize::MAX));
    for recorder in [&a, &b] {
        let (key, receiver) = joined(recorder);
        broker
            .join(key, &receiver, &room, || Ok(None))
            .await
            .unwrap();
        // Joining twice is a no-op: still one delivery per publication.
        broker
            .join(key, &receiver, &room, || Ok(None))
            .await
            .unwrap();
    }
    let subscription = broker.open("room", usize::MAX).await.unwrap();
    let other_room = broker.open("other", usize::MAX).await.unwrap();
    let sent: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    for (i, message) in sent.iter().enumerate() {
        // Every other message leaves out `a`, as a sender would.
        let except = (i % 2 == 1).then(|| ReceiverKey::of(&a));
        broker
            .publish_except(&room, &text(message), except)
            .await
            .unwrap();
    }
    let evens: Vec<String> = sent.iter().step_by(2).cloned().collect();
    assert_eq!(
        a.texts(),
        evens,
        "a gets exactly the messages not sent except it"
    );
    assert_eq!(b.texts(), sent, "b gets every message once, in order");
    for message in &sent {
        assert_eq!(next(&subscription).await.unwrap(), text(message));
    }
    assert!(subscription.try_receive().is_none(), "no duplicates");
    assert!(
        other_room.try_receive().is_none(),
        "no other room's messages"
    );
    // The frame is shared, not copied per receiver.
    let (fa, fb) = (&a.got.lock().unwrap()[0], &b.got.lock().unwrap()[0]);
    assert!(Arc::ptr_eq(fa, fb));
}

#[tokio::test]
async fn wildcard_looking_names_are_literal() {
    let broker = Broker::local();
    let names = [">", "*", "a.*", "a.b", "a", "a.>"];
    let mut subscriptions = Vec::new();
    for name in names {
        subscriptions.push(broker.open(name, usize::MAX).await.unwrap());
    }
    for name in names {
        broker.publish(name, text(name)).await.unwrap();
    }
    for (name, subscription) in names.iter().zip(&subscriptions) {
        assert_eq!(next(subscription).await.unwrap(), text(name));
        assert!(subscription.try_receive().is_none(), "{name} got more");
    }
}

#[tokio::test]
async fn leave_stops_delivery_and_leaving_what_was_not_joined_is_a_no_op() {
    let broker = Broker::local();
    let recorder = Recorder::new(usize::MAX);
    let (key, receiver) = joined(&recorder);
    broker.leave(key, &topic("never"));
    broker
        .join(key, &receiver, &topic("t"), || Ok(None))
        .await
        .unwrap();
    broker.publish("t", text("one")).await.unwrap();
    broker.leave(key, &topic("t"));
    broker.leave(key, &topic("t"));
    broker.publish("t", text("two")).await.unwrap();
    assert_eq!(recorder.texts(), ["one"]);
    assert_eq!(
        broker.topic_count(),
        0,
        "the topic went with its last receiver"
    );
}

#[tokio::test]
async fn leave_all_takes_a_websocket_out_of_every_topic() {
    let broker = Broker::local();
    let recorder = Recorder::new(usize::MAX);
    let (key, receiver) = joined(&recorder);
    for name in ["x", "y", "z"] {
        broker
            .join(key, &receiver, &topic(name), || Ok(None))
            .await
            .unwrap();
    }
    let watcher = broker.open("y", usize::MAX).await.unwrap();
    broker.leave_all(key);
    for name in ["x", "y", "z"] {
        assert!(!broker.has_joined(key, name));
        broker.publish(name, text(name)).await.unwrap();
    }
    assert!(recorder.texts().is_empty());
    assert_eq!(next(&watcher).await.unwrap(), text("y"));
    assert_eq!(broker.topic_count(), 1, "only the watcher's topic is left");
    drop(watcher);
    assert_eq!(broker.topic_count(), 0, "dropping a subscription ends it");
}

#[tokio::test]
async fn a_slow_subscription_ends_with_limit_exceeded_then_closed_and_the_others_go_on() {
    let broker = Broker::local();
    let slow = broker.open("feed", 10).await.unwrap();
    let fast = broker.open("feed", usize::MAX).await.unwrap();
    broker.publish("feed", text("123456")).await.unwrap();
    broker.publish("feed", text("7890")).await.unwrap();
    // 10 bytes queued: at the budget, not past it.
    broker.publish("feed", text("x")).await.unwrap();
    for _ in 0..5 {
        broker.publish("feed", text("after")).await.unwrap();
    }
    match next(&slow).await {
        Err(ErrorCode::LimitExceeded(why)) => {
            assert!(why.contains("--topic-buffer"), "{why}");
            assert!(why.contains("3 unreceived messages"), "{why}");
        }
        other => panic!("expected limit-exceeded, got {other:?}"),
    }
    assert_eq!(next(&slow).await, Err(ErrorCode::Closed));
    assert_eq!(next(&slow).await, Err(ErrorCode::Closed));
    let mut got = Vec::new();
    while let Some(message) = fast.try_receive() {
        got.push(message.unwrap());
    }
    assert_eq!(got.len(), 8, "the fast subscription got everything");
}

#[tokio::test]
async fn a_slow_websocket_is_reported_full_and_leaves_all_its_topics() {
    let broker = Broker::local();
    // Room for two 4-byte frames ("mN" and 2 bytes of header), not three.
    let slow = Recorder::new(8);
    let fast = Recorder::new(usize::MAX);
    let (slow_key, slow_receiver) = joined(&slow);
    let (fast_key, fast_receiver) = joined(&fast);
    for name in ["a", "b"] {
        broker
            .join(slow_key, &slow_receiver, &topic(name), || Ok(None))
            .await
            .unwrap();
    }
    broker
        .join(fast_key, &fast_receiver, &topic("a"), || Ok(None))
        .await
        .unwrap();
    for i in 0..5 {
        broker.publish("a", text(&format!("m{i}"))).await.unwrap();
    }
    assert!(slow.closed.load(Ordering::SeqCst), "the slow one was told");
    assert_eq!(slow.texts(), ["m0", "m1"]);
    assert!(!broker.has_joined(slow_key, "a") && !broker.has_joined(slow_key, "b"));
    assert_eq!(fast.texts(), ["m0", "m1", "m2", "m3", "m4"]);
}

#[tokio::test]
async fn a_gone_receiver_is_removed() {
    let broker = Broker::local();
    let recorder = Recorder::new(usize::MAX);
    let (key, receiver) = joined(&recorder);
    broker
        .join(key, &receiver, &topic("t"), || Ok(None))
        .await
        .unwrap();
    recorder.closed.store(true, Ordering::SeqCst);
    broker.publish("t", text("x")).await.unwrap();
    assert!(!broker.has_joined(key, "t"));
    assert_eq!(broker.topic_count(), 0);
}

#[tokio::test]
async fn max_topics_counts_joins_and_subscriptions_of_one_instance() {
    let broker = Broker::local();
    let mut instance = InstanceTopics::new(&config(&broker, 3, 1 << 20));
    let recorder = Recorder::new(usize::MAX);
    let (key, receiver) = joined(&recorder);
    instance.join(key, &receiver, &topic("a")).await.unwrap();
    instance.join(key, &receiver, &topic("b")).await.unwrap();
    let subscription = instance.open("c").await.unwrap();
    let limited = |result: Result<_, ErrorCode>| match result {
        Err(ErrorCode::LimitExceeded(why)) => assert!(why.contains("--max-topics"), "{why}"),
        Err(other) => panic!("expected limit-exceeded, got {other:?}"),
        Ok(_) => panic!("expected limit-exceeded, got ok"),
    };
    limited(instance.join(key, &receiver, &topic("d")).await);
    limited(instance.open("d").await.map(drop));
    // Joining a topic joined already takes no slot: a no-op, not an error.
    instance.join(key, &receiver, &topic("a")).await.unwrap();
    // Another instance has slots of its own.
    let other = InstanceTopics::new(&config(&broker, 3, 1 << 20));
    drop(other.open("d").await.unwrap());
    drop(subscription);
    let again = instance.open("d").await.unwrap();
    limited(instance.open("e").await.map(drop));
    instance.leave(key, &topic("a"));
    instance.join(key, &receiver, &topic("e")).await.unwrap();
    drop(again);
}

#[tokio::test]
async fn an_instance_that_ends_leaves_every_topic_its_websockets_joined() {
    let broker = Broker::local();
    let mut instance = InstanceTopics::new(&config(&broker, 64, 1 << 20));
    let recorders: Vec<_> = (0..3).map(|_| Recorder::new(usize::MAX)).collect();
    for recorder in &recorders {
        let (key, receiver) = joined(recorder);
        for name in ["a", "b"] {
            instance.join(key, &receiver, &topic(name)).await.unwrap();
        }
    }
    assert_eq!(broker.topic_count(), 2);
    drop(instance);
    assert_eq!(broker.topic_count(), 0);
    broker.publish("a", text("late")).await.unwrap();
    assert!(recorders.iter().all(|r| r.texts().is_empty()));
}

#[tokio::test]
async fn the_pollable_is_ready_when_a_message_or_the_end_is_queued() {
    use wasmtime_wasi::p2::Pollable;
    let broker = Broker::local();
    let mut subscription = broker.open("t", 4).await.unwrap();
    let pending = tokio::time::timeout(Duration::from_millis(100), subscription.ready()).await;
    assert!(pending.is_err(), "ready with nothing queued");
    let publisher = broker.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher.publish("t", text("hi")).await.unwrap();
    });
    tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("ready once a message is queued");
    assert_eq!(subscription.try_receive(), Some(Ok(text("hi"))));
    broker.publish("t", text("too long")).await.unwrap();
    tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("ready once the subscription ended");
    assert!(matches!(
        subscription.try_receive(),
        Some(Err(ErrorCode::LimitExceeded(_)))
    ));
}

#[tokio::test]
async fn receive_waits_for_a_later_publication() {
    let broker = Broker::local();
    let subscription = broker.open("t", 1 << 20).await.unwrap();
    let publisher = broker.clone();
    let publish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher
            .publish("t", Message::Binary(vec![1, 2, 3]))
            .await
            .unwrap();
    });
    assert_eq!(
        next(&subscription).await.unwrap(),
        Message::Binary(vec![1, 2, 3])
    );
    publish.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_receivers_on_one_topic() {
    let broker = Broker::local();
    let recorders: Vec<_> = (0..10_000).map(|_| Recorder::new(usize::MAX)).collect();
    for recorder in &recorders {
        let (key, receiver) = joined(recorder);
        broker
            .join(key, &receiver, &topic("big"), || Ok(None))
            .await
            .unwrap();
    }
    let payload = vec![7u8; 1024];
    let start = Instant::now();
    let publications = 100;
    for _ in 0..publications {
        broker
            .publish("big", Message::Binary(payload.clone()))
            .await
            .unwrap();
    }
    let elapsed = start.elapsed();
    let deliveries = publications * recorders.len();
    eprintln!(
        "{deliveries} deliveries in {elapsed:?}: {:.0} per second",
        deliveries as f64 / elapsed.as_secs_f64()
    );
    assert!(recorders
        .iter()
        .all(|r| r.got.lock().unwrap().len() == publications));
    let leaving = Instant::now();
    for recorder in &recorders {
        broker.leave_all(ReceiverKey::of(recorder));
    }
    assert_eq!(broker.topic_count(), 0);
    assert!(
        leaving.elapsed() < Duration::from_secs(5),
        "leaving took {:?}",
        leaving.elapsed()
    );
}
