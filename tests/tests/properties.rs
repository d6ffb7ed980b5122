//! Property tests: random call sequences from a guest never panic the host, never change a latched close status, and get every message the peer sent before its close unless the guest closed first; arbitrary bytes from a peer, in either role, get exactly the answer RFC 6455 asks for (1002, 1007 or 1009 for a violation, a close frame for a close, nothing for a bare end, as tungstenite reads the same bytes), no host task panics, and the host keeps serving.

use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use wsbox::ServeConfig;
use wsbox_tests::raw::{close_code, connect, RawServer};
use wsbox_tests::{allow, next_message, oracle, probe, probe_with, send, serve, within, PyPeer};

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
        prop_assert_eq!(wsbox::panics(), 0);
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bytes that are often frames, mostly whole ones with random header bits,
/// so that the fuzzing gets past the first header byte and most inputs get
/// a verdict before TCP ends.
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let whole = (
        any::<u8>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(first, masked, payload)| {
            let mask = masked.then_some([1, 2, 3, 4]);
            let mut frame = wsbox_tests::raw::frame(first, &payload, mask);
            // `frame` masks the payload; the header byte stays random.
            frame[0] = first;
            frame
        });
    let torn = (
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
    let frame = prop_oneof![3 => whole, 1 => torn];
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        4 => proptest::collection::vec(frame, 1..5).prop_map(|frames| frames.concat()),
    ]
}

/// Whether `answer` is right for `bytes`: exactly what the oracle asks for
/// when the bytes reach a verdict; when TCP ends inside a frame, either
/// nothing or a failure code, since the host may fail a frame on its
/// header or on its first bytes, before the rest arrives.
fn right(bytes: &[u8], server: bool, answer: Option<Option<u16>>) -> Result<(), String> {
    let expected = oracle::expected(bytes, server, MAX_SIZE);
    let ok = oracle::answers(expected, answer)
        || (expected == oracle::Expected::End && matches!(answer, Some(Some(1002 | 1007 | 1009))));
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expected:?}, got {answer:?}"))
    }
}

/// The host's default limit on frames and messages.
const MAX_SIZE: usize = 16 << 20;

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
        if let Err(wrong) = right(&bytes, true, answer) {
            prop_assert!(false, "{}", wrong);
        }
    });
    assert_eq!(wsbox::panics(), 0);
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
    proptest!(ProptestConfig { cases: 128, ..ProptestConfig::default() }, |(bytes in peer_bytes())| {
        let (out, answer) = rt.block_on(async {
            let server = RawServer::sending_then_fin(bytes.clone()).await;
            let url = format!("ws://127.0.0.1:{}/", server.port);
            let out = probe_with(allow(server.port), &url, &["recv-until-close", "query"]).await;
            (out, server.answer().await)
        });
        let query = out.result("query");
        prop_assert!(query.starts_with("ok(") || query == "err(aborted)", "{}", query);
        if let Err(wrong) = right(&bytes, false, answer) {
            prop_assert!(false, "{}", wrong);
        }
    });
    assert_eq!(wsbox::panics(), 0);
}
