//! The in-process broker: every topic's receivers, and delivery to them.
//!
//! One lock guards the topics and the joins, and is held only for short
//! bookkeeping, never across an await or while receivers are offered a
//! publication. Each topic keeps its receivers in a shared snapshot
//! (`Arc<Vec<_>>`): a publisher takes the snapshot under the lock and
//! offers the publication to every receiver without it, so publishers do
//! not wait for each other and joins copy the list only when a publisher
//! holds the old one at that moment.

use super::cluster::{Cluster, ClusterConfig, Remote};
use super::subscription::{Queue, Subscription};
use super::{Offered, Publication, Receiver, ReceiverKey, TopicName};
use crate::bindings::types::{ErrorCode, Message};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// How long `join` and `open` wait for the cluster to confirm the node's
/// subscription to a topic, so that another node's publications reach the
/// new receiver as soon as the call returns.
const REMOTE_READY_WAIT: Duration = Duration::from_secs(2);

/// The topics of one process: who receives what, on this node, and the
/// link to the cluster if there is one. Cheap to clone: clones share the
/// same topics. Every instance made from one [`Config`](crate::Config)
/// shares its broker.
///
/// ```
/// # async fn demo() -> Result<(), wsbox::bindings::types::ErrorCode> {
/// use wsbox::bindings::types::Message;
///
/// let broker = wsbox::Broker::local();
/// let mut news = broker.open("news", 1 << 20).await?;
/// broker.publish("news", Message::Text("hello".into())).await?;
/// assert_eq!(news.receive().await?, Message::Text("hello".into()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    state: Mutex<State>,
    cluster: Option<Cluster>,
}

#[derive(Default)]
struct State {
    topics: HashMap<TopicName, Topic>,
    /// The joined websockets, by key: their receiver and their topics,
    /// each with the slot it takes in its instance's `--max-topics`.
    joined: HashMap<ReceiverKey, Membership>,
}

/// The receivers of one topic on this node. A topic exists while it has
/// receivers.
struct Topic {
    receivers: Arc<Vec<Entry>>,
    /// The node's subscription on the cluster, while the topic has
    /// receivers.
    remote: Option<Remote>,
}

#[derive(Clone)]
struct Entry {
    key: ReceiverKey,
    joined: bool,
    receiver: Arc<dyn Receiver>,
}

struct Membership {
    receiver: Arc<dyn Receiver>,
    topics: HashMap<TopicName, Option<OwnedSemaphorePermit>>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Broker")
            .field("topics", &state.topics.len())
            .field("joined", &state.joined.len())
            .field("cluster", &self.inner.cluster)
            .finish()
    }
}

impl Default for Broker {
    fn default() -> Self {
        Broker::local()
    }
}

