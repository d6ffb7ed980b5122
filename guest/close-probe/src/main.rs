//! `close-probe URL [OPTION]... [STEP]...`: a step interpreter that drives
//! every part of the `wsbox:websocket` contract, one step per argument. The
//! tests use it; it also shows how each call behaves.
//!
//! Options: `--protocol P` (offer subprotocol P; repeatable) and
//! `--header NAME=VALUE` (repeatable). Each step prints one line,
//! `<step> -> <result>`, on stdout; the first line is the connect. Without
//! steps, the default tour runs. The steps are listed in `parse`.

use std::io::Write;
use std::process::exit;
use std::time::Duration;

use wsbox_guest_common::{
    ConnectOptions, Describe, ErrorCode, Fragment, Incoming, IncomingFragment, Message,
    MessageKind, Websocket,
};

const DEFAULT_TOUR: &[&str] = &[
    "query",
    "send-text:hello",
    "recv",
    "close:1000:bye",
    "query",
    "query",
];

const USAGE: &str = "usage: close-probe URL [--protocol P]... [--header NAME=VALUE]... [STEP]...";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((url, mut rest)) = args.split_first() else {
        usage_error("missing URL")
    };

    // Options come first; the first other argument starts the steps.
    let mut options = ConnectOptions {
        protocols: Vec::new(),
        headers: Vec::new(),
    };
    while let [flag, value, tail @ ..] = rest {
        match flag.as_str() {
            "--protocol" => options.protocols.push(value.clone()),
            "--header" => {
                let Some((name, value)) = value.split_once('=') else {
                    usage_error("--header takes NAME=VALUE")
                };
                options.headers.push((name.into(), value.into()));
            }
            _ => break,
        }
        rest = tail;
    }
    if let [flag] = rest {
        if flag == "--protocol" || flag == "--header" {
            usage_error(&format!("{flag} needs a value"));
        }
    }
    let steps: Vec<&str> = if rest.is_empty() {
        DEFAULT_TOUR.to_vec()
    } else {
        rest.iter().map(String::as_str).collect()
    };

    let ws = match Websocket::connect(url, &options) {
        Ok(ws) => {
            let protocol = ws.protocol().unwrap_or_else(|| "none".into());
            say("connect", format!("ok protocol={protocol}"));
            ws
        }
        Err(e) => {
            say("connect", err(&e));
            return;
        }
    };

    // `None` once the `drop` step has run.
    let mut ws = Some(ws);
    for text in steps {
        let Some(step) = parse(text) else {
            say(text, "err(unknown step)");
            exit(2);
        };
        // Steps that do not need the websocket.
        match step {
            Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                say(text, "ok");
                continue;
            }
            Step::Exit => {
                // Exits without dropping the websocket: the host cleans up.
                say(text, "ok");
                exit(0);
            }
            Step::Trap => panic!("close-probe: trap step"),
            Step::Spin => loop {
                std::hint::black_box(());
            },
            Step::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Step::ConnectMany(n) => {
                let mut opened = Vec::new();
                let result = (0..n)
                    .try_for_each(|_| Websocket::connect(url, &options).map(|ws| opened.push(ws)));
                match result {
                    Ok(()) => say(text, format!("ok({} opened)", opened.len())),
                    Err(e) => say(
                        text,
                        format!("err(after {}: {})", opened.len(), e.describe()),
                    ),
                }
                continue;
            }
            Step::ConnectDrop(n) => {
                let result = (0..n).try_for_each(|i| {
                    Websocket::connect(url, &options)
                        .map(drop)
                        .map_err(|e| (i, e))
                });
                match result {
                    Ok(()) => say(text, format!("ok({n} connected and dropped)")),
                    Err((i, e)) => say(text, format!("err(after {i}: {})", e.describe())),
                }
                continue;
            }
            Step::RawTcp(addr) => {
                match std::net::TcpStream::connect(addr.as_str()) {
                    Ok(_) => say(text, "ok"),
                    Err(e) => say(text, format!("err({e})")),
                }
                continue;
            }
            _ => {}
        }
        let Some(socket) = &ws else {
            say(text, "skipped (dropped)");
            continue;
        };
        match step {
            Step::SubscribeMany(n) => {
                let pollables: Vec<_> = (0..n).map(|_| socket.subscribe()).collect();
                say(text, format!("ok({} pollables)", pollables.len()));
            }
            Step::StaleHandle => {
                // A handle the guest has given back: the runtime traps.
                let handle = ws.take().map(|ws| ws.take_handle()).unwrap_or_default();
                drop(unsafe { Websocket::from_handle(handle) });
                let stale = unsafe { Websocket::from_handle(handle) };
                say(text, format!("{:?}", stale.query_close_status()));
            }
            Step::Drop => {
                ws = None;
                say(text, "ok");
            }
            Step::RecvUntilClose => loop {
                let result = socket.receive();
                say(text, incoming(&result));
                if !matches!(result, Ok(Incoming::Message(_))) {
                    break;
                }
            },
            step => say(text, run(socket, step)),
        }
    }
}

