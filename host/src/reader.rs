//! The reader task: parses the peer's frames with tungstenite's frame
//! layer, enforces RFC 6455 and the size limits, answers pings, and queues
//! message pieces for the guest through a queue bounded by the memory the
//! pieces really hold. When the guest does not drain it, the reader stops
//! reading and TCP pushes back on the peer.
//!
//! Closing frames and failures go through the connection's machine; after
//! them the reader reads and discards until the peer ends TCP, so that our
//! close frame is not lost to a reset.

// Over 500 lines: one task whose frame loop, checks and reads share its buffers and budget; split, they would pass them around.

use crate::bindings::types::{CloseStatus, MessageKind};
use crate::budget::{Budget, Credit};
use crate::close_code::CloseCode;
use crate::config::Limits;
use crate::connection::{Inbound, Link, Piece, Role, WriteError};
use crate::deflate::{Inflater, Step};
use crate::frame_header::parse_header;
use crate::lifecycle::{Event, Failure};
use crate::metrics::Direction;
use crate::sink::apply_mask;
use crate::utf8::Utf8Stream;
use bytes::{Buf, BufMut, BytesMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
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

/// The bytes of an inbound budget of `bytes`: room for at least one byte
/// of payload and its overhead, so that a tiny budget still moves.
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
    budget: Arc<Budget>,
    instance_budget: Arc<Semaphore>,
    to_guest: mpsc::UnboundedSender<Inbound>,
    link: Arc<Link>,
    /// permessage-deflate's receiving side, when negotiated.
    inflater: Option<Inflater>,
    /// Where inflated bytes land before they become a piece; held only
    /// while a compressed message is read, or for the connection's life
    /// with context takeover.
    scratch: Vec<u8>,
}

/// The data message being received.
struct Message {
    kind: MessageKind,
    /// Its size so far: inflated bytes for a compressed one.
    size: u64,
    /// Whether its first piece went to the guest.
    announced: bool,
    utf8: Option<Utf8Stream>,
    /// Its first frame had RSV1: permessage-deflate compressed it.
    compressed: bool,
}

impl Message {
    fn new(op: DataOp, compressed: bool) -> Self {
        let kind = if op == DataOp::Text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        Message {
            kind,
            size: 0,
            announced: false,
            utf8: (kind == MessageKind::Text).then(Utf8Stream::default),
            compressed,
        }
    }
}

