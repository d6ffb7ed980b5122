//! `multiplex URL N MSGS`: opens N connections to an echo server, sends MSGS
//! text messages on each, then waits on all of them at once with
//! `wsbox_guest::poll` (`subscribe` and `wasi:io/poll.poll` underneath),
//! taking replies as they come, and checks that every connection got its own
//! messages back, in order.

use std::process::ExitCode;

use wsbox_guest::{poll, CloseCode, Incoming, Message, WebSocket};
use wsbox_guest_common::exit_with;

fn main() -> ExitCode {
    exit_with(run())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, connections, messages] = args.as_slice() else {
        return Err("usage: multiplex URL N MSGS".into());
    };
    let connections: usize = connections.parse().map_err(|_| "N must be a number")?;
    let messages: usize = messages.parse().map_err(|_| "MSGS must be a number")?;

    let expected = |conn: usize, msg: usize| format!("conn {conn} msg {msg}");

    let sockets = (0..connections)
        .map(|conn| WebSocket::connect(url).map_err(|e| format!("connect {conn}: {e}")))
        .collect::<Result<Vec<WebSocket>, String>>()?;
    for (conn, ws) in sockets.iter().enumerate() {
        for msg in 0..messages {
            ws.send_text(&expected(conn, msg))
                .map_err(|e| format!("conn {conn} send: {e}"))?;
        }
    }

    let mut received = vec![0; connections];
    let mut replies = 0;
    loop {
        // Wait on the connections that still expect replies.
        let waiting: Vec<usize> = (0..connections)
            .filter(|&conn| received[conn] < messages)
            .collect();
        if waiting.is_empty() {
            break;
        }
        let list: Vec<&WebSocket> = waiting.iter().map(|&conn| &sockets[conn]).collect();
        // `poll` blocks until at least one is ready and returns their
        // positions in `list`.
        for ready in poll(&list) {
            let conn = waiting[ready];
            let reply = match sockets[conn].receive() {
                Ok(Incoming::Message(Message::Text(text))) => text,
                Ok(Incoming::Message(Message::Binary(data))) => {
                    format!("<{} binary bytes>", data.len())
                }
                Ok(Incoming::Close(status)) => {
                    return Err(format!("conn {conn}: closed by peer: {status}"))
                }
                Err(e) => return Err(format!("conn {conn} receive: {e}")),
            };
            let want = expected(conn, received[conn]);
            if reply != want {
                return Err(format!("conn {conn}: expected {want:?}, got {reply:?}"));
            }
            received[conn] += 1;
            replies += 1;
        }
    }

    for (conn, ws) in sockets.iter().enumerate() {
        ws.close(CloseCode::Normal, "")
            .map_err(|e| format!("conn {conn} close: {e}"))?;
    }
    println!("multiplex: {connections} connections, {replies} replies, all matched");
    Ok(())
}
