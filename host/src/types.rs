//! The host-side state of a `websocket` resource and the rules of its
//! lifecycle. The generated `Host*` traits in `types_impl` look the resource
//! up and call the methods here.

use crate::bindings::types::{
    CloseStatus, ErrorCode, Fragment, Incoming, IncomingFragment, Message, MessageKind,
    QueryCloseStatusError,
};
use crate::close_code::{CloseCode, MAX_REASON_BYTES};
use crate::connection::{
    Command, Connection, Failure, HostHandle, Inbound, PeerClose, Piece, SharedSink, WriteError,
};
use crate::error::{invalid_parameter, invalid_state, HostResult};
use crate::utf8::Utf8Stream;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tungstenite::protocol::frame::coding::{Control as ControlOp, Data as DataOp, OpCode};

/// The lifecycle of a websocket, as its guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Open in both directions.
    Open,
    /// Our close frame went out through `shutdown`; the peer's close has not
    /// been returned yet. Receiving goes on.
    CloseSent,
    /// `receive` returned the peer's close; ours has not gone out yet.
    /// Sending goes on until the guest answers with `close` or `shutdown`.
    CloseReceived,
    /// Both close frames were exchanged.
    Closed,
    /// The connection ended without a closing handshake: `abort`, a TCP
    /// reset or end of stream, a protocol violation, a close timeout.
    Aborted,
}

/// A message being read with `receive-fragment`.
#[derive(Debug)]
struct Reading {
    kind: MessageKind,
    /// What is left of a piece longer than the guest asked for.
    rest: Option<Piece>,
}

/// A message being sent with `send-fragment`.
#[derive(Debug)]
struct Sending {
    kind: MessageKind,
    utf8: Utf8Stream,
}

/// One websocket connection, as stored in the guest's `ResourceTable`.
#[derive(Debug)]
pub struct WebSocket {
    host: HostHandle,
    sink: SharedSink,
    commands: mpsc::Sender<Command>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    protocol: Option<String>,
    state: State,
    /// Our close frame went out (through `close`, `shutdown`).
    close_sent: bool,
    /// `close` was called.
    close_called: bool,
    /// What `query-close-status` returns once it is known; never changes
    /// after that.
    close_status: Option<Result<PeerClose, QueryCloseStatusError>>,
    /// An item `subscribe`'s pollable took off the queue; `None` inside
    /// means the queue had ended.
    peeked: Option<Option<Inbound>>,
    reading: Option<Reading>,
    sending: Option<Sending>,
}

impl WebSocket {
    pub(crate) fn new(
        connection: Connection,
        protocol: Option<String>,
    ) -> (Self, tokio::task::JoinHandle<()>, HostHandle) {
        let Connection {
            sink,
            commands,
            inbound,
            task,
            host,
        } = connection;
        let ws = WebSocket {
            host: host.clone(),
            sink,
            commands,
            inbound,
            protocol,
            state: State::Open,
            close_sent: false,
            close_called: false,
            close_status: None,
            peeked: None,
            reading: None,
            sending: None,
        };
        (ws, task, host)
    }

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> State {
        self.state
    }

    pub(crate) fn protocol(&self) -> Option<String> {
        self.protocol.clone()
    }

    pub(crate) fn query_close_status(&self) -> Result<CloseStatus, QueryCloseStatusError> {
        match &self.close_status {
            Some(Ok(status)) => Ok(CloseStatus {
                code: status.code,
                reason: status.reason.clone(),
            }),
            Some(Err(e)) => Err(*e),
            None => Err(QueryCloseStatusError::NotReceived),
        }
    }

    fn latch(&mut self, status: Result<PeerClose, QueryCloseStatusError>) {
        self.close_status.get_or_insert(status);
    }

    async fn next(&mut self) -> Option<Inbound> {
        match self.peeked.take() {
            Some(item) => item,
            None => self.inbound.recv().await,
        }
    }

    /// Records that the peer's close was returned to the guest.
    fn peer_closed(&mut self, status: PeerClose) -> CloseStatus {
        let out = CloseStatus {
            code: status.code,
            reason: status.reason.clone(),
        };
        self.latch(Ok(status));
        self.reading = None;
        self.state = match self.state {
            State::CloseSent => State::Closed,
            _ => State::CloseReceived,
        };
        out
    }

    /// Records that the connection ended without a close frame, and says
    /// why to the guest.
    fn ended(&mut self, failure: Option<Failure>) -> ErrorCode {
        self.latch(Err(QueryCloseStatusError::Aborted));
        self.state = State::Aborted;
        self.reading = None;
        match failure {
            Some(Failure::Protocol(what)) => ErrorCode::ProtocolError(what),
            Some(Failure::TooBig) => ErrorCode::MessageTooBig,
            Some(Failure::Io(what)) => ErrorCode::Other(what),
            Some(Failure::Ended) | None => ErrorCode::Closed,
        }
    }

