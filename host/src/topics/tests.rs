//! Unit tests of the in-process broker: names, frames, ordering, `except`,
//! budgets, the per-instance limit and leaving.

// Long: the broker's unit tests together, mostly tables of cases; one module's tests in one file.

use super::*;
use crate::bindings::types::{ErrorCode, Message};
use crate::config::{Config, Limits};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
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

#[test]
fn an_outbox_holds_frames_within_its_budget_and_closes_past_it() {
    // 4-byte frames ("mN" and 2 bytes of header): room for three.
    let frame = |i: usize| {
        Arc::new(Publication::new(
            MessageKind::Text,
            format!("m{i}").as_bytes(),
        ))
    };
    let mut outbox = Outbox::new(12);
    for i in 0..3 {
        assert_eq!(outbox.push(&frame(i)), Offered::Queued);
    }
    assert_eq!(outbox.unsent(), 12);
    let batch = outbox.take_batch();
    assert_eq!(batch.len(), 3);
    assert!(outbox.is_empty());
    // Taken frames count until they are written.
    assert_eq!(outbox.push(&frame(3)), Offered::Full);
    assert_eq!(outbox.push(&frame(4)), Offered::Gone, "closed once full");
    outbox.written(12);
    assert_eq!(outbox.unsent(), 0);

    let mut outbox = Outbox::new(usize::MAX);
    for i in 0..100 {
        assert_eq!(outbox.push(&frame(i)), Offered::Queued);
    }
    let batch = outbox.take_batch();
    assert_eq!(batch.len(), 64, "a batch holds at most 64 frames");
    assert_eq!(batch[0].payload(), b"m0");
    assert_eq!(outbox.take_batch()[0].payload(), b"m64", "in order");
    outbox.written(100 * 4);
    // A frame over the batch's bytes still goes, alone.
    let big = Arc::new(Publication::new(MessageKind::Binary, &vec![0; 300 * 1024]));
    outbox.push(&big);
    outbox.push(&frame(0));
    assert_eq!(outbox.take_batch().len(), 1);
    assert_eq!(outbox.take_batch().len(), 1);

    // The end drops what is queued, refuses more, and gives the broker.
    let broker = Broker::local();
    let mut outbox = Outbox::new(usize::MAX);
    assert!(outbox.joined(&broker));
    outbox.push(&frame(0));
    assert!(outbox.end().is_some());
    assert!(outbox.is_empty() && outbox.unsent() == 0);
    assert_eq!(outbox.push(&frame(1)), Offered::Gone);
    assert!(
        !outbox.joined(&broker),
        "joining after the end: leave at once"
    );
}

/// Reads frames from `io` until `count` were read, a close frame was, or
/// it ends: (FIN, opcode, masked, unmasked payload) each.
async fn read_frames(
    io: &mut (impl tokio::io::AsyncRead + Unpin),
    count: usize,
) -> Vec<(bool, OpCode, bool, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < count {
        let mut cursor = std::io::Cursor::new(&buf[..]);
        if let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) {
            let start = cursor.position() as usize;
            if buf.len() >= start + len as usize {
                let mut payload = buf[start..start + len as usize].to_vec();
                if let Some(mask) = header.mask {
                    crate::sink::apply_mask(&mut payload, mask, 0);
                }
                let close = matches!(header.opcode, OpCode::Control(Control::Close));
                frames.push((
                    header.is_final,
                    header.opcode,
                    header.mask.is_some(),
                    payload,
                ));
                buf.drain(..start + len as usize);
                if close {
                    break;
                }
                continue;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, io.read(&mut chunk))
            .await
            .expect("frames within 5 s")
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    frames
}

#[tokio::test]
async fn the_sink_writes_a_shared_frame_as_is_for_a_server_and_masked_for_a_client() {
    use crate::connection::Role;
    use crate::sink::Sink;
    let publications = [
        Publication::new(MessageKind::Text, "héllo".as_bytes()),
        Publication::new(MessageKind::Binary, &vec![7; 70_000]),
        Publication::new(MessageKind::Text, b""),
    ];
    let frames: Vec<&[u8]> = publications.iter().map(|p| &p.frame()[..]).collect();
    for role in [Role::Server, Role::Client] {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let mut sink = Sink::new(ours, role);
        sink.write_encoded(&frames).await.unwrap();
        drop(sink);
        if role == Role::Server {
            use tokio::io::AsyncReadExt;
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, frames.concat(), "the shared bytes, unchanged");
            continue;
        }
        let got = read_frames(&mut theirs, 3).await;
        assert_eq!(got.len(), 3);
        for ((fin, opcode, masked, payload), publication) in got.iter().zip(&publications) {
            assert!(*fin && *masked, "a client's frame is final and masked");
            let expected = match publication.kind() {
                MessageKind::Text => OpCode::Data(Data::Text),
                MessageKind::Binary => OpCode::Data(Data::Binary),
            };
            assert_eq!(*opcode, expected);
            assert_eq!(&payload[..], publication.payload());
        }
        // The shared frame itself is left unmasked for the others.
        assert_eq!(&publications[0].frame()[2..], "héllo".as_bytes());
    }
}

