//! permessage-deflate against Node `ws` (`perMessageDeflate`) in both roles: negotiation with its defaults and with its parameters, and text, binary, empty, 1 MiB and fragmented messages round-tripping.

use serde_json::{json, Value};
use wsbox::{Config, DeflateConfig, ServeConfig};
use wsbox_tests::node::{node_client, NodePeer};
use wsbox_tests::{allow, probe_with, serve};

const MIB: u64 = 1 << 20;

fn deflate_serve() -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = DeflateConfig::enabled();
    config
}

fn deflating(port: u16) -> Config {
    Config {
        deflate: DeflateConfig::enabled(),
        ..allow(port)
    }
}

/// `(type, len, pattern_ok)` of every message among `events`.
fn messages(events: &[Value]) -> Vec<(String, u64, bool)> {
    events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_string(),
                m["len"].as_u64().unwrap(),
                m["pattern_ok"] == true,
            )
        })
        .collect()
}

fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    wsbox_tests::event(events, kind)
}

#[tokio::test]
async fn a_wsbox_client_round_trips_through_a_node_server() {
    let mut peer = NodePeer::start(&[]).await;
    let probe = probe_with(
        deflating(peer.port),
        &peer.url(),
        &[
            "send-text-pattern:1048576",
            "recv",
            "send-binary:1048576",
            "recv",
            "send-text-pattern:100",
            "recv",
            "send-binary:0",
            "recv",
            "send-frag:text:{\"id\":12345,:0",
            "send-frag:text:\"user\":\"wsbox\",\"tags\":[\"a\",\"b\"],\"ok\":true,\"n\":0.25}\n:1",
            "recv",
            "close:1000:done",
        ],
    )
    .await;
    assert_eq!(
        probe.results("recv"),
        [
            "ok(text 1048576 bytes pattern-ok)",
            "ok(binary 1048576 bytes ok)",
            format!("ok(text {:?})", &wsbox_tests::text_pattern(100)).as_str(),
            "ok(binary 0 bytes ok)",
            format!("ok(text {:?})", &wsbox_tests::text_pattern(64)).as_str(),
        ],
        "{probe:#?}"
    );
    let events = peer.until("closed").await;
    let connect = event(&events, "connect");
    assert_eq!(
        connect["offer"],
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(connect["extensions"], "permessage-deflate", "{connect}");
    let want: Vec<(String, u64, bool)> = [
        ("text", MIB),
        ("binary", MIB),
        ("text", 100),
        ("binary", 0),
        ("text", 64),
    ]
    .iter()
    .map(|(kind, len)| (kind.to_string(), *len, true))
    .collect();
    assert_eq!(messages(&events), want, "{events:#?}");
    let closed = event(&events, "closed");
    assert_eq!(
        (closed["code"].clone(), closed["reason"].clone()),
        (json!(1000), json!("done"))
    );
}

#[tokio::test]
async fn a_node_client_round_trips_through_wsbox_serve() {
    let served = serve("echo", deflate_serve()).await;
    let events = node_client(
        &served.url("/"),
        &[
            "text:0",
            "text:100",
            "text:1048576",
            "binary:0",
            "binary:1048576",
            "text:1048576",
        ],
        &[],
    )
    .await;
    let connect = event(&events, "connect");
    assert_eq!(connect["extensions"], "permessage-deflate", "{connect}");
    assert_eq!(connect["answer"], "permessage-deflate", "{connect}");
    let want: Vec<(String, u64, bool)> = [
        ("text", 0),
        ("text", 100),
        ("text", MIB),
        ("binary", 0),
        ("binary", MIB),
        ("text", MIB),
    ]
    .iter()
    .map(|(kind, len)| (kind.to_string(), *len, true))
    .collect();
    assert_eq!(messages(&events), want, "{events:#?}");
    let closed = event(&events, "closed");
    assert_eq!(closed["code"], 1000, "{closed}");
}

/// Node's own parameters, each taken by wsbox in either role.
#[tokio::test]
async fn node_parameters_are_taken_in_both_roles() {
    // A Node server with limits of its own, which wsbox did not ask for.
    for (setting, params) in [
        (
            r#"{"serverNoContextTakeover": true, "clientNoContextTakeover": true}"#,
            json!({"server_no_context_takeover": true, "client_no_context_takeover": true}),
        ),
        (
            r#"{"serverMaxWindowBits": 9, "clientMaxWindowBits": 10}"#,
            json!({"server_max_window_bits": 9, "client_max_window_bits": 10}),
        ),
    ] {
        let mut peer = NodePeer::start(&[("NODE_DEFLATE", setting)]).await;
        let probe = probe_with(
            deflating(peer.port),
            &peer.url(),
            &[
                "send-text-pattern:70000",
                "recv",
                "send-text-pattern:70000",
                "recv",
                "send-binary:20000",
                "recv",
                "close:1000",
            ],
        )
        .await;
        assert_eq!(
            probe.results("recv"),
            [
                "ok(text 70000 bytes pattern-ok)",
                "ok(text 70000 bytes pattern-ok)",
                "ok(binary 20000 bytes ok)",
            ],
            "{setting}: {probe:#?}"
        );
        let events = peer.until("closed").await;
        assert_eq!(event(&events, "connect")["params"], params, "{setting}");
        assert_eq!(messages(&events).len(), 3, "{setting}");
        assert!(
            messages(&events).iter().all(|m| m.2),
            "{setting}: {events:#?}"
        );
    }
    // A Node client asking for limits, wsbox serve answering them.
    let served = serve("echo", deflate_serve()).await;
    for (setting, answer) in [
        (
            r#"{"serverNoContextTakeover": true, "clientNoContextTakeover": true}"#,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            r#"{"serverMaxWindowBits": 8, "clientMaxWindowBits": 9}"#,
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=9",
        ),
        (
            r#"{"serverMaxWindowBits": 12, "threshold": 0}"#,
            "permessage-deflate; server_max_window_bits=12",
        ),
    ] {
        let events = node_client(
            &served.url("/"),
            &["text:70000", "text:70000", "binary:20000", "text:10"],
            &[("NODE_DEFLATE", setting)],
        )
        .await;
        // wsbox's answer, in RFC 7692's order.
        assert_eq!(event(&events, "connect")["answer"], answer, "{setting}");
        assert_eq!(messages(&events).len(), 4, "{setting}: {events:#?}");
        assert!(
            messages(&events).iter().all(|m| m.2),
            "{setting}: {events:#?}"
        );
        assert_eq!(event(&events, "closed")["code"], 1000, "{setting}");
    }
}
