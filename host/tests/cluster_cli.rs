//! `wsbox serve --cluster` as real processes: two and then three `wsbox serve chat.wasm` processes on one real `nats-server` put their members in the same room, and each member gets every other member's messages and announcements exactly once and never its own.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::ffi::OsStr;
use std::time::Duration;
use support::{serve, within, Serving};
use tungstenite::Message;
use wsbox_testbed::nats::NatsServer;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a member must stay silent for "nothing more arrives".
const QUIET: Duration = Duration::from_millis(500);

/// Starts `count` `wsbox serve --cluster URL chat.wasm` processes at once
/// (each compiles the component first) and waits for their listening lines.
fn chat_nodes(nats: &NatsServer, count: usize) -> Vec<Serving> {
    let url = nats.url();
    let chat = wsbox_testbed::guest("chat");
    let args: Vec<&OsStr> = [
        OsStr::new("serve"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--cluster"),
        OsStr::new(&url),
        chat.as_os_str(),
    ]
    .into();
    std::thread::scope(|scope| {
        let starting: Vec<_> = (0..count).map(|_| scope.spawn(|| serve(&args))).collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

/// The NATS subject of a topic under the default prefix `wsbox`: the hex
/// of its bytes.
fn subject(topic: &str) -> String {
    let hex: String = topic.bytes().map(|b| format!("{b:02x}")).collect();
    format!("wsbox.{hex}")
}

/// A chat client in the room `lobby`.
struct Member {
    name: &'static str,
    ws: Stream,
}

impl Member {
    /// Joins `lobby` as `name` on the node at `port`, and waits for the
    /// welcome.
    async fn join(port: u16, name: &'static str) -> Member {
        let url = format!("ws://127.0.0.1:{port}/room/lobby?name={name}");
        let (ws, _) = within(
            "the chat connection",
            tokio_tungstenite::connect_async(&url),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} cannot connect to {url}: {e}"));
        let mut member = Member { name, ws };
        assert_eq!(
            member.next_text().await,
            format!("* you joined lobby as {name}")
        );
        member
    }

    async fn say(&mut self, text: &str) {
        within(
            "a chat message to be sent",
            self.ws.send(Message::text(text)),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.name));
    }

    /// The next text message; the test fails on anything else.
    async fn next_text(&mut self) -> String {
        loop {
            match within("a chat message", self.ws.next()).await {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{} expected a text message, got {other:?}", self.name),
            }
        }
    }

    /// Fails if anything arrives within [`QUIET`]: no duplicate, no echo of
    /// its own message.
    async fn nothing_more(&mut self) {
        if let Ok(extra) = tokio::time::timeout(QUIET, self.ws.next()).await {
            panic!("{} got one more message: {extra:?}", self.name);
        }
    }
}

/// `from` says `text`; every member of `to` gets `FROM: TEXT`.
async fn round(from: &mut Member, to: &mut [&mut Member], text: &str) {
    from.say(text).await;
    for member in to.iter_mut() {
        assert_eq!(
            member.next_text().await,
            format!("{}: {text}", from.name),
            "what {} got from {}",
            member.name,
            from.name
        );
    }
}

#[tokio::test]
async fn members_on_separate_serve_processes_chat_through_nats_exactly_once() {
    let nats = NatsServer::start().await;
    let nodes = chat_nodes(&nats, 3);
    let lobby = subject("room/lobby");

    // Ann's join is announced while no other node has a member: a witness
    // on NATS sees the announcement go through the server, so it cannot
    // reach a member who joins later.
    let witness = within("a witness to connect", async_nats::connect(nats.url()))
        .await
        .unwrap();
    let mut witnessing = within(
        "the witness's subscription",
        witness.subscribe(lobby.clone()),
    )
    .await
    .unwrap();
    nats.wait_subscriptions("wsbox.", &[&lobby]).await;
    let mut ann = Member::join(nodes[0].port, "ann").await;
    let announced = within("ann's announcement on NATS", witnessing.next())
        .await
        .expect("the witness's subscription is open");
    assert_eq!(&announced.payload[..], b"* ann joined");
    drop(witnessing);
    // Each node subscribes on NATS with its first member: waiting for the
    // subscription means a later join's announcement reaches it.
    nats.wait_subscriptions("wsbox.", &[&lobby]).await;
    let mut bob = Member::join(nodes[1].port, "bob").await;
    assert_eq!(ann.next_text().await, "* bob joined");
    nats.wait_subscriptions("wsbox.", &[&lobby, &lobby]).await;

    // Two processes.
    round(&mut ann, &mut [&mut bob], "hello from the first node ✓").await;
    round(&mut bob, &mut [&mut ann], "hello back from the second").await;
    ann.nothing_more().await;
    bob.nothing_more().await;

    // Three processes.
    let mut cy = Member::join(nodes[2].port, "cy").await;
    assert_eq!(ann.next_text().await, "* cy joined");
    assert_eq!(bob.next_text().await, "* cy joined");
    nats.wait_subscriptions("wsbox.", &[&lobby, &lobby, &lobby])
        .await;
    round(&mut cy, &mut [&mut ann, &mut bob], "hi from the third").await;
    round(&mut ann, &mut [&mut bob, &mut cy], "first again").await;
    round(&mut bob, &mut [&mut ann, &mut cy], "second again").await;
    for member in [&mut ann, &mut bob, &mut cy] {
        member.nothing_more().await;
    }

    // A member leaving is announced on the other nodes, and its node's
    // NATS subscription goes with it.
    within("ann's close", ann.ws.close(None)).await.unwrap();
    within("the end of ann's connection", async {
        while let Some(Ok(_)) = ann.ws.next().await {}
    })
    .await;
    assert_eq!(bob.next_text().await, "* ann left");
    assert_eq!(cy.next_text().await, "* ann left");
    nats.wait_subscriptions("wsbox.", &[&lobby, &lobby]).await;
    bob.nothing_more().await;
    cy.nothing_more().await;
}
