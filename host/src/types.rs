//! The host-side state of a `websocket` resource: the guest's end of a
//! connection. The generated `Host*` traits in `types_impl` look the
//! resource up and call the methods here; the rules of the closing
//! handshake and of `query-close-status` are the connection's machine
//! (`lifecycle`).

use crate::bindings::types::{
    CloseStatus, ErrorCode, Fragment, Incoming, IncomingFragment, Message, MessageKind,
    QueryCloseStatusError,
};
use crate::close_code::{CloseCode, MAX_REASON_BYTES};
use crate::connection::{Frame, Inbound, Link, Piece, WriteError};
use crate::deflate::{Compressor, DeflateConfig};
use crate::error::{invalid_parameter, invalid_state, HostResult};
use crate::lifecycle::{CloseFrame, End, Event, Failure, Machine};
use crate::utf8::Utf8Stream;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tungstenite::protocol::frame::coding::{Control as ControlOp, Data as DataOp, OpCode};

/// The lifecycle of a websocket, as its guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Open in both directions (the peer's close may have arrived, but the
    /// guest has not received it yet).
    Open,
    /// Our close frame went out (`close`, `shutdown`, or the host's own);
    /// the guest has not received the peer's close yet. Receiving goes on.
    CloseSent,
    /// The guest received the peer's close; ours has not gone out yet.
    /// Sending goes on until the guest answers with `close` or `shutdown`.
    CloseReceived,
    /// Both close frames were exchanged and the guest has the peer's.
    Closed,
    /// The connection ended without a closing handshake: `abort`, a TCP
    /// reset or end of stream, a protocol violation, a timeout.
    Aborted,
}

/// A message being read with `receive-fragment`.
#[derive(Debug)]
struct Reading {
    kind: MessageKind,
    /// What is left of a piece longer than the guest asked for, from
    /// `offset` on.
    rest: Option<(Piece, usize)>,
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
    link: Arc<Link>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    protocol: Option<String>,
    /// An item `subscribe`'s pollable took off the queue; `None` inside
    /// means the queue had ended.
    peeked: Option<Option<Inbound>>,
    reading: Option<Reading>,
    sending: Option<Sending>,
    /// permessage-deflate's sending side, when the handshake negotiated it.
    deflate: Option<Deflate>,
}

/// The sending side of permessage-deflate on one connection.
#[derive(Debug)]
pub(crate) struct Deflate {
    pub compressor: Compressor,
    /// The settings, for the threshold below which whole messages go
    /// uncompressed.
    pub config: DeflateConfig,
}

impl WebSocket {
    pub(crate) fn new(
        link: Arc<Link>,
        inbound: mpsc::UnboundedReceiver<Inbound>,
        protocol: Option<String>,
        deflate: Option<Deflate>,
    ) -> Self {
        WebSocket {
            link,
            deflate,
            inbound,
            protocol,
            peeked: None,
            reading: None,
            sending: None,
        }
    }

    /// The connection's shared state, for the host's own closes.
    pub(crate) fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    /// Where the connection is in its lifecycle, as the guest sees it.
    pub fn state(&self) -> State {
        self.link.with(Machine::guest_state)
    }

    pub(crate) fn protocol(&self) -> Option<String> {
        self.protocol.clone()
    }

    pub(crate) fn query_close_status(&self) -> Result<CloseStatus, QueryCloseStatusError> {
        self.link.with(Machine::query_close_status)
    }

    async fn next(&mut self) -> Option<Inbound> {
        match self.peeked.take() {
            Some(item) => item,
            None => self.inbound.recv().await,
        }
    }

    /// The guest takes the end of the conversation: the peer's close, or
    /// why it failed (`None`: the queue ended without saying).
    fn take_end(&mut self, end: Option<End>) -> HostResult<CloseStatus> {
        let end = end.unwrap_or(End::Failed(Failure::Ended));
        self.reading = None;
        self.link.apply(Event::Received(end.clone()))?;
        match end {
            End::Close(status) => Ok(status),
            End::Failed(why) => Err(why.error_code().into()),
        }
    }

