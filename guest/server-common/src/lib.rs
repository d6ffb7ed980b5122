//! Bindings for the `wsbox:websocket/server` world, generated once for all
//! the sample handlers, plus the few helpers they share.
//!
//! The `types` interface is not generated again: its bindings come from
//! `wsbox-guest-common` (the `client` world), so a handler uses the very
//! same `Websocket`, `Message`, ... types as the client samples, and the
//! same `Describe` impls. Only the `handler` export is generated here.
//!
//! A handler is a library crate with `crate-type = ["cdylib"]`:
//!
//! ```ignore
//! use wsbox_guest_server::{Guest, UpgradeRequest, UpgradeResponse, Websocket};
//!
//! struct Handler;
//!
//! impl Guest for Handler {
//!     fn upgrade(request: UpgradeRequest) -> UpgradeResponse { ... }
//!     fn handle(conn: Websocket) { ... }
//! }
//!
//! wsbox_guest_server::export!(Handler);
//! ```
//!
//! A handler of your own can instead put its own `generate!` call in its
//! `lib.rs`: `world: "wsbox:websocket/server"` with `generate_all`, then
//! `export!(Handler);`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "wsbox:websocket/server",
    // Reuse the bindings of `wsbox-guest-common` for the imports.
    with: {
        "wsbox:websocket/types@0.1.0": wsbox_guest_common::wsbox::websocket::types,
        "wasi:io/poll@0.2.12": wsbox_guest_common::wasi::io::poll,
    },
    // Let the handler crates call `wsbox_guest_server::export!`.
    pub_export_macro: true,
    default_bindings_module: "wsbox_guest_server",
});

pub use exports::wsbox::websocket::handler::Guest;
pub use wsbox_guest_common::*;

/// Accepts an upgrade without a subprotocol or extra headers.
pub fn accept() -> UpgradeResponse {
    UpgradeResponse::Accept(AcceptOptions {
        protocol: None,
        headers: Vec::new(),
    })
}

/// The request target without its query string: `/chat` for `/chat?room=7`.
pub fn path_without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _query)| path)
}

/// Why [`echo_until_close`] stopped before the peer's close frame.
#[derive(Debug)]
pub enum EchoError {
    Receive(ErrorCode),
    Send(ErrorCode),
}

/// `receive error closed`, `send error other: broken pipe`, ...
impl Describe for EchoError {
    fn describe(&self) -> String {
        match self {
            EchoError::Receive(e) => format!("receive error {}", e.describe()),
            EchoError::Send(e) => format!("send error {}", e.describe()),
        }
    }
}

/// Receives messages and sends each back, passed through `reply`, until the
/// peer's close frame arrives; returns its status without answering it (see
/// [`answer_close`]). `receive` reassembles whole messages, so a message is
/// held in memory at once, up to the host's size limit.
pub fn echo_until_close(
    ws: &Websocket,
    mut reply: impl FnMut(Message) -> Message,
) -> Result<CloseStatus, EchoError> {
    loop {
        match ws.receive().map_err(EchoError::Receive)? {
            Incoming::Message(message) => ws.send(&reply(message)).map_err(EchoError::Send)?,
            Incoming::Close(status) => return Ok(status),
        }
    }
}

/// Answers the peer's close the way an echo server does: with the peer's own
/// code when it is one that may be sent, with an empty close frame when the
/// peer sent one (1005), and with 1000 otherwise (1004, 1014, 2999, ...,
/// codes only a receiving side may see).
pub fn answer_close(ws: &Websocket, peer: &CloseStatus) -> Result<(), ErrorCode> {
    let code = match peer.code {
        1005 => None,
        code if is_sendable(code) => Some(code),
        _ => Some(1000),
    };
    ws.close(code, "")
}

/// Whether `code` may go out in a close frame: 1000-1003, 1007-1013 and
/// 3000-4999 (RFC 6455 section 7.4 and the IANA registry).
pub fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}
