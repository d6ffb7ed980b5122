//! Polyglot guests: the `echo` handler and the `close-probe` client written in Rust, Python (componentize-py) and JavaScript (componentize-js) pass the same end-to-end scenarios with identical results, against tokio-tungstenite and Python `websockets` peers.

use std::path::PathBuf;

use futures_util::StreamExt;
use serde_json::Value;
use tungstenite::Message;
use wsbox::{Config, Exit};
use wsbox_tests::{
    allow, close_of, connect, drain, event, guest, polyglot_guest, probe_component, py_client,
    read_until_close, run_component, send, serve_shared, within, Probe, PyPeer, WAIT,
};

/// The languages, in the order the results are compared.
const LANGUAGES: [&str; 3] = ["rust", "python", "js"];

/// The component of guest `name` (`echo` or `close-probe`) in `language`.
fn component(language: &str, name: &str) -> PathBuf {
    match language {
        "rust" => guest(name),
        other => polyglot_guest(other, name),
    }
}

/// Asserts that every language produced the same `value` (the first one's).
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, values: &[(&str, T)]) {
    let (first_language, first) = &values[0];
    for (language, value) in &values[1..] {
        assert_eq!(
            value, first,
            "{what}: {language} differs from {first_language}"
        );
    }
}

/// `len` bytes where byte `i` is `i % 251`, as the guests and peers use.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// --- echo handlers under the server engine ---------------------------------

#[tokio::test]
async fn echo_handlers_echo_text_and_binary_and_answer_the_close_with_its_code() {
    let text = "hello \"€\" \\ wsbox";
    let big = pattern(300_000);
    let mut results = Vec::new();
    for language in LANGUAGES {
        let served = serve_shared(&component(language, "echo")).await;
        let mut ws = connect(&served.url("/echo")).await;
        send(&mut ws, Message::text(text)).await;
        send(&mut ws, Message::binary(pattern(1000))).await;
        send(&mut ws, Message::text("")).await;
        send(&mut ws, Message::binary(big.clone())).await;
        let mut echoed = Vec::new();
        for _ in 0..4 {
            let message = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("an echo in time")
                .expect("the stream is open")
                .expect("a message");
            echoed.push(message);
        }
        assert_eq!(
            echoed,
            [
                Message::text(text),
                Message::binary(pattern(1000)),
                Message::text(""),
                Message::binary(big.clone()),
            ],
            "{language}: text stays text, binary stays binary, in order"
        );
        within(
            "our close",
            ws.close(Some(tungstenite::protocol::CloseFrame {
                code: 4001.into(),
                reason: "client leaves".into(),
            })),
        )
        .await
        .unwrap();
        let (late, close) = read_until_close(&mut ws).await;
        assert!(late.is_empty(), "{language}: {late:?}");
        // guest/echo answers with the client's code and no reason.
        assert_eq!(close, Some((4001, String::new())), "{language}");
        results.push((language, close));
        served.shutdown().await;
    }
    assert_same("the echo's close", &results);
}

#[tokio::test]
async fn echo_handlers_against_python_websockets_clients() {
    let mut results = Vec::new();
    for language in LANGUAGES {
        let served = serve_shared(&component(language, "echo")).await;
        let url = served.url("/");

        let events = py_client(&[&url, "echo-check", "3"]).await;
        let texts: Vec<&Value> = events.iter().filter(|e| e["event"] == "message").collect();
        assert_eq!(texts.len(), 3, "{language}: {events:#?}");
        for (i, message) in texts.iter().enumerate() {
            assert_eq!(message["type"], "text", "{language}");
            assert_eq!(message["data"], format!("msg {i}"), "{language}");
        }
        let closed = event(&events, "closed");
        assert_eq!(close_of(&closed["sent"]), Some((1000, "py done".into())));
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((1000, String::new())),
            "{language}"
        );
        assert_eq!(closed["clean"], true, "{language}");
        let echo_check = close_of(&closed["rcvd"]);

        let events = py_client(&[&url, "send-binary", "70000"]).await;
        let message = event(&events, "message");
        assert_eq!(message["type"], "binary", "{language}");
        assert_eq!(message["len"], 70000, "{language}");
        assert_eq!(message["pattern_ok"], true, "{language}");

        // A close with a code the echo may send back, and one without a
        // payload (1005), which it answers with an empty close frame.
        let events = py_client(&[&url, "close", "3999", "custom"]).await;
        let custom = close_of(&event(&events, "closed")["rcvd"]);
        assert_eq!(custom, Some((3999, String::new())), "{language}");
        let events = py_client(&[&url, "close", "none"]).await;
        let empty = close_of(&event(&events, "closed")["rcvd"]);
        assert_eq!(empty, Some((1005, String::new())), "{language}");

        results.push((language, (echo_check, custom, empty)));
        served.shutdown().await;
    }
    assert_same("what the python clients saw", &results);
}

