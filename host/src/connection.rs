//! One connection's socket I/O, running in tasks of its own.
//!
//! A reader task parses frames (with tungstenite's frame layer), enforces
//! RFC 6455 and the limits, and streams message pieces to the guest through
//! a queue bounded in bytes: when the guest does not drain it, the reader
//! stops reading and TCP pushes back on the peer; it answers a ping before
//! it reads on. The guest's data frames and pings are written straight from
//! its call. Both go through the [`Sink`] they share with a writer task,
//! which sends close frames and drives the closing handshake when the guest
//! does not (the close timeout, a dropped websocket, a protocol violation).
//!
//! The peer's close frame is not answered on arrival: the guest answers it
//! with its own `close` or `shutdown`. The writer only echoes it when the
//! guest has not answered within the close timeout or is gone.

use crate::bindings::types::MessageKind;
use crate::close_code::CloseCode;
use crate::config::Limits;
use crate::utf8::Utf8Stream;
use bytes::{Buf, BufMut, BytesMut};
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tungstenite::protocol::frame::coding::{Control as ControlOp, Data as DataOp, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Which end of the connection we are: it decides masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// We mask our frames; the server must not mask its frames.
    Client,
    /// The client must mask its frames; we do not mask ours.
    Server,
}

/// The largest piece of payload the reader hands over at once.
const MAX_PIECE: usize = 64 * 1024;

/// Payloads from this size up that are not in the read buffer yet are read
/// into an allocation of their own, which becomes the guest's message
/// without another copy.
const DIRECT_READ: usize = 4096;

/// The least room the reader asks for on each read: enough for a run of
/// small frames in one system call. An idle connection keeps a buffer of
/// about this size.
const READ_CHUNK: usize = 16 * 1024;

/// A close status as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerClose {
    pub code: u16,
    pub reason: String,
}

/// What the reader hands to the guest side, in wire order.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A piece of a data message.
    Data(Piece),
    /// The peer's close frame.
    Close(PeerClose),
    /// The connection failed or ended without a close frame.
    Failed(Failure),
}

/// A piece of a data message. Its bytes count against the inbound buffer
/// until the piece is dropped.
#[derive(Debug)]
pub(crate) struct Piece {
    /// The message kind on the first piece of a message, `None` after.
    pub start: Option<MessageKind>,
    /// Its own allocation when it was read straight off the socket (a
    /// large payload), so that handing it to the guest copies nothing.
    pub payload: BytesMut,
    /// The last piece of the message.
    pub fin: bool,
    /// Its bytes' share of the connection's and the instance's buffers.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// How a connection ended without a close frame from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The peer broke the protocol; we sent 1002 or 1007.
    Protocol(String),
    /// A message or frame over the limit; we sent 1009.
    TooBig,
    /// TCP ended without a close frame.
    Ended,
    /// The socket failed.
    Io(String),
}

/// What the guest side asks the writer to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Our close frame; `None` sends it without a payload. `done` reports
    /// when it is out.
    Close {
        status: Option<(u16, String)>,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Drop TCP at once.
    Abort,
}

/// What the reader tells the writer.
#[derive(Debug)]
enum Control {
    PeerClosed(u16),
    Fail {
        code: CloseCode,
        reason: &'static str,
    },
}

/// The write half, shared by the guest side (data frames and pings), the
/// reader (pongs) and the writer task (close frames, the end of the
/// connection). The mutex keeps frames whole and in order.
pub(crate) type SharedSink = Arc<Mutex<Sink>>;

/// The write half of a connection and what decides which frames may still
/// go out on it.
pub(crate) struct Sink {
    /// `None` once the writer has let go of the socket.
    io: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    role: Role,
    /// Our close frame went out: no data frame may follow it.
    close_sent: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("open", &self.io.is_some())
            .field("role", &self.role)
            .field("close_sent", &self.close_sent)
            .finish()
    }
}

/// Why a data frame, ping or pong was not written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Our close frame went out already (the host sent it: a violation, a
    /// shutdown, a trap), or the socket is gone.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

