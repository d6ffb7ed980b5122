//! The outbound policy: destinations no pattern admits never reach the network; names that resolve to internal addresses (every special-purpose range, and IPv6 forms that embed an internal IPv4 address) are denied without telling the guest the address, unless a pattern names the IP; and guests get no wasi:sockets network of their own.

use std::net::IpAddr;
use wsbox::{Config, Policy};
use wsbox_tests::{probe_with, with_logs, CountingListener};

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

/// A resolver hook: fixed answers for `*.test` names.
struct MapResolver(Vec<(&'static str, Vec<IpAddr>)>);

impl wsbox::Resolver for MapResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> wsbox::Resolving<'a> {
        let found = self
            .0
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, ips)| ips.clone());
        Box::pin(async move {
            let ips = found.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such test name")
            })?;
            Ok(ips
                .into_iter()
                .map(|ip| std::net::SocketAddr::new(ip, port))
                .collect())
        })
    }
}

/// The `*.test` names the resolver knows, and their addresses in order.
const NAMES: &[(&str, &[&str])] = &[
    ("evil.test", &["127.0.0.1"]),
    ("metadata.test", &["169.254.169.254"]),
    ("mapped.test", &["::ffff:127.0.0.1"]),
    ("private.test", &["10.1.2.3", "192.168.7.7", "fd00::1"]),
    ("app.test", &["10.9.9.9", "127.0.0.1"]),
    ("nat64.test", &["64:ff9b::7f00:1"]),
    ("sixtofour.test", &["2002:7f00:1::1"]),
    ("benchmarking.test", &["198.18.0.1"]),
    ("compatible.test", &["::127.0.0.1"]),
    ("teredo.test", &["2001:0:4136:e378:8000:63bf:3fff:fdd2"]),
];

fn resolving(patterns: &[String]) -> Config {
    let resolver = MapResolver(
        NAMES
            .iter()
            .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect(),
    );
    Config {
        resolver: std::sync::Arc::new(resolver),
        ..with_patterns(patterns)
    }
}

#[tokio::test]
async fn names_that_resolve_to_internal_addresses_are_denied() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    let mut config = resolving(&[format!("ws://*.test:{port}")]);
    // Should one get through, fail fast rather than wait for a route.
    config.limits.connect_timeout = std::time::Duration::from_secs(2);
    for name in [
        "evil.test",
        "metadata.test",
        "mapped.test",
        "private.test",
        "nat64.test",
        "sixtofour.test",
        "benchmarking.test",
        "compatible.test",
        "teredo.test",
    ] {
        let url = format!("ws://{name}:{port}/");
        let (out, logs) = with_logs(probe_with(config.clone(), &url, &[])).await;
        let result = out.result("connect");
        assert!(
            result.starts_with(&format!(
                "err(denied: {name} resolves only to internal addresses"
            )) && result.contains(&format!("--allow ws://IP:{port}")),
            "{name}: {result}"
        );
        // The guest learns nothing of where the name points; the operator's
        // log says it.
        let ips = NAMES.iter().find(|(n, _)| *n == name).unwrap().1;
        for ip in ips {
            let canonical = ip.parse::<IpAddr>().unwrap().to_string();
            for shown in [
                ip,
                canonical.as_str(),
                "127.0",
                "7f00",
                "169.254",
                "10.1",
                "198.18",
            ] {
                assert!(!result.contains(shown), "{name}: {shown} in {result}");
            }
            assert!(
                logs.contains(&canonical),
                "{name}: {canonical} not logged: {logs}"
            );
        }
    }
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn naming_the_ip_lets_a_resolved_name_through_to_that_ip_only() {
    let peer = wsbox_tests::PyPeer::start(&["echo"]).await;
    let port = peer.port;
    // app.test resolves to 10.9.9.9 first; only 127.0.0.1 is named, so the
    // host skips 10.9.9.9 and connects to 127.0.0.1.
    let config = resolving(&[
        format!("ws://*.test:{port}"),
        format!("ws://127.0.0.1:{port}"),
    ]);
    let out = probe_with(
        config,
        &format!("ws://app.test:{port}/"),
        &["send-text:via a name", "recv", "close:1000"],
    )
    .await;
    assert_eq!(out.result("connect"), "ok protocol=none");
    assert_eq!(out.result("recv"), r#"ok(text "via a name")"#);
}

#[tokio::test]
async fn guests_get_no_wasi_sockets_network() {
    let peer = wsbox_tests::PyPeer::start(&["echo"]).await;
    let listener = CountingListener::start().await;
    let step = format!("raw-tcp:127.0.0.1:{}", listener.port);
    let out = wsbox_tests::probe(peer.port, &peer.url("/"), &[&step, "close:1000"]).await;
    assert!(
        out.result(&step).starts_with("err("),
        "{}",
        out.result(&step)
    );
    assert_eq!(listener.accepted(), 0);
}
