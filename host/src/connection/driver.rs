//! The driver task of a connection: writes the close frames the host owes
//! and the topics' messages, keeps the machine's deadlines and the
//! keepalive, and ends TCP when the machine says how.

use super::{Frame, Link, WriteError};
use crate::bindings::types::ErrorCode;
use crate::error::HostError;
use crate::keepalive::PING_PAYLOAD;
use crate::keepalive::{Action, Keepalive};
use crate::lifecycle::{Event, Failure, Finish, Machine};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tungstenite::protocol::frame::coding::{Control as ControlOp, OpCode};

/// Writes what the host owes and the topics' messages, keeps the deadlines,
/// and ends TCP.
pub(super) async fn drive(
    link: Arc<Link>,
    reader: JoinHandle<Option<()>>,
    _slot: OwnedSemaphorePermit,
) {
    // However the driver ends (even aborted), the websocket leaves its
    // topics.
    let _leave = LeaveTopics(link.clone());
    let mut reader = Some(reader);
    let mut keepalive = link
        .keepalive
        .map(|config| Keepalive::new(config, std::time::Instant::now()));
    let never = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let finish = loop {
        let (close, mut finish, deadline) = {
            let mut guarded = link.lock();
            (
                guarded.owed_close.take(),
                guarded.owed_finish.take(),
                guarded.machine.deadline(),
            )
        };
        if let Some(frame) = close {
            let by = Instant::now() + link.close_timeout;
            if let Err(WriteError::Failed(_)) = link.write_close(&frame, by).await {
                // `failed` handed the abort over: take it now.
                finish = finish.or_else(|| link.lock().owed_finish.take());
            }
        }
        if let Some(finish) = finish {
            break finish;
        }
        let deadline = deadline.map(Instant::from_std);
        let silence = match keepalive.as_mut() {
            Some(keepalive) if link.with(Machine::is_open) => {
                keepalive.heard(link.last_heard());
                match keepalive.poll(std::time::Instant::now()) {
                    Action::WaitUntil(at) => Some(Instant::from_std(at)),
                    Action::Ping => {
                        link.keepalive_ping().await;
                        continue;
                    }
                    Action::Abort => {
                        link.event(Event::Ended(Failure::Silent));
                        continue;
                    }
                }
            }
            _ => None,
        };
        tokio::select! {
            _ = link.wake.notified() => {}
            // Polled again at the top of the loop.
            _ = sleep_until(silence.unwrap_or(never)), if silence.is_some() => {}
            _ = sleep_until(deadline.unwrap_or(never)), if deadline.is_some() => {
                link.event(Event::Tick);
            }
            _ = link.topics_ready.notified() => link.write_topics().await,
            ended = async { reader.as_mut().expect("checked").await }, if reader.is_some() => {
                reader = None;
                if !matches!(ended, Ok(Some(()))) {
                    // The reader panicked (a bug, counted): end the connection
                    // rather than leave the guest waiting.
                    link.event(Event::Ended(Failure::Io("internal error in the host".into())));
                }
            }
        }
    };
    // No frame goes out after the finish: the topics end here.
    link.leave_topics();
    end_tcp(&link, finish, reader).await;
    link.lock().done = true;
}

/// Takes a connection out of its topics when dropped.
struct LeaveTopics(Arc<Link>);

impl Drop for LeaveTopics {
    fn drop(&mut self) {
        self.0.leave_topics();
    }
}

/// Ends TCP the way `finish` says, each wait bounded by the close timeout,
/// and closes the socket. `reader` is the reader task, unless it ended.
async fn end_tcp(link: &Link, finish: Finish, mut reader: Option<JoinHandle<Option<()>>>) {
    let bound = link.close_timeout;
    let io = match timeout(bound, link.sink.lock()).await {
        Ok(mut sink) => sink.take(),
        Err(_) => None,
    };
    // The reader reads (and discards) until the peer ends TCP.
    let peer_ended = async |reader: &mut Option<JoinHandle<Option<()>>>| {
        if let Some(task) = reader.as_mut() {
            if timeout(bound, task).await.is_ok() {
                *reader = None;
            }
        }
    };
    match (finish, io) {
        (Finish::Fin, Some(mut io)) => {
            let _ = timeout(bound, io.shutdown()).await;
            peer_ended(&mut reader).await;
        }
        (Finish::AwaitEnd, Some(mut io)) => {
            peer_ended(&mut reader).await;
            let _ = timeout(bound, io.shutdown()).await;
        }
        _ => {}
    }
    if let Some(task) = reader {
        task.abort();
        let _ = task.await;
    }
}

/// The driver's own duties on the link.
impl Link {
    /// When the peer was last heard from: now while the reader is held
    /// back.
    fn last_heard(&self) -> std::time::Instant {
        if self.held_back.load(Ordering::Relaxed) {
            return std::time::Instant::now();
        }
        self.born + Duration::from_nanos(self.heard.load(Ordering::Relaxed))
    }

    /// Sends the keepalive ping, unless our close frame was decided on.
    async fn keepalive_ping(&self) {
        let allowed = |m: &Machine| {
            if m.may_write_data() {
                Ok(())
            } else {
                Err(HostError::Code(ErrorCode::Closed))
            }
        };
        self.pinged.store(true, Ordering::Relaxed);
        let mut payload = PING_PAYLOAD.to_vec();
        let ping = Frame {
            opcode: OpCode::Control(ControlOp::Ping),
            payload: &mut payload,
            fin: true,
            compressed: false,
        };
        // A failed write aborts the connection (`failed`); a refused one
        // means the closing handshake runs, with its own deadline.
        let _ = self.write_frame(ping, allowed).await;
    }

    /// Writes a batch of the queued topic frames, with the sink held: not
    /// inside a fragmented message of the guest's, not after our close
    /// frame (the queue is dropped then), within the send timeout. A failed
    /// write aborts the connection. Wakes itself again while frames are
    /// left, so that the driver's other duties take turns with it.
    async fn write_topics(&self) {
        if self.lock().outbox.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.send_timeout;
        let Ok(mut sink) = tokio::time::timeout_at(deadline, self.sink.lock()).await else {
            self.failed(Failure::WriteTimeout);
            return;
        };
        if self.fragmenting.load(Ordering::Relaxed) {
            // The guest's final fragment wakes the driver again.
            return;
        }
        let batch = {
            let mut guarded = self.lock();
            if !guarded.machine.may_write_data() {
                guarded.outbox.clear();
                return;
            }
            guarded.outbox.take_batch()
        };
        let frames: Vec<&[u8]> = batch.iter().map(|p| &p.frame()[..]).collect();
        let bytes: usize = frames.iter().map(|f| f.len()).sum();
        let written = tokio::time::timeout_at(deadline, sink.write_encoded(&frames)).await;
        drop(sink);
        match written {
            Ok(Ok(())) => {
                if let Some(tally) = &self.tally {
                    for publication in &batch {
                        tally.topic_delivered(publication.payload().len());
                    }
                }
                let more = {
                    let mut guarded = self.lock();
                    guarded.outbox.written(bytes);
                    !guarded.outbox.is_empty()
                };
                if more {
                    self.topics_ready.notify_one();
                }
            }
            Ok(Err(e)) => {
                self.failed(Failure::Io(e.into()));
            }
            Err(_) => {
                self.failed(Failure::WriteTimeout);
            }
        }
    }
}
