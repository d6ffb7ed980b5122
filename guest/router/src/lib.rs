//! `router`: a handler that decides on the upgrade. Only `/chat` (with any
//! query string) is served, and only to clients that offer the `chat.v1`
//! subprotocol; text comes back prefixed with `chat: `.
//!
//! - `/chat` offering `chat.v1`: 101, `Sec-WebSocket-Protocol: chat.v1`
//!   and an extra `X-Router: chat` header.
//! - `/chat` without `chat.v1`: 400.
//! - any other path: 404.

use wsbox_guest_server::{
    answer_close, echo_until_close, path_without_query, AcceptOptions, Guest, Message,
    UpgradeRequest, UpgradeResponse, Websocket,
};

const PROTOCOL: &str = "chat.v1";

struct Router;

impl Guest for Router {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        if path_without_query(&request.path) != "/chat" {
            return UpgradeResponse::Reject(404);
        }
        if !request.protocols.iter().any(|p| p == PROTOCOL) {
            return UpgradeResponse::Reject(400);
        }
        // The selected protocol must be one the client offered; the host
        // answers 500 otherwise.
        UpgradeResponse::Accept(AcceptOptions {
            protocol: Some(PROTOCOL.into()),
            headers: vec![("X-Router".into(), "chat".into())],
        })
    }

    fn handle(conn: Websocket) {
        let reply = |message| match message {
            Message::Text(text) => Message::Text(format!("chat: {text}")),
            binary => binary,
        };
        let Ok(status) = echo_until_close(&conn, reply) else {
            return;
        };
        let _ = answer_close(&conn, &status);
    }
}

wsbox_guest_server::export!(Router);