impl Sink {
    /// Writes a frame that may only go out before our close frame (data,
    /// ping, pong), masked in place when we are the client.
    pub(crate) async fn frame_unless_closed(
        &mut self,
        opcode: OpCode,
        payload: &mut [u8],
        fin: bool,
    ) -> Result<(), WriteError> {
        if self.close_sent {
            return Err(WriteError::Closed);
        }
        self.frame(opcode, payload, fin).await
    }

    /// One frame, header and payload in one vectored write where the
    /// stream supports it, then a flush.
    async fn frame(
        &mut self,
        opcode: OpCode,
        payload: &mut [u8],
        fin: bool,
    ) -> Result<(), WriteError> {
        let Some(io) = self.io.as_mut() else {
            return Err(WriteError::Closed);
        };
        let header = FrameHeader {
            is_final: fin,
            opcode,
            mask: (self.role == Role::Client).then(rand::random::<[u8; 4]>),
            ..FrameHeader::default()
        };
        let mut head = [0u8; 14];
        let mut cursor = Cursor::new(&mut head[..]);
        header
            .format(payload.len() as u64, &mut cursor)
            .map_err(|e| WriteError::Io(io::Error::other(e)))?;
        let head_len = cursor.position() as usize;
        if let Some(mask) = header.mask {
            apply_mask(payload, mask, 0);
        }
        write_all_vectored(io, &head[..head_len], payload)
            .await
            .map_err(WriteError::Io)?;
        io.flush().await.map_err(WriteError::Io)
    }
}

/// Writes `head` then `body`, as few writes as the stream allows.
async fn write_all_vectored(
    io: &mut Pin<Box<dyn AsyncWrite + Send>>,
    mut head: &[u8],
    mut body: &[u8],
) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let n = if head.is_empty() {
            io.write(body).await?
        } else {
            io.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    Ok(())
}

/// The guest side's handles on a running connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub sink: SharedSink,
    pub commands: mpsc::Sender<Command>,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Ends when the socket is closed and both tasks are done.
    pub task: JoinHandle<()>,
    pub host: HostHandle,
}

/// The host's own handle on a connection, independent of the guest: it
/// closes connections at shutdown and after a trap.
#[derive(Debug, Clone)]
pub(crate) struct HostHandle {
    close_now: mpsc::UnboundedSender<u16>,
    /// The code sent when the guest lets go of the websocket without
    /// closing it: 1001 for client connections, 1000 for server ones.
    drop_code: Arc<AtomicU16>,
    /// The guest let go; its drop code is settled.
    released: Arc<AtomicBool>,
}

impl HostHandle {
    /// Sends a close frame with `code` now, unless one went out already.
    /// The guest still sees the peer's answer through `receive`.
    pub(crate) fn close_now(&self, code: u16) {
        let _ = self.close_now.send(code);
    }

    /// Sets the code for when the guest lets go without closing, unless it
    /// already has.
    pub(crate) fn set_drop_code(&self, code: u16) {
        if !self.released.load(Ordering::Acquire) {
            self.drop_code.store(code, Ordering::Release);
        }
    }

    /// Records that the guest let go of the websocket.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::Release);
    }

    /// Whether the connection's tasks are gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.close_now.is_closed()
    }
}

