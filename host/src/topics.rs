//! Topics: publish and subscribe between connections, with the fan-out done
//! by the host (`wsbox:websocket/topics`).
//!
//! - [`Broker`] (`broker`) holds every topic's receivers for the process and
//!   delivers publications to them; with a [`ClusterConfig`] it also links
//!   the process to the other wsbox processes on a NATS server (`cluster`).
//! - A receiver is anything that implements [`Receiver`]: a guest's
//!   [`Subscription`] (`subscription`), or a joined websocket's connection
//!   (`joined`).
//! - [`InstanceTopics`] (`instance`) is one instance's share: its limit on
//!   joins and subscriptions, and the joins to undo when it ends.
//!
//! # Joined websockets
//!
//! The broker hands publications to a joined websocket through
//! [`Receiver::offer`], from the publisher's task with no lock of its own
//! held, once per publication and receiver, in publish order for each
//! publisher. The connection queues the [`Publication`] in its outbox
//! (`joined`) and returns at once; its driver task writes it:
//! - a server-role socket writes [`Publication::frame`] as it is (the
//!   unmasked header and the payload, encoded once for every receiver);
//! - a client-role socket writes a header of its own with a fresh mask and
//!   the payload masked for it alone.
//!
//! The outbox counts the unsent bytes against `Limits::topic_buffer` and
//! answers [`Offered::Full`] when a publication would pass it (and the
//! websocket is closed with 1013 `slow consumer`), or [`Offered::Gone`] once
//! the websocket is closing or closed; either way the broker removes it from
//! all its topics. When the connection ends, it calls [`Broker::leave_all`]
//! with its [`ReceiverKey`] (`ReceiverKey::of(&link)`); when its instance
//! ends, [`InstanceTopics`] does it for every websocket that joined through
//! it.

mod broker;
mod cluster;
mod instance;
mod joined;
mod subscription;

pub use broker::Broker;
pub use cluster::ClusterConfig;
pub(crate) use instance::InstanceTopics;
pub(crate) use joined::Outbox;
pub use subscription::Subscription;

use crate::bindings::types::{ErrorCode, Message, MessageKind};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;

/// The longest topic name, in bytes of UTF-8.
pub const MAX_TOPIC_BYTES: usize = 255;

/// A valid topic name: 1 to 255 bytes of UTF-8 without control characters.
/// Every character is literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `name`: `invalid-parameter` unless it is 1 to 255 bytes
    /// without control characters.
    pub(crate) fn new(name: &str) -> Result<TopicName, ErrorCode> {
        if name.is_empty() {
            return Err(ErrorCode::InvalidParameter(
                "a topic name may not be empty: use 1 to 255 bytes of UTF-8".into(),
            ));
        }
        if name.len() > MAX_TOPIC_BYTES {
            return Err(ErrorCode::InvalidParameter(format!(
                "a topic name is at most {MAX_TOPIC_BYTES} bytes of UTF-8; this one is {} bytes",
                name.len()
            )));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(ErrorCode::InvalidParameter(format!(
                "a topic name may not contain control characters; this one has U+{:04X}",
                c as u32
            )));
        }
        Ok(TopicName(name.into()))
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a receiver is, for `leave`, `leave_all` and `except`: the address of
/// an allocation the receiver keeps alive while it is in the broker (a
/// websocket's connection link, a subscription's queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ReceiverKey(usize);

impl ReceiverKey {
    /// The key of whatever `owner` points to.
    pub(crate) fn of<T: ?Sized>(owner: &Arc<T>) -> ReceiverKey {
        ReceiverKey(Arc::as_ptr(owner) as *const () as usize)
    }

    /// The key of whatever `owner` points to, as [`of`](Self::of) gives it.
    pub(crate) fn of_weak<T: ?Sized>(owner: &std::sync::Weak<T>) -> ReceiverKey {
        ReceiverKey(std::sync::Weak::as_ptr(owner) as *const () as usize)
    }
}

/// One published message, encoded once for every receiver on the node.
#[derive(Debug)]
pub(crate) struct Publication {
    kind: MessageKind,
    /// A whole unmasked frame (FIN set): header, then payload.
    frame: Bytes,
    header_len: usize,
}

impl Publication {
    /// Encodes a message of `kind` with `payload` as one unmasked frame.
    /// Text must be UTF-8 (the caller checked).
    pub(crate) fn new(kind: MessageKind, payload: &[u8]) -> Publication {
        let opcode = match kind {
            MessageKind::Text => 0x1,
            MessageKind::Binary => 0x2,
        };
        let len = payload.len();
        let mut frame = BytesMut::with_capacity(len + 10);
        frame.put_u8(0x80 | opcode);
        if len < 126 {
            frame.put_u8(len as u8);
        } else if len <= usize::from(u16::MAX) {
            frame.put_u8(126);
            frame.put_u16(len as u16);
        } else {
            frame.put_u8(127);
            frame.put_u64(len as u64);
        }
        let header_len = frame.len();
        frame.put_slice(payload);
        Publication {
            kind,
            frame: frame.freeze(),
            header_len,
        }
    }

    /// Encodes a guest's message.
    pub(crate) fn from_message(message: &Message) -> Publication {
        match message {
            Message::Text(text) => Publication::new(MessageKind::Text, text.as_bytes()),
            Message::Binary(data) => Publication::new(MessageKind::Binary, data),
        }
    }

    /// Text or binary.
    pub(crate) fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The whole frame as a server-role socket writes it: the unmasked
    /// header (FIN set, opcode 0x1 or 0x2) and the payload.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The message's bytes, without the header.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.frame[self.header_len..]
    }

    /// The message's bytes, sharing the frame's allocation.
    pub(crate) fn payload_bytes(&self) -> Bytes {
        self.frame.slice(self.header_len..)
    }

    /// The message as a guest receives it.
    pub(crate) fn to_message(&self) -> Message {
        let data = self.payload().to_vec();
        match self.kind {
            MessageKind::Binary => Message::Binary(data),
            MessageKind::Text => Message::Text(
                String::from_utf8(data)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }
}

/// What [`Receiver::offer`] did with a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Queued for the receiver.
    Queued,
    /// Not queued: it would have passed the receiver's budget, and the
    /// receiver has ended itself (a websocket closes with 1013 `slow
    /// consumer`; a subscription reports `limit-exceeded`). The broker
    /// removes it from every topic.
    Full,
    /// Not queued: the receiver is closing or closed. The broker removes it
    /// from every topic.
    Gone,
}

/// A receiver of publications: a subscription's queue, or a joined
/// websocket (the seam the connection code implements; see the module
/// documentation).
pub(crate) trait Receiver: Send + Sync + 'static {
    /// Queues `publication` without waiting, and says whether it did.
    /// Called from the publisher's task with no broker lock held; it must
    /// not call back into the broker.
    fn offer(&self, publication: &Arc<Publication>) -> Offered;
}

#[cfg(test)]
mod tests;
