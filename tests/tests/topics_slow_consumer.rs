//! A joined websocket that stops reading is closed by the host with 1013 `slow consumer` once its unsent topic bytes pass `--topic-buffer`, after an unbroken prefix of the room's messages, while the other members of the room go on at the rate of an equal room without a stalled member.

use std::time::Duration;
use wsbox::{Broker, Limits};
use wsbox_tests::chat::{bulk, burst, bursts, serve_chat_at, wait_topic_count, ChatClient, BURST};
use wsbox_tests::{guest, read_until_close};

/// Messages the publisher sends in each phase, of about 1 KiB each: far more
/// than the budget and the socket buffers of the stalled client together.
const MESSAGES: usize = 10_000;
const BUDGET: usize = 256 << 10;
const FAST: usize = 4;

/// `count` members and then a publisher (`PUBLISHER`) join `room`; each
/// is told of the later joins.
async fn room(
    port: u16,
    room: &str,
    prefix: &str,
    count: usize,
    publisher: &str,
) -> (Vec<ChatClient>, ChatClient) {
    let mut members = Vec::new();
    for i in 0..count {
        members.push(ChatClient::join(port, room, &format!("{prefix}{i}")).await);
    }
    let publisher = ChatClient::join(port, room, publisher).await;
    for (i, client) in members.iter_mut().enumerate() {
        for j in i + 1..count {
            assert_eq!(client.next_text().await, format!("* {prefix}{j} joined"));
        }
        assert_eq!(
            client.next_text().await,
            format!("* {} joined", publisher.name)
        );
    }
    (members, publisher)
}

/// The middle of `values`.
fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_gets_1013_slow_consumer_and_the_others_go_on_at_full_rate() {
    let broker = Broker::local();
    let limits = Limits {
        topic_buffer: BUDGET,
        ..Limits::default()
    };
    let served = serve_chat_at(&guest("chat"), &broker, limits).await;
    let (mut fast, mut publisher) = room(served.port, "feed", "f", FAST, "pub").await;
    // The same room without a stalled member, for a rate measured at the
    // same moments, under the same load.
    let (mut calm, mut calm_publisher) = room(served.port, "calm", "c", FAST, "cpub").await;

    let alone = bursts(&mut publisher, &mut fast, "alone", MESSAGES).await;

    let slow = ChatClient::join(served.port, "feed", "slow").await;
    for client in fast.iter_mut().chain([&mut publisher]) {
        assert_eq!(client.next_text().await, "* slow joined");
    }
    // From here on, `slow` is not read.
    // The two rooms take turns, burst by burst, each going first in every
    // other pair.
    let (mut stalled, mut ratios) = (Duration::ZERO, Vec::new());
    for (i, ks) in (0..MESSAGES).collect::<Vec<_>>().chunks(BURST).enumerate() {
        let (with_stalled, without) = if i % 2 == 0 {
            let with_stalled = burst(&mut publisher, &mut fast, "stalled", ks).await;
            (
                with_stalled,
                burst(&mut calm_publisher, &mut calm, "calm", ks).await,
            )
        } else {
            let without = burst(&mut calm_publisher, &mut calm, "calm", ks).await;
            (
                burst(&mut publisher, &mut fast, "stalled", ks).await,
                without,
            )
        };
        stalled += with_stalled;
        ratios.push(with_stalled.as_secs_f64() / without.as_secs_f64());
    }
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

    // The member stopped reading from the first burst on. While its socket
    // still took messages (every burst before the one it stopped taking
    // them in), the room's bursts took as long as the calm room's at the
    // same moments: a member that does not read costs the others no more
    // than one more reader does. (The few bursts after, while the host
    // queued for it up to the budget, are too few and too noisy for a
    // bound tighter than the whole phase's above.)
    let present = &ratios[..(messages.len() / BURST).max(1)];
    let ratio = median(present);
    eprintln!(
        "its room's bursts took {ratio:.2} times the calm room's (median of {})",
        present.len()
    );
    assert!(
        ratio < 1.5,
        "the stalled member slowed its room: its bursts took {ratio:.2} times the calm \
         room's (median of {} bursts)",
        present.len()
    );

    // Its handler saw the close like any other and left the room.
    for client in fast.iter_mut().chain([&mut publisher]) {
        assert_eq!(client.next_text().await, "* slow left", "{}", client.name);
    }
    assert_eq!(broker.topic_count(), 2, "both rooms are still there");
    for client in fast.into_iter().chain([publisher]) {
        client.leave().await;
    }
    calm[0].nothing_more(Duration::from_millis(100)).await;
    for client in calm.into_iter().chain([calm_publisher]) {
        client.leave().await;
    }
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}