/// Starts the reader and writer tasks over an upgraded stream. `leftover`
/// holds bytes read past the HTTP upgrade.
pub(crate) fn spawn<S>(
    stream: S,
    leftover: BytesMut,
    role: Role,
    limits: &Limits,
    instance_budget: Arc<Semaphore>,
) -> Connection
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let sink = Arc::new(Mutex::new(Sink {
        io: Some(Box::pin(write_half)),
        role,
        close_sent: false,
    }));
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let (control_tx, control_rx) = mpsc::channel(8);
    let (commands, commands_rx) = mpsc::channel(1);
    let (close_now, close_now_rx) = mpsc::unbounded_channel();
    let drop_code = Arc::new(AtomicU16::new(match role {
        Role::Client => CloseCode::Away.into(),
        Role::Server => CloseCode::Normal.into(),
    }));
    let budget = limits.inbound_buffer.max(1);
    let reader = Reader {
        io: read_half,
        buf: leftover,
        role,
        max_frame: limits.max_frame_size as u64,
        max_message: limits.max_message_size as u64,
        piece: MAX_PIECE
            .min(budget)
            .min(limits.instance_inbound_buffer.max(1)),
        budget: Arc::new(Semaphore::new(budget)),
        instance_budget,
        to_guest: inbound_tx,
        to_writer: control_tx,
        sink: sink.clone(),
    };
    let reader = tokio::spawn(reader.run());
    let writer = Writer {
        sink: sink.clone(),
        role,
        close_timeout: limits.close_timeout,
        drop_code: drop_code.clone(),
    };
    let task = tokio::spawn(writer.run(commands_rx, control_rx, close_now_rx, reader));
    Connection {
        sink,
        commands,
        inbound,
        task,
        host: HostHandle {
            close_now,
            drop_code,
            released: Arc::new(AtomicBool::new(false)),
        },
    }
}

/// Why the reader stopped parsing frames.
enum Stop {
    /// The peer's close frame arrived.
    PeerClosed,
    /// We must fail the connection with this code.
    Violation(CloseCode, &'static str, Failure),
    /// The socket ended or failed.
    Ended(Failure),
}

struct Reader<R> {
    io: R,
    buf: BytesMut,
    role: Role,
    max_frame: u64,
    max_message: u64,
    piece: usize,
    budget: Arc<Semaphore>,
    instance_budget: Arc<Semaphore>,
    to_guest: mpsc::UnboundedSender<Inbound>,
    to_writer: mpsc::Sender<Control>,
    /// For pongs, written before reading on.
    sink: SharedSink,
}

/// The data message being received.
struct Message {
    kind: MessageKind,
    size: u64,
    /// Whether its first piece went to the guest.
    announced: bool,
    utf8: Option<Utf8Stream>,
}

fn violation(code: CloseCode, what: &'static str) -> Stop {
    let failure = match code {
        CloseCode::Size => Failure::TooBig,
        _ => Failure::Protocol(what.to_string()),
    };
    Stop::Violation(code, what, failure)
}

impl<R: AsyncRead + Unpin> Reader<R> {
    async fn run(mut self) {
        let failed = match self.read_frames().await {
            Stop::PeerClosed => false,
            Stop::Violation(code, reason, failure) => {
                tracing::debug!(%code, reason, "failing the connection");
                // The writer hears first, so that a guest reacting to the
                // failure (say, by dropping the websocket) cannot race ahead
                // of the close code.
                let _ = self.to_writer.send(Control::Fail { code, reason }).await;
                let _ = self.to_guest.send(Inbound::Failed(failure));
                true
            }
            Stop::Ended(failure) => {
                let _ = self.to_guest.send(Inbound::Failed(failure));
                return;
            }
        };
        // Nothing the peer sends after a close frame or a violation matters,
        // except that after a violation its answering close ends the
        // handshake. Read until it closes TCP, so that our close frame is not
        // lost to a reset. The writer bounds how long this may take.
        if failed {
            self.skip_to_close().await;
        }
        let mut sink = [0u8; 4096];
        while matches!(self.io.read(&mut sink).await, Ok(n) if n > 0) {}
    }

    /// After a violation: skips frames until the peer's close frame, and
    /// tells the writer when it comes. Gives up where the framing itself is
    /// broken.
    async fn skip_to_close(&mut self) {
        loop {
            let Ok((header, len)) = self.read_header().await else {
                return;
            };
            if header.opcode == OpCode::Control(ControlOp::Close) {
                let _ = self
                    .to_writer
                    .send(Control::PeerClosed(CloseCode::Status.into()))
                    .await;
                return;
            }
            let mut left = len;
            while left > 0 {
                if self.buf.is_empty() && self.fill(self.piece).await.is_err() {
                    return;
                }
                let n = self
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                self.buf.advance(n);
                left -= n as u64;
            }
        }
    }

