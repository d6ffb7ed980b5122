//! The closing handshake of one connection, as a state machine that does
//! no I/O: events in (a frame the reader parsed, a guest call, a host
//! decision, a timer, a failed write), actions out (write this close frame,
//! give the guest this end, end TCP this way). The reader, the driver task
//! and the guest's calls feed it and carry out what it says.
//!
//! It also holds what only the guest's side knows: whether `close` or
//! `shutdown` was called, whether the websocket was let go, and the status
//! `query-close-status` latches once the guest has taken the peer's close
//! (or the failure) off its queue.

// Over 500 lines: one state machine and its types; its transitions read best in one place (tests in lifecycle/tests.rs).

use crate::bindings::types::{CloseStatus, ErrorCode, QueryCloseStatusError};
use crate::close_code::CloseCode;
use crate::connection::Role;
use crate::error::{invalid_state, HostError, IoFailure};
use std::time::{Duration, Instant};

/// A close frame we send: a code and a reason, or no payload at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseFrame {
    /// A close frame without a payload; the peer sees 1005.
    Empty,
    /// A close frame with a code that may be sent and a reason of at most
    /// 123 bytes.
    Code(CloseCode, String),
}

impl CloseFrame {
    /// A close frame with `code` and no reason.
    pub(crate) fn code(code: CloseCode) -> Self {
        CloseFrame::Code(code, String::new())
    }

    /// The code the peer reads: 1005 for an empty frame.
    pub(crate) fn wire_code(&self) -> CloseCode {
        match self {
            CloseFrame::Empty => CloseCode::Status,
            CloseFrame::Code(code, _) => *code,
        }
    }

    /// Our answer to the peer's close when the guest gave none: its own
    /// code, or 1000 when its frame had none (1005 may not be sent).
    pub(crate) fn echo(status: &CloseStatus) -> Self {
        let code = CloseCode::from(status.code);
        CloseFrame::code(if code.is_allowed() {
            code
        } else {
            CloseCode::Normal
        })
    }

    /// The frame's payload.
    pub(crate) fn payload(&self) -> Vec<u8> {
        match self {
            CloseFrame::Empty => Vec::new(),
            CloseFrame::Code(code, reason) => {
                let mut payload = u16::from(*code).to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                payload
            }
        }
    }
}

/// Why a connection ended without a closing handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The peer broke RFC 6455; we sent 1002 or 1007.
    Protocol(&'static str),
    /// A message or frame over the limit; we sent 1009.
    TooBig,
    /// TCP ended without a close frame.
    Ended,
    /// The socket failed.
    Io(IoFailure),
    /// A write of ours did not finish within its timeout: the peer stopped
    /// reading.
    WriteTimeout,
    /// The peer did not answer our close within the close timeout.
    CloseTimeout,
    /// The guest called `abort`.
    Aborted,
    /// Nothing came from the peer within the keepalive timeout after the
    /// host's ping.
    Silent,
}

impl Failure {
    /// What a guest call that meets this failure returns.
    pub(crate) fn error_code(&self) -> ErrorCode {
        match self {
            Failure::Protocol(what) => ErrorCode::ProtocolError((*what).to_string()),
            Failure::TooBig => ErrorCode::MessageTooBig,
            Failure::Io(what) => ErrorCode::Other(format!("the socket failed: {what}")),
            Failure::Silent => ErrorCode::Other(
                "the peer went silent: nothing came back within the keepalive timeout after a ping"
                    .into(),
            ),
            Failure::CloseTimeout => ErrorCode::Timeout,
            Failure::Ended | Failure::WriteTimeout | Failure::Aborted => ErrorCode::Closed,
        }
    }
}

/// How the conversation ended, as the guest takes it off its queue after
/// the messages that came before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer's close frame.
    Close(CloseStatus),
    /// The connection ended without one.
    Failed(Failure),
}

/// How to end TCP once no more frames will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Send our FIN now, read (and discard) until the peer's end, at most
    /// the close timeout, then close the socket. A server ends TCP first
    /// (RFC 6455 section 7.1.1).
    Fin,
    /// Wait for the peer to end TCP, at most the close timeout, then close
    /// the socket. A client leaves ending TCP to the server.
    AwaitEnd,
    /// Close the socket now.
    Drop,
}

