//! permessage-deflate against Python `websockets` in both roles: text and binary, empty and 1 MiB messages and fragments round-trip, and every combination of the four parameters is negotiated as offered, checked on the peer's side.

use serde_json::{json, Value};
use wsbox::{Config, DeflateConfig, ServeConfig};
use wsbox_tests::{
    allow, event, probe_with, py_client_with_env, serve, text_pattern, Probe, PyPeer,
};

const MIB: usize = 1 << 20;

/// A wsbox configuration that allows `port` and uses `deflate`.
fn deflating(port: u16, deflate: DeflateConfig) -> Config {
    Config {
        deflate,
        ..allow(port)
    }
}

/// What the peer reports for a negotiated permessage-deflate.
fn negotiated(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> Value {
    json!([{
        "name": "permessage-deflate",
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": server_bits,
        "client_max_window_bits": client_bits,
    }])
}

/// The messages among `events`, in order.
fn messages(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "message").collect()
}

/// Whether every message in `events` is its pattern (text or binary).
fn all_patterns(events: &[Value]) -> bool {
    messages(events)
        .iter()
        .all(|m| m["text_pattern_ok"] == true || m["pattern_ok"] == true)
}

#[tokio::test]
async fn a_wsbox_client_round_trips_every_kind_of_message_through_a_python_server() {
    let mut peer = PyPeer::start_with_env(&["echo"], &[("PEER_COMPRESSION", "deflate")]).await;
    let config = deflating(peer.port, DeflateConfig::enabled());
    let probe = probe_with(
        config,
        &peer.url("/"),
        &[
            "send-text:hello",
            "recv",
            "send-text:",
            "recv",
            "send-binary:0",
            "recv",
            "send-text-pattern:1048576",
            "recv",
            "send-binary:1048576",
            "recv",
            // A fragmented message, each piece compressed as it is given.
            "send-frag:text:first half, :0",
            "send-frag:text:second half:1",
            "recv",
            "send-text-pattern:1048576",
            "recv-all-frags:1000",
            "close:1000:done",
        ],
    )
    .await;
    let events = peer.until("closed").await;
    let connect = event(&events, "connect");
    // websockets' server limits both windows to 12 bits by default.
    assert_eq!(
        connect["extensions"],
        negotiated(false, false, 12, 12),
        "{connect}"
    );
    assert_eq!(
        connect["headers"]["sec-websocket-extensions"],
        "permessage-deflate; client_max_window_bits"
    );
    assert_eq!(
        probe.results("recv"),
        [
            r#"ok(text "hello")"#,
            r#"ok(text "")"#,
            "ok(binary 0 bytes ok)",
            "ok(text 1048576 bytes pattern-ok)",
            "ok(binary 1048576 bytes ok)",
            r#"ok(text "first half, second half")"#,
        ],
        "{probe:#?}"
    );
    let streamed = probe.result("recv-all-frags:1000");
    assert!(
        streamed.starts_with("ok(message text 1048576 bytes in ")
            && streamed.ends_with(" max=1000 ok)"),
        "{streamed}"
    );
    assert_eq!(probe.result("close:1000:done"), "ok");
    let closed = event(&events, "closed");
    assert_eq!(closed["clean"], true, "{closed}");
    let received = messages(&events);
    let summary: Vec<(Value, Value, Value)> = received
        .iter()
        .map(|m| {
            let ok = if m["type"] == "text" {
                m["text_pattern_ok"].clone()
            } else {
                m["pattern_ok"].clone()
            };
            (m["type"].clone(), m["len"].clone(), ok)
        })
        .collect();
    // Short texts are not the pattern; the peer's data says what they were.
    assert_eq!(received[0]["data"], "hello");
    assert_eq!(received[5]["data"], "first half, second half");
    assert_eq!(
        summary,
        [
            (json!("text"), json!(5), json!(false)),
            (json!("text"), json!(0), json!(true)),
            (json!("binary"), json!(0), json!(true)),
            (json!("text"), json!(MIB), json!(true)),
            (json!("binary"), json!(MIB), json!(true)),
            (json!("text"), json!(23), json!(false)),
            (json!("text"), json!(MIB), json!(true)),
        ]
    );
}

