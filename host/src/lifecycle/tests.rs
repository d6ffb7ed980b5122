//! Every transition of the closing handshake, without sockets: state ×
//! event → next state and actions of `Machine::on` in `lifecycle.rs`,
//! grouped by who ends the conversation (the peer, us, a failure).

// Over 500 lines: the machine's whole transition table, one file so that a
// missing row shows.

use super::*;

const T: Duration = Duration::from_secs(10);

fn status(code: u16, reason: &str) -> CloseStatus {
    CloseStatus {
        code,
        reason: reason.into(),
    }
}

fn frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame::Code(CloseCode::from(code), reason.into())
}

/// A machine in `role`, moved into a state by a few events at `t0`.
fn machine(role: Role, t0: Instant, events: &[Event]) -> Machine {
    let mut m = Machine::new(role, T);
    for event in events {
        m.on(event.clone(), t0).expect("setup event is allowed");
    }
    m
}

fn actions(
    send_close: Option<CloseFrame>,
    deliver: Option<End>,
    finish: Option<Finish>,
) -> Actions {
    Actions {
        send_close,
        deliver,
        finish,
    }
}

/// One row: from the state the `setup` events reach, `event` at `t0 +
/// after` gives `state` and `actions`.
struct Row {
    name: &'static str,
    role: Role,
    setup: Vec<Event>,
    after: Duration,
    event: Event,
    state: fn(Instant) -> State,
    actions: Actions,
}

fn check(rows: Vec<Row>) {
    for row in rows {
        let t0 = Instant::now();
        let mut m = machine(row.role, t0, &row.setup);
        let got = m
            .on(row.event.clone(), t0 + row.after)
            .unwrap_or_else(|e| panic!("{}: refused: {e:?}", row.name));
        assert_eq!(m.state, (row.state)(t0), "{}: state", row.name);
        assert_eq!(got, row.actions, "{}: actions", row.name);
    }
}

fn peer_close(code: u16, reason: &str) -> Event {
    Event::PeerClose(status(code, reason))
}

/// The host's close of a joined websocket that does not keep up.
fn slow_consumer() -> Event {
    Event::HostClose(frame(1013, "slow consumer"))
}

// Long: one row per transition, kept together as one table.
#[test]
fn the_peer_closes_first() {
    check(vec![
        Row {
            name: "open + peer close: owed answer, guest told",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: peer_close(4001, "bye"),
            state: |t0| State::ClosingByPeer {
                status: status(4001, "bye"),
                answer_by: t0 + T,
            },
            actions: actions(None, Some(End::Close(status(4001, "bye"))), None),
        },
        Row {
            name: "guest answers with close: its own frame, the server ends TCP first",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::Close(frame(4002, "mine")),
            state: |_| State::Closed {
                status: status(4001, "bye"),
            },
            actions: actions(Some(frame(4002, "mine")), None, Some(Finish::Fin)),
        },
        Row {
            name: "guest answers with shutdown: a client waits for the server's end",
            role: Role::Client,
            setup: vec![peer_close(1000, "")],
            after: Duration::ZERO,
            event: Event::Shutdown(CloseFrame::Empty),
            state: |_| State::Closed {
                status: status(1000, ""),
            },
            actions: actions(Some(CloseFrame::Empty), None, Some(Finish::AwaitEnd)),
        },
        Row {
            name: "no answer by the deadline: the host echoes the peer's code",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: T,
            event: Event::Tick,
            state: |_| State::Closed {
                status: status(4001, "bye"),
            },
            actions: actions(Some(frame(4001, "")), None, Some(Finish::Fin)),
        },
        Row {
            name: "a tick before the deadline does nothing",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: T - Duration::from_millis(1),
            event: Event::Tick,
            state: |t0| State::ClosingByPeer {
                status: status(4001, "bye"),
                answer_by: t0 + T,
            },
            actions: Actions::default(),
        },
        Row {
            name: "an empty close (1005) is echoed as 1000",
            role: Role::Client,
            setup: vec![peer_close(1005, "")],
            after: T,
            event: Event::Tick,
            state: |_| State::Closed {
                status: status(1005, ""),
            },
            actions: actions(Some(frame(1000, "")), None, Some(Finish::AwaitEnd)),
        },
        Row {
            name: "the guest lets go without answering: the host echoes at once",
            role: Role::Client,
            setup: vec![peer_close(3000, "x")],
            after: Duration::ZERO,
            event: Event::Released,
            state: |_| State::Closed {
                status: status(3000, "x"),
            },
            actions: actions(Some(frame(3000, "")), None, Some(Finish::AwaitEnd)),
        },
        Row {
            name: "a slow consumer after the peer's close echoes the peer's code",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: slow_consumer(),
            state: |_| State::Closed {
                status: status(4001, "bye"),
            },
            actions: actions(Some(frame(4001, "")), None, Some(Finish::Fin)),
        },
        Row {
            name: "going away after the peer's close echoes the peer's code",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::HostClose(CloseFrame::code(CloseCode::Away)),
            state: |_| State::Closed {
                status: status(4001, "bye"),
            },
            actions: actions(Some(frame(4001, "")), None, Some(Finish::Fin)),
        },
        Row {
            name: "the peer's end of TCP after its close is expected",
            role: Role::Server,
            setup: vec![peer_close(1000, "")],
            after: Duration::ZERO,
            event: Event::Ended(Failure::Ended),
            state: |t0| State::ClosingByPeer {
                status: status(1000, ""),
                answer_by: t0 + T,
            },
            actions: Actions::default(),
        },
        Row {
            name: "a peer close that arrives after the guest let go is echoed at once",
            role: Role::Server,
            setup: vec![Event::Released],
            after: Duration::ZERO,
            event: peer_close(4001, "late"),
            state: |_| State::Closed {
                status: status(4001, "late"),
            },
            actions: actions(
                None,
                Some(End::Close(status(4001, "late"))),
                Some(Finish::Fin),
            ),
        },
    ]);
}

