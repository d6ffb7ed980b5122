//! `echo-client URL [MSG]...`: sends each MSG (default: "hello wsbox") as a
//! text message, prints one reply per message, then closes the connection
//! with a full closing handshake and prints the peer's close status.

use std::process::ExitCode;

use wsbox_guest_common::{connect, exit_with, Describe, Incoming, Message};

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

    let ws = connect(&url).map_err(|e| format!("connect: {}", e.describe()))?;

    for text in messages {
        ws.send(&Message::Text(text))
            .map_err(|e| format!("send: {}", e.describe()))?;
        match ws
            .receive()
            .map_err(|e| format!("receive: {}", e.describe()))?
        {
            Incoming::Message(Message::Text(reply)) => println!("reply: {reply}"),
            Incoming::Message(Message::Binary(reply)) => {
                println!("reply: binary {} bytes", reply.len())
            }
            // Returning drops the websocket, which answers the peer's close.
            Incoming::Close(status) => {
                return Err(format!("the server closed first: {}", status.describe()))
            }
        }
    }

    // `close` sends our close frame and waits for the peer's answer.
    let closed = ws.close(Some(1000), "done");
    match &closed {
        Ok(()) => println!("close -> ok"),
        Err(e) => println!("close -> err({})", e.describe()),
    }
    match ws.query_close_status() {
        Ok(status) => println!("close-status: {}", status.describe()),
        Err(e) => println!("close-status: err({})", e.describe()),
    }
    closed.map_err(|e| format!("close: {}", e.describe()))
}
