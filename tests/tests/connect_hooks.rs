//! `ConnectHooks` sees every outbound connect after the outbound policy allowed it, and decides: `Proceed` connects to the resolved address, `Reroute` connects to the embedder's addresses while the `Host` header still names the URL's host and port, and `Refuse` gives the guest `denied` with the hook's reason before any TCP connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tungstenite::handshake::server::{Request, Response};
use wsbox::{
    Config, ConnectDecision, ConnectHooks, ConnectRequest, Deciding, Policy, Resolver, Resolving,
};
use wsbox_tests::{echo_until_close, probe_with, CountingListener, WAIT};

/// Answers every connect with one decision, and keeps what it was asked.
struct Recording {
    decision: ConnectDecision,
    seen: Mutex<Vec<ConnectRequest>>,
}

impl Recording {
    fn new(decision: ConnectDecision) -> Arc<Recording> {
        Arc::new(Recording {
            decision,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<ConnectRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl ConnectHooks for Recording {
    fn connect<'a>(&'a self, request: &'a ConnectRequest) -> Deciding<'a> {
        self.seen.lock().unwrap().push(request.clone());
        let decision = self.decision.clone();
        Box::pin(async move { decision })
    }
}

/// Resolves every name to 127.0.0.1.
struct Loopback;

impl Resolver for Loopback {
    fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
    }
}

/// A tokio-tungstenite echo server on 127.0.0.1:0 that reports the `Host`
/// header of each upgrade it accepts.
struct EchoServer {
    addr: SocketAddr,
    hosts: mpsc::UnboundedReceiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    async fn start() -> EchoServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, hosts) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    #[allow(clippy::result_large_err)] // tungstenite's callback signature
                    let record = |request: &Request, response: Response| {
                        let host = request.headers().get("host").map(|h| h.as_bytes());
                        let host = String::from_utf8_lossy(host.unwrap_or(b"(none)"));
                        let _ = tx.send(host.into_owned());
                        Ok(response)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, record).await {
                        echo_until_close(ws, mpsc::unbounded_channel().0).await;
                    }
                });
            }
        });
        EchoServer { addr, hosts, task }
    }

    /// The `Host` header of the next upgrade.
    async fn next_host(&mut self) -> String {
        tokio::time::timeout(WAIT, self.hosts.recv())
            .await
            .expect("an upgrade in time")
            .expect("the server is running")
    }

    /// How many upgrades reached it so far.
    fn upgrades(&mut self) -> usize {
        let mut count = 0;
        while self.hosts.try_recv().is_ok() {
            count += 1;
        }
        count
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(patterns: &[String], hooks: &Arc<Recording>) -> Config {
    Config {
        policy: Policy::from_patterns(patterns).unwrap(),
        hooks: Some(hooks.clone()),
        resolver: Arc::new(Loopback),
        ..Config::default()
    }
}

#[tokio::test]
async fn refuse_denies_the_guest_with_the_reason_and_never_connects() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    let url = format!("ws://127.0.0.1:{port}/chat");
    let hooks = Recording::new(ConnectDecision::Refuse("no chat from this tenant".into()));
    let out = probe_with(
        config(&[format!("ws://127.0.0.1:{port}")], &hooks),
        &url,
        &["query"],
    )
    .await;
    assert_eq!(
        out.result("connect"),
        "err(denied: no chat from this tenant)"
    );
    assert_eq!(hooks.seen().len(), 1);
    assert_eq!(
        listener.accepted(),
        0,
        "a refused connect reached the server"
    );
}

#[tokio::test]
async fn the_policy_check_runs_before_the_hook() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    let hooks = Recording::new(ConnectDecision::Proceed);
    let other = format!("ws://127.0.0.1:{}", port.wrapping_add(1).max(1));
    let out = probe_with(
        config(&[other], &hooks),
        &format!("ws://127.0.0.1:{port}/"),
        &["query"],
    )
    .await;
    let result = out.result("connect");
    assert!(
        result.starts_with("err(denied: ") && result.contains("--allow"),
        "{result}"
    );
    assert!(
        hooks.seen().is_empty(),
        "the hook saw a URL the policy refuses: {:?}",
        hooks.seen()
    );
    assert_eq!(listener.accepted(), 0);
}

#[tokio::test]
async fn reroute_reaches_another_server_with_the_urls_host_header() {
    let listener = CountingListener::start().await;
    let port = listener.port;
    let mut sidecar = EchoServer::start().await;
    let hooks = Recording::new(ConnectDecision::Reroute(vec![sidecar.addr]));
    let out = probe_with(
        config(&[format!("ws://127.0.0.1:{port}")], &hooks),
        &format!("ws://127.0.0.1:{port}/"),
        &["send-text:rerouted", "recv", "close:1000:bye"],
    )
    .await;
    assert!(
        out.result("connect").starts_with("ok"),
        "{}",
        out.result("connect")
    );
    assert!(
        out.result("recv").contains("rerouted"),
        "{}",
        out.result("recv")
    );
    assert_eq!(sidecar.next_host().await, format!("127.0.0.1:{port}"));
    assert_ne!(sidecar.addr.port(), port);
    assert_eq!(listener.accepted(), 0, "the URL's own server was reached");
}

#[tokio::test]
async fn proceed_connects_to_the_resolved_address_and_the_hook_sees_the_url() {
    let mut server = EchoServer::start().await;
    let port = server.addr.port();
    let url = format!("ws://hooks.test:{port}/room?x=1");
    let hooks = Recording::new(ConnectDecision::Proceed);
    // The name resolves to loopback, which the policy allows only when an
    // --allow names the IP.
    let patterns = [
        format!("ws://hooks.test:{port}"),
        format!("ws://127.0.0.1:{port}"),
    ];
    let out = probe_with(
        config(&patterns, &hooks),
        &url,
        &["send-text:onward", "recv", "close:1000:bye"],
    )
    .await;
    assert!(
        out.result("recv").contains("onward"),
        "{}",
        out.result("recv")
    );
    let seen = hooks.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].url, url);
    assert_eq!(seen[0].host, "hooks.test");
    assert_eq!(seen[0].port, port);
    assert!(!seen[0].secure);
    assert!(seen[0].protocols.is_empty());
    // The connection went to the address the resolver gave.
    assert_eq!(server.next_host().await, format!("hooks.test:{port}"));
    assert_eq!(server.upgrades(), 0);
}
