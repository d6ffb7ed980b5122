//! The websocket itself.

use wsbox_guest_common::{
    ConnectOptions, Fragment as RawFragment, Incoming as RawIncoming,
    IncomingFragment as RawIncomingFragment, Message, MessageKind, Pollable, Websocket,
};

use crate::{CloseCode, CloseStatus, CloseStatusError, Error};

/// What [`WebSocket::receive`] returns: a whole message or the peer's close.
///
/// ```no_run
/// use wsbox_guest::{Incoming, Message, WebSocket};
///
/// let ws = WebSocket::connect("ws://127.0.0.1:9001/")?;
/// match ws.receive()? {
///     Incoming::Message(Message::Text(text)) => println!("{text}"),
///     Incoming::Message(Message::Binary(data)) => println!("{} bytes", data.len()),
///     Incoming::Close(status) => println!("closed: {status}"),
/// }
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A whole data message.
    Message(Message),
    /// The peer's close frame, returned once. It is not answered until you
    /// call [`WebSocket::close`] or [`WebSocket::shutdown`] (or drop the
    /// websocket, which echoes the peer's code).
    Close(CloseStatus),
}

impl From<RawIncoming> for Incoming {
    fn from(raw: RawIncoming) -> Self {
        match raw {
            RawIncoming::Message(message) => Incoming::Message(message),
            RawIncoming::Close(status) => Incoming::Close(status.into()),
        }
    }
}

/// What [`WebSocket::receive_fragment`] returns: a piece of a message or the
/// peer's close.
///
/// ```no_run
/// use wsbox_guest::{IncomingFragment, WebSocket};
///
/// let ws = WebSocket::connect("ws://127.0.0.1:9001/")?;
/// let mut total = 0;
/// loop {
///     match ws.receive_fragment(64 * 1024)? {
///         IncomingFragment::Fragment(piece) => {
///             total += piece.data.len();
///             if piece.last {
///                 break;
///             }
///         }
///         IncomingFragment::Close(status) => return Ok(println!("closed: {status}")),
///     }
/// }
/// println!("{total} bytes");
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum IncomingFragment {
    /// The next piece of the current message.
    Fragment(Fragment),
    /// The peer's close frame, as for [`Incoming::Close`].
    Close(CloseStatus),
}

/// A piece of a message, from [`WebSocket::receive_fragment`]. Pieces do not
/// map one to one onto wire frames, and a text piece may end in the middle of
/// a UTF-8 sequence.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// if let wsbox_guest::IncomingFragment::Fragment(piece) = ws.receive_fragment(1024)? {
///     println!("{:?}: {} bytes, last: {}", piece.kind, piece.data.len(), piece.last);
/// }
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The kind of the message this piece belongs to.
    pub kind: MessageKind,
    /// The bytes of this piece.
    pub data: Vec<u8>,
    /// True on the last piece of the message.
    pub last: bool,
}

/// A WebSocket connection: a client one from [`WebSocket::connect`], or the
/// one a [`Handler`](crate::Handler) is handed.
///
/// Dropping it answers the peer's close if needed, then closes the
/// connection (see the contract in `wit/websocket.wit`).
///
/// ```no_run
/// use wsbox_guest::{CloseCode, Message, WebSocket};
///
/// let ws = WebSocket::connect("ws://127.0.0.1:9001/")?;
/// ws.send_text("hello")?;
/// if let Some(Ok(Message::Text(reply))) = ws.messages().next() {
///     println!("reply: {reply}");
/// }
/// ws.close(CloseCode::Normal, "done")?;
/// println!("{:?}", ws.close_status());
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug)]
pub struct WebSocket {
    raw: Websocket,
}