#[tokio::test]
async fn a_python_client_round_trips_every_kind_of_message_through_wsbox_serve() {
    let served = serve("echo", deflate_serve(DeflateConfig::enabled())).await;
    let events = py_client_with_env(
        &[
            &served.url("/"),
            "exchange",
            "text:0",
            "text:5",
            "binary:0",
            "binary:7",
            "text:1048576",
            "binary:1048576",
            "frag-text:100000:4",
            "frag-binary:100000:4",
            "frag-text:0:1",
        ],
        &[("PEER_COMPRESSION", "deflate")],
    )
    .await;
    let connect = event(&events, "connect");
    // websockets' default offer: client_max_window_bits without a value.
    assert_eq!(
        connect["extensions"],
        negotiated(false, false, 15, 15),
        "{connect}"
    );
    assert_eq!(connect["extensions_header"], "permessage-deflate");
    let got: Vec<(Value, Value, bool)> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|m| {
            let ok = m["text_pattern_ok"] == true || m["pattern_ok"] == true;
            (m["type"].clone(), m["len"].clone(), ok)
        })
        .collect();
    let want = [
        ("text", 0),
        ("text", 5),
        ("binary", 0),
        ("binary", 7),
        ("text", MIB),
        ("binary", MIB),
        ("text", 100_000),
        ("binary", 100_000),
        ("text", 0),
    ]
    .map(|(kind, len)| (json!(kind), json!(len), true));
    assert_eq!(got, want, "{events:#?}");
    let closed = event(&events, "closed");
    assert_eq!(closed["clean"], true, "{closed}");
    assert_eq!(closed["rcvd"]["code"], 1000);
}

/// A `serve` configuration with `deflate`.
fn deflate_serve(deflate: DeflateConfig) -> ServeConfig {
    let mut config = ServeConfig::default();
    config.websocket.deflate = deflate;
    config
}

/// The four parameters, as wsbox's settings or a peer's.
#[derive(Clone, Copy, Debug)]
struct Four {
    snct: bool,
    cnct: bool,
    server_bits: u8,
    client_bits: u8,
}

/// Every combination, window bits from `bits` (15 meaning no limit).
fn combinations(server_bits: &[u8], client_bits: &[u8]) -> Vec<Four> {
    let mut all = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for &server_bits in server_bits {
                for &client_bits in client_bits {
                    all.push(Four {
                        snct,
                        cnct,
                        server_bits,
                        client_bits,
                    });
                }
            }
        }
    }
    all
}

/// Steps that send compressible and incompressible messages twice each (so
/// that context takeover, or its absence, spans messages), each echoed.
const EXCHANGE_STEPS: &[&str] = &[
    "send-text-pattern:70000",
    "recv",
    "send-text-pattern:70000",
    "recv",
    "send-binary:20000",
    "recv",
    "send-binary:20000",
    "recv",
    "close:1000:done",
];

fn exchange_ok(probe: &Probe) {
    assert_eq!(
        probe.results("recv"),
        [
            "ok(text 70000 bytes pattern-ok)",
            "ok(text 70000 bytes pattern-ok)",
            "ok(binary 20000 bytes ok)",
            "ok(binary 20000 bytes ok)",
        ],
        "{probe:#?}"
    );
    assert_eq!(probe.result("close:1000:done"), "ok");
}

