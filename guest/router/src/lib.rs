//! `router`: a handler that decides on the upgrade. Only `/chat` (with any
//! query string) is served, and only to clients that offer the `chat.v1`
//! subprotocol; text comes back prefixed with `chat: `.
//!
//! - `/chat` offering `chat.v1`: 101, `Sec-WebSocket-Protocol: chat.v1`
//!   and an extra `X-Router: chat` header.
//! - `/chat` without `chat.v1`: 400.
//! - any other path: 404.

use wsbox_guest::{Handler, Message, UpgradeRequest, UpgradeResponse, WebSocket};

const PROTOCOL: &str = "chat.v1";

struct Router;

impl Handler for Router {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        if request.route() != "/chat" {
            return UpgradeResponse::reject(404);
        }
        if !request.offers(PROTOCOL) {
            return UpgradeResponse::reject(400);
        }
        // The selected protocol must be one the client offered; the host
        // answers 500 otherwise.
        UpgradeResponse::accept()
            .protocol(PROTOCOL)
            .header("X-Router", "chat")
    }

    fn handle(ws: WebSocket) {
        let _ = ws.echo(|message| match message {
            Message::Text(text) => Message::Text(format!("chat: {text}")),
            binary => binary,
        });
    }
}

wsbox_guest::export_handler!(Router);
