//! The outbound policy: with no pattern, or a pattern for another port or host, connect is denied and the listener sees no connection; a matching pattern lets it through.

use wsbox::{Config, Policy};
use wsbox_tests::{probe_with, CountingListener};

fn with_patterns(patterns: &[String]) -> Config {
    Config {
        policy: Policy::from_patterns(patterns).unwrap(),
        ..Config::default()
    }
}

#[tokio::test]
async fn denied_destinations_never_reach_the_network() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    let url = format!("ws://127.0.0.1:{port}/");
    for patterns in [
        vec![],
        vec![format!("ws://127.0.0.1:{}", port.wrapping_add(1).max(1))],
        vec![format!("wss://127.0.0.1:{port}")],
        vec![format!("ws://127.0.0.2:{port}")],
        vec!["ws://*:*".to_string()],
        vec![format!("ws://localhost:{port}")],
    ] {
        let out = probe_with(with_patterns(&patterns), &url, &[]).await;
        assert!(
            out.result("connect").starts_with("err(denied: "),
            "{patterns:?}: {}",
            out.result("connect")
        );
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn a_matching_pattern_lets_the_connection_through() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    for (pattern, url) in [
        (
            format!("ws://127.0.0.1:{port}"),
            format!("ws://127.0.0.1:{port}/"),
        ),
        (
            "ws://localhost:*".to_string(),
            format!("ws://localhost:{port}/"),
        ),
        (
            "*://127.0.0.1:*".to_string(),
            format!("ws://127.0.0.1:{port}/"),
        ),
    ] {
        let out = probe_with(with_patterns(std::slice::from_ref(&pattern)), &url, &[]).await;
        // The listener hangs up without answering the upgrade.
        assert!(
            out.result("connect").starts_with("err(connect-failed: "),
            "{pattern}: {}",
            out.result("connect")
        );
    }
    assert_eq!(listener.accepted(), 3);
}