    fn check_receive(&self) -> HostResult<()> {
        match self.state {
            State::Open | State::CloseSent => Ok(()),
            _ => Err(ErrorCode::Closed.into()),
        }
    }

    pub(crate) async fn receive(&mut self) -> HostResult<Incoming> {
        self.check_receive()?;
        if self.reading.is_some() {
            return Err(invalid_state(
                "a message is being read with receive-fragment; finish it first",
            ));
        }
        let mut kind = MessageKind::Binary;
        let mut data = Vec::new();
        loop {
            match self.next().await {
                Some(Inbound::Data(mut piece)) => {
                    if let Some(k) = piece.start {
                        kind = k;
                        data.clear();
                    }
                    if data.is_empty() {
                        data = Vec::from(std::mem::take(&mut piece.payload));
                    } else {
                        data.extend_from_slice(&piece.payload);
                    }
                    if piece.fin {
                        return Ok(Incoming::Message(match kind {
                            MessageKind::Binary => Message::Binary(data),
                            MessageKind::Text => {
                                Message::Text(String::from_utf8(data).map_err(|_| {
                                    ErrorCode::ProtocolError("invalid UTF-8".into())
                                })?)
                            }
                        }));
                    }
                }
                Some(Inbound::Close(status)) => {
                    return Ok(Incoming::Close(self.peer_closed(status)))
                }
                Some(Inbound::Failed(failure)) => return Err(self.ended(Some(failure)).into()),
                None => return Err(self.ended(None).into()),
            }
        }
    }

    pub(crate) async fn receive_fragment(
        &mut self,
        max_bytes: u32,
    ) -> HostResult<IncomingFragment> {
        if max_bytes == 0 {
            return Err(invalid_parameter("max-bytes must be at least 1"));
        }
        self.check_receive()?;
        let max = max_bytes as usize;
        let mut piece = match self.reading.as_mut().and_then(|r| r.rest.take()) {
            Some(rest) => rest,
            None => match self.next().await {
                Some(Inbound::Data(piece)) => piece,
                Some(Inbound::Close(status)) => {
                    return Ok(IncomingFragment::Close(self.peer_closed(status)))
                }
                Some(Inbound::Failed(failure)) => return Err(self.ended(Some(failure)).into()),
                None => return Err(self.ended(None).into()),
            },
        };
        let kind = match (piece.start, &self.reading) {
            (Some(kind), _) => kind,
            (None, Some(reading)) => reading.kind,
            (None, None) => MessageKind::Binary,
        };
        let (data, last) = if piece.payload.len() > max {
            let data = piece.payload.split_to(max);
            piece.start = None;
            self.reading = Some(Reading {
                kind,
                rest: Some(piece),
            });
            (data, false)
        } else {
            let fin = piece.fin;
            self.reading = (!fin).then_some(Reading { kind, rest: None });
            (std::mem::take(&mut piece.payload), fin)
        };
        Ok(IncomingFragment::Fragment(Fragment {
            kind,
            data: data.to_vec(),
            final_: last,
        }))
    }

    fn check_send(&self) -> HostResult<()> {
        if self.close_sent {
            return Err(invalid_state("close or shutdown was already called"));
        }
        match self.state {
            State::Open | State::CloseReceived => Ok(()),
            _ => Err(ErrorCode::Closed.into()),
        }
    }

    /// Writes a data frame or a ping to the socket, and waits until it is
    /// out.
    async fn write(&mut self, opcode: OpCode, mut payload: Vec<u8>, fin: bool) -> HostResult<()> {
        let written = self
            .sink
            .lock()
            .await
            .frame_unless_closed(opcode, &mut payload, fin)
            .await;
        match written {
            Ok(()) => Ok(()),
            Err(WriteError::Closed) => Err(ErrorCode::Closed.into()),
            Err(WriteError::Io(e)) => {
                Err(ErrorCode::Other(format!("writing to the socket: {e}")).into())
            }
        }
    }

