//! One instance's share of the topics: its `--max-topics` slots, the
//! `--topic-buffer` budget, and the joins to undo when it ends.

use super::{Broker, Receiver, ReceiverKey, Subscription, TopicName};
use crate::bindings::types::{ErrorCode, Message};
use crate::config::Config;
use std::sync::{Arc, Weak};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One instance's topics.
#[derive(Debug)]
pub(crate) struct InstanceTopics {
    broker: Broker,
    /// One permit per join or subscription.
    slots: Arc<Semaphore>,
    max_topics: usize,
    buffer: usize,
    /// The websockets that joined a topic through this instance, to take
    /// out of every topic when it ends. Weak, so that a websocket whose
    /// connection ended is freed; yet its allocation, whose address is its
    /// key, is not reused for another websocket while it is listed here.
    joined: Vec<Weak<dyn Receiver>>,
}

impl InstanceTopics {
    pub(crate) fn new(config: &Config) -> InstanceTopics {
        let limits = &config.limits;
        InstanceTopics {
            broker: config.broker.clone(),
            slots: Arc::new(Semaphore::new(
                limits.max_topics.min(Semaphore::MAX_PERMITS),
            )),
            max_topics: limits.max_topics,
            buffer: limits.topic_buffer,
            joined: Vec::new(),
        }
    }

    fn take_slot(&self) -> Result<OwnedSemaphorePermit, ErrorCode> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ErrorCode::LimitExceeded(format!(
                "this instance already holds {} joins and subscriptions (the maximum); \
                 leave a topic or drop a subscription first, or raise it with --max-topics",
                self.max_topics
            ))
        })
    }

    /// Opens a subscription that takes one of the instance's slots.
    pub(crate) async fn open(&self, topic: &str) -> Result<Subscription, ErrorCode> {
        let topic = TopicName::new(topic)?;
        let slot = self.take_slot()?;
        Ok(self.broker.subscribe(topic, self.buffer, Some(slot)).await)
    }

    /// Joins the websocket `key` to `topic`.
    pub(crate) async fn join(
        &mut self,
        key: ReceiverKey,
        receiver: &Arc<dyn Receiver>,
        topic: &TopicName,
    ) -> Result<(), ErrorCode> {
        // A websocket no one holds any more is in no topic.
        self.joined.retain(|w| w.strong_count() > 0);
        let receiver_weak = Arc::downgrade(receiver);
        if !self.joined.iter().any(|w| w.ptr_eq(&receiver_weak)) {
            self.joined.push(receiver_weak);
        }
        self.broker
            .join(key, receiver, topic, || self.take_slot().map(Some))
            .await
    }

    /// The broker this instance's topics are in.
    pub(crate) fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Takes the websocket `key` out of `topic`.
    pub(crate) fn leave(&self, key: ReceiverKey, topic: &TopicName) {
        self.broker.leave(key, topic);
    }

    /// Publishes to every receiver of `topic` but `except`.
    pub(crate) async fn publish(
        &self,
        topic: &TopicName,
        message: &Message,
        except: Option<ReceiverKey>,
    ) -> Result<(), ErrorCode> {
        self.broker.publish_except(topic, message, except).await
    }
}

impl Drop for InstanceTopics {
    fn drop(&mut self) {
        for receiver in self.joined.drain(..) {
            self.broker.leave_all(ReceiverKey::of_weak(&receiver));
        }
    }
}
