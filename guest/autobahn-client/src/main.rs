//! `autobahn-client BASE_URL AGENT [CASES]`: the echo client for the
//! Autobahn|Testsuite fuzzingserver (BASE_URL like `ws://127.0.0.1:9001`).
//! Runs cases 1 to CASES (by default, the count the server reports), then
//! asks the server to update its reports for AGENT.

use std::process::ExitCode;

use wsbox_guest::{CloseStatus, Error, ErrorCode, Incoming, Message, WebSocket};
use wsbox_guest_common::exit_with;

fn main() -> ExitCode {
    exit_with(run())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, agent, cases) = match args.as_slice() {
        [base, agent] => (base, agent, None),
        [base, agent, cases] => (base, agent, Some(cases)),
        _ => return Err("usage: autobahn-client BASE_URL AGENT [CASES]".into()),
    };
    let base = base.trim_end_matches('/');

    let count: u32 = match cases {
        Some(cases) => cases.parse().map_err(|_| "CASES must be a number")?,
        None => case_count(base)?,
    };
    for case in 1..=count {
        if let Err(e) = run_case(&format!("{base}/runCase?case={case}&agent={agent}")) {
            // Not a failure of the run: Autobahn judges the case. Said so
            // that a case it marks unclean can be read next to the cause.
            eprintln!("case {case}: {e}");
        }
        if case.is_multiple_of(50) || case == count {
            eprintln!("case {case}: done");
        }
    }

    let ws = WebSocket::connect(&format!("{base}/updateReports?agent={agent}"))
        .map_err(|e| format!("updateReports: {e}"))?;
    finish(&ws).map_err(|e| format!("updateReports: {e}"))
}

/// Asks the server how many cases it has: it sends the number as text.
fn case_count(base: &str) -> Result<u32, String> {
    let fail = |e: Error| format!("getCaseCount: {e}");
    let ws = WebSocket::connect(&format!("{base}/getCaseCount")).map_err(fail)?;
    let count = match ws.receive().map_err(fail)? {
        Incoming::Message(Message::Text(text)) => text.trim().parse().ok(),
        _ => None,
    };
    finish(&ws).map_err(fail)?;
    count.ok_or_else(|| "getCaseCount: no count in the reply".into())
}

/// Echoes every message back until the server closes; any error ends the
/// case (the host has already failed the connection where RFC 6455 says so).
/// Returns the errors no case provokes on purpose: a failed answer to the
/// server's close, a timeout, a socket failure or a host limit.
fn run_case(url: &str) -> Result<(), String> {
    let Ok(ws) = WebSocket::connect(url) else {
        return Ok(());
    };
    if let Err(e) = ws.messages().try_for_each(|message| ws.send(&message?)) {
        return match e.code() {
            ErrorCode::Timeout | ErrorCode::Other(_) | ErrorCode::LimitExceeded(_) => {
                Err(format!("echoing: {e}"))
            }
            _ => Ok(()),
        };
    }
    // The messages ended at the server's close, which is latched.
    match ws.close_status() {
        Ok(status) => answer_close(&ws, &status).map_err(|e| format!("answering the close: {e}")),
        Err(_) => Ok(()),
    }
}

/// Receives until the server's close frame, then answers it.
fn finish(ws: &WebSocket) -> Result<(), Error> {
    loop {
        if let Incoming::Close(status) = ws.receive()? {
            return answer_close(ws, &status);
        }
    }
}

/// Answers the peer's close with its own code, as RFC 6455 suggests. 1005
/// means the peer's close frame was empty, so the answer is empty too; a
/// code that may not be sent is answered with an empty close frame as well.
/// (`WebSocket::answer_close` would answer those with 1000 instead.)
fn answer_close(ws: &WebSocket, status: &CloseStatus) -> Result<(), Error> {
    let code = Some(status.code).filter(|code| code.is_allowed());
    ws.close(code, "")
}
