//! Chat rooms on one node, through the `chat` handler's joins: 50 clients in 3 rooms each get every message of their room exactly once, in each sender's order, never their own (`except`) and none of another room's; a guest `subscription` of a room sees the same stream; joins and leaves are announced; wildcard-looking room names are literal; once everyone has left, no topic is left.

use futures_util::future::join_all;
use std::time::Duration;
use wsbox::bindings::types::Message;
use wsbox::{Broker, Config, Exit};
use wsbox_tests::chat::{
    read_transcript, serve_chat, wait_topic_count, ChatClient, Seating, Transcript,
};
use wsbox_tests::{run_guest, within};

const ROOMS: [&str; 3] = ["red", "green", "blue"];
const CLIENTS: usize = 50;
const MESSAGES: usize = 20;
const QUIET: Duration = Duration::from_millis(300);

fn room_of(i: usize) -> &'static str {
    ROOMS[i % ROOMS.len()]
}

/// Who is in which room.
const SEATING: Seating = Seating {
    clients: CLIENTS,
    messages: MESSAGES,
    room_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_in_three_rooms_get_their_room_once_in_order_and_nothing_else() {
    let broker = Broker::local();
    let served = serve_chat(&broker).await;

    // A guest's own subscription to the red room, open before anyone joins:
    // it gets the joins and every message.
    let red: Vec<usize> = (0..CLIENTS).filter(|&i| room_of(i) == "red").collect();
    let relay_count = red.len() + red.len() * MESSAGES;
    let ready = broker.open("room/red/ready", 1 << 20).await.unwrap();
    let config = Config {
        broker: broker.clone(),
        ..Config::default()
    };
    let relay = tokio::spawn(async move {
        let count = relay_count.to_string();
        run_guest("topics-client", config, &["relay", "room/red", &count]).await
    });
    let first = within("the relay's ready", ready.receive()).await;
    assert_eq!(first.unwrap(), Message::Text("ready".into()));

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(ChatClient::join(served.port, room_of(i), &format!("c{i}")).await);
    }
    // Three rooms and the test's own topic.
    assert_eq!(broker.topic_count(), 4);
    // Each client was told of everyone who joined its room after it.
    for (i, client) in clients.iter_mut().enumerate() {
        let later: Vec<String> = SEATING
            .peers_of(i)
            .into_iter()
            .filter(|&j| j > i)
            .map(|j| format!("* c{j} joined"))
            .collect();
        let mut told = Vec::new();
        for _ in 0..later.len() {
            told.push(client.next_text().await);
        }
        assert_eq!(told, later, "c{i}: the joins after its own, in order");
    }

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
            "c{i} ({}): every message of its room once, in each sender's order, \
             not its own, none of another room's",
            room_of(i)
        );
        clients.push(client);
    }
    join_all(clients.iter_mut().map(|c| c.nothing_more(QUIET))).await;

    // The guest's subscription saw the same stream.
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
        "the subscription: the same stream, with the senders' own messages"
    );

    // c0 leaves the red room: the red room is told, the others are not.
    let mut clients = clients.into_iter();
    let c0 = clients.next().unwrap();
    assert_eq!(c0.leave().await, Some((1000, String::new())));
    let mut rest: Vec<ChatClient> = clients.collect();
    for client in &mut rest {
        if client.room == "red" {
            assert_eq!(client.next_text().await, "* c0 left", "{}", client.name);
        }
    }
    join_all(rest.iter_mut().map(|c| c.nothing_more(QUIET))).await;

    // Once everyone has left, the rooms are gone.
    for client in rest {
        assert_eq!(client.leave().await, Some((1000, String::new())));
    }
    drop(ready);
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}

#[tokio::test]
async fn wildcard_looking_room_names_are_literal() {
    let broker = Broker::local();
    let served = serve_chat(&broker).await;
    let rooms = [">", "*", "a.*", "a.b", "a", "a.>", "a b", "€", "room/x"];
    let mut pairs = Vec::new();
    for room in rooms {
        let listener = ChatClient::join(served.port, room, "listener").await;
        let speaker = ChatClient::join(served.port, room, "speaker").await;
        pairs.push((listener, speaker));
    }
    for (listener, _) in &mut pairs {
        assert_eq!(listener.next_text().await, "* speaker joined");
    }
    for (room, (_, speaker)) in rooms.iter().zip(&mut pairs) {
        speaker.say(&format!("to {room}")).await;
    }
    for (room, (listener, speaker)) in rooms.iter().zip(&mut pairs) {
        assert_eq!(listener.next_text().await, format!("speaker: to {room}"));
        listener.nothing_more(QUIET).await;
        speaker.nothing_more(Duration::ZERO).await;
    }
    assert_eq!(broker.topic_count(), rooms.len());
    for (listener, speaker) in pairs {
        speaker.leave().await;
        listener.leave().await;
    }
    wait_topic_count(&broker, 0).await;
    assert_eq!(wsbox::panics(), 0);
}
