//! Headless Chromium: two chat pages (`tests/browser/chat.html`), each in a browser of its own and on a wsbox node of its own, the nodes linked by a real nats-server, chat in one room through NATS, and each page sees the other's message.

use wsbox::{Broker, ClusterConfig};
use wsbox_tests::browser::run_pages;
use wsbox_tests::chat::serve_chat;
use wsbox_tests::nats::NatsServer;
use wsbox_tests::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_on_two_nodes_chat_through_nats() {
    let nats = NatsServer::start().await;
    let mut ports = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let broker = within(
            "a node to connect to nats-server",
            Broker::connect(&ClusterConfig {
                servers: vec![nats.url()],
                prefix: "wsbox".into(),
            }),
        )
        .await
        .expect("connecting to nats-server");
        let served = serve_chat(&broker).await;
        ports.push(format!("ws://127.0.0.1:{}", served.port));
        nodes.push((broker, served));
    }
    // Each page says hello once joined and whenever someone joins, and
    // reports once it has the other's hello.
    let page = |ws: &'static str, name: &'static str, other: &'static str| {
        vec![
            ("ws", ws),
            ("room", "lobby"),
            ("name", name),
            (
                "say",
                if name == "alice" {
                    "hello from alice"
                } else {
                    "hello from bob"
                },
            ),
            ("expect", other),
        ]
    };
    let (a, b): (&'static str, &'static str) = (ports[0].clone().leak(), ports[1].clone().leak());
    let reports = run_pages(
        "chat.html",
        &[
            page(a, "alice", "bob: hello from bob"),
            page(b, "bob", "alice: hello from alice"),
        ],
    )
    .await;
    for (report, name, url, other) in [
        (&reports[0], "alice", a, "bob: hello from bob"),
        (&reports[1], "bob", b, "alice: hello from alice"),
    ] {
        assert_eq!(report["timeout"], false, "{report:#}");
        assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");
        assert!(
            report["url"].as_str().unwrap().starts_with(url),
            "{name} is on its own node: {report:#}"
        );
        let lines: Vec<&str> = report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(
            lines[0],
            format!("* you joined lobby as {name}"),
            "{report:#}"
        );
        // Joining at the same time on two nodes, a page may hear a hello
        // twice (said on joining and said again on the other's join).
        assert!(
            lines.contains(&other),
            "{name} got the other's hello: {report:#}"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with(&format!("{name}:"))),
            "{name} never gets its own messages: {report:#}"
        );
    }
    for (broker, _) in &nodes {
        within("the broker's flush", broker.flush()).await;
    }
    drop(nodes);
    assert_eq!(wsbox::panics(), 0);
}