enum Step {
    SendText(String),
    SendBinary(usize),
    SendFragment(Fragment),
    Ping(Vec<u8>),
    Recv,
    RecvFragment(u32),
    RecvUntilClose,
    RecvAllFragments(u32),
    Close(Option<u16>, String),
    Shutdown(Option<u16>, String),
    Abort,
    Query,
    Protocol,
    Drop,
    Sleep(u64),
    Exit,
    RawTcp(String),
    Trap,
    Spin,
    Alloc,
    ConnectMany(usize),
    ConnectDrop(usize),
    SubscribeMany(usize),
    StaleHandle,
}

/// Parses one step; `None` if it is unknown or malformed.
fn parse(step: &str) -> Option<Step> {
    let (name, arg) = match step.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (step, None),
    };
    let step = match (name, arg) {
        // send-text:STR
        ("send-text", Some(text)) => Step::SendText(text.into()),
        // send-binary:N, N bytes of the pattern `i % 251`
        ("send-binary", Some(n)) => Step::SendBinary(n.parse().ok()?),
        // send-text-pattern:N, N bytes of the text pattern (JSON-like
        // records, as tests/peers/peer.py makes them)
        ("send-text-pattern", Some(n)) => Step::SendText(text_pattern(n.parse().ok()?)),
        // send-frag:KIND:STR:FINAL and send-frag-hex:KIND:HEX:FINAL
        ("send-frag", Some(arg)) => fragment(arg, |s| Some(s.as_bytes().to_vec()))?,
        ("send-frag-hex", Some(arg)) => fragment(arg, from_hex)?,
        // ping or ping:STR
        ("ping", arg) => Step::Ping(arg.unwrap_or("").as_bytes().to_vec()),
        // recv: a text over 4096 bytes prints as `ok(text N bytes pattern-ok)`
        // (or `not-the-pattern`), not in full
        ("recv", None) => Step::Recv,
        ("recv-frag", Some(max)) => Step::RecvFragment(max.parse().ok()?),
        ("recv-until-close", None) => Step::RecvUntilClose,
        ("recv-all-frags", Some(max)) => Step::RecvAllFragments(max.parse().ok()?),
        // close, close:CODE, close:CODE:REASON, close-reason-only:REASON,
        // close-long:CODE:N; the same for shutdown.
        ("close" | "shutdown", None) => closing(name, None, String::new()),
        ("close" | "shutdown", Some(arg)) => {
            let (code, reason) = arg.split_once(':').unwrap_or((arg, ""));
            closing(name, Some(code.parse().ok()?), reason.into())
        }
        ("close-reason-only", Some(reason)) => Step::Close(None, reason.into()),
        ("shutdown-reason-only", Some(reason)) => Step::Shutdown(None, reason.into()),
        ("close-long" | "shutdown-long", Some(arg)) => {
            let (code, len) = arg.split_once(':')?;
            let reason = "x".repeat(len.parse().ok()?);
            closing(name, Some(code.parse().ok()?), reason)
        }
        ("abort", None) => Step::Abort,
        ("query", None) => Step::Query,
        ("protocol", None) => Step::Protocol,
        ("drop", None) => Step::Drop,
        ("sleep", Some(ms)) => Step::Sleep(ms.parse().ok()?),
        ("exit", None) => Step::Exit,
        // raw-tcp:HOST:PORT, a plain wasi:sockets connection (the host
        // grants none)
        ("raw-tcp", Some(addr)) => Step::RawTcp(addr.into()),
        // Hostile guest behaviour, for the sandbox tests: a trap, a loop
        // that never returns to the host, a memory bomb, opening websockets
        // until refused, and using a handle the guest no longer owns.
        ("trap", None) => Step::Trap,
        ("spin", None) => Step::Spin,
        ("alloc", None) => Step::Alloc,
        ("connect-many", Some(n)) => Step::ConnectMany(n.parse().ok()?),
        ("connect-drop", Some(n)) => Step::ConnectDrop(n.parse().ok()?),
        ("subscribe-many", Some(n)) => Step::SubscribeMany(n.parse().ok()?),
        ("stale-handle", None) => Step::StaleHandle,
        _ => return None,
    };
    Some(step)
}