impl WebSocket {
    /// Connects to a `ws://` or `wss://` URL, without subprotocols or extra
    /// headers. The host's outbound policy must allow it.
    ///
    /// ```no_run
    /// let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/chat")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn connect(url: &str) -> Result<WebSocket, Error> {
        WebSocket::builder(url).connect()
    }

    /// A builder for a connection with subprotocols or extra headers.
    ///
    /// ```no_run
    /// let ws = wsbox_guest::WebSocket::builder("ws://127.0.0.1:9001/chat")
    ///     .protocol("chat.v1")
    ///     .header("Authorization", "Bearer secret")
    ///     .connect()?;
    /// println!("selected: {:?}", ws.protocol());
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn builder(url: &str) -> Builder {
        Builder {
            url: url.to_string(),
            options: ConnectOptions {
                protocols: Vec::new(),
                headers: Vec::new(),
            },
        }
    }

    /// Wraps a websocket of the raw bindings.
    ///
    /// ```no_run
    /// let raw = wsbox_guest::raw::connect("ws://127.0.0.1:9001/").unwrap();
    /// let ws = wsbox_guest::WebSocket::from_raw(raw);
    /// ```
    pub fn from_raw(raw: Websocket) -> WebSocket {
        WebSocket { raw }
    }

    /// The websocket of the raw bindings, for what the SDK does not cover.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let status = ws.as_raw().query_close_status();
    /// ```
    pub fn as_raw(&self) -> &Websocket {
        &self.raw
    }

    /// Unwraps the websocket of the raw bindings.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let raw: wsbox_guest::raw::Websocket = ws.into_raw();
    /// ```
    pub fn into_raw(self) -> Websocket {
        self.raw
    }

    /// The subprotocol the server selected, if any. Browser API:
    /// `WebSocket.protocol`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// assert_eq!(ws.protocol(), None);
    /// ```
    pub fn protocol(&self) -> Option<String> {
        self.raw.protocol()
    }

    /// Sends a whole message as one frame.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::Message;
    ///
    /// ws.send(&Message::Binary(vec![1, 2, 3]))?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn send(&self, message: &Message) -> Result<(), Error> {
        Ok(self.raw.send(message)?)
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.send_text("hello")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.send(&Message::Text(text.to_string()))
    }

    /// Sends a binary message.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.send_binary(&[0xde, 0xad, 0xbe, 0xef])?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.send(&Message::Binary(data.to_vec()))
    }

    /// Starts a message sent in pieces. Nothing is sent until the first
    /// [`FragmentWriter::write`] or [`FragmentWriter::finish`]; until
    /// `finish`, whole messages cannot be sent.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::MessageKind;
    ///
    /// let mut writer = ws.fragments(MessageKind::Text);
    /// writer.write(b"hello, ")?;
    /// writer.finish(b"world")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn fragments(&self, kind: MessageKind) -> FragmentWriter<'_> {
        FragmentWriter { ws: self, kind }
    }

    /// Sends a ping with up to 125 bytes of payload; the host consumes the
    /// pong.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.ping(b"are you there")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        Ok(self.raw.ping(payload)?)
    }

    /// Waits for the next whole message or the peer's close frame.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// if let wsbox_guest::Incoming::Close(status) = ws.receive()? {
    ///     println!("the peer closed: {status}");
    /// }
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn receive(&self) -> Result<Incoming, Error> {
        Ok(self.raw.receive()?.into())
    }

    /// Waits for the next piece of the current message, at most `max_bytes`
    /// long, or the peer's close frame.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let next = ws.receive_fragment(4096)?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn receive_fragment(&self, max_bytes: u32) -> Result<IncomingFragment, Error> {
        Ok(match self.raw.receive_fragment(max_bytes)? {
            RawIncomingFragment::Fragment(piece) => IncomingFragment::Fragment(Fragment {
                kind: piece.kind,
                data: piece.data,
                last: piece.final_,
            }),
            RawIncomingFragment::Close(status) => IncomingFragment::Close(status.into()),
        })
    }

    /// The messages, until the peer's close frame. Each item is a whole
    /// message or the error that ended the iteration; after the peer's close
    /// (which is not answered: that is yours to do), the iterator ends and
    /// [`close_status`](Self::close_status) gives it.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// for message in ws.messages() {
    ///     ws.send(&message?)?;
    /// }
    /// println!("the peer closed with {:?}", ws.close_status());
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn messages(&self) -> Messages<'_> {
        Messages {
            ws: self,
            done: false,
        }
    }

    /// A pollable that is ready when something can be received. Drop it
    /// before the websocket. [`poll`](crate::poll) is simpler for most uses.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let ready = ws.subscribe();
    /// ready.block();
    /// drop(ready);
    /// let next = ws.receive()?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn subscribe(&self) -> Pollable {
        self.raw.subscribe()
    }

    /// Sends a close frame, then waits (the host's close timeout) for the
    /// peer's; messages that arrive meanwhile are discarded. If the peer's
    /// close has already been received, this is the answer and returns at
    /// once. `code` is a [`CloseCode`] or `None` for an empty close frame
    /// (which the peer sees as 1005, and which needs an empty reason).
    /// WinHTTP: `WinHttpWebSocketClose`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::CloseCode;
    ///
    /// ws.close(CloseCode::Normal, "done")?;
    /// println!("the peer answered {}", ws.close_status().unwrap());
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn close(&self, code: impl Into<Option<CloseCode>>, reason: &str) -> Result<(), Error> {
        Ok(self.raw.close(code.into().map(u16::from), reason)?)
    }

    /// Sends a close frame and returns at once; messages can still be
    /// received until the peer's close. WinHTTP: `WinHttpWebSocketShutdown`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::CloseCode;
    ///
    /// ws.shutdown(CloseCode::Away, "bye")?;
    /// for message in ws.messages() {
    ///     println!("late: {:?}", message?);
    /// }
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn shutdown(&self, code: impl Into<Option<CloseCode>>, reason: &str) -> Result<(), Error> {
        Ok(self.raw.shutdown(code.into().map(u16::from), reason)?)
    }

    /// Answers the peer's close the way an echo server does: with the peer's
    /// own code when it may be sent, with an empty close frame when the
    /// peer's was empty (1005), and with 1000 otherwise.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// for message in ws.messages() {
    ///     ws.send(&message?)?;
    /// }
    /// if let Ok(status) = ws.close_status() {
    ///     ws.answer_close(&status)?;
    /// }
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn answer_close(&self, peer: &CloseStatus) -> Result<(), Error> {
        let code = match peer.code {
            CloseCode::Status => None,
            code if code.is_allowed() => Some(code),
            _ => Some(CloseCode::Normal),
        };
        self.close(code, "")
    }

    /// Echoes: sends every message back, passed through `reply`, until the
    /// peer's close, then answers it with [`answer_close`](Self::answer_close).
    /// Stops at the first error, without answering: the connection is then
    /// over or broken, and the host closes whatever is left.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::Message;
    ///
    /// // Upper-case text, leave binary alone.
    /// ws.echo(|message| match message {
    ///     Message::Text(text) => Message::Text(text.to_uppercase()),
    ///     binary => binary,
    /// })?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn echo(&self, mut reply: impl FnMut(Message) -> Message) -> Result<(), Error> {
        for message in self.messages() {
            self.send(&reply(message?))?;
        }
        match self.close_status() {
            Ok(status) => self.answer_close(&status),
            Err(_) => Ok(()),
        }
    }

    /// Drops the TCP connection at once, without a closing handshake; the
    /// peer sees 1006. WinHTTP: `WinHttpCloseHandle`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.abort();
    /// assert_eq!(ws.close_status(), Err(wsbox_guest::CloseStatusError::Aborted));
    /// ```
    pub fn abort(&self) {
        self.raw.abort()
    }

    /// The close status the peer sent, latched once known. WinHTTP:
    /// `WinHttpWebSocketQueryCloseStatus`. IIS: `GetCloseStatus`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// match ws.close_status() {
    ///     Ok(status) => println!("{} {}", status.code, status.reason),
    ///     Err(e) => println!("no status: {e}"),
    /// }
    /// ```
    pub fn close_status(&self) -> Result<CloseStatus, CloseStatusError> {
        self.raw
            .query_close_status()
            .map(CloseStatus::from)
            .map_err(CloseStatusError::from)
    }
}

