//! `chat`: chat rooms, the topics sample. Run it with `wsbox serve
//! chat.wasm` (add `--cluster nats://HOST:PORT` on several nodes to share
//! the rooms).
//!
//! - `/room/NAME?name=WHO` joins the room NAME (the topic `room/NAME`) as
//!   WHO (percent-decoded; `anonymous` when missing). Any other path gets
//!   404.
//! - On joining, the room gets `* WHO joined`, then the client gets
//!   `* you joined NAME as WHO`.
//! - Each text message is published to the room, except to its sender, as
//!   `WHO: TEXT`. The host writes it to every member on every node; the
//!   guest never loops over them. Binary messages are ignored.
//! - If the cluster could not take a message (NATS is down), the sender
//!   gets `* only this node got it: ERROR`.
//! - When the client closes, the room gets `* WHO left` and the client's
//!   close is answered with its own code.
//! - If the room cannot be joined (an invalid topic, `--max-topics`), the
//!   client gets close code 1013 and the reason.

use std::sync::OnceLock;

use wsbox_guest::{
    publish_except, CloseCode, Handler, Message, UpgradeRequest, UpgradeResponse, WebSocket,
};

/// The longest reason a close frame can carry (RFC 6455 section 5.5).
const MAX_REASON: usize = 123;

/// Who is joining which room, from `upgrade` to `handle`: every connection
/// has an instance of its own.
struct Seat {
    room: String,
    name: String,
}

static SEAT: OnceLock<Seat> = OnceLock::new();

struct Chat;

impl Handler for Chat {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        let Some(room) = request.route().strip_prefix("/room/") else {
            return UpgradeResponse::reject(404);
        };
        let Some(room) = percent_decode(room) else {
            return UpgradeResponse::reject(400);
        };
        if room.is_empty() {
            return UpgradeResponse::reject(404);
        }
        let query = request.path.split_once('?').map_or("", |(_, q)| q);
        let name = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("name="))
            .find_map(percent_decode)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "anonymous".into());
        let _ = SEAT.set(Seat { room, name });
        UpgradeResponse::accept()
    }

    fn handle(ws: WebSocket) {
        let Some(Seat { room, name }) = SEAT.get() else {
            return;
        };
        let topic = format!("room/{room}");
        if let Err(e) = ws.join(&topic) {
            let reason = cut(&format!("cannot join {room}: {e}"), MAX_REASON);
            let _ = ws.close(CloseCode::Again, &reason);
            return;
        }
        say(&ws, &topic, &format!("* {name} joined"));
        if ws
            .send_text(&format!("* you joined {room} as {name}"))
            .is_err()
        {
            return;
        }
        for message in ws.messages() {
            match message {
                Ok(Message::Text(text)) => say(&ws, &topic, &format!("{name}: {text}")),
                Ok(Message::Binary(_)) => {}
                // The connection is over or broken (a slow consumer's 1013
                // is answered by the client, and ends the messages too).
                Err(_) => break,
            }
        }
        let _ = ws.leave(&topic);
        say(&ws, &topic, &format!("* {name} left"));
        if let Ok(status) = ws.close_status() {
            let _ = ws.answer_close(&status);
        }
    }
}

/// Publishes `text` to the room, except to `ws`, and tells `ws` when the
/// cluster did not take it.
fn say(ws: &WebSocket, topic: &str, text: &str) {
    if let Err(e) = publish_except(topic, &Message::Text(text.into()), ws) {
        let _ = ws.send_text(&format!("* only this node got it: {e}"));
    }
}

/// `%XX` escapes and `+` as a space; `None` when the bytes are not UTF-8
/// or an escape is broken.
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'%' => {
                let hex = [rest.next()?, rest.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8(bytes).ok()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

wsbox_guest::export_handler!(Chat);
