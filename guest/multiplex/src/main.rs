//! `multiplex URL N MSGS`: opens N connections to an echo server, sends MSGS
//! text messages on each, then waits on all of them at once with
//! `subscribe` and `wasi:io/poll.poll`, taking replies as they come, and
//! checks that every connection got its own messages back, in order.

use std::process::ExitCode;

use wsbox_guest_common::{connect, exit_with, poll, Describe, Incoming, Message, Websocket};

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
        .map(|conn| connect(url).map_err(|e| format!("connect {conn}: {}", e.describe())))
        .collect::<Result<Vec<Websocket>, String>>()?;
    for (conn, ws) in sockets.iter().enumerate() {
        for msg in 0..messages {
            ws.send(&Message::Text(expected(conn, msg)))
                .map_err(|e| format!("conn {conn} send: {}", e.describe()))?;
        }
    }

    // One pollable per websocket, ready whenever something can be received.
    let pollables: Vec<_> = sockets.iter().map(Websocket::subscribe).collect();
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
        let list: Vec<_> = waiting.iter().map(|&conn| &pollables[conn]).collect();
        // `poll` blocks until at least one is ready and returns their
        // positions in `list`.
        for ready in poll(&list) {
            let conn = waiting[ready as usize];
            let reply = match sockets[conn].receive() {
                Ok(Incoming::Message(Message::Text(text))) => text,
                Ok(Incoming::Message(Message::Binary(data))) => {
                    format!("<{} binary bytes>", data.len())
                }
                Ok(Incoming::Close(status)) => {
                    return Err(format!(
                        "conn {conn}: closed by peer: {}",
                        status.describe()
                    ))
                }
                Err(e) => return Err(format!("conn {conn} receive: {}", e.describe())),
            };
            let want = expected(conn, received[conn]);
            if reply != want {
                return Err(format!("conn {conn}: expected {want:?}, got {reply:?}"));
            }
            received[conn] += 1;
            replies += 1;
        }
    }

    // Pollables are children of their websockets: drop them first.
    drop(pollables);
    for (conn, ws) in sockets.iter().enumerate() {
        ws.close(Some(1000), "")
            .map_err(|e| format!("conn {conn} close: {}", e.describe()))?;
    }
    println!("multiplex: {connections} connections, {replies} replies, all matched");
    Ok(())
}