/// A piece's share of the connection's and the instance's buffers.
type Permits = (Credit, OwnedSemaphorePermit);

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(crate) fn new(
        io: R,
        leftover: BytesMut,
        limits: &Limits,
        instance_budget: Arc<Semaphore>,
        to_guest: mpsc::UnboundedSender<Inbound>,
        link: Arc<Link>,
        inflater: Option<Inflater>,
    ) -> Self {
        let budget = buffer_permits(limits.inbound_buffer);
        Reader {
            io,
            buf: leftover,
            role: link.role(),
            max_frame: limits.max_frame_size as u64,
            max_message: limits.max_message_size as u64,
            // A piece and its overhead must fit in either budget at once.
            piece: MAX_PIECE
                .min(budget.saturating_sub(PIECE_OVERHEAD))
                .min(buffer_permits(limits.instance_inbound_buffer) - PIECE_OVERHEAD),
            budget: Arc::new(Budget::new(budget)),
            instance_budget,
            to_guest,
            link,
            inflater,
            scratch: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let event = match self.read_frames().await {
            Stop::PeerClosed(status) => {
                if let Some(tally) = self.link.tally() {
                    tally.close_code(Direction::In, CloseCode::from(status.code));
                }
                Event::PeerClose(status)
            }
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
        // On the heap: an array here would sit in every reader's state.
        let mut sink = vec![0u8; 4096];
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
            if let Err(stop) = self.check_header(&header, len) {
                return stop;
            }
            let msg = match header.opcode {
                OpCode::Control(op) => {
                    if let Some(stop) = self.control(op, &header, len).await {
                        return stop;
                    }
                    continue;
                }
                OpCode::Data(DataOp::Continue) => match message.as_mut() {
                    Some(m) => m,
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
                    message.insert(Message::new(op, header.rsv1))
                }
            };
            let read = if msg.compressed {
                self.inflate_frame(msg, &header, len).await
            } else {
                self.plain_frame(msg, &header, len).await
            };
            if let Err(stop) = read {
                return stop;
            }
            if let Some(tally) = self.link.tally() {
                tally.frame(Direction::In, len as usize, header.is_final);
            }
            if header.is_final {
                message = None;
                if self.inflater.as_ref().is_some_and(|i| !i.holds_state()) {
                    self.scratch = Vec::new();
                }
            }
        }
    }

    /// The rules a frame header must keep whatever its opcode.
    fn check_header(&self, header: &FrameHeader, len: u64) -> Result<(), Stop> {
        // Before anything else, so that no rule makes the host wait for a
        // payload it would refuse.
        if len > self.max_frame {
            return Err(violation(CloseCode::Size, "frame too big"));
        }
        if header.rsv2 || header.rsv3 {
            return Err(violation(
                CloseCode::Protocol,
                "reserved bits set without an extension",
            ));
        }
        if header.rsv1 {
            let why = match header.opcode {
                _ if self.inflater.is_none() => {
                    "RSV1 set, but permessage-deflate was not negotiated"
                }
                OpCode::Control(_) => "RSV1 set on a control frame",
                OpCode::Data(DataOp::Continue) => "RSV1 set on a continuation frame",
                OpCode::Data(_) => "",
            };
            if !why.is_empty() {
                return Err(violation(CloseCode::Protocol, why));
            }
        }
        match (self.role, header.mask.is_some()) {
            (Role::Client, true) => Err(violation(
                CloseCode::Protocol,
                "masked frame from the server",
            )),
            (Role::Server, false) => Err(violation(
                CloseCode::Protocol,
                "unmasked frame from the client",
            )),
            _ => Ok(()),
        }
    }

    /// Queues an uncompressed data frame's payload for the guest in pieces.
    async fn plain_frame(
        &mut self,
        msg: &mut Message,
        header: &FrameHeader,
        len: u64,
    ) -> Result<(), Stop> {
        msg.size = match msg.size.checked_add(len) {
            Some(size) if size <= self.max_message => size,
            _ => return Err(violation(CloseCode::Size, "message too big")),
        };
        // Within the limits, so it fits in memory.
        let Ok(mut remaining) = usize::try_from(len) else {
            return Err(violation(CloseCode::Size, "message too big"));
        };
        let mut offset = 0;
        loop {
            let n = remaining.min(self.piece);
            let permits = self.reserve(n).await?;
            let payload = self.read_payload(n, header.mask, offset).await?;
            offset += n;
            remaining -= n;
            let fin = header.is_final && remaining == 0;
            self.deliver(msg, payload, fin, permits)?;
            if remaining == 0 {
                return Ok(());
            }
        }
    }

    /// Inflates a compressed message's frame and queues what it holds for
    /// the guest, a piece at a time: never more than one piece of inflated
    /// data exists outside the queue, and the queue's budgets count
    /// inflated bytes, so a deflate bomb is stopped at the message limit
    /// with memory bounded all along.
    async fn inflate_frame(
        &mut self,
        msg: &mut Message,
        header: &FrameHeader,
        len: u64,
    ) -> Result<(), Stop> {
        let Ok(mut remaining) = usize::try_from(len) else {
            return Err(violation(CloseCode::Size, "message too big"));
        };
        let mut offset = 0;
        loop {
            let n = remaining.min(self.piece);
            let input = self.read_payload(n, header.mask, offset).await?;
            offset += n;
            remaining -= n;
            let last = header.is_final && remaining == 0;
            let mut used = 0;
            loop {
                let mut permits = self.reserve(self.piece).await?;
                if self.scratch.len() < self.piece {
                    self.scratch = vec![0; self.piece];
                }
                let inflater = self.inflater.as_mut().expect("a compressed message");
                let progress = inflater
                    .inflate(&input[used..], last, &mut self.scratch[..self.piece])
                    .map_err(|_| violation(CloseCode::Invalid, "invalid compressed data"))?;
                used += progress.consumed;
                msg.size = inflater.message_len();
                if msg.size > self.max_message {
                    return Err(violation(CloseCode::Size, "message too big"));
                }
                let ended = progress.step == Step::MessageEnd;
                if progress.written > 0 || ended {
                    // The permits count what the piece really holds.
                    let cost = progress.written + PIECE_OVERHEAD;
                    permits.0.shrink_to(cost);
                    drop(permits.1.split(self.piece - progress.written));
                    let payload = self.scratch[..progress.written].to_vec();
                    self.deliver(msg, payload, ended, permits)?;
                }
                match progress.step {
                    Step::OutputFull => continue,
                    Step::NeedsInput if remaining > 0 => break,
                    Step::NeedsInput if last => {
                        return Err(violation(CloseCode::Invalid, "invalid compressed data"))
                    }
                    Step::NeedsInput | Step::MessageEnd => return Ok(()),
                }
            }
        }
    }

    /// Queues a piece of `msg` for the guest, checking text as it goes.
    fn deliver(
        &mut self,
        msg: &mut Message,
        payload: Vec<u8>,
        fin: bool,
        permits: Permits,
    ) -> Result<(), Stop> {
        if let Some(utf8) = msg.utf8.as_mut() {
            if utf8.feed(&payload).is_err() || (fin && !utf8.is_complete()) {
                return Err(violation(
                    CloseCode::Invalid,
                    "invalid UTF-8 in a text message",
                ));
            }
        }
        let start = (!msg.announced).then_some(msg.kind);
        msg.announced = true;
        // The guest side may be gone; the reader goes on to find the peer's
        // close all the same.
        let _ = self.to_guest.send(Inbound::Data(Piece {
            start,
            payload,
            fin,
            _permits: permits,
        }));
        Ok(())
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
    /// buffer and in the instance's. The connection's budget has one taker,
    /// this reader, so an atomic count does; the instance's is shared by
    /// its websockets' readers, and its semaphore serves them in turn, so
    /// that none is starved by the others' small pieces.
    async fn reserve(&mut self, n: usize) -> Result<Permits, Stop> {
        let cost = n + PIECE_OVERHEAD;
        let gone = || Stop::Ended(Failure::Ended);
        let permits = u32::try_from(cost).map_err(|_| gone())?;
        // The connection's own budget first, so that a full one does not
        // hold the instance's budget from its other websockets. While it
        // waits, the peer has sent more than was read: keepalive counts it
        // as heard.
        let connection = match self.budget.try_take(cost) {
            Some(credit) => credit,
            None => {
                self.link.held_back(true);
                let credit = self.budget.take(cost).await;
                self.link.held_back(false);
                credit
            }
        };
        let instance = match self.instance_budget.clone().try_acquire_many_owned(permits) {
            Ok(permit) => permit,
            Err(_) => {
                self.link.held_back(true);
                let permit = self
                    .instance_budget
                    .clone()
                    .acquire_many_owned(permits)
                    .await;
                self.link.held_back(false);
                permit.map_err(|_| gone())?
            }
        };
        Ok((connection, instance))
    }

    async fn read_header(&mut self) -> Result<(FrameHeader, u64), Stop> {
        loop {
            match parse_header(&self.buf) {
                Ok(Some((header, len, used))) => {
                    self.buf.advance(used);
                    return Ok((header, len));
                }
                Ok(None) => self.fill(14).await?,
                Err(()) => return Err(violation(CloseCode::Protocol, "reserved opcode")),
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
                    Ok(_) => self.link.heard(),
                    Err(e) => return Err(Stop::Ended(read_failure(e))),
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

    /// Reads at least one more byte, reserving room for `want`. With
    /// nothing buffered, the read waits holding no buffer of its own.
    async fn fill(&mut self, want: usize) -> Result<(), Stop> {
        let read = if self.buf.is_empty() {
            self.buf = BytesMut::new();
            self.read_idle().await
        } else {
            self.buf
                .reserve(want.clamp(READ_CHUNK, self.piece.max(READ_CHUNK)));
            self.io.read_buf(&mut self.buf).await
        };
        match read {
            Ok(0) => Err(Stop::Ended(Failure::Ended)),
            Ok(_) => {
                self.link.heard();
                Ok(())
            }
            Err(e) => Err(Stop::Ended(read_failure(e))),
        }
    }

    /// Reads into the thread's scratch buffer and keeps a copy of what
    /// came: an idle connection, which waits here, then holds no read
    /// buffer. The scratch is borrowed only inside one poll.
    async fn read_idle(&mut self) -> std::io::Result<usize> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Box<[u8]>> =
                std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
        }
        let (io, buf) = (&mut self.io, &mut self.buf);
        std::future::poll_fn(|cx| {
            SCRATCH.with_borrow_mut(|scratch| {
                let mut read = ReadBuf::new(scratch);
                match Pin::new(&mut *io).poll_read(cx, &mut read) {
                    Poll::Ready(Ok(())) => {
                        buf.extend_from_slice(read.filled());
                        Poll::Ready(Ok(read.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
        })
        .await
    }
}

/// A failed read: a TLS peer that ends TCP without `close_notify` ended
/// TCP like any other; the rest are socket failures.
fn read_failure(e: std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Failure::Ended,
        _ => Failure::Io(e.into()),
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
