//! A guest's own receiver of a topic: the `subscription` resource and its
//! bounded queue.

use super::{Broker, Offered, Publication, Receiver, ReceiverKey, TopicName};
use crate::bindings::types::{ErrorCode, Message};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// A subscription's queue: what was published and not yet received, at
/// most `budget` bytes of messages.
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the one waiter (`receive` or the pollable) when a message is
    /// queued or the queue ends.
    ready: Notify,
    budget: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Arc<Publication>>,
    bytes: usize,
    end: Option<End>,
}

#[derive(Debug)]
enum End {
    /// The queue passed its budget; the next receive reports it.
    Overflowed { dropped: usize },
    /// The overflow was reported: every receive gives `closed`.
    Closed,
}

impl Queue {
    pub(crate) fn new(budget: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            ready: Notify::new(),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next message or the end, without waiting; `None` when the
    /// queue is empty and open.
    fn try_receive(&self) -> Option<Result<Message, ErrorCode>> {
        let mut state = self.lock();
        if let Some(publication) = state.items.pop_front() {
            state.bytes -= publication.payload().len();
            return Some(Ok(publication.to_message()));
        }
        state.end.as_ref()?;
        match state.end.replace(End::Closed) {
            None | Some(End::Closed) => Some(Err(ErrorCode::Closed)),
            Some(End::Overflowed { dropped }) => Some(Err(ErrorCode::LimitExceeded(format!(
                "the subscription's queue passed its budget of {} bytes (--topic-buffer), \
                 so it ended and its {dropped} unreceived messages were dropped; \
                 open a new subscription, and receive faster or raise --topic-buffer",
                self.budget
            )))),
        }
    }

    /// Waits for the next message or the end.
    async fn receive(&self) -> Result<Message, ErrorCode> {
        loop {
            if let Some(result) = self.try_receive() {
                return result;
            }
            // A message queued since the check left a permit: no wake-up is
            // lost.
            self.ready.notified().await;
        }
    }

    /// Waits until `receive` would not wait.
    async fn ready(&self) {
        loop {
            {
                let state = self.lock();
                if !state.items.is_empty() || state.end.is_some() {
                    return;
                }
            }
            self.ready.notified().await;
        }
    }
}

impl Receiver for Queue {
    fn offer(&self, publication: &Arc<Publication>) -> Offered {
        let mut state = self.lock();
        if state.end.is_some() {
            return Offered::Gone;
        }
        let len = publication.payload().len();
        let offered = if state.bytes + len > self.budget {
            let dropped = state.items.len() + 1;
            state.items = VecDeque::new();
            state.bytes = 0;
            state.end = Some(End::Overflowed { dropped });
            Offered::Full
        } else {
            state.bytes += len;
            state.items.push_back(publication.clone());
            Offered::Queued
        };
        drop(state);
        self.ready.notify_one();
        offered
    }
}

/// A guest's subscription to one topic (the WIT resource `subscription`),
/// or an embedder's from [`Broker::open`]. It gets every message published
/// to the topic from its opening on; dropping it ends it.
#[derive(Debug)]
pub struct Subscription {
    broker: Broker,
    topic: TopicName,
    key: ReceiverKey,
    queue: Arc<Queue>,
    /// Its place in its instance's `--max-topics`.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Subscription {
    pub(crate) fn new(
        broker: Broker,
        topic: TopicName,
        key: ReceiverKey,
        queue: Arc<Queue>,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Subscription {
        Subscription {
            broker,
            topic,
            key,
            queue,
            _slot: slot,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// Waits for the next message. `limit-exceeded` once if the queue passed
    /// its budget, `closed` after that.
    pub async fn receive(&self) -> Result<Message, ErrorCode> {
        self.queue.receive().await
    }

    /// The next message if one is queued (or the end), without waiting.
    pub fn try_receive(&self) -> Option<Result<Message, ErrorCode>> {
        self.queue.try_receive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.broker.unsubscribe(&self.topic, self.key);
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for Subscription {
    async fn ready(&mut self) {
        self.queue.ready().await;
    }
}