/// Connection options for [`WebSocket::builder`].
///
/// ```no_run
/// let ws = wsbox_guest::WebSocket::builder("wss://example.com/feed")
///     .protocol("feed.v2")
///     .protocol("feed.v1")
///     .connect()?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    url: String,
    options: ConnectOptions,
}

impl Builder {
    /// Offers a subprotocol (`Sec-WebSocket-Protocol`); call it again for
    /// more, in order of preference.
    ///
    /// ```no_run
    /// let builder = wsbox_guest::WebSocket::builder("ws://127.0.0.1:9001/").protocol("chat.v1");
    /// ```
    pub fn protocol(mut self, protocol: &str) -> Builder {
        self.options.protocols.push(protocol.to_string());
        self
    }

    /// Adds a request header, such as `Authorization`.
    ///
    /// ```no_run
    /// let builder = wsbox_guest::WebSocket::builder("ws://127.0.0.1:9001/")
    ///     .header("Authorization", "Bearer secret");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Builder {
        self.options
            .headers
            .push((name.to_string(), value.to_string()));
        self
    }

    /// Opens the connection.
    ///
    /// ```no_run
    /// let ws = wsbox_guest::WebSocket::builder("ws://127.0.0.1:9001/").connect()?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn connect(self) -> Result<WebSocket, Error> {
        Ok(WebSocket::from_raw(Websocket::connect(
            &self.url,
            &self.options,
        )?))
    }
}

