//! One connection's shared state and its tasks.
//!
//! The [`Link`] holds the connection's [`Machine`] (the closing handshake,
//! no I/O) and its [`Sink`] (the write half). Three parties feed the
//! machine and carry out what it says:
//! - the reader task (`reader`) parses the peer's frames and queues message
//!   pieces for the guest; it answers pings itself;
//! - the guest's calls write data frames, pings and their own close frames
//!   straight to the sink;
//! - the driver task (`driver`) writes the close frames the host owes (an echo, a
//!   going-away, a violation's code, a dropped websocket), writes the
//!   messages of the topics the websocket joined (`topics::joined`), keeps
//!   the machine's deadlines, pings a silent peer and aborts a vanished
//!   one (`keepalive`), and ends TCP.
//!
//! Every write has a bound (the send timeout, or the close timeout for
//! close frames), and the driver ends when the socket is closed: no task or
//! file descriptor outlives the connection by more than its timeouts.

use crate::bindings::types::MessageKind;
use crate::budget::Credit;
use crate::config::Config;
use crate::deflate::{Inflater, StreamParams};
use crate::error::HostError;
use crate::keepalive::KeepaliveConfig;
use crate::lifecycle::{Actions, CloseFrame, End, Event, Failure, Finish, Machine};
use crate::metrics::{Direction, Tally};
use crate::reader::Reader;
use crate::sink::Sink;
use crate::topics::Outbox;
use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tungstenite::protocol::frame::coding::{Control as ControlOp, OpCode};

mod driver;

/// Which end of a connection the host is: it decides masking, and which
/// side ends TCP first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We mask our frames; the server must not mask its frames.
    Client,
    /// The client must mask its frames; we do not mask ours.
    Server,
}

/// What the reader hands to the guest side, in wire order.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A piece of a data message.
    Data(Piece),
    /// How the conversation ended.
    End(End),
}

/// A piece of a data message. It counts against the inbound buffers, for
/// the memory it really holds, until it is dropped.
#[derive(Debug)]
pub(crate) struct Piece {
    /// The message kind on the first piece of a message, `None` after.
    pub start: Option<MessageKind>,
    /// The bytes, in an allocation of their own.
    pub payload: Vec<u8>,
    /// The last piece of the message.
    pub fin: bool,
    /// Its share of the connection's and the instance's buffers.
    pub(crate) _permits: (Credit, OwnedSemaphorePermit),
}

/// A connection's state, shared by the reader, the driver, the guest's
/// calls and the host (shutdown, traps).
#[derive(Debug)]
pub(crate) struct Link {
    guarded: Mutex<Guarded>,
    /// The write half. Lock it before the machine when both are needed.
    sink: tokio::sync::Mutex<Sink>,
    /// Wakes the driver: it owes a close frame or a finish, or a deadline
    /// moved.
    wake: Notify,
    /// The guest's queue, for the ends the machine decides on.
    to_guest: mpsc::UnboundedSender<Inbound>,
    /// Wakes the driver: topic frames are queued in the outbox.
    topics_ready: Notify,
    /// The guest is in the middle of a fragmented message: no topic frame
    /// may go out before its final fragment. Changed and read with the sink
    /// held.
    fragmenting: AtomicBool,
    send_timeout: Duration,
    close_timeout: Duration,
    role: Role,
    keepalive: Option<KeepaliveConfig>,
    /// When the link was made; `heard` counts from it.
    born: std::time::Instant,
    /// Nanoseconds from `born` to the last read of the peer's bytes.
    heard: AtomicU64,
    /// The reader waits for room in the inbound buffers: the peer sent
    /// more than the host has read, so it is not silent.
    held_back: AtomicBool,
    /// The driver waits for an answer to its keepalive ping: the next read
    /// wakes it, so that the silence is measured from the answer.
    pinged: AtomicBool,
    /// The server's counters, when it keeps metrics.
    tally: Option<Tally>,
}

#[derive(Debug)]
struct Guarded {
    machine: Machine,
    /// What the driver owes: a close frame, then how to end TCP.
    owed_close: Option<CloseFrame>,
    owed_finish: Option<Finish>,
    /// The driver has closed the socket.
    done: bool,
    /// The topic frames the driver has still to write.
    outbox: Outbox,
}

/// A frame to write.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub opcode: OpCode,
    /// Masked in place when we are the client.
    pub payload: &'a mut [u8],
    pub fin: bool,
    /// The first frame of a compressed message (RSV1).
    pub compressed: bool,
}