    pub(crate) async fn receive(&mut self) -> HostResult<Incoming> {
        self.link.with(Machine::may_receive)?;
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
                        data = std::mem::take(&mut piece.payload);
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
                Some(Inbound::End(end)) => return Ok(Incoming::Close(self.take_end(Some(end))?)),
                None => return Ok(Incoming::Close(self.take_end(None)?)),
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
        self.link.with(Machine::may_receive)?;
        let max = max_bytes as usize;
        let (piece, offset) = match self.reading.as_mut().and_then(|r| r.rest.take()) {
            Some(rest) => rest,
            None => match self.next().await {
                Some(Inbound::Data(piece)) => (piece, 0),
                Some(Inbound::End(end)) => {
                    return Ok(IncomingFragment::Close(self.take_end(Some(end))?))
                }
                None => return Ok(IncomingFragment::Close(self.take_end(None)?)),
            },
        };
        let kind = piece
            .start
            .or(self.reading.as_ref().map(|r| r.kind))
            .unwrap_or(MessageKind::Binary);
        let left = piece.payload.len() - offset;
        let (data, last) = if left > max {
            let data = piece.payload[offset..offset + max].to_vec();
            self.reading = Some(Reading {
                kind,
                rest: Some((piece, offset + max)),
            });
            (data, false)
        } else {
            let fin = piece.fin;
            let data = if offset == 0 {
                piece.payload
            } else {
                piece.payload[offset..].to_vec()
            };
            self.reading = (!fin).then_some(Reading { kind, rest: None });
            (data, fin)
        };
        Ok(IncomingFragment::Fragment(Fragment {
            kind,
            data,
            final_: last,
        }))
    }

    /// Writes a data frame or a ping, and waits until it is out (at most
    /// the send timeout).
    async fn write(
        &mut self,
        opcode: OpCode,
        mut payload: Vec<u8>,
        fin: bool,
        compressed: bool,
    ) -> HostResult<()> {
        let frame = Frame {
            opcode,
            payload: &mut payload,
            fin,
            compressed,
        };
        let written = self.link.write_frame(frame, Machine::may_send).await?;
        written.map_err(|e| self.write_failed(e))
    }

    /// Compresses one piece of a message when the connection uses
    /// permessage-deflate; `None` when it does not.
    fn compress(&mut self, piece: &[u8], fin: bool) -> HostResult<Option<Vec<u8>>> {
        let Some(deflate) = self.deflate.as_mut() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        deflate
            .compressor
            .compress(piece, fin, &mut out)
            .map_err(|e| ErrorCode::Other(format!("compressing the message: {e}")))?;
        Ok(Some(out))
    }

    pub(crate) async fn send(&mut self, message: Message) -> HostResult<()> {
        if self.sending.is_some() {
            self.link.with(Machine::may_send)?;
            return Err(invalid_state(
                "a fragmented message is unfinished; end it with a final fragment first",
            ));
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (DataOp::Text, text.into_bytes()),
            Message::Binary(data) => (DataOp::Binary, data),
        };
        // Small messages go uncompressed (RSV1 clear), as Node `ws` does.
        let worth = self
            .deflate
            .as_ref()
            .is_some_and(|d| d.config.should_compress(payload.len()));
        let compressed = if worth {
            self.compress(&payload, true)?
        } else {
            None
        };
        match compressed {
            Some(compressed) => {
                self.write(OpCode::Data(opcode), compressed, true, true)
                    .await
            }
            None => self.write(OpCode::Data(opcode), payload, true, false).await,
        }
    }

    pub(crate) async fn send_fragment(&mut self, fragment: Fragment) -> HostResult<()> {
        self.link.with(Machine::may_send)?;
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
        // A fragmented message is compressed piece by piece when the
        // connection uses permessage-deflate; RSV1 marks its first frame.
        let first = opcode != DataOp::Continue;
        let (payload, compressed) = match self.compress(&data, final_)? {
            Some(compressed) => (compressed, first),
            None => (data, false),
        };
        self.write(OpCode::Data(opcode), payload, final_, compressed)
            .await?;
        self.sending = (!final_).then_some(Sending { kind, utf8 });
        Ok(())
    }