    async fn command(
        &mut self,
        command: Command,
        result: oneshot::Receiver<std::io::Result<()>>,
    ) -> HostResult<()> {
        if self.commands.send(command).await.is_err() {
            return Err(ErrorCode::Closed.into());
        }
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ErrorCode::Other(format!("writing to the socket: {e}")).into()),
            Err(_) => Err(ErrorCode::Closed.into()),
        }
    }

    pub(crate) async fn send(&mut self, message: Message) -> HostResult<()> {
        self.check_send()?;
        if self.sending.is_some() {
            return Err(invalid_state(
                "a fragmented message is unfinished; end it with a final fragment first",
            ));
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (DataOp::Text, text.into_bytes()),
            Message::Binary(data) => (DataOp::Binary, data),
        };
        self.write(OpCode::Data(opcode), payload, true).await
    }

    pub(crate) async fn send_fragment(&mut self, fragment: Fragment) -> HostResult<()> {
        self.check_send()?;
        let Fragment { kind, data, final_ } = fragment;
        let (opcode, mut utf8) = match &self.sending {
            Some(sending) if sending.kind != kind => {
                return Err(invalid_parameter(
                    "a fragment's kind must match the kind of the message's first fragment",
                ))
            }
            Some(sending) => (DataOp::Continue, sending.utf8.clone()),
            None if kind == MessageKind::Text => (DataOp::Text, Utf8Stream::default()),
            None => (DataOp::Binary, Utf8Stream::default()),
        };
        if kind == MessageKind::Text
            && (utf8.feed(&data).is_err() || (final_ && !utf8.is_complete()))
        {
            return Err(invalid_parameter(if final_ {
                "the text is not valid UTF-8 (or ends inside a character); nothing was sent"
            } else {
                "the text is not valid UTF-8; nothing was sent"
            }));
        }
        self.write(OpCode::Data(opcode), data, final_).await?;
        self.sending = (!final_).then_some(Sending { kind, utf8 });
        Ok(())
    }

    pub(crate) async fn ping(&mut self, payload: Vec<u8>) -> HostResult<()> {
        if payload.len() > 125 {
            return Err(invalid_parameter("a ping payload is at most 125 bytes"));
        }
        self.check_send()?;
        self.write(OpCode::Control(ControlOp::Ping), payload, true)
            .await
    }

    /// Sends our close frame; the arguments were checked.
    async fn send_close(&mut self, status: Option<(u16, String)>) -> HostResult<()> {
        let (done, result) = oneshot::channel();
        self.close_sent = true;
        self.sending = None;
        let sent = self.command(Command::Close { status, done }, result).await;
        if let Err(e) = sent {
            self.abort();
            return Err(e);
        }
        if self.state == State::CloseReceived {
            self.state = State::Closed;
        }
        Ok(())
    }

    pub(crate) async fn shutdown(&mut self, code: Option<u16>, reason: String) -> HostResult<()> {
        let status = close_frame(code, reason)?;
        if self.close_sent {
            return Err(invalid_state("close or shutdown was already called"));
        }
        if matches!(self.state, State::Aborted | State::Closed) {
            return Err(ErrorCode::Closed.into());
        }
        self.send_close(status).await
    }

    pub(crate) async fn close(
        &mut self,
        code: Option<u16>,
        reason: String,
        timeout: Duration,
    ) -> HostResult<()> {
        let status = close_frame(code, reason)?;
        if self.close_called {
            return Err(invalid_state("close was already called"));
        }
        if self.state == State::Aborted {
            return Err(ErrorCode::Closed.into());
        }
        self.close_called = true;
        if !self.close_sent {
            self.send_close(status).await?;
        }
        if self.state == State::Closed {
            return Ok(());
        }
        self.reading = None;
        let wait = async {
            loop {
                match self.next().await {
                    Some(Inbound::Data(_)) => continue,
                    Some(Inbound::Close(status)) => {
                        self.peer_closed(status);
                        return Ok(());
                    }
                    Some(Inbound::Failed(failure)) => return Err(self.ended(Some(failure))),
                    None => return Err(self.ended(None)),
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => Ok(result?),
            Err(_) => {
                self.abort();
                Err(ErrorCode::Timeout.into())
            }
        }
    }

    pub(crate) fn abort(&mut self) {
        let _ = self.commands.try_send(Command::Abort);
        self.latch(Err(QueryCloseStatusError::Aborted));
        self.state = State::Aborted;
        self.reading = None;
        self.sending = None;
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        // Before `commands` is dropped, which tells the writer.
        self.host.release();
    }
}

/// Checks `close` / `shutdown` arguments before anything is sent.
fn close_frame(code: Option<u16>, reason: String) -> HostResult<Option<(u16, String)>> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(invalid_parameter(format!(
            "the close reason is {} bytes; at most {MAX_REASON_BYTES} are allowed",
            reason.len()
        )));
    }
    match code {
        None if !reason.is_empty() => Err(invalid_parameter("a close reason needs a close code")),
        None => Ok(None),
        Some(code) if !CloseCode::from(code).is_allowed() => Err(invalid_parameter(format!(
            "close code {code} may not be sent; use 1000-1003, 1007-1013 or 3000-4999"
        ))),
        Some(code) => Ok(Some((code, reason))),
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for WebSocket {
    async fn ready(&mut self) {
        let waiting = self.peeked.is_some()
            || self.reading.as_ref().is_some_and(|r| r.rest.is_some())
            || !matches!(self.state, State::Open | State::CloseSent);
        if !waiting {
            self.peeked = Some(self.inbound.recv().await);
        }
    }
}