/// A write that did not happen.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The machine does not allow it (our close frame was decided on).
    Refused,
    /// The socket failed, or the write did not finish in time; the
    /// connection is aborted.
    Failed(Failure),
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, Guarded> {
        // A panic while the lock is held is counted by the task that had
        // it; the machine's state is still consistent, so go on with it.
        self.guarded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the machine.
    pub(crate) fn with<R>(&self, read: impl FnOnce(&Machine) -> R) -> R {
        read(&self.lock().machine)
    }

    /// Applies a guest call's event; the caller carries out the actions.
    /// The driver is woken when the machine's deadline moved.
    pub(crate) fn apply(&self, event: Event) -> Result<Actions, HostError> {
        let mut guarded = self.lock();
        let before = guarded.machine.deadline();
        let was_aborted = guarded.machine.aborted().is_some();
        let actions = guarded.machine.on(event, Instant::now().into_std());
        let moved = guarded.machine.deadline() != before;
        if let (false, Some(why), Some(tally)) =
            (was_aborted, guarded.machine.aborted(), &self.tally)
        {
            tally.aborted(why);
        }
        drop(guarded);
        if moved {
            self.wake.notify_one();
        }
        actions
    }

    /// Applies an event whose close frame and finish the driver carries
    /// out, and queues the end it gives for the guest.
    pub(crate) fn event(&self, event: Event) {
        let actions = self.apply(event).unwrap_or_default();
        self.hand_over(actions);
    }

    /// Gives the driver the close frame and finish of `actions`, and queues
    /// their end for the guest, after what is queued already.
    pub(crate) fn hand_over(&self, actions: Actions) {
        let Actions {
            send_close,
            deliver,
            finish,
        } = actions;
        if send_close.is_some() || finish.is_some() {
            let mut guarded = self.lock();
            if send_close.is_some() {
                guarded.owed_close = send_close;
            }
            if finish.is_some() {
                guarded.owed_finish = finish;
            }
            drop(guarded);
            self.wake.notify_one();
        }
        if let Some(end) = deliver {
            // The guest side may be gone.
            let _ = self.to_guest.send(Inbound::End(end));
        }
    }

    /// Sends a close frame with `code` now, unless one was decided on
    /// already (graceful shutdown). The guest still sees the peer's answer.
    pub(crate) fn close_now(&self, code: crate::CloseCode) {
        self.event(Event::HostClose(CloseFrame::code(code)));
    }

    /// Sets the code sent if the guest lets go without closing.
    pub(crate) fn set_drop_code(&self, code: crate::CloseCode) {
        self.event(Event::DropCode(code));
    }

    /// The guest let go of the websocket.
    pub(crate) fn release(&self) {
        self.event(Event::Released);
    }

    /// Whether the driver has closed the socket.
    pub(crate) fn is_done(&self) -> bool {
        self.lock().done
    }

    /// Writes a data frame, ping or pong unless the machine forbids it
    /// (checked with the sink held, so nothing can follow our close frame),
    /// within the send timeout. A failure aborts the connection.
    pub(crate) async fn write_frame(
        &self,
        frame: Frame<'_>,
        allowed: impl FnOnce(&Machine) -> Result<(), HostError>,
    ) -> Result<Result<(), WriteError>, HostError> {
        let Frame {
            opcode,
            payload,
            fin,
            compressed,
        } = frame;
        let deadline = Instant::now() + self.send_timeout;
        // Free, the sink is taken without a timer; tokio's lock is fair,
        // so this does not pass a waiting writer.
        let mut sink = match self.sink.try_lock() {
            Ok(sink) => sink,
            Err(_) => match tokio::time::timeout_at(deadline, self.sink.lock()).await {
                Ok(sink) => sink,
                Err(_) => return Ok(Err(self.failed(Failure::WriteTimeout))),
            },
        };
        allowed(&self.lock().machine)?;
        let len = payload.len();
        let written =
            tokio::time::timeout_at(deadline, sink.frame(opcode, payload, fin, compressed)).await;
        if let (OpCode::Data(_), Ok(Ok(()))) = (opcode, &written) {
            if let Some(tally) = &self.tally {
                tally.frame(Direction::Out, len, fin);
            }
            let was = self.fragmenting.swap(!fin, Ordering::Relaxed);
            if was && fin {
                // Topic frames held back by the fragmented message may go.
                self.topics_ready.notify_one();
            }
        }
        drop(sink);
        Ok(match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failed(Failure::Io(e.into()))),
            Err(_) => Err(self.failed(Failure::WriteTimeout)),
        })
    }

    /// Writes a pong, unless our close frame was decided on.
    pub(crate) async fn pong(&self, payload: &mut [u8]) -> Result<(), WriteError> {
        let allowed = |m: &Machine| {
            if m.may_write_data() {
                Ok(())
            } else {
                Err(HostError::Code(crate::bindings::types::ErrorCode::Closed))
            }
        };
        let pong = Frame {
            opcode: OpCode::Control(ControlOp::Pong),
            payload,
            fin: true,
            compressed: false,
        };
        match self.write_frame(pong, allowed).await {
            Ok(result) => result,
            Err(_) => Err(WriteError::Refused),
        }
    }

    /// Writes the close frame the machine decided on, within `deadline`.
    pub(crate) async fn write_close(
        &self,
        frame: &CloseFrame,
        deadline: Instant,
    ) -> Result<(), WriteError> {
        let mut payload = frame.payload();
        let write = async {
            let mut sink = self.sink.lock().await;
            sink.frame(OpCode::Control(ControlOp::Close), &mut payload, true, false)
                .await
        };
        match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(())) => {
                if let Some(tally) = &self.tally {
                    tally.close_code(Direction::Out, frame.wire_code());
                }
                Ok(())
            }
            Ok(Err(e)) => Err(self.failed(Failure::Io(e.into()))),
            Err(_) => Err(self.failed(Failure::WriteTimeout)),
        }
    }

    /// Records a failed write: the connection is aborted and the driver
    /// drops it.
    fn failed(&self, why: Failure) -> WriteError {
        // The guest learns of it from the call that failed.
        self.event(Event::WriteFailed(why.clone()));
        WriteError::Failed(why)
    }

    /// The peer's bytes were just read.
    pub(crate) fn heard(&self) {
        let since = self.born.elapsed().as_nanos();
        self.heard
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        if self.pinged.load(Ordering::Relaxed) && self.pinged.swap(false, Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// The reader starts (`true`) or stops waiting for room in the inbound
    /// buffers.
    pub(crate) fn held_back(&self, held: bool) {
        self.held_back.store(held, Ordering::Relaxed);
        if !held {
            self.heard();
        }
    }

    /// The server's counters, when it keeps metrics.
    pub(crate) fn tally(&self) -> Option<&Tally> {
        self.tally.as_ref()
    }

    /// Which end of the connection we are.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// The close timeout.
    pub(crate) fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// Runs `f` on the machine and the topic outbox together.
    pub(crate) fn with_outbox<R>(&self, f: impl FnOnce(&Machine, &mut Outbox) -> R) -> R {
        let mut guarded = self.lock();
        let Guarded {
            machine, outbox, ..
        } = &mut *guarded;
        f(machine, outbox)
    }

    /// Wakes the driver to write the topic frames just queued.
    pub(crate) fn topics_queued(&self) {
        self.topics_ready.notify_one();
    }
}

/// The guest side's handles on a running connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub link: Arc<Link>,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Ends when the socket is closed and both tasks are done.
    pub task: JoinHandle<Option<()>>,
}

