//! Chat rooms across two and three `wsbox serve` nodes (each a `Server` with its own broker) on one real `nats-server`: every member on every node gets each message of its room once, in each sender's order, never its own and none of another room's; a guest subscription on one node sees the same stream; wildcard-looking room names stay literal; a stalled member on one node gets 1013 while the others on every node keep their rate; a node holds a NATS subscription only while it has members; and a NATS stop and restart keeps each node's rooms going, tells the sender, and heals by itself.

use futures_util::future::join_all;
use std::time::Duration;
use wsbox::bindings::types::Message;
use wsbox::{Broker, ClusterConfig, Config, Exit, Limits};
use wsbox_tests::chat::{
    bulk, bursts, read_transcript, serve_chat_at, wait_topic_count, ChatClient, Seating, Transcript,
};
use wsbox_tests::nats::NatsServer;
use wsbox_tests::{guest, read_until_close, run_guest, within, Served};

const QUIET: Duration = Duration::from_millis(300);

/// A node: a broker on `nats` and the chat served with it.
struct Node {
    broker: Broker,
    served: Served,
}

async fn node(nats: &NatsServer, limits: Limits) -> Node {
    let broker = within(
        "a node to connect to nats-server",
        Broker::connect(&ClusterConfig {
            servers: vec![nats.url()],
            prefix: "wsbox".into(),
        }),
    )
    .await
    .expect("connecting to nats-server");
    let served = serve_chat_at(&guest("chat"), &broker, limits).await;
    Node { broker, served }
}

async fn nodes(nats: &NatsServer, count: usize, limits: Limits) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        nodes.push(node(nats, limits.clone()).await);
    }
    nodes
}

/// The NATS subject of a topic under the prefix `wsbox`.
fn subject(topic: &str) -> String {
    let hex: String = topic.bytes().map(|b| format!("{b:02x}")).collect();
    format!("wsbox.{hex}")
}

/// Joins `room` as `name` on node `at`, and waits until every member
/// already in the room (`members`, on any node) and a witness subscription
/// on every node were told: the announcement has gone through NATS, so it
/// cannot reach a member who joins later.
async fn join_and_announce(
    nodes: &[Node],
    at: usize,
    room: &str,
    name: &str,
    members: &mut [&mut ChatClient],
) -> ChatClient {
    let topic = format!("room/{room}");
    let mut witnesses = Vec::new();
    for node in nodes {
        witnesses.push(node.broker.open(&topic, 1 << 20).await.unwrap());
    }
    let client = ChatClient::join(nodes[at].served.port, room, name).await;
    let announced = Message::Text(format!("* {name} joined"));
    for witness in &witnesses {
        let got = within("a witness of the join", witness.receive()).await;
        assert_eq!(got.unwrap(), announced);
    }
    for member in members.iter_mut() {
        assert_eq!(
            member.next_text().await,
            format!("* {name} joined"),
            "{}",
            member.name
        );
    }
    client
}

const ROOMS: [&str; 3] = ["red", "green", "blue"];
const CLIENTS: usize = 30;
const MESSAGES: usize = 10;

/// Client `i` is on node `i % 3`, in room `(i / 3) % 3`: every room has
/// members on every node.
fn room_of(i: usize) -> &'static str {
    ROOMS[(i / 3) % ROOMS.len()]
}

