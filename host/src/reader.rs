//! The reader task: parses the peer's frames with tungstenite's frame
//! layer, enforces RFC 6455 and the size limits, answers pings, and queues
//! message pieces for the guest through a queue bounded by the memory the
//! pieces really hold. When the guest does not drain it, the reader stops
//! reading and TCP pushes back on the peer.
//!
//! Closing frames and failures go through the connection's machine; after
//! them the reader reads and discards until the peer ends TCP, so that our
//! close frame is not lost to a reset.

use crate::bindings::types::{CloseStatus, MessageKind};
use crate::close_code::CloseCode;
use crate::config::Limits;
use crate::connection::{Inbound, Link, Piece, Role, WriteError};
use crate::lifecycle::{Event, Failure};
use crate::sink::apply_mask;
use crate::utf8::Utf8Stream;
use bytes::{Buf, BufMut, BytesMut};
use std::io::Cursor;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tungstenite::protocol::frame::coding::{Control as ControlOp, Data as DataOp, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The largest piece of payload the reader hands over at once.
const MAX_PIECE: usize = 64 * 1024;

/// Payloads from this size up that are not in the read buffer yet are read
/// into an allocation of their own, which becomes the guest's message
/// without another copy. Smaller ones are copied out of the read buffer,
/// which is then reused.
const DIRECT_READ: usize = 4096;

/// The least room the reader asks for on each read: enough for a run of
/// small frames in one system call.
const READ_CHUNK: usize = 16 * 1024;

/// What a queued piece costs besides its payload, in bytes of the inbound
/// budgets: its queue slot, the piece itself and its allocation's header,
/// rounded up. So a flood of empty frames is bounded like any other.
pub(crate) const PIECE_OVERHEAD: usize = 128;

/// The permits of an inbound budget of `bytes`: room for at least one
/// byte of payload and its overhead, so that a tiny budget still moves.
pub(crate) fn buffer_permits(bytes: usize) -> usize {
    bytes.clamp(PIECE_OVERHEAD + 1, Semaphore::MAX_PERMITS)
}

/// Why the reader stopped parsing frames.
enum Stop {
    /// The peer's close frame arrived.
    PeerClosed(CloseStatus),
    /// We must fail the connection with this code.
    Violation(CloseCode, Failure),
    /// The socket ended or failed, or the guest side is gone.
    Ended(Failure),
}

fn violation(code: CloseCode, what: &'static str) -> Stop {
    let failure = match code {
        CloseCode::Size => Failure::TooBig,
        _ => Failure::Protocol(what),
    };
    Stop::Violation(code, failure)
}

pub(crate) struct Reader<R> {
    io: R,
    buf: BytesMut,
    role: Role,
    max_frame: u64,
    max_message: u64,
    piece: usize,
    budget: Arc<Semaphore>,
    instance_budget: Arc<Semaphore>,
    to_guest: mpsc::UnboundedSender<Inbound>,
    link: Arc<Link>,
}

/// The data message being received.
struct Message {
    kind: MessageKind,
    size: u64,
    /// Whether its first piece went to the guest.
    announced: bool,
    utf8: Option<Utf8Stream>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(crate) fn new(
        io: R,
        leftover: BytesMut,
        role: Role,
        limits: &Limits,
        instance_budget: Arc<Semaphore>,
        to_guest: mpsc::UnboundedSender<Inbound>,
        link: Arc<Link>,
    ) -> Self {
        let budget = buffer_permits(limits.inbound_buffer);
        Reader {
            io,
            buf: leftover,
            role,
            max_frame: limits.max_frame_size as u64,
            max_message: limits.max_message_size as u64,
            // A piece and its overhead must fit in either budget at once.
            piece: MAX_PIECE
                .min(budget.saturating_sub(PIECE_OVERHEAD))
                .min(buffer_permits(limits.instance_inbound_buffer) - PIECE_OVERHEAD),
            budget: Arc::new(Semaphore::new(budget)),
            instance_budget,
            to_guest,
            link,
        }
    }

    pub(crate) async fn run(mut self) {
        let event = match self.read_frames().await {
            Stop::PeerClosed(status) => Event::PeerClose(status),
            Stop::Violation(code, failure) => {
                tracing::debug!(%code, ?failure, "failing the connection");
                Event::Violation(code, failure)
            }
            Stop::Ended(failure) => Event::Ended(failure),
        };
        let ended = matches!(event, Event::Ended(_));
        self.link.event(event);
        if ended {
            return;
        }
        // Nothing the peer sends after its close frame or a violation
        // matters. Read until it ends TCP; the driver bounds how long.
        let mut sink = [0u8; 4096];
        while matches!(self.io.read(&mut sink).await, Ok(n) if n > 0) {}
        self.link.event(Event::Ended(Failure::Ended));
    }

    async fn read_frames(&mut self) -> Stop {
        let mut message: Option<Message> = None;
        loop {
            let (header, len) = match self.read_header().await {
                Ok(h) => h,
                Err(stop) => return stop,
            };
            // Before anything else, so that no rule makes the host wait for
            // a payload it would refuse.
            if len > self.max_frame {
                return violation(CloseCode::Size, "frame too big");
            }
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return violation(
                    CloseCode::Protocol,
                    "reserved bits set without an extension",
                );
            }
            match (self.role, header.mask.is_some()) {
                (Role::Client, true) => {
                    return violation(CloseCode::Protocol, "masked frame from the server")
                }
                (Role::Server, false) => {
                    return violation(CloseCode::Protocol, "unmasked frame from the client")
                }
                _ => {}
            }
            let kind = match header.opcode {
                OpCode::Control(op) => {
                    if let Some(stop) = self.control(op, &header, len).await {
                        return stop;
                    }
                    continue;
                }
                OpCode::Data(DataOp::Continue) => match &message {
                    Some(m) => m.kind,
                    None => {
                        return violation(
                            CloseCode::Protocol,
                            "continuation frame without a message to continue",
                        )
                    }
                },
                OpCode::Data(op) => {
                    if message.is_some() {
                        return violation(
                            CloseCode::Protocol,
                            "new message inside a fragmented message",
                        );
                    }
                    let kind = if op == DataOp::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    message = Some(Message {
                        kind,
                        size: 0,
                        announced: false,
                        utf8: (kind == MessageKind::Text).then(Utf8Stream::default),
                    });
                    kind
                }
            };
            let Some(msg) = message.as_mut() else {
                continue;
            };
            msg.size = match msg.size.checked_add(len) {
                Some(size) if size <= self.max_message => size,
                _ => return violation(CloseCode::Size, "message too big"),
            };
            // Within the limits, so it fits in memory.
            let Ok(mut remaining) = usize::try_from(len) else {
                return violation(CloseCode::Size, "message too big");
            };
            let mut offset = 0;
            let mut start = (!msg.announced).then_some(kind);
            msg.announced = true;
            loop {
                let n = remaining.min(self.piece);
                let Some(permits) = self.reserve(n).await else {
                    return Stop::Ended(Failure::Ended);
                };
                let payload = match self.read_payload(n, header.mask, offset).await {
                    Ok(p) => p,
                    Err(stop) => return stop,
                };
                offset += n;
                remaining -= n;
                let fin = header.is_final && remaining == 0;
                if let Some(utf8) = msg.utf8.as_mut() {
                    if utf8.feed(&payload).is_err() || (fin && !utf8.is_complete()) {
                        return violation(CloseCode::Invalid, "invalid UTF-8 in a text message");
                    }
                }
                // The guest side may be gone; the reader goes on to find the
                // peer's close all the same.
                let _ = self.to_guest.send(Inbound::Data(Piece {
                    start: start.take(),
                    payload,
                    fin,
                    _permits: permits,
                }));
                if remaining == 0 {
                    break;
                }
            }
            if header.is_final {
                message = None;
            }
        }
    }

    /// Handles a control frame; `Some` when it ends the frames.
    async fn control(&mut self, op: ControlOp, header: &FrameHeader, len: u64) -> Option<Stop> {
        if !header.is_final {
            return Some(violation(CloseCode::Protocol, "fragmented control frame"));
        }
        if len > 125 {
            return Some(violation(
                CloseCode::Protocol,
                "control frame over 125 bytes",
            ));
        }
        let mut payload = match self.read_payload(len as usize, header.mask, 0).await {
            Ok(p) => p,
            Err(stop) => return Some(stop),
        };
        match op {
            ControlOp::Close => Some(peer_close(&payload)),
            // Answered before reading on, so that the pong goes out before
            // anything the guest sends in reply to later frames. None after
            // our close frame.
            ControlOp::Ping => match self.link.pong(&mut payload).await {
                Err(WriteError::Failed(why)) => Some(Stop::Ended(why)),
                Ok(()) | Err(WriteError::Refused) => None,
            },
            _ => None,
        }
    }

    /// Waits until a piece of `n` payload bytes fits in the connection's
    /// buffer and in the instance's; `None` if the guest side is gone.
    async fn reserve(&mut self, n: usize) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let cost = u32::try_from(n + PIECE_OVERHEAD).ok()?;
        // The connection's own budget first, so that a full one does not
        // hold the instance's budget from its other websockets.
        let connection = self.budget.clone().acquire_many_owned(cost).await.ok()?;
        let instance = self
            .instance_budget
            .clone()
            .acquire_many_owned(cost)
            .await
            .ok()?;
        Some((connection, instance))
    }

    async fn read_header(&mut self) -> Result<(FrameHeader, u64), Stop> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some(found)) => {
                    let used = cursor.position() as usize;
                    self.buf.advance(used);
                    return Ok(found);
                }
                Ok(None) => self.fill(14).await?,
                Err(_) => return Err(violation(CloseCode::Protocol, "reserved opcode")),
            }
        }
    }

    /// Reads `n` payload bytes into an allocation of their own and unmasks
    /// them; `offset` is their position in the frame, for the mask.
    async fn read_payload(
        &mut self,
        n: usize,
        mask: Option<[u8; 4]>,
        offset: usize,
    ) -> Result<Vec<u8>, Stop> {
        let mut payload = if self.buf.len() < n && n >= DIRECT_READ {
            let mut own = Vec::with_capacity(n);
            own.extend_from_slice(&self.buf);
            self.buf.clear();
            while own.len() < n {
                let want = n - own.len();
                match self.io.read_buf(&mut (&mut own).limit(want)).await {
                    Ok(0) => return Err(Stop::Ended(Failure::Ended)),
                    Ok(_) => {}
                    Err(e) => return Err(Stop::Ended(Failure::Io(e.to_string()))),
                }
            }
            own
        } else {
            while self.buf.len() < n {
                self.fill(n - self.buf.len()).await?;
            }
            let own = self.buf[..n].to_vec();
            self.buf.advance(n);
            own
        };
        if let Some(mask) = mask {
            apply_mask(&mut payload, mask, offset);
        }
        Ok(payload)
    }

    /// Reads at least one more byte, reserving room for `want`.
    async fn fill(&mut self, want: usize) -> Result<(), Stop> {
        self.buf
            .reserve(want.clamp(READ_CHUNK, self.piece.max(READ_CHUNK)));
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Err(Stop::Ended(Failure::Ended)),
            Ok(_) => Ok(()),
            Err(e) => Err(Stop::Ended(Failure::Io(e.to_string()))),
        }
    }
}

/// The peer's close frame, checked.
fn peer_close(payload: &[u8]) -> Stop {
    match payload {
        [] => Stop::PeerClosed(CloseStatus {
            code: 1005,
            reason: String::new(),
        }),
        [_] => violation(CloseCode::Protocol, "close frame with a one-byte payload"),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() {
                return violation(
                    CloseCode::Protocol,
                    "close frame with an invalid close code",
                );
            }
            match std::str::from_utf8(reason) {
                Ok(reason) => Stop::PeerClosed(CloseStatus {
                    code,
                    reason: reason.to_string(),
                }),
                Err(_) => violation(CloseCode::Invalid, "close reason is not UTF-8"),
            }
        }
    }
}