/// `KIND:DATA:FINAL`, with DATA decoded by `decode`.
fn fragment(arg: &str, decode: impl Fn(&str) -> Option<Vec<u8>>) -> Option<Step> {
    let (kind, rest) = arg.split_once(':')?;
    let (data, last) = rest.rsplit_once(':')?;
    let kind = match kind {
        "text" => MessageKind::Text,
        "binary" => MessageKind::Binary,
        _ => return None,
    };
    let final_ = match last {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    Some(Step::SendFragment(Fragment {
        kind,
        data: decode(data)?,
        final_,
    }))
}

/// `Close` or `Shutdown`, after the step's name.
fn closing(name: &str, code: Option<u16>, reason: String) -> Step {
    if name.starts_with("shutdown") {
        Step::Shutdown(code, reason)
    } else {
        Step::Close(code, reason)
    }
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// Runs a step on the websocket and returns its result text.
fn run(ws: &Websocket, step: Step) -> String {
    match step {
        Step::SendText(text) => done(ws.send(&Message::Text(text))),
        Step::SendBinary(len) => done(ws.send(&Message::Binary(pattern(len)))),
        Step::SendFragment(fragment) => done(ws.send_fragment(&fragment)),
        Step::Ping(payload) => done(ws.ping(&payload)),
        Step::Recv => incoming(&ws.receive()),
        Step::RecvFragment(max) => match ws.receive_fragment(max) {
            Ok(IncomingFragment::Fragment(f)) => format!(
                "ok(fragment {} {} bytes final={})",
                kind_name(f.kind),
                f.data.len(),
                f.final_
            ),
            Ok(IncomingFragment::Close(status)) => format!("ok(close {})", status.describe()),
            Err(e) => err(&e),
        },
        Step::RecvAllFragments(max) => receive_all_fragments(ws, max),
        Step::Close(code, reason) => done(ws.close(code, &reason)),
        Step::Shutdown(code, reason) => done(ws.shutdown(code, &reason)),
        Step::Abort => {
            ws.abort();
            "ok".into()
        }
        Step::Query => match ws.query_close_status() {
            Ok(status) => format!("ok({})", status.describe()),
            Err(e) => format!("err({})", e.describe()),
        },
        Step::Protocol => match ws.protocol() {
            Some(protocol) => format!("some({protocol})"),
            None => "none".into(),
        },
        Step::RecvUntilClose
        | Step::Drop
        | Step::Sleep(_)
        | Step::Exit
        | Step::RawTcp(_)
        | Step::Trap
        | Step::Spin
        | Step::Alloc
        | Step::ConnectMany(_)
        | Step::ConnectDrop(_)
        | Step::SubscribeMany(_)
        | Step::StaleHandle => {
            unreachable!("handled by main")
        }
    }
}

/// Reads one message piece by piece, in bounded memory, and sums it up.
fn receive_all_fragments(ws: &Websocket, max: u32) -> String {
    let (mut pieces, mut total, mut largest) = (0, 0, 0);
    let mut kind = None;
    let mut check = Checker::default();
    loop {
        let fragment = match ws.receive_fragment(max) {
            Ok(IncomingFragment::Fragment(fragment)) => fragment,
            Ok(IncomingFragment::Close(status)) => {
                return format!("ok(close {})", status.describe())
            }
            Err(e) => return err(&e),
        };
        pieces += 1;
        total += fragment.data.len();
        largest = largest.max(fragment.data.len());
        // Every piece of a message must have the kind of the first.
        let first_kind = *kind.get_or_insert(fragment.kind);
        check.failed |= fragment.kind != first_kind;
        check.feed(fragment.kind, &fragment.data);
        if fragment.final_ {
            return format!(
                "ok(message {} {total} bytes in {pieces} pieces max={largest} {})",
                kind_name(first_kind),
                verdict(check.finish()),
            );
        }
    }
}

/// Checks a message as its pieces arrive: binary data must follow the
/// `send-binary` pattern, text must be valid UTF-8 once whole (a piece may
/// end in the middle of a multi-byte sequence).
#[derive(Default)]
struct Checker {
    offset: usize,
    /// The incomplete UTF-8 sequence at the end of the text so far.
    pending: Vec<u8>,
    failed: bool,
}

impl Checker {
    fn feed(&mut self, kind: MessageKind, data: &[u8]) {
        match kind {
            MessageKind::Binary => self.failed |= !is_pattern(self.offset, data),
            MessageKind::Text => {
                self.pending.extend_from_slice(data);
                match std::str::from_utf8(&self.pending) {
                    Ok(_) => self.pending.clear(),
                    Err(e) if e.error_len().is_none() => {
                        self.pending.drain(..e.valid_up_to());
                    }
                    Err(_) => {
                        self.failed = true;
                        self.pending.clear();
                    }
                }
            }
        }
        self.offset += data.len();
    }

    fn finish(self) -> bool {
        !self.failed && self.pending.is_empty()
    }
}

/// One JSON-like record of 64 bytes; the text pattern repeats it (the same
/// as `TEXT_RECORD` in tests/peers/peer.py).
const TEXT_RECORD: &str =
    "{\"id\":12345,\"user\":\"wsbox\",\"tags\":[\"a\",\"b\"],\"ok\":true,\"n\":0.25}\n";

/// The text pattern of `len` bytes: [`TEXT_RECORD`] repeated and cut.
fn text_pattern(len: usize) -> String {
    TEXT_RECORD.repeat(len / TEXT_RECORD.len() + 1)[..len].to_string()
}

/// Texts longer than this are summed up rather than printed.
const PRINTED_TEXT: usize = 4096;

/// `len` bytes where byte `i` is `i % 251`: a pattern that shows
/// reordering, loss and truncation.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Whether `data`, found at `offset` in a message, follows the pattern.
fn is_pattern(offset: usize, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, &byte)| byte == ((offset + i) % 251) as u8)
}

