//! A joined websocket as a receiver of topics.
//!
//! Each connection has an [`Outbox`]: the publications its driver task has
//! still to write to the socket, bounded by `--topic-buffer` in frame bytes.
//! The broker offers a publication through [`Receiver::offer`], which
//! queues it and wakes the driver; the driver writes the shared frame as it
//! is (server role) or masked for this socket (client role), under the
//! sink's lock, between the guest's own frames, never after our close
//! frame, each write bounded by the send timeout (`connection`).
//!
//! A publication that would pass the budget is not queued: the host closes
//! the websocket with 1013 `slow consumer` ([`Event::HostClose`]), and the
//! broker takes it out of every topic. A websocket that is not open is
//! `Gone`. When the connection ends, it leaves every topic it joined.

use super::{Broker, Offered, Publication, Receiver, ReceiverKey};
use crate::close_code::CloseCode;
use crate::connection::Link;
use crate::lifecycle::{CloseFrame, Event};
use std::collections::VecDeque;
use std::sync::Arc;

/// The reason of the 1013 close a slow consumer gets.
pub(crate) const SLOW_CONSUMER: &str = "slow consumer";

/// The most frames the driver writes under one hold of the sink, so that
/// the guest's own sends are not held back for long.
const BATCH_FRAMES: usize = 64;

/// The most bytes of frames in one batch (a batch holds at least one
/// frame, however large).
const BATCH_BYTES: usize = 256 * 1024;

/// The topic frames waiting for one connection's driver.
#[derive(Debug)]
pub(crate) struct Outbox {
    frames: VecDeque<Arc<Publication>>,
    /// Bytes of the frames queued or being written: what the budget counts.
    unsent: usize,
    budget: usize,
    /// Nothing more is queued: a publication passed the budget, or the
    /// connection ended.
    closed: bool,
    /// The connection ended.
    ended: bool,
    /// The broker whose topics the websocket joined, once it joined one:
    /// the connection leaves them all when it ends.
    broker: Option<Broker>,
}

impl Outbox {
    /// An empty outbox for at most `budget` bytes of frames.
    pub(crate) fn new(budget: usize) -> Outbox {
        Outbox {
            frames: VecDeque::new(),
            unsent: 0,
            budget,
            closed: false,
            ended: false,
            broker: None,
        }
    }

    /// Queues `publication`, unless the outbox is closed (`Gone`) or the
    /// frame would pass the budget (`Full`: the outbox then closes and
    /// drops what it holds, as its socket is about to close).
    pub(crate) fn push(&mut self, publication: &Arc<Publication>) -> Offered {
        if self.closed {
            return Offered::Gone;
        }
        let len = publication.frame().len();
        if self.unsent.saturating_add(len) > self.budget {
            self.closed = true;
            self.clear();
            return Offered::Full;
        }
        self.unsent += len;
        self.frames.push_back(publication.clone());
        Offered::Queued
    }

    /// Whether no frame is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Takes the next frames to write: at least one if any is queued, at
    /// most [`BATCH_FRAMES`] and about [`BATCH_BYTES`]. They count against
    /// the budget until [`written`](Self::written).
    pub(crate) fn take_batch(&mut self) -> Vec<Arc<Publication>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = self.frames.front() {
            let len = next.frame().len();
            if !batch.is_empty() && (batch.len() == BATCH_FRAMES || bytes + len > BATCH_BYTES) {
                break;
            }
            bytes += len;
            batch.extend(self.frames.pop_front());
        }
        batch
    }

    /// `bytes` of taken frames are out.
    pub(crate) fn written(&mut self, bytes: usize) {
        self.unsent = self.unsent.saturating_sub(bytes);
    }

    /// Drops the queued frames: our close frame was decided on, so none of
    /// them may be written.
    pub(crate) fn clear(&mut self) {
        for dropped in self.frames.drain(..) {
            self.unsent = self.unsent.saturating_sub(dropped.frame().len());
        }
    }

    /// The unsent bytes, queued or being written.
    #[cfg(test)]
    pub(crate) fn unsent(&self) -> usize {
        self.unsent
    }

    /// Notes that the websocket joined a topic of `broker`. `false` if the
    /// connection ended already: the caller leaves at once.
    pub(crate) fn joined(&mut self, broker: &Broker) -> bool {
        if self.ended {
            return false;
        }
        self.broker.get_or_insert_with(|| broker.clone());
        true
    }

    /// The connection ended: nothing more is queued. Gives the broker whose
    /// topics it must leave.
    pub(crate) fn end(&mut self) -> Option<Broker> {
        self.ended = true;
        self.closed = true;
        self.clear();
        self.broker.take()
    }
}

impl Receiver for Link {
    fn offer(&self, publication: &Arc<Publication>) -> Offered {
        let offered = self.with_outbox(|machine, outbox| {
            if machine.is_open() {
                outbox.push(publication)
            } else {
                Offered::Gone
            }
        });
        match offered {
            Offered::Queued => self.topics_queued(),
            Offered::Full => {
                if let Some(tally) = self.tally() {
                    tally.slow_consumer_closed();
                }
                self.event(Event::HostClose(CloseFrame::Code(
                    CloseCode::Again,
                    SLOW_CONSUMER.into(),
                )))
            }
            Offered::Gone => {}
        }
        offered
    }
}

impl Link {
    /// After `broker.join`: notes the broker, so that the connection leaves
    /// its topics when it ends, or leaves them now if it has ended already.
    pub(crate) fn joined(self: &Arc<Self>, broker: &Broker) {
        if !self.with_outbox(|_, outbox| outbox.joined(broker)) {
            broker.leave_all(ReceiverKey::of(self));
        }
    }

    /// The connection ended: it leaves every topic it joined.
    pub(crate) fn leave_topics(self: &Arc<Self>) {
        if let Some(broker) = self.with_outbox(|_, outbox| outbox.end()) {
            broker.leave_all(ReceiverKey::of(self));
        }
    }
}