/// A server connection over an in-memory stream of `capacity` bytes, as
/// a joined websocket: its link (the receiver) and the client's end.
fn joined_connection(
    limits: &Limits,
    capacity: usize,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> (crate::connection::Connection, tokio::io::DuplexStream) {
    use crate::connection::{spawn, Role};
    use tokio::sync::Semaphore;
    let (ours, theirs) = tokio::io::duplex(capacity);
    let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
    let budget = Arc::new(Semaphore::new(1 << 20));
    let config = Config {
        limits: limits.clone(),
        metrics,
        ..Config::default()
    };
    let connection = spawn(
        ours,
        bytes::BytesMut::new(),
        Role::Server,
        &config,
        budget,
        slot,
        None,
    );
    (connection, theirs)
}

#[tokio::test]
async fn a_joined_connection_writes_its_topics_and_closes_with_1013_past_its_budget() {
    let limits = Limits {
        topic_buffer: 100,
        ..Limits::default()
    };
    // A client that reads only when told: 64 bytes of room in between.
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (connection, mut client) = joined_connection(&limits, 64, Some(metrics.clone()));
    let broker = Broker::local();
    let link = connection.link.clone();
    let receiver: Arc<dyn Receiver> = link.clone();
    let key = ReceiverKey::of(&link);
    broker
        .join(key, &receiver, &topic("t"), || Ok(None))
        .await
        .unwrap();
    link.joined(&broker);
    let other = broker.open("t", usize::MAX).await.unwrap();

    broker.publish("t", text("first")).await.unwrap();
    let got = read_frames(&mut client, 1).await;
    assert_eq!(got[0].3, b"first");
    assert!(!got[0].2, "a server's frame is not masked");

    // The client stops reading: 40-byte frames fill the stream's 64 bytes,
    // then the outbox's 100, and the next one is past the budget.
    let payload = "x".repeat(38);
    for _ in 0..20 {
        broker.publish("t", text(&payload)).await.unwrap();
        // The driver writes what fits meanwhile.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    assert!(!broker.has_joined(key, "t"), "out of its topics once full");
    // The others go on.
    assert_eq!(next(&other).await.unwrap(), text("first"));
    for _ in 0..20 {
        assert_eq!(next(&other).await.unwrap(), text(&payload));
    }
    // Reading again: a prefix of the messages, then 1013 `slow consumer`.
    let frames = read_frames(&mut client, 100).await;
    let (close, data) = frames.split_last().expect("frames");
    assert!(!data.is_empty() && data.len() < 20, "{} frames", data.len());
    assert!(data.iter().all(|f| f.3 == payload.as_bytes()));
    assert_eq!(close.1, OpCode::Control(Control::Close));
    assert_eq!(&close.3[..2], &1013u16.to_be_bytes());
    assert_eq!(&close.3[2..], b"slow consumer");
    assert_eq!(
        receiver.offer(&Arc::new(Publication::new(MessageKind::Text, b"late"))),
        Offered::Gone
    );
    assert_eq!(broker.topic_count(), 1, "only the subscription is left");
    // Counted: one slow consumer; a delivery per frame written, and the
    // host's close frame.
    let text = metrics.encode();
    let sample = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
            .to_string()
    };
    assert_eq!(sample("wsbox_slow_consumer_closes_total"), "1");
    assert_eq!(
        sample("wsbox_topic_deliveries_total"),
        (1 + data.len()).to_string()
    );
    assert_eq!(
        sample(r#"wsbox_close_codes_total{direction="out",code="1013"}"#),
        "1"
    );
}

#[tokio::test]
async fn topic_frames_wait_for_the_end_of_the_guests_fragmented_message() {
    let (connection, mut client) = joined_connection(&Limits::default(), 1 << 16, None);
    let broker = Broker::local();
    let link = connection.link.clone();
    let receiver: Arc<dyn Receiver> = link.clone();
    broker
        .join(ReceiverKey::of(&link), &receiver, &topic("t"), || Ok(None))
        .await
        .unwrap();
    link.joined(&broker);
    let allowed = |_: &crate::lifecycle::Machine| Ok(());
    let write = |op: Data, payload: &str, fin: bool| {
        let link = link.clone();
        let mut payload = payload.as_bytes().to_vec();
        async move {
            let frame = crate::connection::Frame {
                opcode: OpCode::Data(op),
                payload: &mut payload,
                fin,
                compressed: false,
            };
            link.write_frame(frame, allowed).await.unwrap().unwrap()
        }
    };
    write(Data::Text, "one ", false).await;
    broker.publish("t", text("topic")).await.unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    write(Data::Continue, "two ", false).await;
    write(Data::Continue, "three", true).await;
    let frames = read_frames(&mut client, 4).await;
    let seen: Vec<(bool, OpCode, &[u8])> = frames.iter().map(|f| (f.0, f.1, &f.3[..])).collect();
    assert_eq!(
        seen,
        [
            (false, OpCode::Data(Data::Text), &b"one "[..]),
            (false, OpCode::Data(Data::Continue), b"two "),
            (true, OpCode::Data(Data::Continue), b"three"),
            (true, OpCode::Data(Data::Text), b"topic"),
        ]
    );
    // The connection leaves its topics when it ends.
    link.event(crate::lifecycle::Event::Abort);
    tokio::time::timeout(WAIT, async {
        while broker.topic_count() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the topic is left when the connection ends");
}