fn incoming(result: &Result<Incoming, ErrorCode>) -> String {
    match result {
        Ok(Incoming::Message(Message::Text(text))) if text.len() > PRINTED_TEXT => format!(
            "ok(text {} bytes {})",
            text.len(),
            if *text == text_pattern(text.len()) {
                "pattern-ok"
            } else {
                "not-the-pattern"
            }
        ),
        Ok(Incoming::Message(Message::Text(text))) => format!("ok(text {text:?})"),
        Ok(Incoming::Message(Message::Binary(data))) => format!(
            "ok(binary {} bytes {})",
            data.len(),
            verdict(is_pattern(0, data))
        ),
        Ok(Incoming::Close(status)) => format!("ok(close {})", status.describe()),
        Err(e) => err(e),
    }
}

fn done(result: Result<(), ErrorCode>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => err(&e),
    }
}

fn err(e: &ErrorCode) -> String {
    format!("err({})", e.describe())
}

fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Binary => "binary",
    }
}

fn verdict(intact: bool) -> &'static str {
    if intact {
        "ok"
    } else {
        "corrupt"
    }
}

/// Prints `<step> -> <result>` and flushes, so that a test reading the
/// output sees each step as soon as it is done.
fn say(step: &str, result: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // Nothing useful to do if stdout is gone.
    let _ = writeln!(out, "{step} -> {result}").and_then(|()| out.flush());
}

fn usage_error(problem: &str) -> ! {
    eprintln!("close-probe: {problem}\n{USAGE}");
    exit(2)
}
