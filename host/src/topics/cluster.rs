//! The link between the wsbox processes of a cluster: core NATS publish and
//! subscribe, through `async-nats`.
//!
//! - A topic is the subject `PREFIX.HEX`, HEX being the lowercase hex of the
//!   name's UTF-8 bytes: only `0-9a-f`, so no name can inject a wildcard
//!   (`*`, `>`) or a token separator (`.`), and `>` receives only `>`.
//! - A node subscribes to a topic's subject while the topic has receivers
//!   on it: the first receiver subscribes, the last one to go unsubscribes.
//! - Every publication carries the publishing node's id in a header; a node
//!   skips its own publications when NATS hands them back, since it
//!   delivered them locally already.
//! - The message kind travels in a header, the payload as the NATS payload.
//! - A node knows the server has processed what it sent (a subscription, a
//!   publication) by a round trip: a request to a subject no one
//!   subscribes to, which the server answers with "no responders" after
//!   everything the node sent before it.
//! - A lost server is reconnected to by the client, forever, every few
//!   hundred milliseconds at most 2 s apart; it subscribes again by itself.
//!   Meanwhile `publish` reports the failure instead of queueing.

use super::broker::Inner;
use super::{Publication, TopicName};
use crate::bindings::types::{ErrorCode, MessageKind};
use crate::error::{Error, Result};
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, HeaderMap, ServerAddr};
use futures_util::StreamExt;
use std::fmt;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The header that names the publishing node.
const NODE_HEADER: &str = "Wsbox-Node";
/// The header that gives the message kind: `text` or `binary`.
const KIND_HEADER: &str = "Wsbox-Kind";
/// How long a publish may wait to hand a message to the client.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a flush may wait for the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to one server may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the cluster is: the NATS servers every wsbox process of it
/// connects to, and the subject prefix that keeps its topics apart from
/// other applications on the same NATS.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS servers, as `nats://HOST:PORT` (`--cluster`, repeatable); the
    /// client connects to one and fails over to the others.
    pub servers: Vec<String>,
    /// The first tokens of every subject (`--cluster-prefix`). Letters,
    /// digits, `-` and `_`, with `.` between tokens. Default: `wsbox`.
    pub prefix: String,
}

impl ClusterConfig {
    /// The default subject prefix (`--cluster-prefix`).
    pub const DEFAULT_PREFIX: &'static str = "wsbox";
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            servers: Vec::new(),
            prefix: Self::DEFAULT_PREFIX.into(),
        }
    }
}

/// A node's link to the cluster.
pub(super) struct Cluster {
    client: Client,
    prefix: String,
    /// This node's id, in the node header of its publications.
    node: String,
    /// The servers, for messages.
    servers: String,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("servers", &self.servers)
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish()
    }
}

/// A node's subscription to one topic on the cluster: a task that delivers
/// what other nodes publish. Dropping it unsubscribes.
pub(super) struct Remote {
    task: JoinHandle<Option<()>>,
    ready: watch::Receiver<bool>,
}

impl Remote {
    /// Ready once the server has the subscription (or it cannot be had
    /// now: the cluster is unreachable, and the client subscribes again by
    /// itself when it is back).
    pub(super) fn ready(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping the task's `Subscriber` sends the unsubscribe.
        self.task.abort();
    }
}

/// Waits (a bounded time) until the server has processed everything the
/// client sent before: a request to `subject`, which no one subscribes to,
/// is answered with "no responders" in order after it. Nothing to wait for
/// while the server is unreachable.
async fn round_trip(client: &Client, subject: &str) {
    if client.connection_state() == State::Connected {
        let request = client.request(subject.to_string(), bytes::Bytes::new());
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, request).await;
    }
}

/// Checks `--cluster-prefix`.
fn check_prefix(prefix: &str) -> Result<()> {
    let valid = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(Error::Cluster(format!(
            "--cluster-prefix `{prefix}` is not a NATS subject prefix: use letters, digits, \
             `-` and `_`, with `.` between tokens (e.g. wsbox or app.chat)"
        )))
    }
}

/// The subject of `topic`: the prefix, then the hex of the name's bytes.
pub(super) fn subject(prefix: &str, topic: &TopicName) -> String {
    use std::fmt::Write;
    let mut subject = String::with_capacity(prefix.len() + 1 + 2 * topic.as_str().len());
    subject.push_str(prefix);
    subject.push('.');
    for byte in topic.as_str().bytes() {
        let _ = write!(subject, "{byte:02x}");
    }
    subject
}