// Long: one row per transition, kept together as one table.
#[test]
fn we_close_first() {
    check(vec![
        Row {
            name: "guest close: its frame, a deadline for the peer's",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Close(frame(1000, "done")),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1000, "done")), None, None),
        },
        Row {
            name: "guest shutdown: no deadline while the guest reads on",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Shutdown(frame(4000, "")),
            state: |_| State::ClosingByUs { deadline: None },
            actions: actions(Some(frame(4000, "")), None, None),
        },
        Row {
            name: "close after shutdown sends nothing more and starts the deadline",
            role: Role::Client,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::from_secs(1),
            event: Event::Close(frame(1000, "")),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + Duration::from_secs(1) + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "letting go after shutdown starts the deadline",
            role: Role::Server,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::from_secs(2),
            event: Event::Released,
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + Duration::from_secs(2) + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "the peer's answer completes the handshake; a server ends TCP",
            role: Role::Server,
            setup: vec![Event::Close(frame(1000, ""))],
            after: Duration::ZERO,
            event: peer_close(1000, "ok"),
            state: |_| State::Closed {
                status: status(1000, "ok"),
            },
            actions: actions(
                None,
                Some(End::Close(status(1000, "ok"))),
                Some(Finish::Fin),
            ),
        },
        Row {
            name: "the peer's answer completes the handshake; a client awaits the end",
            role: Role::Client,
            setup: vec![Event::Shutdown(frame(1000, ""))],
            after: Duration::ZERO,
            event: peer_close(1000, "ok"),
            state: |_| State::Closed {
                status: status(1000, "ok"),
            },
            actions: actions(
                None,
                Some(End::Close(status(1000, "ok"))),
                Some(Finish::AwaitEnd),
            ),
        },
        Row {
            name: "no answer by the deadline: aborted, TCP dropped",
            role: Role::Client,
            setup: vec![Event::Close(frame(1000, ""))],
            after: T,
            event: Event::Tick,
            state: |_| State::Aborted {
                why: Failure::CloseTimeout,
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::CloseTimeout)),
                Some(Finish::Drop),
            ),
        },
        Row {
            name: "TCP ends instead of the peer's close: aborted",
            role: Role::Server,
            setup: vec![Event::Close(frame(1000, ""))],
            after: Duration::ZERO,
            event: Event::Ended(Failure::Ended),
            state: |_| State::Aborted {
                why: Failure::Ended,
            },
            actions: actions(None, Some(End::Failed(Failure::Ended)), Some(Finish::Drop)),
        },
        Row {
            name: "the guest lets go of an open client websocket: 1001",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Released,
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1001, "")), None, None),
        },
        Row {
            name: "the guest lets go of an open server websocket: 1000",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Released,
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1000, "")), None, None),
        },
        Row {
            name: "after a trap the drop code is 1011",
            role: Role::Server,
            setup: vec![Event::DropCode(CloseCode::Error)],
            after: Duration::ZERO,
            event: Event::Released,
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1011, "")), None, None),
        },
        Row {
            name: "a drop code set after the release changes nothing",
            role: Role::Server,
            setup: vec![Event::Released],
            after: Duration::ZERO,
            event: Event::DropCode(CloseCode::Error),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "going away while open",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::HostClose(CloseFrame::code(CloseCode::Away)),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1001, "")), None, None),
        },
        Row {
            name: "going away after our close sends nothing more",
            role: Role::Server,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::ZERO,
            event: Event::HostClose(CloseFrame::code(CloseCode::Away)),
            state: |_| State::ClosingByUs { deadline: None },
            actions: Actions::default(),
        },
        Row {
            name: "close after the host's own close sends nothing more",
            role: Role::Server,
            setup: vec![Event::HostClose(CloseFrame::code(CloseCode::Away))],
            after: Duration::from_secs(1),
            event: Event::Close(frame(1000, "")),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "shutdown after the host's own close sends nothing more",
            role: Role::Server,
            setup: vec![Event::HostClose(CloseFrame::code(CloseCode::Away))],
            after: Duration::ZERO,
            event: Event::Shutdown(frame(4000, "")),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "a slow consumer while open: 1013 with its reason",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: slow_consumer(),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1013, "slow consumer")), None, None),
        },
        Row {
            name: "a slow consumer on a client-role websocket: the same frame",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: slow_consumer(),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: actions(Some(frame(1013, "slow consumer")), None, None),
        },
        Row {
            name: "a slow consumer after our shutdown sends nothing more",
            role: Role::Server,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::ZERO,
            event: slow_consumer(),
            state: |_| State::ClosingByUs { deadline: None },
            actions: Actions::default(),
        },
        Row {
            name: "the peer's answer to the slow-consumer close completes the handshake",
            role: Role::Server,
            setup: vec![slow_consumer()],
            after: Duration::from_secs(1),
            event: peer_close(1013, "slow consumer"),
            state: |_| State::Closed {
                status: status(1013, "slow consumer"),
            },
            actions: actions(
                None,
                Some(End::Close(status(1013, "slow consumer"))),
                Some(Finish::Fin),
            ),
        },
        Row {
            name: "the guest's close after the slow-consumer close sends nothing more",
            role: Role::Server,
            setup: vec![slow_consumer()],
            after: Duration::from_secs(1),
            event: Event::Close(frame(1000, "")),
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: Actions::default(),
        },
        Row {
            name: "the guest lets go after the slow-consumer close: the deadline stays",
            role: Role::Server,
            setup: vec![slow_consumer()],
            after: Duration::from_secs(1),
            event: Event::Released,
            state: |t0| State::ClosingByUs {
                deadline: Some(t0 + T),
            },
            actions: Actions::default(),
        },
    ]);
}

