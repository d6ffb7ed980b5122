//! `close-reporter`: an echo handler that reports the closing handshake on
//! stderr (the host's log), for the tests of the server side's close
//! semantics. Every line starts with `close-reporter: `:
//!
//! - `upgrade PATH from ADDRESS`, for each upgrade (all are accepted);
//! - `query-close-status = ok(CODE "REASON")`, `= err(not-received)` or
//!   `= err(aborted)` once the conversation is over;
//! - `receive error ERROR` (or `send error ERROR`) before that if the
//!   connection failed, e.g. `receive error closed` when TCP dropped.
//!
//! Messages are echoed. The client's close is answered with code
//! `4000 + code % 1000` and reason `seen:CODE:REASON` (cut to 123 bytes),
//! or with an empty close frame if the client sent one (1005).
//!
//! If the first message is the text `close-me CODE REASON`, the handler
//! closes first instead, with that code and reason (REASON may be empty),
//! and prints `close -> ok` or `close -> err(ERROR)`.

use wsbox_guest_server::{
    accept, echo_until_close, CloseStatus, Describe, EchoError, Guest, Incoming, Message,
    UpgradeRequest, UpgradeResponse, Websocket,
};

/// The longest reason a close frame can carry (RFC 6455 section 5.5).
const MAX_REASON: usize = 123;

struct CloseReporter;

impl Guest for CloseReporter {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        log(&format!(
            "upgrade {} from {}",
            request.path, request.remote_address
        ));
        accept()
    }

    fn handle(conn: Websocket) {
        let first = match conn.receive() {
            Ok(Incoming::Message(message)) => message,
            Ok(Incoming::Close(status)) => return answer(&conn, &status),
            Err(e) => return fail(&conn, EchoError::Receive(e)),
        };
        if let Message::Text(text) = &first {
            if let Some((code, reason)) = parse_close_me(text) {
                return close_first(&conn, code, reason);
            }
        }
        let rest = conn
            .send(&first)
            .map_err(EchoError::Send)
            .and_then(|()| echo_until_close(&conn, |message| message));
        match rest {
            Ok(status) => answer(&conn, &status),
            Err(e) => fail(&conn, e),
        }
    }
}

wsbox_guest_server::export!(CloseReporter);

/// Reports the client's close, then answers it.
fn answer(conn: &Websocket, status: &CloseStatus) {
    report_close_status(conn);
    // The result is not reported: if the answer cannot go out, the
    // connection is over anyway.
    let _ = if status.code == 1005 {
        conn.close(None, "")
    } else {
        let mut reason = format!("seen:{}:{}", status.code, status.reason);
        reason.truncate(reason.floor_char_boundary(MAX_REASON));
        conn.close(Some(4000 + status.code % 1000), &reason)
    };
}

/// Reports a failed receive or send and the close status it left.
fn fail(conn: &Websocket, error: EchoError) {
    log(&error.describe());
    report_close_status(conn);
}

/// Closes first, as the `close-me` message asked, and reports it.
fn close_first(conn: &Websocket, code: u16, reason: &str) {
    match conn.close(Some(code), reason) {
        Ok(()) => log("close -> ok"),
        Err(e) => log(&format!("close -> err({})", e.describe())),
    }
    report_close_status(conn);
}

fn report_close_status(conn: &Websocket) {
    let status = match conn.query_close_status() {
        Ok(status) => format!("ok({})", status.describe()),
        Err(e) => format!("err({})", e.describe()),
    };
    log(&format!("query-close-status = {status}"));
}

/// `close-me CODE REASON` → `(CODE, REASON)`; `None` for any other text.
fn parse_close_me(text: &str) -> Option<(u16, &str)> {
    let rest = text.strip_prefix("close-me ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((code.parse().ok()?, reason))
}

fn log(line: &str) {
    eprintln!("close-reporter: {line}");
}
