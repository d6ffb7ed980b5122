//! Topics across nodes through a real `nats-server`: a publication reaches
//! every other node exactly once and never comes back to its own, names stay
//! literal, a node subscribes on NATS only while it has receivers, and a
//! NATS outage keeps local delivery going, is reported by `publish`, and
//! heals by itself.

use std::time::Duration;
use wsbox::bindings::types::{ErrorCode, Message};
use wsbox::{Broker, ClusterConfig, Config, Exit, Subscription};
use wsbox_tests::nats::NatsServer;
use wsbox_tests::{run_guest, within};

const BUDGET: usize = 1 << 20;

async fn node(nats: &NatsServer, prefix: &str) -> Broker {
    within(
        "a node to connect to nats-server",
        Broker::connect(&ClusterConfig {
            servers: vec![nats.url()],
            prefix: prefix.into(),
        }),
    )
    .await
    .expect("connecting to nats-server")
}

/// The subject of a topic under `wsbox`: the hex of its bytes.
fn subject(topic: &str) -> String {
    let hex: String = topic.bytes().map(|b| format!("{b:02x}")).collect();
    format!("wsbox.{hex}")
}

async fn next(subscription: &Subscription) -> Message {
    within("a topic message", subscription.receive())
        .await
        .expect("a message, not an error")
}

/// Fails if `subscription` gets anything within a moment after everything
/// it should get has arrived.
async fn nothing_more(subscription: &Subscription, what: &str) {
    if let Ok(extra) =
        tokio::time::timeout(Duration::from_millis(300), subscription.receive()).await
    {
        panic!("{what} got one more message: {extra:?}");
    }
}

