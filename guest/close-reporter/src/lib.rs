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

use wsbox_guest::{
    CloseCode, CloseStatus, Handler, Incoming, Message, UpgradeRequest, UpgradeResponse, WebSocket,
};

/// The longest reason a close frame can carry (RFC 6455 section 5.5).
const MAX_REASON: usize = 123;

struct CloseReporter;

impl Handler for CloseReporter {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        log(&format!(
            "upgrade {} from {}",
            request.path, request.remote_address
        ));
        UpgradeResponse::accept()
    }

    fn handle(ws: WebSocket) {
        let first = match ws.receive() {
            Ok(Incoming::Message(message)) => message,
            Ok(Incoming::Close(status)) => return answer(&ws, &status),
            Err(e) => return fail(&ws, &format!("receive error {e}")),
        };
        if let Message::Text(text) = &first {
            if let Some((code, reason)) = parse_close_me(text) {
                return close_first(&ws, code, reason);
            }
        }
        // The first message is echoed like the rest.
        for message in std::iter::once(Ok(first)).chain(ws.messages()) {
            let message = match message {
                Ok(message) => message,
                Err(e) => return fail(&ws, &format!("receive error {e}")),
            };
            if let Err(e) = ws.send(&message) {
                return fail(&ws, &format!("send error {e}"));
            }
        }
        // The messages ended at the client's close, which is latched.
        if let Ok(status) = ws.close_status() {
            answer(&ws, &status);
        }
    }
}

wsbox_guest::export_handler!(CloseReporter);

/// Reports the client's close, then answers it.
fn answer(ws: &WebSocket, status: &CloseStatus) {
    report_close_status(ws);
    // The result is not reported: if the answer cannot go out, the
    // connection is over anyway.
    let _ = if status.code == CloseCode::Status {
        ws.close(None, "")
    } else {
        let mut reason = format!("seen:{}:{}", status.code, status.reason);
        reason.truncate(reason.floor_char_boundary(MAX_REASON));
        ws.close(CloseCode::from(4000 + status.code.code() % 1000), &reason)
    };
}

/// Reports a failed receive or send and the close status it left.
fn fail(ws: &WebSocket, error: &str) {
    log(error);
    report_close_status(ws);
}

/// Closes first, as the `close-me` message asked, and reports it.
fn close_first(ws: &WebSocket, code: u16, reason: &str) {
    match ws.close(CloseCode::from(code), reason) {
        Ok(()) => log("close -> ok"),
        Err(e) => log(&format!("close -> err({e})")),
    }
    report_close_status(ws);
}

fn report_close_status(ws: &WebSocket) {
    let status = match ws.close_status() {
        Ok(status) => format!("ok({status})"),
        Err(e) => format!("err({e})"),
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
