//! Topic churn over two nodes on a real nats-server: 10,000 joins and leaves (chat members that close, drop TCP or reset it, handlers that trap or return while joined) leave no topic behind on either node (`Broker::topic_count`) and no subscription on NATS (its `/connz?subs=1`).

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tungstenite::Message;
use wsbox::{Broker, ClusterConfig, Config, Limits, ServeConfig};
use wsbox_tests::chat::{room_path, serve_chat_at, wait_topic_count, ChatClient};
use wsbox_tests::nats::NatsServer;
use wsbox_tests::{guest, raw, serve, within, Served};

/// How many rooms the joins spread over: topics come and go on each node.
const ROOMS: u64 = 40;
/// Joins in flight at once.
const WORKERS: usize = 16;

/// A node: its broker on NATS, the chat and `faulty`, served with it.
struct Node {
    broker: Broker,
    chat: Served,
    faulty: Served,
}

async fn node(nats: &NatsServer) -> Node {
    let broker = within(
        "a node to connect to nats-server",
        Broker::connect(&ClusterConfig {
            servers: vec![nats.url()],
            prefix: "wsbox".into(),
        }),
    )
    .await
    .expect("connecting to nats-server");
    let limits = Limits {
        close_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let chat = serve_chat_at(&guest("chat"), &broker, limits.clone()).await;
    let faulty = serve(
        "faulty",
        ServeConfig {
            max_connections: 256,
            websocket: Config {
                broker: broker.clone(),
                limits,
                ..Config::default()
            },
            ..ServeConfig::default()
        },
    )
    .await;
    Node {
        broker,
        chat,
        faulty,
    }
}

/// A small deterministic generator (xorshift), so a failing run can be
/// repeated.
fn random(seed: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// One join and its end, chosen at random by `i`.
async fn one_join(nodes: &[Node], i: usize) {
    let r = random(i as u64);
    let node = &nodes[(r % nodes.len() as u64) as usize];
    let room = format!("churn {}", (r >> 8) % ROOMS);
    let name = format!("m{i}");
    match (r >> 16) % 8 {
        // A member who says something and closes.
        0..=2 => {
            let mut member = ChatClient::join_busy_room(node.chat.port, &room, &name).await;
            member.say("hi").await;
            member.leave().await;
        }
        // A member whose TCP goes without a close frame.
        3 | 4 => {
            let member = ChatClient::join_busy_room(node.chat.port, &room, &name).await;
            drop(member.into_inner());
        }
        // A member whose TCP is reset once it is in.
        5 => {
            let mut tcp = raw::connect(node.chat.port, &room_path(&room, &name)).await;
            let mut welcome = [0u8; 1];
            let _ = within("the welcome", tcp.read(&mut welcome)).await;
            raw::reset(tcp);
        }
        // A handler that traps, or returns, while joined.
        _ => {
            let path = if (r >> 24).is_multiple_of(2) {
                "/joined/trap"
            } else {
                "/joined/return-open"
            };
            let url = format!("ws://127.0.0.1:{}{path}", node.faulty.port);
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                let _ = ws.send(Message::text("x")).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
        }
    }
}

async fn churn(total: usize) {
    let nats = NatsServer::start().await;
    let nodes = vec![node(&nats).await, node(&nats).await];
    let nodes = std::sync::Arc::new(nodes);
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                for i in (w..total).step_by(WORKERS) {
                    within(&format!("join {i}"), one_join(&nodes, i)).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a churn worker");
    }
    eprintln!("{total} joins and leaves in {:?}", start.elapsed());
    for node in nodes.iter() {
        wait_topic_count(&node.broker, 0).await;
    }
    nats.wait_subscriptions("wsbox.", &[]).await;
    assert_eq!(wsbox::panics(), 0);
}

/// About 12 s on 2 cores: part of the default run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_joins_and_leaves_leave_no_subscription_behind() {
    churn(10_000).await;
}