/// wsbox offers every combination; the Python server (without limits of
/// its own) takes each as offered, except a server window of 8 bits, which
/// websockets cannot compress with and declines (the connection then goes
/// on without compression, as RFC 7692 allows).
#[tokio::test]
async fn a_wsbox_client_offers_every_combination_and_a_python_server_takes_it() {
    let mut peer = PyPeer::start_with_env(&["echo"], &[("PEER_DEFLATE", "{}")]).await;
    for (i, four) in combinations(&[15, 8, 9, 12], &[15, 8, 9, 12])
        .into_iter()
        .enumerate()
    {
        let deflate = DeflateConfig {
            server_no_context_takeover: four.snct,
            client_no_context_takeover: four.cnct,
            server_max_window_bits: four.server_bits,
            client_max_window_bits: four.client_bits,
            ..DeflateConfig::enabled()
        };
        let probe = probe_with(
            deflating(peer.port, deflate),
            &peer.url("/"),
            EXCHANGE_STEPS,
        )
        .await;
        exchange_ok(&probe);
        let events = peer.until("closed").await;
        let connect = event(&events, "connect");
        assert_eq!(connect["conn"], i as u64 + 1);
        let want = if four.server_bits == 8 {
            json!([])
        } else {
            negotiated(four.snct, four.cnct, four.server_bits, four.client_bits)
        };
        assert_eq!(connect["extensions"], want, "{four:?}: {connect}");
        assert_eq!(event(&events, "closed")["clean"], true, "{four:?}");
        assert_eq!(messages(&events).len(), 4, "{four:?}: {events:#?}");
        assert!(all_patterns(&events), "{four:?}: {events:#?}");
    }
}

/// The Python client offers every combination it can (websockets cannot
/// compress with 8 bits, so never offers a client window of 8); wsbox, at
/// its defaults, answers each as offered.
#[tokio::test]
async fn a_python_client_offers_every_combination_and_wsbox_serve_takes_it() {
    let served = serve("echo", deflate_serve(DeflateConfig::enabled())).await;
    let url = served.url("/");
    // 0 stands for an offer of client_max_window_bits without a value, 15
    // for no parameter at all.
    let all = combinations(&[15, 8, 9, 12], &[15, 0, 9, 12]);
    for chunk in all.chunks(4) {
        let runs = chunk.iter().map(|four| {
            let url = url.clone();
            async move {
                let mut offer = serde_json::Map::new();
                offer.insert("server_no_context_takeover".into(), json!(four.snct));
                offer.insert("client_no_context_takeover".into(), json!(four.cnct));
                if four.server_bits < 15 {
                    offer.insert("server_max_window_bits".into(), json!(four.server_bits));
                }
                offer.insert(
                    "client_max_window_bits".into(),
                    match four.client_bits {
                        0 => json!(true),
                        15 => Value::Null,
                        bits => json!(bits),
                    },
                );
                let offer = Value::Object(offer).to_string();
                let events = py_client_with_env(
                    &[
                        &url,
                        "exchange",
                        "text:70000",
                        "text:70000",
                        "binary:20000",
                        "binary:20000",
                    ],
                    &[("PEER_DEFLATE", &offer)],
                )
                .await;
                (*four, events)
            }
        });
        for (four, events) in futures_util::future::join_all(runs).await {
            let connect = event(&events, "connect");
            let client_bits = match four.client_bits {
                0 => 15,
                bits => bits,
            };
            assert_eq!(
                connect["extensions"],
                negotiated(four.snct, four.cnct, four.server_bits, client_bits),
                "{four:?}: {connect}"
            );
            assert_eq!(messages(&events).len(), 4, "{four:?}: {events:#?}");
            assert!(all_patterns(&events), "{four:?}: {events:#?}");
            assert_eq!(event(&events, "closed")["clean"], true, "{four:?}");
        }
    }
}

