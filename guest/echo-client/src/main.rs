//! `echo-client URL [MSG]...`: sends each MSG (default: "hello wsbox") as a
//! text message, prints one reply per message, then closes the connection
//! with a full closing handshake and prints the peer's close status.

use std::process::ExitCode;

use wsbox_guest::{CloseCode, Incoming, Message, WebSocket};
use wsbox_guest_common::exit_with;

fn main() -> ExitCode {
    exit_with(run())
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: echo-client URL [MSG]...")?;
    let mut messages: Vec<String> = args.collect();
    if messages.is_empty() {
        messages.push("hello wsbox".into());
    }

    let ws = WebSocket::connect(&url).map_err(|e| format!("connect: {e}"))?;

    for text in messages {
        ws.send_text(&text).map_err(|e| format!("send: {e}"))?;
        match ws.receive().map_err(|e| format!("receive: {e}"))? {
            Incoming::Message(Message::Text(reply)) => println!("reply: {reply}"),
            Incoming::Message(Message::Binary(reply)) => {
                println!("reply: binary {} bytes", reply.len())
            }
            // Returning drops the websocket, which answers the peer's close.
            Incoming::Close(status) => return Err(format!("the server closed first: {status}")),
        }
    }

    // `close` sends our close frame and waits for the peer's answer.
    let closed = ws.close(CloseCode::Normal, "done");
    match &closed {
        Ok(()) => println!("close -> ok"),
        Err(e) => println!("close -> err({e})"),
    }
    match ws.close_status() {
        Ok(status) => println!("close-status: {status}"),
        Err(e) => println!("close-status: err({e})"),
    }
    closed.map_err(|e| format!("close: {e}"))
}