// Long: one row per transition, kept together as one table.
#[test]
fn the_connection_fails() {
    check(vec![
        Row {
            name: "a violation: our code, the guest told, a server ends TCP first",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Protocol, Failure::Protocol("bad")),
            state: |_| State::Aborted {
                why: Failure::Protocol("bad"),
            },
            actions: actions(
                Some(frame(1002, "bad")),
                Some(End::Failed(Failure::Protocol("bad"))),
                Some(Finish::Fin),
            ),
        },
        Row {
            name: "a message too big: 1009, a client awaits the server's end",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Size, Failure::TooBig),
            state: |_| State::Aborted {
                why: Failure::TooBig,
            },
            actions: actions(
                Some(frame(1009, "message too big")),
                Some(End::Failed(Failure::TooBig)),
                Some(Finish::AwaitEnd),
            ),
        },
        Row {
            name: "a violation after our close sends nothing more",
            role: Role::Server,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Invalid, Failure::Protocol("utf-8")),
            state: |_| State::Aborted {
                why: Failure::Protocol("utf-8"),
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::Protocol("utf-8"))),
                Some(Finish::Fin),
            ),
        },
        Row {
            name: "TCP ends while open: aborted",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Ended(Failure::Io("reset".into())),
            state: |_| State::Aborted {
                why: Failure::Io("reset".into()),
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::Io("reset".into()))),
                Some(Finish::Drop),
            ),
        },
        Row {
            name: "a write times out: aborted",
            role: Role::Server,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::WriteFailed(Failure::WriteTimeout),
            state: |_| State::Aborted {
                why: Failure::WriteTimeout,
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::WriteTimeout)),
                Some(Finish::Drop),
            ),
        },
        Row {
            name: "a write times out while our close awaits the peer's: aborted",
            role: Role::Server,
            setup: vec![Event::Close(frame(1000, ""))],
            after: Duration::ZERO,
            event: Event::WriteFailed(Failure::WriteTimeout),
            state: |_| State::Aborted {
                why: Failure::WriteTimeout,
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::WriteTimeout)),
                Some(Finish::Drop),
            ),
        },
        Row {
            name: "a write times out while our answer to the peer's close is owed: aborted",
            role: Role::Client,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::WriteFailed(Failure::WriteTimeout),
            state: |_| State::Aborted {
                why: Failure::WriteTimeout,
            },
            actions: actions(
                None,
                Some(End::Failed(Failure::WriteTimeout)),
                Some(Finish::Drop),
            ),
        },
        Row {
            name: "a write fails after the handshake: TCP dropped, status kept",
            role: Role::Server,
            setup: vec![peer_close(1000, ""), Event::Close(CloseFrame::Empty)],
            after: Duration::ZERO,
            event: Event::WriteFailed(Failure::Io("broken pipe".into())),
            state: |_| State::Closed {
                status: status(1000, ""),
            },
            actions: actions(None, None, Some(Finish::Drop)),
        },
        Row {
            name: "abort while open",
            role: Role::Client,
            setup: vec![],
            after: Duration::ZERO,
            event: Event::Abort,
            state: |_| State::Aborted {
                why: Failure::Aborted,
            },
            actions: actions(None, None, Some(Finish::Drop)),
        },
        Row {
            name: "abort while our close awaits the peer's: aborted, TCP dropped",
            role: Role::Server,
            setup: vec![Event::Close(frame(1000, ""))],
            after: Duration::ZERO,
            event: Event::Abort,
            state: |_| State::Aborted {
                why: Failure::Aborted,
            },
            actions: actions(None, None, Some(Finish::Drop)),
        },
        Row {
            name: "abort while our answer to the peer's close is owed: aborted, TCP dropped",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::Abort,
            state: |_| State::Aborted {
                why: Failure::Aborted,
            },
            actions: actions(None, None, Some(Finish::Drop)),
        },
        Row {
            name: "TCP ends after shutdown (no deadline yet): aborted",
            role: Role::Client,
            setup: vec![Event::Shutdown(frame(4000, ""))],
            after: Duration::ZERO,
            event: Event::Ended(Failure::Ended),
            state: |_| State::Aborted {
                why: Failure::Ended,
            },
            actions: actions(None, Some(End::Failed(Failure::Ended)), Some(Finish::Drop)),
        },
        Row {
            name: "a violation while our answer is owed: our code instead, a server ends TCP first",
            role: Role::Server,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Protocol, Failure::Protocol("bad")),
            state: |_| State::Aborted {
                why: Failure::Protocol("bad"),
            },
            actions: actions(
                Some(frame(1002, "bad")),
                Some(End::Failed(Failure::Protocol("bad"))),
                Some(Finish::Fin),
            ),
        },
        Row {
            name: "a violation while our answer is owed: a client awaits the server's end",
            role: Role::Client,
            setup: vec![peer_close(4001, "bye")],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Size, Failure::TooBig),
            state: |_| State::Aborted {
                why: Failure::TooBig,
            },
            actions: actions(
                Some(frame(1009, "message too big")),
                Some(End::Failed(Failure::TooBig)),
                Some(Finish::AwaitEnd),
            ),
        },
        Row {
            name: "abort after the handshake drops TCP and keeps the state",
            role: Role::Client,
            setup: vec![peer_close(1000, ""), Event::Close(CloseFrame::Empty)],
            after: Duration::ZERO,
            event: Event::Abort,
            state: |_| State::Closed {
                status: status(1000, ""),
            },
            actions: actions(None, None, Some(Finish::Drop)),
        },
        Row {
            name: "events after the end change nothing",
            role: Role::Server,
            setup: vec![Event::Abort],
            after: T,
            event: peer_close(1000, ""),
            state: |_| State::Aborted {
                why: Failure::Aborted,
            },
            actions: Actions::default(),
        },
        Row {
            name: "a violation after the end changes nothing",
            role: Role::Server,
            setup: vec![Event::Ended(Failure::Ended)],
            after: Duration::ZERO,
            event: Event::Violation(CloseCode::Protocol, Failure::Protocol("late")),
            state: |_| State::Aborted {
                why: Failure::Ended,
            },
            actions: Actions::default(),
        },
    ]);
}