// --- close-probe clients under the client engine ---------------------------

/// Runs `close-probe URL STEPS...` in every language against a fresh Python
/// peer started with `peer_args`; returns each one's output and the peer's
/// `closed` event.
async fn probe_all(
    peer_args: &[&str],
    options: &[&str],
    steps: &[&str],
) -> Vec<(&'static str, Probe, Value)> {
    probe_all_with_connect(peer_args, options, steps)
        .await
        .into_iter()
        .map(|(language, probe, _, closed)| (language, probe, closed))
        .collect()
}

/// Like [`probe_all`], also returning the peer's `connect` event.
async fn probe_all_with_connect(
    peer_args: &[&str],
    options: &[&str],
    steps: &[&str],
) -> Vec<(&'static str, Probe, Value, Value)> {
    let mut out = Vec::new();
    for language in LANGUAGES {
        let mut peer = PyPeer::start(peer_args).await;
        let args: Vec<&str> = options.iter().chain(steps).copied().collect();
        let probe = probe_component(
            &component(language, "close-probe"),
            allow(peer.port),
            &peer.url("/"),
            &args,
        )
        .await;
        let connected = peer.next("connect").await;
        let closed = peer.next("closed").await;
        out.push((language, probe, connected, closed));
    }
    out
}

/// The lines of every language's output must be the same.
fn assert_same_lines(runs: &[(&str, Probe, Value)]) {
    let lines: Vec<(&str, &Vec<String>)> = runs.iter().map(|(l, p, _)| (*l, &p.lines)).collect();
    assert_same("close-probe's output", &lines);
}

#[tokio::test]
async fn close_probes_default_tour() {
    let runs = probe_all(&["echo"], &[], &[]).await;
    for (language, probe, closed) in &runs {
        assert_eq!(
            probe.lines,
            [
                "connect -> ok protocol=none",
                "query -> err(not-received)",
                "send-text:hello -> ok",
                r#"recv -> ok(text "hello")"#,
                "close:1000:bye -> ok",
                r#"query -> ok(1000 "bye")"#,
                r#"query -> ok(1000 "bye")"#,
            ],
            "{language}"
        );
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((1000, "bye".into())),
            "{language}"
        );
        assert_eq!(closed["clean"], true, "{language}");
    }
    assert_same_lines(&runs);
}