/// The iterator of [`WebSocket::messages`]: whole messages until the peer's
/// close frame. An error is yielded once and ends the iteration.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// let texts: Vec<String> = ws
///     .messages()
///     .filter_map(|m| match m {
///         Ok(wsbox_guest::Message::Text(text)) => Some(text),
///         _ => None,
///     })
///     .collect();
/// ```
#[derive(Debug)]
pub struct Messages<'a> {
    ws: &'a WebSocket,
    done: bool,
}

impl Iterator for Messages<'_> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.ws.receive() {
            Ok(Incoming::Message(message)) => Some(Ok(message)),
            Ok(Incoming::Close(_)) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Messages<'_> {}

/// Sends one message in pieces: from [`WebSocket::fragments`]. IIS:
/// `WriteFragment`. Dropping it without [`finish`](Self::finish) leaves the
/// message open.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// let mut writer = ws.fragments(wsbox_guest::MessageKind::Binary);
/// for chunk in [&[1u8, 2][..], &[3, 4]] {
///     writer.write(chunk)?;
/// }
/// writer.finish(&[])?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug)]
pub struct FragmentWriter<'a> {
    ws: &'a WebSocket,
    kind: MessageKind,
}

impl FragmentWriter<'_> {
    /// Sends a piece that is not the last. For text, a piece may end in the
    /// middle of a UTF-8 sequence; a piece that makes the text invalid is
    /// refused with `invalid-parameter`, and the message stays open.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let mut writer = ws.fragments(wsbox_guest::MessageKind::Text);
    /// writer.write("caf".as_bytes())?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(data, false)
    }

    /// Sends the last piece (possibly empty) and ends the message.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.fragments(wsbox_guest::MessageKind::Text).finish("é".as_bytes())?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn finish(mut self, last: &[u8]) -> Result<(), Error> {
        self.send(last, true)
    }

    fn send(&mut self, data: &[u8], last: bool) -> Result<(), Error> {
        Ok(self.ws.raw.send_fragment(&RawFragment {
            kind: self.kind,
            data: data.to_vec(),
            final_: last,
        })?)
    }
}

/// Waits until at least one of `sockets` has something to receive (data,
/// the peer's close, or an error) and returns the indices of the ready ones,
/// in `sockets`' order of positions. `wasi:io/poll.poll` underneath.
///
/// ```no_run
/// use wsbox_guest::WebSocket;
///
/// let a = WebSocket::connect("ws://127.0.0.1:9001/a")?;
/// let b = WebSocket::connect("ws://127.0.0.1:9001/b")?;
/// for ready in wsbox_guest::poll(&[&a, &b]) {
///     let ws = [&a, &b][ready];
///     println!("{ready}: {:?}", ws.receive()?);
/// }
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub fn poll(sockets: &[&WebSocket]) -> Vec<usize> {
    let pollables: Vec<Pollable> = sockets.iter().map(|ws| ws.subscribe()).collect();
    let list: Vec<&Pollable> = pollables.iter().collect();
    wsbox_guest_common::poll(&list)
        .into_iter()
        .map(|ready| ready as usize)
        .collect()
}