impl Finish {
    /// How an endpoint in `role` ends TCP after the close frames.
    fn after_close(role: Role) -> Self {
        match role {
            Role::Server => Finish::Fin,
            Role::Client => Finish::AwaitEnd,
        }
    }
}

/// Where the connection is in its closing handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Open in both directions.
    Open,
    /// Our close frame went out (or is being written) first; the peer's is
    /// awaited until `deadline`. `None`: the guest shut down and still holds
    /// the websocket, so it waits as long as the guest reads.
    ClosingByUs { deadline: Option<Instant> },
    /// The peer's close frame came first. Our answer is owed: the guest's,
    /// or the host's echo at `answer_by`.
    ClosingByPeer {
        status: CloseStatus,
        answer_by: Instant,
    },
    /// Both close frames were exchanged; `status` is the peer's.
    Closed { status: CloseStatus },
    /// The connection ended without a closing handshake.
    Aborted { why: Failure },
}

/// What to do after an event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Actions {
    /// Write this close frame. Nothing may be written after it.
    pub send_close: Option<CloseFrame>,
    /// Queue this for the guest, after what is already queued.
    pub deliver: Option<End>,
    /// End TCP this way, after the close frame (if any) is written.
    pub finish: Option<Finish>,
}

/// Something that happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The reader parsed the peer's (valid) close frame.
    PeerClose(CloseStatus),
    /// The peer broke the protocol or a limit: we fail the connection with
    /// this code.
    Violation(CloseCode, Failure),
    /// TCP ended or failed (read side).
    Ended(Failure),
    /// The guest called `close` (its arguments were checked).
    Close(CloseFrame),
    /// The guest called `shutdown` (its arguments were checked).
    Shutdown(CloseFrame),
    /// The guest called `abort`.
    Abort,
    /// The guest let go of the websocket.
    Released,
    /// The guest took this end off its queue.
    Received(End),
    /// The host closes the connection on its own, with this frame: going
    /// away at shutdown, or 1013 `slow consumer` for a joined websocket
    /// that does not keep up with its topics. After the peer's close, the
    /// host echoes the peer's code instead.
    HostClose(CloseFrame),
    /// The code to send if the guest lets go without closing (1011 after a
    /// trap).
    DropCode(CloseCode),
    /// Time passed: a deadline may be due.
    Tick,
    /// One of our writes failed or timed out.
    WriteFailed(Failure),
}

/// The state machine of one connection.
#[derive(Debug)]
pub(crate) struct Machine {
    role: Role,
    close_timeout: Duration,
    state: State,
    /// `close` or `shutdown` was called: the guest sends nothing more.
    guest_closed: bool,
    /// `close` was called.
    close_called: bool,
    /// The guest let go of the websocket.
    released: bool,
    /// Sent when the guest lets go of an open websocket.
    drop_code: CloseCode,
    /// What `query-close-status` returns once the guest knows; it never
    /// changes after that.
    latched: Option<Result<CloseStatus, QueryCloseStatusError>>,
}

impl Machine {
    /// An open connection in `role`.
    pub(crate) fn new(role: Role, close_timeout: Duration) -> Self {
        Machine {
            role,
            close_timeout,
            state: State::Open,
            guest_closed: false,
            close_called: false,
            released: false,
            drop_code: match role {
                Role::Client => CloseCode::Away,
                Role::Server => CloseCode::Normal,
            },
            latched: None,
        }
    }