/// A message in a few words, for assertions that print well.
fn show(message: &Message) -> String {
    match message {
        Message::Text(t) => format!("text {t}"),
        Message::Binary(b) => format!("binary {} bytes of {:?}", b.len(), b.first()),
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

#[tokio::test]
async fn a_publication_reaches_every_other_node_once_and_not_its_own_node_twice() {
    let nats = NatsServer::start().await;
    let (a, b, c) = (
        node(&nats, "wsbox").await,
        node(&nats, "wsbox").await,
        node(&nats, "wsbox").await,
    );
    let on_a = a.open("room", BUDGET).await.unwrap();
    let on_b = b.open("room", BUDGET).await.unwrap();
    let on_b_too = b.open("room", BUDGET).await.unwrap();
    let on_c = c.open("room", BUDGET).await.unwrap();
    // One NATS subscription per node, however many local receivers.
    let room = subject("room");
    nats.wait_subscriptions("wsbox.", &[&room, &room, &room])
        .await;

    let mut from_a = Vec::new();
    for i in 0..100 {
        let message = if i % 10 == 9 {
            Message::Binary(vec![i as u8; 1000 + i])
        } else {
            text(&format!("a{i} ✓"))
        };
        a.publish("room", message.clone()).await.unwrap();
        from_a.push(message);
    }
    let from_b = text("from b");
    b.publish("room", from_b.clone()).await.unwrap();
    // Order holds per publisher: b's own message may come before a's on b.
    for (who, subscription) in [
        ("a", &on_a),
        ("b", &on_b),
        ("b's second", &on_b_too),
        ("c", &on_c),
    ] {
        let mut got = Vec::new();
        for _ in 0..=from_a.len() {
            got.push(next(subscription).await);
        }
        let (b_got, a_got): (Vec<_>, Vec<_>) = got.into_iter().partition(|m| *m == from_b);
        let shown = |messages: &[Message]| messages.iter().map(show).collect::<Vec<_>>();
        assert_eq!(
            shown(&a_got),
            shown(&from_a),
            "{who}: a's messages, once each, in order"
        );
        assert_eq!(b_got.len(), 1, "{who}: b's message once");
    }
    within("the broker's flush", a.flush()).await;
    within("the broker's flush", b.flush()).await;
    for (who, subscription) in [("a", &on_a), ("b", &on_b), ("c", &on_c)] {
        nothing_more(subscription, who).await;
    }
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn wildcard_looking_names_receive_only_their_own_publications_across_nodes() {
    let nats = NatsServer::start().await;
    let (a, b) = (node(&nats, "wsbox").await, node(&nats, "wsbox").await);
    let names = [">", "*", "a.*", "a.b", "a", "a.>", "a b", "€"];
    let mut on_b = Vec::new();
    for name in names {
        on_b.push(b.open(name, BUDGET).await.unwrap());
    }
    for name in names {
        a.publish(name, text(&format!("to {name}"))).await.unwrap();
    }
    within("the broker's flush", a.flush()).await;
    for (name, subscription) in names.iter().zip(&on_b) {
        assert_eq!(next(subscription).await, text(&format!("to {name}")));
    }
    for (name, subscription) in names.iter().zip(&on_b) {
        nothing_more(subscription, name).await;
    }
    // Each name is one literal subject of hex digits.
    let mut expected: Vec<String> = names.iter().map(|n| subject(n)).collect();
    expected.sort();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    nats.wait_subscriptions("wsbox.", &expected).await;
    // An invalid name reaches neither the node nor NATS.
    for bad in ["", "a\nb", &"x".repeat(256)] {
        assert!(matches!(
            a.publish(bad, text("x")).await,
            Err(ErrorCode::InvalidParameter(_))
        ));
    }
}

#[tokio::test]
async fn a_node_subscribes_on_nats_only_while_it_has_receivers() {
    let nats = NatsServer::start().await;
    let (a, b) = (node(&nats, "wsbox").await, node(&nats, "wsbox").await);
    nats.wait_subscriptions("wsbox.", &[]).await;
    let (t, u) = (subject("t"), subject("u"));
    let mut on_t: Vec<Subscription> = Vec::new();
    for _ in 0..3 {
        on_t.push(a.open("t", BUDGET).await.unwrap());
    }
    let on_u = a.open("u", BUDGET).await.unwrap();
    let b_on_t = b.open("t", BUDGET).await.unwrap();
    nats.wait_subscriptions("wsbox.", &[&t, &t, &u]).await;
    on_t.truncate(1);
    nats.wait_subscriptions("wsbox.", &[&t, &t, &u]).await;
    // The last receiver leaves: the node unsubscribes.
    on_t.clear();
    nats.wait_subscriptions("wsbox.", &[&t, &u]).await;
    drop(on_u);
    nats.wait_subscriptions("wsbox.", &[&t]).await;
    // What a publishes still reaches b.
    a.publish("t", text("still")).await.unwrap();
    assert_eq!(next(&b_on_t).await, text("still"));
    drop(b_on_t);
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(a.topic_count() + b.topic_count(), 0);

    // Churn: many opens and drops on many topics leave nothing behind.
    let mut held = Vec::new();
    for i in 0..2000 {
        let broker = if i % 2 == 0 { &a } else { &b };
        held.push(
            broker
                .open(&format!("churn/{}", i % 37), BUDGET)
                .await
                .unwrap(),
        );
        if i % 3 == 0 {
            let at = (i * 7) % held.len();
            held.swap_remove(at);
        }
    }
    held.clear();
    nats.wait_subscriptions("wsbox.", &[]).await;
}

#[tokio::test]
async fn the_prefix_keeps_applications_apart_on_one_nats() {
    let nats = NatsServer::start().await;
    let (a, b) = (node(&nats, "wsbox").await, node(&nats, "app.two").await);
    let on_a = a.open("t", BUDGET).await.unwrap();
    let on_b = b.open("t", BUDGET).await.unwrap();
    nats.wait_subscriptions("app.two.", &["app.two.74"]).await;
    nats.wait_subscriptions("wsbox.", &["wsbox.74"]).await;
    a.publish("t", text("for wsbox")).await.unwrap();
    b.publish("t", text("for app.two")).await.unwrap();
    assert_eq!(next(&on_a).await, text("for wsbox"));
    assert_eq!(next(&on_b).await, text("for app.two"));
    nothing_more(&on_a, "wsbox").await;
    nothing_more(&on_b, "app.two").await;
}

#[tokio::test]
async fn a_nats_outage_keeps_local_delivery_is_reported_and_heals_by_itself() {
    let mut nats = NatsServer::start().await;
    let (a, b) = (node(&nats, "wsbox").await, node(&nats, "wsbox").await);
    let on_a = a.open("t", BUDGET).await.unwrap();
    let on_b = b.open("t", BUDGET).await.unwrap();
    let t = subject("t");
    nats.wait_subscriptions("wsbox.", &[&t, &t]).await;
    a.publish("t", text("before")).await.unwrap();
    assert_eq!(next(&on_a).await, text("before"));
    assert_eq!(next(&on_b).await, text("before"));

    nats.stop().await;
    // Until the client notices, a publication may still be handed to it;
    // once it has, `publish` says so, after delivering locally.
    let refused = within("publish to report the outage", async {
        for i in 0.. {
            let message = text(&format!("probe {i}"));
            match a.publish("t", message.clone()).await {
                Ok(()) => assert_eq!(next(&on_a).await, message),
                Err(e) => {
                    assert_eq!(next(&on_a).await, message, "delivered locally first");
                    return e;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        unreachable!()
    })
    .await;
    match &refused {
        ErrorCode::Other(why) => assert!(why.contains("delivered on this node only"), "{why}"),
        other => panic!("expected other, got {other:?}"),
    }
    for i in 0..20 {
        let message = text(&format!("during {i}"));
        assert!(matches!(
            a.publish("t", message.clone()).await,
            Err(ErrorCode::Other(_))
        ));
        assert_eq!(next(&on_a).await, message, "local delivery goes on");
    }

    nats.restart().await;
    nats.wait_subscriptions("wsbox.", &[&t, &t]).await;
    let healed = within("cross-node delivery to resume", async {
        for i in 0.. {
            let message = text(&format!("after {i}"));
            if a.publish("t", message.clone()).await.is_ok() {
                return message;
            }
            assert_eq!(next(&on_a).await, message);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!()
    })
    .await;
    // b gets the first message a could hand to NATS again; probes from
    // before the client noticed may come first, the refused ones never.
    loop {
        match next(&on_b).await {
            Message::Text(t) if t.starts_with("probe ") => continue,
            Message::Text(t) if t.starts_with("during ") => {
                panic!("a refused message arrived: {t}")
            }
            other => {
                assert_eq!(other, healed);
                break;
            }
        }
    }
    b.publish("t", text("from b again")).await.unwrap();
    loop {
        match next(&on_a).await {
            m if m == healed => continue,
            other => {
                assert_eq!(other, text("from b again"));
                break;
            }
        }
    }
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn an_unreachable_nats_at_start_up_is_one_clear_error() {
    let nats = NatsServer::start().await;
    let url = nats.url();
    drop(nats);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = Broker::connect(&ClusterConfig {
        servers: vec![url.clone()],
        prefix: "wsbox".into(),
    })
    .await
    .expect_err("no nats-server there");
    let message = error.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.contains(&url) && message.contains("nats-server"),
        "{message}"
    );
    for (servers, prefix, says) in [
        (vec!["nats://[bad".to_string()], "wsbox", "--cluster"),
        (vec![url.clone()], "a.*", "--cluster-prefix"),
        (vec![url.clone()], "a..b", "--cluster-prefix"),
        (vec![], "wsbox", "--cluster"),
    ] {
        let error = Broker::connect(&ClusterConfig {
            servers,
            prefix: prefix.into(),
        })
        .await
        .expect_err("invalid");
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[tokio::test]
async fn a_guest_subscription_on_one_node_gets_what_another_node_publishes() {
    let nats = NatsServer::start().await;
    let (a, b) = (node(&nats, "wsbox").await, node(&nats, "wsbox").await);
    let config = Config {
        broker: a.clone(),
        ..Config::default()
    };
    // The guest publishes `ready` on its node; it reaches b through NATS.
    let ready = b.open("feed/ready", BUDGET).await.unwrap();
    let guest = tokio::spawn(run_guest("topics-client", config, &["relay", "feed", "5"]));
    assert_eq!(next(&ready).await, text("ready"));
    let feed = subject("feed");
    let ready_subject = subject("feed/ready");
    nats.wait_subscriptions("wsbox.", &[&feed, &ready_subject])
        .await;
    for i in 0..4 {
        b.publish("feed", text(&format!("news {i}"))).await.unwrap();
    }
    b.publish("feed", Message::Binary(vec![1; 300]))
        .await
        .unwrap();
    assert_eq!(next(&ready).await, text("done"));
    let out = within("the guest to end", guest).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout,
        "got: news 0\ngot: news 1\ngot: news 2\ngot: news 3\ngot: binary 300 bytes\n"
    );
    // The guest's subscription ended with its instance.
    nats.wait_subscriptions("wsbox.", &[&ready_subject]).await;
}
