//! A real `nats-server` on loopback ports the test chooses, for the cluster
//! tests (of the host's CLI and end to end): started, stopped and restarted
//! by pid, and asked through its monitoring port how many subscriptions it
//! holds.

use crate::wait::{within, WAIT};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The `nats-server` binary: `$WSBOX_NATS_SERVER`, else Debian's
/// `/usr/sbin/nats-server`, else `nats-server` on the `PATH`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WSBOX_NATS_SERVER") {
        return path.into();
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.exists() {
        return debian;
    }
    "nats-server".into()
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running (or stopped) `nats-server`; killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    /// The HTTP monitoring port (`/subsz`, `/connz`).
    pub monitor_port: u16,
}

impl NatsServer {
    /// Starts `nats-server` on two free loopback ports and waits until it
    /// answers.
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            monitor_port: free_port(),
        };
        server.restart().await;
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same ports (after [`stop`](Self::stop)).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server is running already");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; install it (apt-get install nats-server) \
                     or point WSBOX_NATS_SERVER at it",
                    binary().display()
                )
            });
        self.child = Some(child);
        within("nats-server to answer on its monitoring port", async {
            loop {
                let listening = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok();
                if listening && self.try_get("/varz").await.is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Kills the server (by its pid) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            within("nats-server to exit", child.wait()).await.unwrap();
        }
    }

    /// The body of `GET PATH` on the monitoring port, `None` if it does not
    /// answer 200.
    async fn try_get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let get = async {
            let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.monitor_port))
                .await
                .ok()?;
            tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
                .await
                .ok()?;
            let mut answer = Vec::new();
            tcp.read_to_end(&mut answer).await.ok()?;
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let (head, body) = answer.split_once("\r\n\r\n")?;
            (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"))
                .then(|| body.to_string())
        };
        tokio::time::timeout(Duration::from_secs(5), get)
            .await
            .ok()
            .flatten()
    }

    /// The subjects of every client subscription the server holds that
    /// start with `prefix` (from `/connz?subs=1`), sorted; one entry per
    /// subscription, so a subject two clients subscribed to is there twice.
    pub async fn subscriptions(&self, prefix: &str) -> Vec<String> {
        let body = within("nats-server's /connz", async {
            loop {
                if let Some(body) = self.try_get("/connz?subs=1").await {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/connz is not JSON ({e}): {body}"));
        let mut subjects: Vec<String> = json["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c["subscriptions_list"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|s| s.as_str().map(str::to_string))
            .filter(|s| s.starts_with(prefix))
            .collect();
        subjects.sort();
        subjects
    }

    /// Waits until the subscriptions under `prefix` are exactly `expected`
    /// (sorted), and fails with what the server holds if they never are.
    pub async fn wait_subscriptions(&self, prefix: &str, expected: &[&str]) {
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        let mut last = Vec::new();
        let reached = tokio::time::timeout(WAIT, async {
            loop {
                last = self.subscriptions(prefix).await;
                if last == expected {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            reached.is_ok(),
            "nats-server holds the subscriptions {last:?}, not {expected:?}, after {WAIT:?}"
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