    pub(crate) async fn ping(&mut self, payload: Vec<u8>) -> HostResult<()> {
        if payload.len() > 125 {
            return Err(invalid_parameter("a ping payload is at most 125 bytes"));
        }
        self.write(OpCode::Control(ControlOp::Ping), payload, true, false)
            .await
    }

    /// Carries out a guest close or shutdown: writes the close frame the
    /// machine decided on by `deadline`, then hands the rest to the driver.
    async fn send_close(&mut self, event: Event, deadline: Instant) -> HostResult<()> {
        let mut actions = self.link.apply(event)?;
        self.sending = None;
        let frame = actions.send_close.take();
        if let Some(frame) = frame {
            if let Err(e) = self.link.write_close(&frame, deadline).await {
                return Err(self.write_failed(e));
            }
        }
        self.link.hand_over(actions);
        Ok(())
    }

    pub(crate) async fn shutdown(
        &mut self,
        code: Option<CloseCode>,
        reason: String,
    ) -> HostResult<()> {
        let frame = close_frame(code, reason)?;
        let deadline = Instant::now() + self.link.close_timeout();
        self.send_close(Event::Shutdown(frame), deadline).await
    }

    pub(crate) async fn close(
        &mut self,
        code: Option<CloseCode>,
        reason: String,
    ) -> HostResult<()> {
        let frame = close_frame(code, reason)?;
        let fallback = Instant::now() + self.link.close_timeout();
        self.send_close(Event::Close(frame), fallback).await?;
        if self.query_close_status().is_ok() {
            // The guest had the peer's close: this was the answer.
            return Ok(());
        }
        let deadline = self
            .link
            .with(Machine::deadline)
            .map_or(fallback, Instant::from_std);
        let wait = async {
            loop {
                match self.next().await {
                    Some(Inbound::Data(_)) => continue,
                    Some(Inbound::End(end)) => return self.take_end(Some(end)).map(drop),
                    None => return self.take_end(None).map(drop),
                }
            }
        };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(result) => result,
            Err(_) => {
                self.link.event(Event::Tick);
                self.abort();
                Err(ErrorCode::Timeout.into())
            }
        }
    }

    pub(crate) fn abort(&mut self) {
        self.link.event(Event::Abort);
        self.reading = None;
        self.sending = None;
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        self.link.release();
    }
}

impl WebSocket {
    /// A write of the guest's own call failed: the connection is aborted,
    /// and the guest knows it from this call's error.
    fn write_failed(&mut self, e: WriteError) -> crate::HostError {
        if let WriteError::Failed(why) = &e {
            let _ = self.link.apply(Event::Received(End::Failed(why.clone())));
        }
        write_error(e).into()
    }
}

/// What a guest call gets for a write that did not happen.
fn write_error(e: WriteError) -> ErrorCode {
    match e {
        WriteError::Refused => ErrorCode::Closed,
        WriteError::Failed(Failure::WriteTimeout) => ErrorCode::Timeout,
        WriteError::Failed(Failure::Io(what)) => {
            ErrorCode::Other(format!("writing to the socket: {what}"))
        }
        WriteError::Failed(why) => why.error_code(),
    }
}

/// Checks `close` / `shutdown` arguments before anything is sent.
fn close_frame(code: Option<CloseCode>, reason: String) -> HostResult<CloseFrame> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(invalid_parameter(format!(
            "the close reason is {} bytes; at most {MAX_REASON_BYTES} are allowed",
            reason.len()
        )));
    }
    match code {
        None if !reason.is_empty() => Err(invalid_parameter("a close reason needs a close code")),
        None => Ok(CloseFrame::Empty),
        Some(code) if !code.is_allowed() => Err(invalid_parameter(format!(
            "close code {code} may not be sent; use 1000-1003, 1007-1013 or 3000-4999"
        ))),
        Some(code) => Ok(CloseFrame::Code(code, reason)),
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for WebSocket {
    async fn ready(&mut self) {
        let waiting = self.peeked.is_some()
            || self.reading.as_ref().is_some_and(|r| r.rest.is_some())
            || self.link.with(|m| m.may_receive().is_err());
        if !waiting {
            self.peeked = Some(self.inbound.recv().await);
        }
    }
}