    async fn read_frames(&mut self) -> Stop {
        let mut message: Option<Message> = None;
        loop {
            let (header, len) = match self.read_header().await {
                Ok(h) => h,
                Err(stop) => return stop,
            };
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
                    if !header.is_final {
                        return violation(CloseCode::Protocol, "fragmented control frame");
                    }
                    if len > 125 {
                        return violation(CloseCode::Protocol, "control frame over 125 bytes");
                    }
                    let mut payload = match self.read_payload(len as usize, header.mask, 0).await {
                        Ok(p) => p,
                        Err(stop) => return stop,
                    };
                    if op == ControlOp::Close {
                        return self.peer_closed(&payload).await;
                    }
                    if op == ControlOp::Ping {
                        // Answered before reading on, so that the pong goes
                        // out before anything the guest sends in reply to
                        // later frames. None after our close frame.
                        let pong = self
                            .sink
                            .lock()
                            .await
                            .frame_unless_closed(
                                OpCode::Control(ControlOp::Pong),
                                &mut payload,
                                true,
                            )
                            .await;
                        if let Err(WriteError::Io(e)) = pong {
                            return Stop::Ended(Failure::Io(e.to_string()));
                        }
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
            msg.size += len;
            if len > self.max_frame || msg.size > self.max_message {
                return violation(CloseCode::Size, "message too big");
            }
            let mut remaining = len as usize;
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

    /// Waits until `n` more bytes fit in the connection's buffer and in the
    /// instance's; `None` if the guest side is gone.
    async fn reserve(&mut self, n: usize) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let n = n.max(1) as u32;
        let instance = self
            .instance_budget
            .clone()
            .acquire_many_owned(n)
            .await
            .ok()?;
        let connection = self.budget.clone().acquire_many_owned(n).await.ok()?;
        Some((connection, instance))
    }

    async fn peer_closed(&mut self, payload: &[u8]) -> Stop {
        let status = match payload {
            [] => PeerClose {
                code: 1005,
                reason: String::new(),
            },
            [_] => return violation(CloseCode::Protocol, "close frame with a one-byte payload"),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !CloseCode::from(code).is_allowed() {
                    return violation(
                        CloseCode::Protocol,
                        "close frame with an invalid close code",
                    );
                }
                match std::str::from_utf8(reason) {
                    Ok(reason) => PeerClose {
                        code,
                        reason: reason.to_string(),
                    },
                    Err(_) => return violation(CloseCode::Invalid, "close reason is not UTF-8"),
                }
            }
        };
        let _ = self.to_writer.send(Control::PeerClosed(status.code)).await;
        let _ = self.to_guest.send(Inbound::Close(status));
        Stop::PeerClosed
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

    /// Reads `n` payload bytes and unmasks them; `offset` is their position
    /// in the frame, for the mask.
    async fn read_payload(
        &mut self,
        n: usize,
        mask: Option<[u8; 4]>,
        offset: usize,
    ) -> Result<BytesMut, Stop> {
        let mut payload = if self.buf.len() < n && n >= DIRECT_READ {
            let mut own = BytesMut::with_capacity(n);
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
            self.buf.split_to(n)
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

struct Writer {
    sink: SharedSink,
    role: Role,
    close_timeout: Duration,
    drop_code: Arc<AtomicU16>,
}

impl Writer {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut control: mpsc::Receiver<Control>,
        mut close_now: mpsc::UnboundedReceiver<u16>,
        mut reader: JoinHandle<()>,
    ) {
        let mut close_sent = false;
        let mut peer_code: Option<u16> = None;
        let mut reader_done = false;
        let mut guest_gone = false;
        // Echo the peer's close if the guest has not answered by then.
        let mut answer_by: Option<Instant> = None;
        // Stop waiting for the peer (its close frame, or its end of TCP).
        let mut give_up_at: Option<Instant> = None;
        let mut aborted = false;
        loop {
            if reader_done && (close_sent || peer_code.is_none()) {
                break;
            }
            if close_sent && peer_code.is_some() && self.role == Role::Server {
                break;
            }
            let never = Instant::now() + Duration::from_secs(365 * 24 * 3600);
            tokio::select! {
                biased;
                Some(msg) = control.recv() => match msg {
                    Control::PeerClosed(code) => {
                        peer_code = Some(code);
                        if close_sent {
                            give_up_at = Some(Instant::now() + self.close_timeout);
                        } else if guest_gone {
                            close_sent = true;
                            let _ = self.close(Some((echo(code), String::new()))).await;
                        } else {
                            answer_by = Some(Instant::now() + self.close_timeout);
                        }
                    }
                    Control::Fail { code, reason } => {
                        if !close_sent {
                            close_sent = true;
                            let _ = self.close(Some((code.into(), reason.to_string()))).await;
                        }
                        give_up_at = Some(Instant::now() + self.close_timeout);
                    }
                },
                _ = &mut reader, if !reader_done => reader_done = true,
                Some(code) = close_now.recv() => {
                    if !close_sent {
                        close_sent = true;
                        let code = peer_code.map(echo).unwrap_or(code);
                        let _ = self.close(Some((code, String::new()))).await;
                    }
                    give_up_at.get_or_insert(Instant::now() + self.close_timeout);
                }
                command = commands.recv(), if !guest_gone => match command {
                    None => {
                        guest_gone = true;
                        if !close_sent {
                            close_sent = true;
                            let code = peer_code.map(echo).unwrap_or(self.drop_code.load(Ordering::Acquire));
                            let _ = self.close(Some((code, String::new()))).await;
                        }
                        give_up_at.get_or_insert(Instant::now() + self.close_timeout);
                    }
                    Some(Command::Close { status, done }) => {
                        // After a close the host sent on its own (shutdown,
                        // a trap), the guest's close has nothing left to say.
                        let result = if close_sent { Ok(()) } else { self.close(status).await };
                        close_sent = true;
                        let _ = done.send(result);
                        if peer_code.is_some() {
                            give_up_at = Some(Instant::now() + self.close_timeout);
                        }
                    }
                    Some(Command::Abort) => {
                        aborted = true;
                        break;
                    }
                },
                _ = sleep_until(answer_by.unwrap_or(never)), if answer_by.is_some() && !close_sent => {
                    close_sent = true;
                    let code = peer_code.map(echo).unwrap_or(CloseCode::Normal.into());
                    let _ = self.close(Some((code, String::new()))).await;
                    give_up_at = Some(Instant::now() + self.close_timeout);
                }
                _ = sleep_until(give_up_at.unwrap_or(never)), if give_up_at.is_some() => break,
            }
        }
        reader.abort();
        let io = {
            let mut sink = self.sink.lock().await;
            sink.close_sent = true;
            sink.io.take()
        };
        if let (Some(mut io), false) = (io, aborted) {
            let _ = tokio::time::timeout(self.close_timeout, io.shutdown()).await;
        }
    }

    async fn close(&mut self, status: Option<(u16, String)>) -> io::Result<()> {
        let mut payload = Vec::new();
        if let Some((code, reason)) = status {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        let mut sink = self.sink.lock().await;
        sink.close_sent = true;
        match sink
            .frame(OpCode::Control(ControlOp::Close), &mut payload, true)
            .await
        {
            Ok(()) => Ok(()),
            Err(WriteError::Io(e)) => Err(e),
            Err(WriteError::Closed) => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// XORs `buf` with `mask` as it applies `offset` bytes into a payload,
/// eight bytes at a time.
fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let m = [
        mask[offset & 3],
        mask[(offset + 1) & 3],
        mask[(offset + 2) & 3],
        mask[(offset + 3) & 3],
    ];
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= m[i & 3];
    }
}

/// The code to echo for a peer's close: 1005 means its frame had no code,
/// and 1005 may not be sent, so the echo is a normal closure.
fn echo(code: u16) -> u16 {
    if CloseCode::from(code).is_allowed() {
        code
    } else {
        CloseCode::Normal.into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking_in_words_matches_masking_bytewise() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                super::apply_mask(&mut fast, mask, offset);
                let slow: Vec<u8> = data
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(offset + i) & 3])
                    .collect();
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }
}