impl Cluster {
    /// Connects to the first server of `config` that answers.
    pub(super) async fn connect(config: &ClusterConfig) -> Result<Cluster> {
        check_prefix(&config.prefix)?;
        if config.servers.is_empty() {
            return Err(Error::Cluster(
                "no NATS server given: name one with --cluster nats://HOST:PORT".into(),
            ));
        }
        let mut addresses = Vec::with_capacity(config.servers.len());
        for server in &config.servers {
            let address: ServerAddr = server.parse().map_err(|e| {
                Error::Cluster(format!(
                    "--cluster `{server}` is not a NATS server address ({e}): \
                     write nats://HOST:PORT"
                ))
            })?;
            addresses.push(address);
        }
        let servers = config.servers.join(", ");
        let node = format!("{:032x}", rand::random::<u128>());
        let shown = servers.clone();
        let client = ConnectOptions::new()
            .name(format!("wsbox {node}"))
            .connection_timeout(CONNECT_TIMEOUT)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64).saturating_mul(100).min(2000))
            })
            .event_callback(move |event| {
                let servers = shown.clone();
                async move {
                    match event {
                        Event::Disconnected => tracing::warn!(
                            "lost the cluster (NATS at {servers}): delivering on this node \
                             only, and reconnecting"
                        ),
                        Event::Connected => {
                            tracing::info!("connected to the cluster (NATS at {servers})")
                        }
                        other => tracing::warn!("cluster (NATS at {servers}): {other}"),
                    }
                }
            })
            .connect(addresses)
            .await
            .map_err(|e| {
                Error::Cluster(format!(
                    "cannot connect to the cluster (NATS at {servers}): {e}; start nats-server \
                     there, or run without --cluster for a single node"
                ))
            })?;
        Ok(Cluster {
            client,
            prefix: config.prefix.clone(),
            node,
            servers,
        })
    }

    /// Hands `publication` to the client. Refused while the cluster is
    /// unreachable, rather than queued for later.
    pub(super) async fn publish(
        &self,
        topic: &TopicName,
        publication: &Publication,
    ) -> std::result::Result<(), ErrorCode> {
        let lost = |why: String| {
            ErrorCode::Other(format!(
                "delivered on this node only: {why}; no other node got the message"
            ))
        };
        if self.client.connection_state() != State::Connected {
            return Err(lost(format!(
                "the cluster (NATS at {}) is unreachable, and wsbox is reconnecting",
                self.servers
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, self.node.as_str());
        headers.insert(
            KIND_HEADER,
            match publication.kind() {
                MessageKind::Text => "text",
                MessageKind::Binary => "binary",
            },
        );
        let subject = subject(&self.prefix, topic);
        let sent = self
            .client
            .publish_with_headers(subject, headers, publication.payload_bytes());
        match tokio::time::timeout(PUBLISH_TIMEOUT, sent).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(lost(format!("the cluster client refused it: {e}"))),
            Err(_) => Err(lost(format!(
                "the cluster client did not take it within {PUBLISH_TIMEOUT:?}"
            ))),
        }
    }

    /// Whether the client is connected to a server now.
    pub(super) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Waits (a bounded time) until the server has processed what was
    /// handed to the client so far.
    pub(super) async fn flush(&self) {
        round_trip(&self.client, &self.sync_subject()).await;
    }

    /// The subject of this node's round trips: under the prefix, and never
    /// a topic's (`sync` is not hex).
    fn sync_subject(&self) -> String {
        format!("{}.sync.{}", self.prefix, self.node)
    }

    /// Subscribes the node to `topic`, delivering other nodes' publications
    /// to `broker`'s local receivers until the [`Remote`] is dropped.
    pub(super) fn listen(&self, topic: TopicName, broker: Weak<Inner>) -> Remote {
        let (ready_tx, ready) = watch::channel(false);
        let client = self.client.clone();
        let node = self.node.clone();
        let subject = subject(&self.prefix, &topic);
        let sync = self.sync_subject();
        let task = crate::task::spawn("cluster topic", async move {
            let mut subscriber = match client.subscribe(subject).await {
                Ok(subscriber) => subscriber,
                Err(e) => {
                    tracing::warn!(
                        topic = topic.as_str(),
                        "cannot subscribe on the cluster: {e}"
                    );
                    let _ = ready_tx.send(true);
                    return;
                }
            };
            // Ready once the server has the subscription, so that what
            // another node publishes from now on reaches this one.
            round_trip(&client, &sync).await;
            let _ = ready_tx.send(true);
            while let Some(message) = subscriber.next().await {
                let headers = message.headers.as_ref();
                let header = |name| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
                if header(NODE_HEADER) == Some(node.as_str()) {
                    continue;
                }
                let kind = match header(KIND_HEADER) {
                    Some("text") if std::str::from_utf8(&message.payload).is_ok() => {
                        MessageKind::Text
                    }
                    Some("binary") => MessageKind::Binary,
                    _ => {
                        tracing::warn!(
                            topic = topic.as_str(),
                            "dropped a cluster message that no wsbox node sent \
                             (no valid {KIND_HEADER} header, or text that is not UTF-8)"
                        );
                        continue;
                    }
                };
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                let publication = std::sync::Arc::new(Publication::new(kind, &message.payload));
                broker.deliver(&topic, &publication, None);
            }
        });
        Remote { task, ready }
    }
}
