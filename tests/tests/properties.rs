//! Property tests: random call sequences from a guest never panic the host, never change a latched close status, and get every message the peer sent before its close unless the guest closed first; arbitrary bytes from a peer, in either role, end in a defined error or close code and the host keeps serving.

use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use wsbox::ServeConfig;
use wsbox_tests::raw::{close_code, connect, RawServer};
use wsbox_tests::{allow, next_message, probe, probe_with, send, serve, within, PyPeer};

fn step() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => Just("recv".to_string()),
        2 => Just("query".to_string()),
        1 => "[a-z]{0,6}".prop_map(|t| format!("send-text:{t}")),
        1 => (any::<bool>(), "[a-z]{1,4}").prop_map(|(fin, t)| format!("send-frag:text:{t}:{}", u8::from(fin))),
        1 => Just("ping:p".to_string()),
        1 => prop_oneof![Just(1000u16), Just(4000), Just(999)].prop_map(|c| format!("shutdown:{c}")),
        1 => prop_oneof![Just(1000u16), Just(3000), Just(1005)].prop_map(|c| format!("close:{c}")),
        1 => Just("abort".to_string()),
    ]
}

const SENT: usize = 4;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_call_sequences_keep_the_contract(steps in proptest::collection::vec(step(), 1..14)) {
        let rt = runtime();
        let out = rt.block_on(async {
            let peer = PyPeer::start(&["send-then-close", &SENT.to_string(), "4001", "end"]).await;
            let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
            // probe() also asserts that the guest ran to its end: no trap,
            // no host panic.
            probe(peer.port, &peer.url("/"), &steps).await
        });
        let mut latched: Option<&str> = None;
        let mut delivered = 0;
        let mut closed_first = false;
        for (step, result) in out.steps().into_iter().skip(1) {
            if step == "query" && result.starts_with("ok(") {
                prop_assert!(latched.is_none_or(|l| l == result), "{} then {}", latched.unwrap_or(""), result);
                latched = Some(result);
            }
            if step == "query" {
                prop_assert!(latched.is_none_or(|l| l == result), "a latched status changed to {}", result);
            }
            if step == "recv" {
                if let Some(text) = result.strip_prefix("ok(text ") {
                    prop_assert_eq!(text, format!("\"msg {delivered}\")"));
                    delivered += 1;
                }
                if result.starts_with("ok(close") && !closed_first {
                    prop_assert_eq!(delivered, SENT, "the close came before every message");
                }
            }
            if step == "abort" || (step.starts_with("close:") && !result.starts_with("err(invalid-parameter")) {
                closed_first = true;
            }
        }
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bytes that are often frame-shaped, so that the fuzzing gets past the
/// first header byte.
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        any::<u8>(),
        0u8..130,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..140),
    )
        .prop_map(|(first, len, masked, payload)| {
            let mut out = vec![first, len | if masked { 0x80 } else { 0 }];
            if masked {
                out.extend_from_slice(&[1, 2, 3, 4]);
            }
            out.extend(payload);
            out
        });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(frame, 1..4).prop_map(|frames| frames.concat()),
    ]
}

/// A defined end: TCP closed, or a close frame that is empty or carries a
/// code that may be sent (the host's own 1002, 1007, 1009, 1011, or an
/// echo of a valid close the random bytes happened to contain).
fn defined(answer: Option<Option<u16>>) -> bool {
    match answer {
        None | Some(None) => true,
        Some(Some(code)) => wsbox::CloseCode::from(code).is_allowed(),
    }
}

#[test]
fn arbitrary_bytes_from_a_client_end_defined_and_the_server_keeps_serving() {
    let rt = runtime();
    let served = rt.block_on(serve("echo", ServeConfig::default()));
    let port = served.port;
    proptest!(ProptestConfig { cases: 256, ..ProptestConfig::default() }, |(bytes in peer_bytes())| {
        let answer = rt.block_on(async {
            let mut tcp = connect(port, "/fuzz").await;
            within("a write to the server", tcp.write_all(&bytes)).await.unwrap();
            within("our end of TCP", tcp.shutdown()).await.unwrap();
            close_code(&mut tcp).await
        });
        prop_assert!(defined(answer), "{:?}", answer);
    });
    rt.block_on(async {
        let mut ws = wsbox_tests::connect(&served.url("/after")).await;
        send(&mut ws, tungstenite::Message::text("alive")).await;
        assert_eq!(
            next_message(&mut ws).await,
            tungstenite::Message::text("alive")
        );
    });
}

#[test]
fn arbitrary_bytes_from_a_server_end_defined_for_the_guest() {
    let rt = runtime();
    proptest!(ProptestConfig { cases: 48, ..ProptestConfig::default() }, |(bytes in peer_bytes())| {
        let (out, answer) = rt.block_on(async {
            let server = RawServer::sending_then_fin(bytes).await;
            let url = format!("ws://127.0.0.1:{}/", server.port);
            let out = probe_with(allow(server.port), &url, &["recv-until-close", "query"]).await;
            (out, server.answer().await)
        });
        let query = out.result("query");
        prop_assert!(query.starts_with("ok(") || query == "err(aborted)", "{}", query);
        prop_assert!(defined(answer), "{:?}", answer);
    });
}