    /// When [`Event::Tick`] is next due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::ClosingByUs { deadline } => deadline,
            State::ClosingByPeer { answer_by, .. } => Some(answer_by),
            _ => None,
        }
    }

    /// Whether the guest may send a data frame or a ping now.
    pub(crate) fn may_send(&self) -> Result<(), HostError> {
        if self.guest_closed {
            return Err(invalid_state("close or shutdown was already called"));
        }
        self.may_write_data()
            .then_some(())
            .ok_or(HostError::Code(ErrorCode::Closed))
    }

    /// Whether the connection is open in both directions: no close frame
    /// was sent or received. Only an open websocket is given topic
    /// messages.
    pub(crate) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether a data frame, ping or pong may still be written: our close
    /// frame has not been decided on.
    pub(crate) fn may_write_data(&self) -> bool {
        matches!(self.state, State::Open | State::ClosingByPeer { .. })
    }

    /// Whether the guest may receive: it has not taken the end yet.
    pub(crate) fn may_receive(&self) -> Result<(), HostError> {
        match self.latched {
            None => Ok(()),
            Some(_) => Err(ErrorCode::Closed.into()),
        }
    }

    /// `query-close-status`.
    pub(crate) fn query_close_status(&self) -> Result<CloseStatus, QueryCloseStatusError> {
        self.latched
            .clone()
            .unwrap_or(Err(QueryCloseStatusError::NotReceived))
    }

    /// The lifecycle as the guest sees it.
    pub(crate) fn guest_state(&self) -> crate::State {
        use crate::State as Guest;
        match (&self.state, &self.latched) {
            (State::Aborted { .. }, _) | (_, Some(Err(_))) => Guest::Aborted,
            (State::Closed { .. }, Some(Ok(_))) => Guest::Closed,
            (State::Closed { .. } | State::ClosingByUs { .. }, _) => Guest::CloseSent,
            (State::ClosingByPeer { .. }, Some(Ok(_))) => Guest::CloseReceived,
            (State::ClosingByPeer { .. } | State::Open, _) => Guest::Open,
        }
    }

    /// Applies `event` at `now`. Guest calls that the state does not allow
    /// are refused with the error the guest gets, and change nothing.
    // Long: one match over `Event`, one arm per event, so that every
    // transition of the closing handshake reads in one place.
    pub(crate) fn on(&mut self, event: Event, now: Instant) -> Result<Actions, HostError> {
        let mut actions = Actions::default();
        match event {
            Event::PeerClose(status) => self.peer_close(status, now, &mut actions),
            Event::Violation(code, why) => {
                if matches!(self.state, State::Open | State::ClosingByPeer { .. }) {
                    actions.send_close = Some(CloseFrame::Code(code, violation_reason(&why)));
                }
                if !self.is_over() {
                    self.abort_with(why, Finish::after_close(self.role), &mut actions);
                }
            }
            Event::Ended(why) => {
                // After the peer's close frame its end of TCP is expected.
                if matches!(self.state, State::Open | State::ClosingByUs { .. }) {
                    self.abort_with(why, Finish::Drop, &mut actions);
                }
            }
            Event::Close(frame) => {
                if self.close_called {
                    return Err(invalid_state("close was already called"));
                }
                if matches!(self.state, State::Aborted { .. }) {
                    return Err(ErrorCode::Closed.into());
                }
                self.close_called = true;
                self.guest_closed = true;
                match &mut self.state {
                    State::ClosingByUs { deadline } => {
                        deadline.get_or_insert(now + self.close_timeout);
                    }
                    _ => self.send_close(Sender::Guest(frame), now, &mut actions),
                }
            }
            Event::Shutdown(frame) => {
                if self.guest_closed {
                    return Err(invalid_state("close or shutdown was already called"));
                }
                if self.is_over() {
                    return Err(ErrorCode::Closed.into());
                }
                self.guest_closed = true;
                if self.state == State::Open {
                    // The guest goes on receiving: no deadline while it does.
                    self.state = State::ClosingByUs { deadline: None };
                    actions.send_close = Some(frame);
                } else {
                    self.send_close(Sender::Guest(frame), now, &mut actions);
                }
            }
            Event::Abort => {
                self.latch(Err(QueryCloseStatusError::Aborted));
                match self.state {
                    State::Aborted { .. } => {}
                    State::Closed { .. } => actions.finish = Some(Finish::Drop),
                    _ => {
                        self.state = State::Aborted {
                            why: Failure::Aborted,
                        };
                        actions.finish = Some(Finish::Drop);
                    }
                }
            }
            Event::Released => {
                self.released = true;
                match &mut self.state {
                    State::ClosingByUs { deadline } => {
                        deadline.get_or_insert(now + self.close_timeout);
                    }
                    _ => {
                        let frame = CloseFrame::code(self.drop_code);
                        self.send_close(Sender::Host(frame), now, &mut actions)
                    }
                }
            }
            Event::Received(End::Close(status)) => self.latch(Ok(status)),
            Event::Received(End::Failed(_)) => self.latch(Err(QueryCloseStatusError::Aborted)),
            Event::HostClose(frame) => self.send_close(Sender::Host(frame), now, &mut actions),
            Event::DropCode(code) => {
                if !self.released {
                    self.drop_code = code;
                }
            }
            Event::Tick => match &self.state {
                State::ClosingByPeer { answer_by, .. } if now >= *answer_by => {
                    // The guest did not answer in time: the host echoes.
                    self.send_close(
                        Sender::Host(CloseFrame::code(CloseCode::Normal)),
                        now,
                        &mut actions,
                    );
                }
                State::ClosingByUs {
                    deadline: Some(deadline),
                } if now >= *deadline => {
                    self.abort_with(Failure::CloseTimeout, Finish::Drop, &mut actions);
                }
                _ => {}
            },
            Event::WriteFailed(why) => match self.state {
                State::Aborted { .. } => {}
                State::Closed { .. } => actions.finish = Some(Finish::Drop),
                _ => self.abort_with(why, Finish::Drop, &mut actions),
            },
        }
        Ok(actions)
    }

    /// Why the connection ended without a closing handshake, once it did.
    pub(crate) fn aborted(&self) -> Option<&Failure> {
        match &self.state {
            State::Aborted { why } => Some(why),
            _ => None,
        }
    }

    /// Whether the connection is over (closed or aborted).
    pub(crate) fn is_over(&self) -> bool {
        matches!(self.state, State::Closed { .. } | State::Aborted { .. })
    }

    fn peer_close(&mut self, status: CloseStatus, now: Instant, actions: &mut Actions) {
        match self.state {
            State::Open => {
                self.state = State::ClosingByPeer {
                    status: status.clone(),
                    answer_by: now + self.close_timeout,
                };
                if self.released {
                    self.send_close(
                        Sender::Host(CloseFrame::code(CloseCode::Normal)),
                        now,
                        actions,
                    );
                }
            }
            State::ClosingByUs { .. } => {
                self.state = State::Closed {
                    status: status.clone(),
                };
                actions.finish = Some(Finish::after_close(self.role));
            }
            _ => return,
        }
        actions.deliver = Some(End::Close(status));
    }

    /// Our close frame, if none was decided on yet. While the connection is
    /// open, it is the guest's frame or the host's code. When the peer closed
    /// first, it is the guest's frame, or, when the host answers on the
    /// guest's behalf, the echo of the peer's code.
    fn send_close(&mut self, sender: Sender, now: Instant, actions: &mut Actions) {
        match &self.state {
            State::Open => {
                self.state = State::ClosingByUs {
                    deadline: Some(now + self.close_timeout),
                };
                actions.send_close = Some(match sender {
                    Sender::Guest(frame) => frame,
                    Sender::Host(frame) => frame,
                });
            }
            State::ClosingByPeer { status, .. } => {
                let answer = match sender {
                    Sender::Guest(frame) => frame,
                    Sender::Host(_) => CloseFrame::echo(status),
                };
                self.state = State::Closed {
                    status: status.clone(),
                };
                actions.send_close = Some(answer);
                actions.finish = Some(Finish::after_close(self.role));
            }
            _ => {}
        }
    }

    fn abort_with(&mut self, why: Failure, finish: Finish, actions: &mut Actions) {
        actions.deliver = Some(End::Failed(why.clone()));
        actions.finish = Some(finish);
        self.state = State::Aborted { why };
    }

    fn latch(&mut self, status: Result<CloseStatus, QueryCloseStatusError>) {
        self.latched.get_or_insert(status);
    }
}

/// Who decided on our close frame.
enum Sender {
    /// The guest, through `close` or `shutdown`.
    Guest(CloseFrame),
    /// The host, with this frame unless the peer closed first.
    Host(CloseFrame),
}

/// The reason we put in the close frame that fails the connection.
fn violation_reason(why: &Failure) -> String {
    match why {
        Failure::Protocol(what) => (*what).to_string(),
        Failure::TooBig => "message too big".to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
