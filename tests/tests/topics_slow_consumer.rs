//! A joined websocket that stops reading is closed by the host with 1013 `slow consumer` once its unsent topic bytes pass `--topic-buffer`, after an unbroken prefix of the room's messages, while the other members of the room go on at the rate they had without it.

use std::time::Duration;
use wsbox::{Broker, Limits};
use wsbox_tests::chat::{bulk, bursts, serve_chat_at, wait_topic_count, ChatClient};
use wsbox_tests::{guest, read_until_close};

/// Messages the publisher sends in each phase, of about 1 KiB each: far more
/// than the budget and the socket buffers of the stalled client together.
const MESSAGES: usize = 10_000;
const BUDGET: usize = 256 << 10;
const FAST: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_gets_1013_slow_consumer_and_the_others_go_on_at_full_rate() {
    let broker = Broker::local();
    let limits = Limits {
        topic_buffer: BUDGET,
        ..Limits::default()
    };
    let served = serve_chat_at(&guest("chat"), &broker, limits).await;
    let mut fast = Vec::new();
    for i in 0..FAST {
        fast.push(ChatClient::join(served.port, "feed", &format!("f{i}")).await);
    }
    let mut publisher = ChatClient::join(served.port, "feed", "pub").await;
    for (i, client) in fast.iter_mut().enumerate() {
        for j in i + 1..FAST {
            assert_eq!(client.next_text().await, format!("* f{j} joined"));
        }
        assert_eq!(client.next_text().await, "* pub joined");
    }

    let alone = bursts(&mut publisher, &mut fast, "alone", MESSAGES).await;

    let slow = ChatClient::join(served.port, "feed", "slow").await;
    for client in fast.iter_mut().chain([&mut publisher]) {
        assert_eq!(client.next_text().await, "* slow joined");
    }
    // From here on, `slow` is not read.
    let stalled = bursts(&mut publisher, &mut fast, "stalled", MESSAGES).await;
    eprintln!(
        "{MESSAGES} messages to {FAST} fast members: {alone:?} alone, {stalled:?} \
         with a stalled member"
    );
    assert!(
        stalled < alone * 3 + Duration::from_secs(2),
        "the stalled member slowed the others: {stalled:?} against {alone:?}"
    );

    // The stalled member reads at last: an unbroken prefix of the messages
    // sent while it stalled, then the host's close.
    let mut slow = slow.into_inner();
    let (messages, close) = read_until_close(&mut slow).await;
    assert_eq!(close, Some((1013, "slow consumer".to_string())));
    assert!(
        !messages.is_empty() && messages.len() < MESSAGES,
        "{} of {MESSAGES} messages before the close",
        messages.len()
    );
    for (k, got) in messages.iter().enumerate() {
        let got = got.to_text().expect("text");
        assert!(
            got == format!("pub: {}", bulk("stalled", k)),
            "message {k} of the prefix is {:?}",
            &got[..got.len().min(40)]
        );
    }
    eprintln!("the stalled member got {} messages", messages.len());

    // Its handler saw the close like any other and left the room.
    for client in fast.iter_mut().chain([&mut publisher]) {
        assert_eq!(client.next_text().await, "* slow left", "{}", client.name);
    }
    assert_eq!(broker.topic_count(), 1, "the room is still there");
    for client in fast.into_iter().chain([publisher]) {
        client.leave().await;
    }
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}