/// Who is in which room.
const SEATING: Seating = Seating {
    clients: CLIENTS,
    messages: MESSAGES,
    room_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_their_rooms_through_nats() {
    let nats = NatsServer::start().await;
    let nodes = nodes(&nats, 3, Limits::default()).await;

    // A guest subscription to the red room on node 2.
    let red: Vec<usize> = (0..CLIENTS).filter(|&i| room_of(i) == "red").collect();
    let relay_count = red.len() + red.len() * MESSAGES;
    let ready = nodes[2]
        .broker
        .open("room/red/ready", 1 << 20)
        .await
        .unwrap();
    let config = Config {
        broker: nodes[2].broker.clone(),
        ..Config::default()
    };
    let relay = tokio::spawn(async move {
        let count = relay_count.to_string();
        run_guest("topics-client", config, &["relay", "room/red", &count]).await
    });
    let first = within("the relay's ready", ready.receive()).await;
    assert_eq!(first.unwrap(), Message::Text("ready".into()));

    // Joining one at a time: everyone in the room, on any node, is told.
    let mut clients: Vec<ChatClient> = Vec::new();
    for i in 0..CLIENTS {
        let mut members: Vec<&mut ChatClient> = clients
            .iter_mut()
            .filter(|c| c.room == room_of(i))
            .collect();
        let client =
            join_and_announce(&nodes, i % 3, room_of(i), &format!("c{i}"), &mut members).await;
        clients.push(client);
    }
    // One NATS subscription per node and room.
    let mut subjects: Vec<String> = ROOMS
        .iter()
        .flat_map(|room| vec![subject(&format!("room/{room}")); 3])
        .collect();
    subjects.push(subject("room/red/ready"));
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    nats.wait_subscriptions("wsbox.", &subjects).await;

    // Everyone talks at once.
    let talking = clients.into_iter().enumerate().map(|(i, mut client)| {
        tokio::spawn(async move {
            for k in 0..MESSAGES {
                client.say(&k.to_string()).await;
            }
            let transcript =
                read_transcript(&mut client, SEATING.peers_of(i).len() * MESSAGES).await;
            (client, transcript)
        })
    });
    let mut clients = Vec::new();
    for (i, talked) in join_all(talking).await.into_iter().enumerate() {
        let (client, transcript) = talked.expect("a client's task");
        assert_eq!(
            transcript,
            Transcript {
                by_sender: SEATING.everything_from(SEATING.peers_of(i)),
                announcements: Vec::new(),
            },
            "c{i} (node {}, {}): every message of its room once, in each sender's order, \
             not its own, none of another room's",
            i % 3,
            room_of(i)
        );
        clients.push(client);
    }
    for node in &nodes {
        within("the broker's flush", node.broker.flush()).await;
    }
    join_all(clients.iter_mut().map(|c| c.nothing_more(QUIET))).await;

    let done = within("the relay's done", ready.receive()).await;
    assert_eq!(done.unwrap(), Message::Text("done".into()));
    let out = within("the relay guest to end", relay).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0), "stderr: {}", out.stderr);
    let mut seen = Transcript::default();
    for line in out.stdout.lines() {
        seen.add(line.strip_prefix("got: ").expect("a got: line"));
    }
    assert_eq!(
        seen,
        Transcript {
            by_sender: SEATING.everything_from(red.iter().copied()),
            announcements: red.iter().map(|j| format!("* c{j} joined")).collect(),
        },
        "the subscription on node 2 saw the red room's stream"
    );

    // Everyone leaves; each leave is announced on every node; the nodes
    // drop their topics and their NATS subscriptions.
    while let Some(client) = clients.pop() {
        let (name, room) = (client.name.clone(), client.room.clone());
        client.leave().await;
        for member in clients.iter_mut().filter(|c| c.room == room) {
            assert_eq!(member.next_text().await, format!("* {name} left"));
        }
    }
    drop(ready);
    for node in &nodes {
        wait_topic_count(&node.broker, 0).await;
    }
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_looking_room_names_are_literal_across_nodes() {
    let nats = NatsServer::start().await;
    let nodes = nodes(&nats, 2, Limits::default()).await;
    let rooms = [">", "*", "a.*", "a.b", "a", "a.>", "a b", "€"];
    let mut pairs = Vec::new();
    for room in rooms {
        let mut listener = join_and_announce(&nodes, 0, room, "listener", &mut []).await;
        let speaker = join_and_announce(&nodes, 1, room, "speaker", &mut [&mut listener]).await;
        pairs.push((listener, speaker));
    }
    for (room, (_, speaker)) in rooms.iter().zip(&mut pairs) {
        speaker.say(&format!("to {room}")).await;
    }
    for (room, (listener, _)) in rooms.iter().zip(&mut pairs) {
        assert_eq!(listener.next_text().await, format!("speaker: to {room}"));
    }
    within("the broker's flush", nodes[1].broker.flush()).await;
    for (listener, speaker) in &mut pairs {
        listener.nothing_more(QUIET).await;
        speaker.nothing_more(Duration::ZERO).await;
    }
    // Each name is one literal subject of hex digits, on each node.
    let subjects: Vec<String> = rooms
        .iter()
        .flat_map(|room| vec![subject(&format!("room/{room}")); 2])
        .collect();
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    nats.wait_subscriptions("wsbox.", &subjects).await;
    for (listener, speaker) in pairs {
        speaker.leave().await;
        listener.leave().await;
    }
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_on_one_node_gets_1013_and_every_node_goes_on() {
    const MESSAGES: usize = 10_000;
    let nats = NatsServer::start().await;
    let limits = Limits {
        topic_buffer: 256 << 10,
        ..Limits::default()
    };
    let nodes = nodes(&nats, 2, limits).await;
    let mut fast = Vec::new();
    for i in 0..4 {
        let mut members: Vec<&mut ChatClient> = fast.iter_mut().collect();
        let client = join_and_announce(&nodes, i % 2, "feed", &format!("f{i}"), &mut members).await;
        fast.push(client);
    }
    let mut members: Vec<&mut ChatClient> = fast.iter_mut().collect();
    let mut publisher = join_and_announce(&nodes, 0, "feed", "pub", &mut members).await;

    let alone = bursts(&mut publisher, &mut fast, "alone", MESSAGES).await;
    let mut members: Vec<&mut ChatClient> = fast.iter_mut().chain([&mut publisher]).collect();
    let slow = join_and_announce(&nodes, 1, "feed", "slow", &mut members).await;
    let stalled = bursts(&mut publisher, &mut fast, "stalled", MESSAGES).await;
    eprintln!(
        "{MESSAGES} messages over two nodes: {alone:?} alone, {stalled:?} with a stalled member"
    );
    assert!(
        stalled < alone * 3 + Duration::from_secs(2),
        "the stalled member slowed the others: {stalled:?} against {alone:?}"
    );

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
            "message {k} of the prefix"
        );
    }
    for client in fast.iter_mut().chain([&mut publisher]) {
        assert_eq!(client.next_text().await, "* slow left", "{}", client.name);
    }
    for client in fast.into_iter().chain([publisher]) {
        client.leave().await;
    }
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_keeps_each_nodes_rooms_tells_the_sender_and_heals() {
    let mut nats = NatsServer::start().await;
    let nodes = nodes(&nats, 2, Limits::default()).await;
    let mut a1 = join_and_announce(&nodes, 0, "r", "a1", &mut []).await;
    let mut a2 = join_and_announce(&nodes, 0, "r", "a2", &mut [&mut a1]).await;
    let mut b1 = join_and_announce(&nodes, 1, "r", "b1", &mut [&mut a1, &mut a2]).await;
    let room = subject("room/r");
    nats.wait_subscriptions("wsbox.", &[&room, &room]).await;
    a1.say("before").await;
    assert_eq!(a2.next_text().await, "a1: before");
    assert_eq!(b1.next_text().await, "a1: before");

    nats.stop().await;
    // Until node A's client notices, a message may still be handed to it;
    // once it has, the sender is told, and the node's own members still
    // get every message.
    let notice = within("the sender to be told of the outage", async {
        for i in 0.. {
            a1.say(&format!("probe {i}")).await;
            assert_eq!(a2.next_text().await, format!("a1: probe {i}"));
            if let Ok(notice) =
                tokio::time::timeout(Duration::from_millis(100), a1.next_text()).await
            {
                return notice;
            }
        }
        unreachable!()
    })
    .await;
    assert!(
        notice.starts_with("* only this node got it: other: delivered on this node only"),
        "{notice}"
    );
    for k in 0..5 {
        a1.say(&format!("during {k}")).await;
        assert_eq!(a2.next_text().await, format!("a1: during {k}"));
        assert!(a1
            .next_text()
            .await
            .starts_with("* only this node got it: "));
    }

    nats.restart().await;
    nats.wait_subscriptions("wsbox.", &[&room, &room]).await;
    // Node B gets node A's messages again, by itself; probes from before
    // A noticed may come first, the refused messages never.
    within("cross-node delivery to resume", async {
        for i in 0.. {
            a1.say(&format!("after {i}")).await;
            assert_eq!(a2.next_text().await, format!("a1: after {i}"));
            while let Ok(line) =
                tokio::time::timeout(Duration::from_millis(100), b1.next_text()).await
            {
                assert!(
                    !line.starts_with("a1: during"),
                    "a refused message arrived: {line}"
                );
                if line.starts_with("a1: after") {
                    return;
                }
            }
        }
    })
    .await;
    b1.say("back").await;
    assert_eq!(a2.next_text().await, "b1: back");
    loop {
        // a1 may still have notices from the reconnection queued.
        let line = a1.next_text().await;
        if line == "b1: back" {
            break;
        }
        assert!(line.starts_with("* only this node got it: "), "{line}");
    }
    within("the broker's flush", nodes[0].broker.flush()).await;
    within("the broker's flush", nodes[1].broker.flush()).await;
    for client in [a1, a2, b1] {
        client.leave().await;
    }
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(wsbox::panics(), 0);
}