/// wsbox's own settings as a server, against Python's default offer
/// (`client_max_window_bits` without a value): each is stated in the answer
/// and used. A client window of 8 is answered as 9, since a zlib-based
/// client (websockets, Node) cannot compress with 8 bits and would fail the
/// connection; wsbox inflates with at least 9 bits anyway.
#[tokio::test]
async fn wsbox_serve_states_its_own_settings_to_a_python_client() {
    let rows = [
        (
            Four {
                snct: true,
                cnct: false,
                server_bits: 15,
                client_bits: 15,
            },
            negotiated(true, false, 15, 15),
        ),
        (
            Four {
                snct: false,
                cnct: true,
                server_bits: 15,
                client_bits: 15,
            },
            negotiated(false, true, 15, 15),
        ),
        (
            Four {
                snct: false,
                cnct: false,
                server_bits: 8,
                client_bits: 15,
            },
            negotiated(false, false, 8, 15),
        ),
        (
            Four {
                snct: false,
                cnct: false,
                server_bits: 9,
                client_bits: 15,
            },
            negotiated(false, false, 9, 15),
        ),
        (
            Four {
                snct: false,
                cnct: false,
                server_bits: 15,
                client_bits: 8,
            },
            negotiated(false, false, 15, 9),
        ),
        (
            Four {
                snct: false,
                cnct: false,
                server_bits: 15,
                client_bits: 12,
            },
            negotiated(false, false, 15, 12),
        ),
        (
            Four {
                snct: true,
                cnct: true,
                server_bits: 10,
                client_bits: 11,
            },
            negotiated(true, true, 10, 11),
        ),
    ];
    for (four, want) in rows {
        let deflate = DeflateConfig {
            server_no_context_takeover: four.snct,
            client_no_context_takeover: four.cnct,
            server_max_window_bits: four.server_bits,
            client_max_window_bits: four.client_bits,
            ..DeflateConfig::enabled()
        };
        let served = serve("echo", deflate_serve(deflate)).await;
        let events = py_client_with_env(
            &[
                &served.url("/"),
                "exchange",
                "text:70000",
                "text:70000",
                "binary:20000",
            ],
            &[("PEER_COMPRESSION", "deflate")],
        )
        .await;
        let connect = event(&events, "connect");
        assert_eq!(connect["extensions"], want, "{four:?}: {connect}");
        assert_eq!(messages(&events).len(), 3, "{four:?}: {events:#?}");
        assert!(all_patterns(&events), "{four:?}: {events:#?}");
        served.shutdown().await;
    }
}

/// A Python server that answers with its own settings, none of which wsbox
/// asked for: wsbox takes each and uses it.
#[tokio::test]
async fn a_wsbox_client_takes_a_python_servers_own_settings() {
    let settings = [
        (
            r#"{"server_no_context_takeover": true}"#,
            negotiated(true, false, 15, 15),
        ),
        (
            r#"{"client_no_context_takeover": true}"#,
            negotiated(false, true, 15, 15),
        ),
        (
            r#"{"server_max_window_bits": 9}"#,
            negotiated(false, false, 9, 15),
        ),
        (
            r#"{"client_max_window_bits": 8}"#,
            negotiated(false, false, 15, 8),
        ),
        (
            r#"{"server_no_context_takeover": true, "client_no_context_takeover": true, "server_max_window_bits": 10, "client_max_window_bits": 11}"#,
            negotiated(true, true, 10, 11),
        ),
    ];
    for (setting, want) in settings {
        let mut peer = PyPeer::start_with_env(&["echo"], &[("PEER_DEFLATE", setting)]).await;
        let config = deflating(peer.port, DeflateConfig::enabled());
        let probe = probe_with(config, &peer.url("/"), EXCHANGE_STEPS).await;
        exchange_ok(&probe);
        let events = peer.until("closed").await;
        let connect = event(&events, "connect");
        assert_eq!(connect["extensions"], want, "{setting}: {connect}");
        assert_eq!(event(&events, "closed")["clean"], true, "{setting}");
        assert_eq!(messages(&events).len(), 4, "{setting}: {events:#?}");
        assert!(all_patterns(&events), "{setting}: {events:#?}");
    }
}

#[test]
fn the_text_pattern_is_the_peers() {
    assert_eq!(
        &text_pattern(70)[..],
        "{\"id\":12345,\"user\":\"wsbox\",\"tags\":[\"a\",\"b\"],\"ok\":true,\"n\":0.25}\n{\"id\":"
    );
}
