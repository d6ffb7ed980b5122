//! Hostile client guests under `wsbox run`: a trap mid-message, an endless loop, a memory bomb, websocket exhaustion, calls after close, abort and drop, and a stale handle each cost only that instance, with a defined error or close code for the peer.

use std::time::Duration;
use wsbox::{Config, Exit, InstanceLimits, Limits};
use wsbox_tests::{allow, close_of, probe, run_guest, PyPeer, Setup};

fn limited(port: u16, limits: Limits) -> Config {
    Config {
        limits,
        ..allow(port)
    }
}

fn sandboxed(port: u16, instance: InstanceLimits) -> Setup {
    (allow(port), instance).into()
}

/// Runs close-probe with `steps`, expecting a trap whose message (or the
/// guest's stderr, for a panic) contains `what`; returns the code of the
/// close frame the peer got.
async fn trapped(
    peer: &mut PyPeer,
    config: impl Into<Setup>,
    steps: &[&str],
    what: &str,
) -> Option<u16> {
    let url = peer.url("/");
    let args: Vec<&str> = std::iter::once(url.as_str())
        .chain(steps.iter().copied())
        .collect();
    let out = run_guest("close-probe", config, &args).await;
    match &out.exit {
        Exit::Trap(message) => assert!(
            message.contains(what) || out.stderr.contains(what),
            "{message}"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
    close_of(&peer.next("closed").await["rcvd"]).map(|c| c.0)
}

#[tokio::test]
async fn a_trap_in_the_middle_of_a_message_closes_with_1011() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let config = allow(peer.port);
    let code = trapped(
        &mut peer,
        config,
        &["send-frag:text:half a mess:0", "trap"],
        "trap step",
    )
    .await;
    assert_eq!(code, Some(1011));
    // The host is fine: the next guest runs normally.
    let out = probe(
        peer.port,
        &peer.url("/"),
        &["send-text:next", "recv", "close:1000"],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(text "next")"#);
}

#[tokio::test]
async fn an_endless_loop_hits_the_cpu_deadline_but_waiting_does_not() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let limits = InstanceLimits {
        cpu_deadline: Duration::from_millis(300),
        ..InstanceLimits::default()
    };
    // Sleeping (waiting in a host call) three times the deadline is fine.
    let out = wsbox_tests::probe_with(
        sandboxed(peer.port, limits.clone()),
        &peer.url("/"),
        &["sleep:1000", "send-text:awake", "recv", "close:1000"],
    )
    .await;
    assert_eq!(out.result("recv"), r#"ok(text "awake")"#);
    peer.next("closed").await;
    let config = sandboxed(peer.port, limits);
    let code = trapped(
        &mut peer,
        config,
        &["send-text:x", "recv", "spin"],
        "CPU deadline",
    )
    .await;
    assert_eq!(code, Some(1011));
}

#[tokio::test]
async fn a_memory_bomb_traps_at_the_instance_limit() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let limits = InstanceLimits {
        max_memory: 64 << 20,
        ..InstanceLimits::default()
    };
    let config = sandboxed(peer.port, limits);
    let code = trapped(&mut peer, config, &["alloc"], "memory").await;
    assert_eq!(code, Some(1011));
}

#[tokio::test]
async fn websockets_beyond_the_instance_limit_are_limit_exceeded() {
    let peer = PyPeer::start(&["echo"]).await;
    let limits = Limits {
        max_websockets: 5,
        ..Limits::default()
    };
    let out = wsbox_tests::probe_with(
        limited(peer.port, limits),
        &peer.url("/"),
        &["connect-many:10", "send-text:still", "recv"],
    )
    .await;
    let result = out.result("connect-many:10");
    assert!(
        result.starts_with("err(after 4: limit-exceeded: "),
        "{result}"
    );
    assert_eq!(out.result("recv"), r#"ok(text "still")"#);
}

#[tokio::test]
async fn every_call_after_close_and_after_abort_is_an_error_and_the_status_holds() {
    let peer = PyPeer::start(&["echo"]).await;
    let after = [
        "send-text:x",
        "send-frag:text:a:1",
        "ping:p",
        "recv",
        "recv-frag:10",
        "close:1000",
        "shutdown:1000",
        "protocol",
        "query",
        "abort",
        "query",
        "send-text:y",
        "recv",
        "close",
    ];
    let steps: Vec<&str> = ["close:1000:first"].into_iter().chain(after).collect();
    let out = probe(peer.port, &peer.url("/"), &steps).await;
    assert_eq!(out.result("close:1000:first"), "ok");
    for (step, result) in out.steps().into_iter().skip(2) {
        let expected_ok = matches!(step, "protocol" | "abort" | "query");
        assert_eq!(
            result.starts_with("err("),
            !expected_ok,
            "{step} -> {result}"
        );
    }
    assert_eq!(
        out.results("query"),
        [r#"ok(1000 "first")"#, r#"ok(1000 "first")"#]
    );

    let out = probe(
        peer.port,
        &peer.url("/"),
        &[
            "abort",
            "send-text:x",
            "ping:p",
            "recv",
            "recv-frag:1",
            "close:1000",
            "shutdown",
            "query",
        ],
    )
    .await;
    for (step, result) in out
        .steps()
        .into_iter()
        .skip(2)
        .filter(|(step, _)| *step != "query")
    {
        assert!(result.starts_with("err("), "{step} -> {result}");
    }
    assert_eq!(out.result("query"), "err(aborted)");
}

#[tokio::test]
async fn a_stale_handle_traps_only_that_instance() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let url = peer.url("/");
    let out = run_guest("close-probe", allow(peer.port), &[&url, "stale-handle"]).await;
    assert!(matches!(out.exit, Exit::Trap(_)), "{:?}", out.exit);
    // The websocket was dropped before the stale call: the peer got 1001.
    assert_eq!(
        close_of(&peer.next("closed").await["rcvd"]).map(|c| c.0),
        Some(1001)
    );
    let out = probe(peer.port, &url, &["send-text:fine", "recv", "close:1000"]).await;
    assert_eq!(out.result("recv"), r#"ok(text "fine")"#);
}

#[tokio::test]
async fn handle_exhaustion_traps_at_the_instance_limit() {
    let mut peer = PyPeer::start(&["echo"]).await;
    let limits = InstanceLimits {
        max_handles: 64,
        ..InstanceLimits::default()
    };
    let config = sandboxed(peer.port, limits.clone());
    let url = peer.url("/");
    let out = run_guest(
        "close-probe",
        config,
        &[&url, "subscribe-many:10", "subscribe-many:1000"],
    )
    .await;
    assert!(
        out.stdout.contains("subscribe-many:10 -> ok(10 pollables)"),
        "{}",
        out.stdout
    );
    assert!(
        matches!(&out.exit, Exit::Trap(m) if m.contains("resource table has no free keys")),
        "{:?}",
        out.exit
    );
    assert_eq!(
        close_of(&peer.next("closed").await["rcvd"]).map(|c| c.0),
        Some(1011)
    );
}
