//! The `chat` sample handler's side of the topic tests: serving it with a
//! broker of the test's own, and chat clients (tokio-tungstenite) in one
//! room each, with every wait bounded by [`WAIT`](crate::WAIT).

use crate::{connect, within, ClientStream, Served};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsbox::{Broker, Config, Limits, ServeConfig};

/// Serves the `chat` handler at `component` with `broker` and `limits`.
pub async fn serve_chat_at(component: &Path, broker: &Broker, limits: Limits) -> Served {
    let config = ServeConfig {
        websocket: Config {
            broker: broker.clone(),
            limits,
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    crate::serve_component(component, config).await
}

/// Serves the Rust `chat` handler with `broker` and the default limits.
pub async fn serve_chat(broker: &Broker) -> Served {
    serve_chat_at(&crate::guest("chat"), broker, Limits::default()).await
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `/room/ROOM?name=NAME`, both percent-encoded.
pub fn room_path(room: &str, name: &str) -> String {
    format!("/room/{}?name={}", encode(room), encode(name))
}

/// `ws://127.0.0.1:PORT/room/ROOM?name=NAME`.
pub fn room_url(port: u16, room: &str, name: &str) -> String {
    format!("ws://127.0.0.1:{port}{}", room_path(room, name))
}

/// What the chat sends a client once it joined.
pub fn welcome(room: &str, name: &str) -> String {
    format!("* you joined {room} as {name}")
}

/// A client of the chat in one room.
pub struct ChatClient {
    /// The name it chose.
    pub name: String,
    /// Its room.
    pub room: String,
    ws: ClientStream,
}

impl ChatClient {
    /// Connects to ROOM as NAME on the chat at `port`, and waits for the
    /// welcome: from then on, it is in the room, and the room was told.
    pub async fn join(port: u16, room: &str, name: &str) -> ChatClient {
        let ws = connect(&room_url(port, room, name)).await;
        let mut client = ChatClient {
            name: name.into(),
            room: room.into(),
            ws,
        };
        let first = client.next_text().await;
        assert_eq!(first, welcome(room, name), "{name}'s first message");
        client
    }

    /// Like [`join`](Self::join), in a room with traffic of its own: what
    /// arrives before the welcome is skipped.
    pub async fn join_busy_room(port: u16, room: &str, name: &str) -> ChatClient {
        let ws = connect(&room_url(port, room, name)).await;
        let mut client = ChatClient {
            name: name.into(),
            room: room.into(),
            ws,
        };
        while client.next_text().await != welcome(room, name) {}
        client
    }

    /// Sends `text`.
    pub async fn say(&mut self, text: &str) {
        within(
            "a chat message to be sent",
            self.ws.send(Message::text(text)),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.name));
    }

    /// The next text message, within [`WAIT`](crate::WAIT); the test fails
    /// on anything else (a close, an error, the end).
    pub async fn next_text(&mut self) -> String {
        loop {
            match within("a chat message", self.ws.next()).await {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("{} expected a text message, got {other:?}", self.name),
            }
        }
    }

    /// Fails if a message arrives within `quiet`.
    pub async fn nothing_more(&mut self, quiet: Duration) {
        if let Ok(extra) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("{} got one more message: {extra:?}", self.name);
        }
    }

    /// Closes with 1000 and reads until the server's answer; returns the
    /// code and reason the server answered with.
    pub async fn leave(mut self) -> Option<(u16, String)> {
        let normal = tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "".into(),
        };
        within("our close to be sent", self.ws.close(Some(normal)))
            .await
            .unwrap_or_else(|e| panic!("{}: close failed: {e}", self.name));
        crate::read_until_close(&mut self.ws).await.1
    }

    /// The stream, for a test that goes on by hand.
    pub fn into_inner(self) -> ClientStream {
        self.ws
    }
}

/// Messages a client received from the room, by sender: `SENDER: TEXT`
/// lines grouped per sender, in arrival order; announcements (`* ...`)
/// kept apart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// Each sender's messages, in the order they arrived.
    pub by_sender: BTreeMap<String, Vec<String>>,
    /// The `* ...` lines, in the order they arrived.
    pub announcements: Vec<String>,
}

