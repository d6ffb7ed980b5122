//! `faulty`: a handler that misbehaves on purpose, chosen by the request
//! path, to test how the host contains a broken guest. Not a model to copy.
//!
//! In `upgrade`:
//! - `/trap-upgrade`: traps (a panic is a trap with `panic = "abort"`); the
//!   client gets HTTP 500.
//! - `/bad-protocol`: selects a subprotocol the client did not offer.
//! - `/bad-header`: sets `Sec-WebSocket-Accept`, which belongs to the host.
//! - `/bad-header-te`: sets `TE`, which RFC 9110 gives to the connection.
//! - `/bad-header-control`: sets a header value with a control character.
//! - `/bad-header-oversize`: sets 8 KiB + 1 byte of headers, one over the
//!   host's limit.
//! - `/big-headers`: sets exactly 8 KiB of headers, one with a tab in its
//!   value, which the host allows; then goes on like `echo`.
//! - `/reject-999`: rejects with a status outside 400-599.
//!
//! Any other path is accepted. On `/late-answer`, `handle` receives until
//! the client's close, does not answer it, sleeps 5 s (past the host's close
//! timeout, so the host echoes the client's code), then tries a send and
//! prints `late-answer: send -> RESULT` on stderr.
//!
//! On any other path, `handle` echoes one message, then:
//! - `/trap`: traps; the client gets close code 1011.
//! - `/spin`: loops forever without calling the host (the CPU deadline).
//! - `/alloc`: allocates memory forever (the memory limit).
//! - `/return-open`: returns with the websocket open; the host closes it
//!   with 1000.
//! - `/flood`: prints 20,000 lines of 200 bytes, alternating
//!   stdout and stderr (far past the host's default log budget), then
//!   echoes.
//! - `/forge`: prints lines made to pass for another client's or for
//!   wsbox's, with carriage returns, ANSI escapes, DEL, NUL, a C1 control,
//!   a right-to-left override and invalid UTF-8, then echoes.
//! - anything else: goes on like `echo`.
//!
//! A path that starts with `/joined` (`/joined/trap`, `/joined/spin`, ...)
//! first joins the topic `faulty`, then goes on as the rest of the path
//! says: for the tests that a misbehaving handler leaves its topics.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use wsbox_guest::{Handler, Incoming, UpgradeRequest, UpgradeResponse, WebSocket};

/// The request path, saved by `upgrade` for `handle`: every connection has
/// an instance of its own, so a global holds one connection's state.
static PATH: OnceLock<String> = OnceLock::new();

/// Whether `handle` joins the topic `faulty` first (a `/joined` path).
static JOINED: OnceLock<bool> = OnceLock::new();

/// The size of each allocation of `/alloc`.
const CHUNK: usize = 16 << 20;

/// How many lines `/flood` prints.
const FLOOD_LINES: usize = 20_000;

/// What `/forge` prints, as raw bytes: every line tries to pass for
/// something it is not.
const FORGED: &[u8] =
    b"\r\x1b[2K[1.2.3.4:5] wsbox: forged\x7f\x00 \\ \t\xc2\x9b\xe2\x80\xae \xff end\r\n\
    \x1b]0;title\x07\x1b[1A\x1b[31mred\x08\r\n";

/// An accept with eight `X-Fill-N` headers of 1 KiB each as
/// `name: value\r\n` (8 KiB, the host's limit), each value with a tab in
/// it, plus `extra` bytes on the last one.
fn with_header_bytes(extra: usize) -> UpgradeResponse {
    (0..8).fold(UpgradeResponse::accept(), |response, n| {
        let fill = 1024 - "X-Fill-0: a\t\r\n".len() + if n == 7 { extra } else { 0 };
        response.header(&format!("X-Fill-{n}"), &format!("a\t{}", "a".repeat(fill)))
    })
}

struct Faulty;

impl Handler for Faulty {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        let (joined, path) = match request.route().strip_prefix("/joined") {
            Some(rest) => (true, rest),
            None => (false, request.route()),
        };
        let _ = JOINED.set(joined);
        let _ = PATH.set(path.into());
        match path {
            "/trap-upgrade" => panic!("trap in upgrade"),
            "/bad-protocol" => UpgradeResponse::accept().protocol("never-offered"),
            "/bad-header" => UpgradeResponse::accept().header("Sec-WebSocket-Accept", "x"),
            "/bad-header-te" => UpgradeResponse::accept().header("TE", "trailers"),
            "/bad-header-control" => UpgradeResponse::accept().header("X-Note", "bell\x07"),
            "/bad-header-oversize" => with_header_bytes(1),
            "/big-headers" => with_header_bytes(0),
            "/reject-999" => UpgradeResponse::reject(999),
            _ => UpgradeResponse::accept(),
        }
    }

    fn handle(conn: WebSocket) {
        if JOINED.get() == Some(&true) {
            if let Err(e) = conn.join("faulty") {
                eprintln!("join -> err({e})");
            }
        }
        if PATH.get().is_some_and(|path| path == "/late-answer") {
            return late_answer(&conn);
        }
        // Echo one message first, so the client knows `handle` is running.
        match conn.receive() {
            Ok(Incoming::Message(message)) => {
                if conn.send(&message).is_err() {
                    return;
                }
            }
            Ok(Incoming::Close(status)) => {
                let _ = conn.answer_close(&status);
                return;
            }
            Err(_) => return,
        }

        match PATH.get().map_or("", String::as_str) {
            "/trap" => panic!("trap in handle"),
            "/spin" => loop {
                std::hint::black_box(());
            },
            "/alloc" => {
                let mut hoard = Vec::new();
                loop {
                    let mut chunk = Vec::<u8>::with_capacity(CHUNK);
                    // Write every byte, so the memory is really used.
                    chunk.resize(CHUNK, 0xa5);
                    // `black_box` keeps the optimizer from removing it all.
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            // Dropping `conn` without closing: the host sends 1000.
            "/return-open" => {}
            "/flood" => {
                for i in 0..FLOOD_LINES {
                    let line = format!("flood {i:05} {}", "x".repeat(188));
                    if i % 2 == 0 {
                        println!("{line}");
                    } else {
                        eprintln!("{line}");
                    }
                }
                let _ = conn.echo(|message| message);
            }
            "/forge" => {
                let _ = std::io::stdout().write_all(FORGED);
                let _ = std::io::stdout().flush();
                let _ = conn.echo(|message| message);
            }
            _ => {
                let _ = conn.echo(|message| message);
            }
        }
    }
}

/// `/late-answer`: leaves the client's close unanswered, then sends late.
fn late_answer(conn: &WebSocket) {
    loop {
        match conn.receive() {
            Ok(Incoming::Message(_)) => continue,
            Ok(Incoming::Close(status)) => {
                eprintln!("late-answer: close {status} received");
                break;
            }
            Err(e) => {
                eprintln!("late-answer: receive -> err({e})");
                return;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    match conn.send_text("late") {
        Ok(()) => eprintln!("late-answer: send -> ok"),
        Err(e) => eprintln!("late-answer: send -> err({e})"),
    }
}

wsbox_guest::export_handler!(Faulty);