/// Starts the reader and the driver over an upgraded stream. `leftover`
/// holds bytes read past the HTTP upgrade; `slot` is the instance's
/// websocket slot, held until the socket is closed.
pub(crate) fn spawn<S>(
    stream: S,
    leftover: BytesMut,
    role: Role,
    config: &Config,
    instance_budget: Arc<Semaphore>,
    slot: OwnedSemaphorePermit,
    inflate: Option<StreamParams>,
) -> Connection
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let limits = &config.limits;
    let (read_half, write_half) = tokio::io::split(stream);
    let (to_guest, inbound) = mpsc::unbounded_channel();
    let link = Arc::new(Link {
        guarded: Mutex::new(Guarded {
            machine: Machine::new(role, limits.close_timeout),
            owed_close: None,
            owed_finish: None,
            done: false,
            outbox: Outbox::new(limits.topic_buffer),
        }),
        sink: tokio::sync::Mutex::new(Sink::new(write_half, role)),
        wake: Notify::new(),
        to_guest: to_guest.clone(),
        topics_ready: Notify::new(),
        fragmenting: AtomicBool::new(false),
        send_timeout: limits.send_timeout,
        close_timeout: limits.close_timeout,
        role,
        keepalive: limits.keepalive,
        born: std::time::Instant::now(),
        heard: AtomicU64::new(0),
        held_back: AtomicBool::new(false),
        pinged: AtomicBool::new(false),
        tally: config.metrics.as_ref().map(Tally::new),
    });
    let reader = Reader::new(
        read_half,
        leftover,
        limits,
        instance_budget,
        to_guest,
        link.clone(),
        inflate.map(Inflater::new),
    );
    let reader = crate::task::spawn("websocket reader", reader.run());
    let task = crate::task::spawn(
        "websocket driver",
        driver::drive(link.clone(), reader, slot),
    );
    Connection {
        link,
        inbound,
        task,
    }
}