impl Transcript {
    /// Files one line.
    pub fn add(&mut self, line: &str) {
        if line.starts_with("* ") {
            self.announcements.push(line.to_string());
            return;
        }
        let (sender, text) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("not a chat line: {line:?}"));
        self.by_sender
            .entry(sender.to_string())
            .or_default()
            .push(text.to_string());
    }

    /// How many lines were filed.
    pub fn len(&self) -> usize {
        self.announcements.len() + self.by_sender.values().map(Vec::len).sum::<usize>()
    }

    /// Whether nothing was filed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who is in which room in a chat test: client `i` is `c{i}`, in room
/// `room_of(i)`, and sends the texts `0`, `1`, ... `messages - 1`.
pub struct Seating {
    /// How many clients there are.
    pub clients: usize,
    /// How many messages each client sends.
    pub messages: usize,
    /// The room of client `i`.
    pub room_of: fn(usize) -> &'static str,
}

impl Seating {
    /// The clients in `i`'s room other than `i`.
    pub fn peers_of(&self, i: usize) -> Vec<usize> {
        (0..self.clients)
            .filter(|&j| j != i && (self.room_of)(j) == (self.room_of)(i))
            .collect()
    }

    /// What each of `senders` sends, by sender name.
    pub fn everything_from(
        &self,
        senders: impl IntoIterator<Item = usize>,
    ) -> BTreeMap<String, Vec<String>> {
        senders
            .into_iter()
            .map(|j| {
                let texts = (0..self.messages).map(|k| k.to_string()).collect();
                (format!("c{j}"), texts)
            })
            .collect()
    }
}

/// Reads `count` text messages from `client` into a transcript.
pub async fn read_transcript(client: &mut ChatClient, count: usize) -> Transcript {
    let mut transcript = Transcript::default();
    for _ in 0..count {
        let line = client.next_text().await;
        transcript.add(&line);
    }
    transcript
}

/// Waits until `broker` has `count` topics with receivers.
pub async fn wait_topic_count(broker: &Broker, count: usize) {
    let reached = tokio::time::timeout(crate::WAIT, async {
        while broker.topic_count() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "the broker has {} topics, not {count}, after {:?}",
        broker.topic_count(),
        crate::WAIT
    );
}

/// Message `k` of a bulk run called `run`: about 1 KiB.
pub fn bulk(run: &str, k: usize) -> String {
    format!("{run} {k} {}", "x".repeat(1000))
}

/// How many messages the readers of [`bursts`] read before the next burst.
pub const BURST: usize = 100;

/// `publisher` sends `count` [`bulk`] messages of `run` in bursts of
/// [`BURST`], each read by every one of `readers` (as `PUBLISHER: MESSAGE`,
/// in order) before the next, so that they never lag by more than a burst.
/// Gives how long it took.
pub async fn bursts(
    publisher: &mut ChatClient,
    readers: &mut [ChatClient],
    run: &str,
    count: usize,
) -> Duration {
    let start = Instant::now();
    for burst in (0..count).collect::<Vec<_>>().chunks(BURST) {
        self::burst(publisher, readers, run, burst).await;
    }
    start.elapsed()
}

/// One burst of [`bursts`]: `publisher` sends the [`bulk`] messages `ks` of
/// `run`, and every one of `readers` reads them. Gives how long it took.
pub async fn burst(
    publisher: &mut ChatClient,
    readers: &mut [ChatClient],
    run: &str,
    ks: &[usize],
) -> Duration {
    let start = Instant::now();
    let sender = publisher.name.clone();
    for &k in ks {
        publisher.say(&bulk(run, k)).await;
    }
    join_all(readers.iter_mut().map(|client| {
        let sender = &sender;
        async move {
            for &k in ks {
                let got = client.next_text().await;
                assert!(
                    got == format!("{sender}: {}", bulk(run, k)),
                    "{}: message {k} of {run} is {:?}",
                    client.name,
                    &got[..got.len().min(40)]
                );
            }
        }
    }))
    .await;
    start.elapsed()
}