impl Broker {
    /// A broker for this process alone: publications reach the receivers of
    /// the instances that share it, and nothing else.
    pub fn local() -> Broker {
        Broker {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                cluster: None,
            }),
        }
    }

    /// A broker linked to every other wsbox process on the NATS servers of
    /// `config`. Fails, in one line that says what to do, if no server can
    /// be reached or the configuration is invalid. Once connected, a lost
    /// server is reconnected to by itself: meanwhile, delivery on this node
    /// goes on and `publish` reports that the cluster did not get the
    /// message.
    pub async fn connect(config: &ClusterConfig) -> crate::Result<Broker> {
        let cluster = Cluster::connect(config).await?;
        Ok(Broker {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                cluster: Some(cluster),
            }),
        })
    }

    /// Publishes `message` to `topic`: to every receiver on this node, then
    /// to the cluster, if there is one. A cluster failure is an `other`
    /// error after local delivery. `invalid-parameter` for an invalid topic
    /// name.
    pub async fn publish(&self, topic: &str, message: Message) -> Result<(), ErrorCode> {
        let topic = TopicName::new(topic)?;
        self.publish_except(&topic, &message, None).await
    }

    /// Opens a subscription to `topic` whose queue may hold `budget` bytes
    /// of messages; past it, it ends (`limit-exceeded`, then `closed`).
    /// `invalid-parameter` for an invalid topic name.
    pub async fn open(&self, topic: &str, budget: usize) -> Result<Subscription, ErrorCode> {
        let topic = TopicName::new(topic)?;
        Ok(self.subscribe(topic, budget, None).await)
    }

    /// Waits until the NATS server has processed the publications handed
    /// to the cluster so far (at most a few seconds), for instance before
    /// the process exits: after it, every node subscribed to their topics
    /// gets them. Nothing to do without a cluster.
    pub async fn flush(&self) {
        if let Some(cluster) = &self.inner.cluster {
            cluster.flush().await;
        }
    }

    /// Whether the cluster is connected now; `true` without a cluster
    /// (for `/readyz`).
    pub fn connected(&self) -> bool {
        self.inner.cluster.as_ref().is_none_or(Cluster::connected)
    }

    /// How many topics have receivers on this node.
    pub fn topic_count(&self) -> usize {
        self.inner.lock().topics.len()
    }

    /// Delivers to every local receiver of `topic` but `except`, then hands
    /// the publication to the cluster.
    pub(crate) async fn publish_except(
        &self,
        topic: &TopicName,
        message: &Message,
        except: Option<ReceiverKey>,
    ) -> Result<(), ErrorCode> {
        let publication = Arc::new(Publication::from_message(message));
        self.inner.deliver(topic, &publication, except);
        match &self.inner.cluster {
            Some(cluster) => cluster.publish(topic, &publication).await,
            None => Ok(()),
        }
    }

    /// Opens a subscription holding `slot` (its place in an instance's
    /// `--max-topics`) until it is dropped.
    pub(crate) async fn subscribe(
        &self,
        topic: TopicName,
        budget: usize,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Subscription {
        let queue = Arc::new(Queue::new(budget));
        let key = ReceiverKey::of(&queue);
        let entry = Entry {
            key,
            joined: false,
            receiver: queue.clone(),
        };
        let ready = {
            let mut state = self.inner.lock();
            self.inner.add(&mut state, &topic, entry)
        };
        wait_remote(ready).await;
        Subscription::new(self.clone(), topic, key, queue, slot)
    }

    /// Joins the websocket `key` to `topic`: from now on `receiver` is
    /// offered every publication of it. A no-op if it has joined already;
    /// otherwise `take_slot` gives its place in the instance's
    /// `--max-topics` (or the error), held until it leaves.
    pub(crate) async fn join(
        &self,
        key: ReceiverKey,
        receiver: &Arc<dyn Receiver>,
        topic: &TopicName,
        take_slot: impl FnOnce() -> Result<Option<OwnedSemaphorePermit>, ErrorCode>,
    ) -> Result<(), ErrorCode> {
        let ready = {
            let mut state = self.inner.lock();
            let membership = state.joined.entry(key).or_insert_with(|| Membership {
                receiver: receiver.clone(),
                topics: HashMap::new(),
            });
            if membership.topics.contains_key(topic) {
                return Ok(());
            }
            let slot = match take_slot() {
                Ok(slot) => slot,
                Err(e) => {
                    if membership.topics.is_empty() {
                        state.joined.remove(&key);
                    }
                    return Err(e);
                }
            };
            membership.topics.insert(topic.clone(), slot);
            let entry = Entry {
                key,
                joined: true,
                receiver: membership.receiver.clone(),
            };
            self.inner.add(&mut state, topic, entry)
        };
        wait_remote(ready).await;
        Ok(())
    }

    /// Takes the websocket `key` out of `topic`; a no-op if it had not
    /// joined it.
    pub(crate) fn leave(&self, key: ReceiverKey, topic: &TopicName) {
        let slot = {
            let mut state = self.inner.lock();
            let Some(membership) = state.joined.get_mut(&key) else {
                return;
            };
            let Some(slot) = membership.topics.remove(topic) else {
                return;
            };
            if membership.topics.is_empty() {
                state.joined.remove(&key);
            }
            self.inner.remove(&mut state, topic, key);
            slot
        };
        drop(slot);
    }

    /// Takes the websocket `key` out of every topic it joined: when its
    /// connection ends, or its instance does.
    pub(crate) fn leave_all(&self, key: ReceiverKey) {
        self.inner.leave_all(key);
    }

    /// Ends a subscription.
    pub(crate) fn unsubscribe(&self, topic: &TopicName, key: ReceiverKey) {
        let mut state = self.inner.lock();
        self.inner.remove(&mut state, topic, key);
    }

    /// Whether `key` has joined `topic`.
    #[cfg(test)]
    pub(crate) fn has_joined(&self, key: ReceiverKey, topic: &str) -> bool {
        let state = self.inner.lock();
        state
            .joined
            .get(&key)
            .is_some_and(|m| m.topics.keys().any(|t| t.as_str() == topic))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held but a failed allocation;
        // the state is consistent at every step, so go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `entry` to `topic`, creating the topic (and the node's
    /// subscription on the cluster) for its first receiver. Gives what to
    /// wait on for that subscription.
    fn add(
        self: &Arc<Self>,
        state: &mut State,
        topic: &TopicName,
        entry: Entry,
    ) -> Option<watch::Receiver<bool>> {
        let topic_state = state.topics.entry(topic.clone()).or_insert_with(|| Topic {
            receivers: Arc::new(Vec::new()),
            remote: self
                .cluster
                .as_ref()
                .map(|cluster| cluster.listen(topic.clone(), Arc::downgrade(self))),
        });
        Arc::make_mut(&mut topic_state.receivers).push(entry);
        topic_state.remote.as_ref().map(Remote::ready)
    }

    /// Removes the receiver `key` from `topic`; the topic (and the node's
    /// subscription on the cluster) goes with its last receiver.
    fn remove(&self, state: &mut State, topic: &TopicName, key: ReceiverKey) {
        let Some(topic_state) = state.topics.get_mut(topic) else {
            return;
        };
        let Some(at) = topic_state.receivers.iter().position(|e| e.key == key) else {
            return;
        };
        Arc::make_mut(&mut topic_state.receivers).swap_remove(at);
        if topic_state.receivers.is_empty() {
            state.topics.remove(topic);
        }
    }

    fn leave_all(&self, key: ReceiverKey) {
        let membership = {
            let mut state = self.lock();
            let Some(membership) = state.joined.remove(&key) else {
                return;
            };
            for topic in membership.topics.keys() {
                self.remove(&mut state, topic, key);
            }
            membership
        };
        drop(membership);
    }

    /// Offers `publication` to every receiver of `topic` on this node but
    /// `except`, and removes those that ended.
    pub(super) fn deliver(
        &self,
        topic: &TopicName,
        publication: &Arc<Publication>,
        except: Option<ReceiverKey>,
    ) {
        let receivers = match self.lock().topics.get(topic) {
            Some(topic_state) => topic_state.receivers.clone(),
            None => return,
        };
        let mut ended = Vec::new();
        for entry in receivers.iter() {
            if Some(entry.key) == except {
                continue;
            }
            match entry.receiver.offer(publication) {
                Offered::Queued => {}
                Offered::Full | Offered::Gone => ended.push((entry.key, entry.joined)),
            }
        }
        drop(receivers);
        for (key, joined) in ended {
            if joined {
                self.leave_all(key);
            } else {
                let mut state = self.lock();
                self.remove(&mut state, topic, key);
            }
        }
    }
}

/// Waits (a bounded time) for the node's subscription to a topic to be
/// confirmed by the cluster.
async fn wait_remote(ready: Option<watch::Receiver<bool>>) {
    if let Some(mut ready) = ready {
        let _ = tokio::time::timeout(REMOTE_READY_WAIT, ready.wait_for(|r| *r)).await;
    }
}