/// Guest calls the state refuses: the error, and nothing changes.
// Long: one row per refused call, kept together as one table.
#[test]
fn guest_calls_that_are_refused() {
    let t0 = Instant::now();
    let echoed = |t0: Instant| {
        let mut m = machine(Role::Client, t0, &[peer_close(1000, "")]);
        m.on(Event::Tick, t0 + T).unwrap();
        m
    };
    let after = |events: &'static [Event]| move |t0: Instant| machine(Role::Client, t0, events);
    type Setup = Box<dyn Fn(Instant) -> Machine>;
    let cases: Vec<(&str, Setup, Event, ErrorCode)> = vec![
        (
            "close twice",
            Box::new(after(&[Event::Close(CloseFrame::Empty)])),
            Event::Close(CloseFrame::Empty),
            ErrorCode::InvalidState("close was already called".into()),
        ),
        (
            "shutdown twice",
            Box::new(after(&[Event::Shutdown(CloseFrame::Empty)])),
            Event::Shutdown(CloseFrame::Empty),
            ErrorCode::InvalidState("close or shutdown was already called".into()),
        ),
        (
            "shutdown after close",
            Box::new(after(&[Event::Close(CloseFrame::Empty)])),
            Event::Shutdown(CloseFrame::Empty),
            ErrorCode::InvalidState("close or shutdown was already called".into()),
        ),
        (
            "close after abort",
            Box::new(after(&[Event::Abort])),
            Event::Close(CloseFrame::Empty),
            ErrorCode::Closed,
        ),
        (
            "shutdown after the host echoed",
            Box::new(echoed),
            Event::Shutdown(CloseFrame::Empty),
            ErrorCode::Closed,
        ),
        (
            "shutdown after TCP ended",
            Box::new(after(&[Event::Ended(Failure::Ended)])),
            Event::Shutdown(CloseFrame::Empty),
            ErrorCode::Closed,
        ),
    ];
    for (name, setup, event, error) in cases {
        let mut m = setup(t0);
        let before = m.state.clone();
        match m.on(event, t0 + T) {
            Err(HostError::Code(code)) => assert_eq!(code, error, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(m.state, before, "{name}: the state changed");
    }
}

#[test]
fn sending_follows_the_state() {
    let t0 = Instant::now();
    let closed = |m: &Machine| matches!(m.may_send(), Err(HostError::Code(ErrorCode::Closed)));
    let invalid = |m: &Machine| {
        matches!(
            m.may_send(),
            Err(HostError::Code(ErrorCode::InvalidState(_)))
        )
    };
    let m = machine(Role::Client, t0, &[]);
    assert!(m.may_send().is_ok() && m.may_write_data());
    // After the peer's close, the guest may still send until it answers.
    let m = machine(Role::Client, t0, &[peer_close(1000, "")]);
    assert!(m.may_send().is_ok() && m.may_write_data());
    let m = machine(Role::Client, t0, &[Event::Shutdown(CloseFrame::Empty)]);
    assert!(invalid(&m) && !m.may_write_data());
    let m = machine(
        Role::Server,
        t0,
        &[Event::HostClose(CloseFrame::code(CloseCode::Away))],
    );
    assert!(
        closed(&m) && !m.may_write_data(),
        "nothing after the host's close"
    );
    let m = machine(Role::Server, t0, &[slow_consumer()]);
    assert!(
        closed(&m) && !m.may_write_data(),
        "the guest's sends after the slow-consumer close are `closed`"
    );
    let m = machine(
        Role::Server,
        t0,
        &[Event::Violation(
            CloseCode::Protocol,
            Failure::Protocol("x"),
        )],
    );
    assert!(closed(&m) && !m.may_write_data());
    let mut m = machine(Role::Server, t0, &[peer_close(4001, "")]);
    m.on(Event::Tick, t0 + T).unwrap();
    assert!(closed(&m), "a late send after the host's echo is `closed`");
}

/// Topic messages are offered to a websocket only while it is open: once a
/// close frame went either way, the broker drops it from its topics.
#[test]
fn only_an_open_websocket_is_open_for_topics() {
    let t0 = Instant::now();
    assert!(machine(Role::Server, t0, &[]).is_open());
    assert!(machine(Role::Client, t0, &[Event::DropCode(CloseCode::Error)]).is_open());
    for (name, events) in [
        ("the peer closed", vec![peer_close(1000, "")]),
        (
            "the guest shut down",
            vec![Event::Shutdown(CloseFrame::Empty)],
        ),
        ("the guest closed", vec![Event::Close(CloseFrame::Empty)]),
        ("a slow consumer", vec![slow_consumer()]),
        ("released", vec![Event::Released]),
        ("aborted", vec![Event::Abort]),
        ("TCP ended", vec![Event::Ended(Failure::Ended)]),
        (
            "closed both ways",
            vec![Event::Close(CloseFrame::Empty), peer_close(1000, "")],
        ),
    ] {
        assert!(!machine(Role::Server, t0, &events).is_open(), "{name}");
    }
}

#[test]
fn query_close_status_latches_what_the_guest_took() {
    let t0 = Instant::now();
    let not_received = Err(QueryCloseStatusError::NotReceived);
    let aborted = Err(QueryCloseStatusError::Aborted);

    // The peer's close is only known once the guest takes it off the queue.
    let mut m = machine(Role::Client, t0, &[peer_close(4001, "bye")]);
    assert_eq!(m.query_close_status(), not_received);
    assert_eq!(m.guest_state(), crate::State::Open);
    assert!(m.may_receive().is_ok());
    m.on(Event::Received(End::Close(status(4001, "bye"))), t0)
        .unwrap();
    assert_eq!(m.query_close_status(), Ok(status(4001, "bye")));
    assert_eq!(m.guest_state(), crate::State::CloseReceived);
    assert!(m.may_receive().is_err(), "the close is returned once");
    m.on(Event::Close(frame(1000, "")), t0).unwrap();
    assert_eq!(m.guest_state(), crate::State::Closed);
    // Latched: an abort later changes nothing.
    m.on(Event::Abort, t0).unwrap();
    assert_eq!(m.query_close_status(), Ok(status(4001, "bye")));

    // Only our close went out: not received, and the state says so.
    let m = machine(Role::Client, t0, &[Event::Shutdown(frame(1000, ""))]);
    assert_eq!(m.query_close_status(), not_received);
    assert_eq!(m.guest_state(), crate::State::CloseSent);

    // The peer's close arrived after our shutdown but is still queued.
    let m = machine(
        Role::Client,
        t0,
        &[Event::Shutdown(frame(1000, "")), peer_close(1000, "")],
    );
    assert_eq!(m.guest_state(), crate::State::CloseSent);
    assert_eq!(m.query_close_status(), not_received);

    // A failure is `aborted` once taken, and for good.
    let mut m = machine(Role::Server, t0, &[Event::Ended(Failure::Ended)]);
    m.on(Event::Received(End::Failed(Failure::Ended)), t0)
        .unwrap();
    assert_eq!(m.query_close_status(), aborted);
    m.on(Event::Received(End::Close(status(1000, ""))), t0)
        .unwrap();
    assert_eq!(m.query_close_status(), aborted);
    assert_eq!(m.guest_state(), crate::State::Aborted);

    // `abort` latches `aborted` at once.
    let m = machine(Role::Client, t0, &[Event::Abort]);
    assert_eq!(m.query_close_status(), aborted);
    assert!(m.may_receive().is_err());
}

#[test]
fn deadlines_follow_the_state() {
    let t0 = Instant::now();
    assert_eq!(machine(Role::Client, t0, &[]).deadline(), None);
    assert_eq!(
        machine(Role::Client, t0, &[peer_close(1000, "")]).deadline(),
        Some(t0 + T)
    );
    assert_eq!(
        machine(Role::Client, t0, &[Event::Close(CloseFrame::Empty)]).deadline(),
        Some(t0 + T)
    );
    assert_eq!(
        machine(Role::Client, t0, &[Event::Shutdown(CloseFrame::Empty)]).deadline(),
        None
    );
    assert_eq!(
        machine(
            Role::Client,
            t0,
            &[Event::Close(CloseFrame::Empty), peer_close(1000, "")]
        )
        .deadline(),
        None
    );
}

#[test]
fn close_frames_carry_their_payload() {
    assert_eq!(CloseFrame::Empty.payload(), Vec::<u8>::new());
    assert_eq!(frame(1000, "ok").payload(), b"\x03\xe8ok".to_vec());
    assert_eq!(CloseFrame::echo(&status(1005, "")), frame(1000, ""));
    assert_eq!(CloseFrame::echo(&status(4999, "why")), frame(4999, ""));
}