#[tokio::test]
async fn close_probes_see_the_peers_close_first_and_answer_with_their_own() {
    let runs = probe_all(
        &["close", "4001", "going home"],
        &[],
        &["query", "recv", "query", "close:3000:my answer", "query"],
    )
    .await;
    for (language, probe, closed) in &runs {
        assert_eq!(probe.result("recv"), r#"ok(close 4001 "going home")"#);
        assert_eq!(
            probe.results("query"),
            [
                "err(not-received)",
                r#"ok(4001 "going home")"#,
                r#"ok(4001 "going home")"#
            ],
            "{language}"
        );
        assert_eq!(probe.result("close:3000:my answer"), "ok", "{language}");
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((3000, "my answer".into())),
            "{language}: the peer got the guest's own code"
        );
        assert_eq!(closed["clean"], true, "{language}");
    }
    assert_same_lines(&runs);

    // An empty close frame reads as 1005; an empty answer too.
    let runs = probe_all(&["close", "none"], &[], &["recv", "query", "close"]).await;
    for (language, probe, closed) in &runs {
        assert_eq!(probe.result("recv"), r#"ok(close 1005 "")"#, "{language}");
        assert_eq!(probe.result("query"), r#"ok(1005 "")"#, "{language}");
        assert_eq!(probe.result("close"), "ok", "{language}");
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((1005, String::new())),
            "{language}"
        );
    }
    assert_same_lines(&runs);
}

#[tokio::test]
async fn close_probes_not_received_after_shutdown_then_the_peers_close() {
    let runs = probe_all(
        &["send-then-close", "2", "4002", "after two"],
        &[],
        &[
            "shutdown:1000:early",
            "query",
            "recv-until-close",
            "query",
            "send-text:late",
        ],
    )
    .await;
    for (language, probe, closed) in &runs {
        assert_eq!(probe.result("shutdown:1000:early"), "ok", "{language}");
        assert_eq!(
            probe.results("query"),
            ["err(not-received)", r#"ok(4002 "after two")"#],
            "{language}"
        );
        assert_eq!(
            probe.results("recv-until-close"),
            [
                r#"ok(text "msg 0")"#,
                r#"ok(text "msg 1")"#,
                r#"ok(close 4002 "after two")"#
            ],
            "{language}"
        );
        assert!(
            probe
                .result("send-text:late")
                .starts_with("err(invalid-state"),
            "{language}: {}",
            probe.result("send-text:late")
        );
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((1000, "early".into())),
            "{language}"
        );
    }
    assert_same_lines(&runs);
}

#[tokio::test]
async fn close_probes_aborted_by_their_own_abort_and_by_a_tcp_drop() {
    let runs = probe_all(
        &["echo"],
        &[],
        &[
            "send-binary:1000",
            "recv",
            "query",
            "abort",
            "query",
            "send-text:after",
            "recv",
            "query",
        ],
    )
    .await;
    for (language, probe, closed) in &runs {
        assert_eq!(
            probe.lines,
            [
                "connect -> ok protocol=none",
                "send-binary:1000 -> ok",
                "recv -> ok(binary 1000 bytes ok)",
                "query -> err(not-received)",
                "abort -> ok",
                "query -> err(aborted)",
                "send-text:after -> err(closed)",
                "recv -> err(closed)",
                "query -> err(aborted)",
            ],
            "{language}"
        );
        assert!(closed["rcvd"].is_null(), "{language}: {closed}");
        assert!(closed["sent"].is_null(), "{language}: {closed}");
    }
    assert_same_lines(&runs);

    let runs = probe_all(
        &["drop-after", "1"],
        &[],
        &["send-text:one", "recv", "query", "recv", "query", "recv"],
    )
    .await;
    for (language, probe, closed) in &runs {
        assert_eq!(probe.results("recv")[0], r#"ok(text "one")"#, "{language}");
        // The reset shows as `closed` or as the I/O error, depending on
        // when the host notices it; the status is `aborted` either way.
        let second = probe.results("recv")[1];
        assert!(
            second == "err(closed)" || second.starts_with("err(other:"),
            "{language}: {second}"
        );
        assert_eq!(
            probe.results("query"),
            ["err(not-received)", "err(aborted)"],
            "{language}"
        );
        assert_eq!(probe.results("recv")[2], "err(closed)", "{language}");
        assert!(closed["rcvd"].is_null(), "{language}: {closed}");
    }
    let statuses: Vec<(&str, Vec<&str>)> = runs
        .iter()
        .map(|(l, p, _)| (*l, p.results("query")))
        .collect();
    assert_same("query after a TCP drop", &statuses);
}

#[tokio::test]
async fn close_probes_format_options_texts_and_errors_alike() {
    // No newline: the step's text is the start of its output line.
    let tricky = "quote \" backslash \\ tab \t euro € bell \u{7} end";
    let send = format!("send-text:{tricky}");
    let runs = probe_all_with_connect(
        &["subprotocol", "chat.v1"],
        &[
            "--protocol",
            "other",
            "--protocol",
            "chat.v1",
            "--header",
            "X-Probe=yes",
        ],
        &[
            "protocol",
            &send,
            "recv",
            "ping:hi",
            "close:999:nope",
            "close-reason-only:why",
            "shutdown:1005",
            "close:4000:done",
            "query",
        ],
    )
    .await;
    for (language, probe, connected, closed) in &runs {
        assert_eq!(
            connected["headers"]["sec-websocket-protocol"], "other, chat.v1",
            "{language}"
        );
        assert_eq!(connected["headers"]["x-probe"], "yes", "{language}");
        assert_eq!(connected["subprotocol"], "chat.v1", "{language}");
        assert_eq!(
            probe.lines[0], "connect -> ok protocol=chat.v1",
            "{language}"
        );
        assert_eq!(probe.result("protocol"), "some(chat.v1)", "{language}");
        assert_eq!(probe.result(&send), "ok", "{language}");
        assert_eq!(
            probe.result("recv"),
            format!("ok(text {tricky:?})"),
            "{language}"
        );
        assert_eq!(probe.result("ping:hi"), "ok", "{language}");
        for refused in ["close:999:nope", "close-reason-only:why", "shutdown:1005"] {
            assert!(
                probe.result(refused).starts_with("err(invalid-parameter: "),
                "{language}: {refused} -> {}",
                probe.result(refused)
            );
        }
        assert_eq!(probe.result("close:4000:done"), "ok", "{language}");
        assert_eq!(probe.result("query"), r#"ok(4000 "done")"#, "{language}");
        assert_eq!(
            close_of(&closed["rcvd"]),
            Some((4000, "done".into())),
            "{language}"
        );
    }
    let lines: Vec<(&str, &Vec<String>)> = runs.iter().map(|(l, p, _, _)| (*l, &p.lines)).collect();
    assert_same("close-probe's output", &lines);

    // A destination the policy does not allow: nothing connects.
    let mut denied = Vec::new();
    for language in LANGUAGES {
        let probe = probe_component(
            &component(language, "close-probe"),
            Config::default(),
            "ws://127.0.0.1:9/",
            &["query"],
        )
        .await;
        assert_eq!(probe.lines.len(), 1, "{language}: {:?}", probe.lines);
        assert!(
            probe.lines[0].starts_with("connect -> err(denied: "),
            "{language}: {}",
            probe.lines[0]
        );
        denied.push((language, probe.lines));
    }
    assert_same("a denied connect", &denied);
}

#[tokio::test]
async fn close_probes_skip_steps_after_drop_and_stop_at_an_unknown_step() {
    let mut results = Vec::new();
    for language in LANGUAGES {
        let mut peer = PyPeer::start(&["echo"]).await;
        let out = run_component(
            &component(language, "close-probe"),
            "close-probe",
            allow(peer.port),
            &[
                &peer.url("/"),
                "send-text:x",
                "drop",
                "query",
                "bogus",
                "query",
            ],
        )
        .await;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "connect -> ok protocol=none",
                "send-text:x -> ok",
                "drop -> ok",
                "query -> skipped (dropped)",
                "bogus -> err(unknown step)",
            ],
            "{language}"
        );
        // exit(2), which WASI 0.2 carries as failure.
        assert_eq!(out.exit, Exit::Code(1), "{language}");
        // Dropping an open client websocket sends 1001 (going away).
        let closed = peer.next("closed").await;
        assert_eq!(
            close_of(&closed["rcvd"]).map(|(code, _)| code),
            Some(1001),
            "{language}: {closed}"
        );
        results.push((language, (out.stdout, out.exit)));
    }
    assert_same("the output and exit", &results);
}

// --- the pooling allocator ---------------------------------------------------

#[tokio::test]
async fn echo_handlers_of_every_language_run_under_the_pooling_allocator() {
    for language in LANGUAGES {
        let config = wsbox::ServeConfig {
            pooling: true,
            max_connections: 16,
            ..Default::default()
        };
        let served = wsbox_tests::serve_component(&component(language, "echo"), config).await;
        // More connections at once than the start-up probes made instances.
        let mut clients = Vec::new();
        for i in 0..12 {
            let mut ws = connect(&served.url("/pooled")).await;
            send(&mut ws, Message::text(format!("{language} {i}"))).await;
            clients.push(ws);
        }
        for (i, ws) in clients.iter_mut().enumerate() {
            let echo = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("an echo in time")
                .expect("the stream is open")
                .expect("a message");
            assert_eq!(echo, Message::text(format!("{language} {i}")), "{language}");
        }
        for mut ws in clients {
            within("our close", ws.close(None)).await.unwrap();
            drain(&mut ws).await;
        }
    }
}
