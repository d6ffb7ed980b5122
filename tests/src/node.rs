//! The Node `ws` test peer (`tests/peers/node/peer.js`), with
//! permessage-deflate, as a server and as a client; its `ws` is installed
//! on first use ([`wsbox_testbed::node_peers`]).

use crate::{repo, WAIT};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// `node tests/peers/node/peer.js ARGS...` with `env` and `ws` found.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new("node");
    command
        .arg(repo().join("tests/peers/node/peer.js"))
        .args(args)
        .env("NODE_PATH", wsbox_testbed::node_peers())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// A Node `ws` echo server (`peer.js server`).
pub struct NodePeer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    events: mpsc::UnboundedReceiver<Value>,
}

impl NodePeer {
    /// Starts the server with `env` (e.g. `NODE_DEFLATE`) and waits until
    /// it listens.
    pub async fn start(env: &[(&str, &str)]) -> NodePeer {
        let mut child = command(&["server"], env)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node starts (the Node peer needs node: apt-get install nodejs)");
        let stdout = child.stdout.take().unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("node peer: {line}");
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let first = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("the node peer listens in time")
            .expect("the node peer printed its port");
        assert_eq!(first["event"], "listening", "{first}");
        let port = first["port"].as_u64().unwrap() as u16;
        NodePeer {
            child,
            port,
            events,
        }
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Every event up to and including the next one whose `event` is
    /// `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("the node peer reported no {kind:?} in time: {events:#?}")
                })
                .expect("the node peer is running");
            let found = event["event"] == kind;
            events.push(event);
            if found {
                return events;
            }
        }
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Runs `peer.js client URL ITEM...` with `env` to the end and returns the
/// events it reported.
pub async fn node_client(url: &str, items: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let mut args = vec!["client", url];
    args.extend_from_slice(items);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(&args, env).stdout(Stdio::piped()).output(),
    )
    .await
    .expect("the node client finished in time")
    .expect("node runs (the Node peer needs node: apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("node client:\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "the node client failed");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
