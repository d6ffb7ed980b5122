//! A real `nats-server` on loopback ports it chooses itself, for the
//! cluster tests (of the host's CLI and end to end): started, stopped and
//! restarted by pid, and asked through its monitoring port how many
//! subscriptions it holds.

use crate::wait::{within, WAIT};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// A running (or stopped) `nats-server`; killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    /// The HTTP monitoring port (`/subsz`, `/connz`).
    pub monitor_port: u16,
    /// This server's own directory: its ports file and its log.
    dir: PathBuf,
}

impl NatsServer {
    /// Starts `nats-server` on two loopback ports that it chooses itself,
    /// so that nothing else can take them between choosing and binding,
    /// and waits until it answers.
    pub async fn start() -> NatsServer {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsbox-nats-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut server = NatsServer {
            child: None,
            port: 0,
            monitor_port: 0,
            dir,
        };
        server.spawn("-1", "-1");
        (server.port, server.monitor_port) =
            within("nats-server's ports file", server.ports_file()).await;
        server.wait_answering().await;
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same ports (after [`stop`](Self::stop)).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server is running already");
        self.spawn(&self.port.to_string(), &self.monitor_port.to_string());
        self.wait_answering().await;
    }

    /// Runs `nats-server` on these ports (`-1`: one it chooses), writing
    /// its ports file and its log (appended to) into the server's directory.
    fn spawn(&mut self, port: &str, monitor_port: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .and_then(|log| Ok((log.try_clone()?, log)))
            .unwrap_or_else(|e| panic!("cannot open a log in {}: {e}", self.dir.display()));
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", port, "-m", monitor_port])
            .arg("--ports_file_dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.0)
            .stderr(log.1)
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
    }

    /// Fails the test, with the server's log, if the server has exited.
    fn assert_running(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
            panic!("nats-server exited ({status}) before it answered; its log:\n{log}");
        }
    }

    /// The client and monitoring ports from the ports file that
    /// `nats-server` writes once it listens on both.
    async fn ports_file(&mut self) -> (u16, u16) {
        loop {
            self.assert_running();
            if let Some(ports) = self.read_ports_file() {
                return ports;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `None` while there is no ports file, or only part of one.
    fn read_ports_file(&self) -> Option<(u16, u16)> {
        let file = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .find(|entry| entry.path().extension().is_some_and(|e| e == "ports"))?;
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file.path()).ok()?).ok()?;
        let port =
            |key: &str| -> Option<u16> { json[key][0].as_str()?.rsplit_once(':')?.1.parse().ok() };
        Some((port("nats")?, port("monitoring")?))
    }

    /// Waits until the server takes clients and answers on its monitoring
    /// port.
    async fn wait_answering(&mut self) {
        within("nats-server to answer on its monitoring port", async {
            loop {
                self.assert_running();
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
