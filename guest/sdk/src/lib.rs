//! `wsbox-guest`: write wsbox plugins in plain Rust.
//!
//! A wsbox guest is a WebAssembly component built for `wasm32-wasip2` that
//! imports `wsbox:websocket` (see `wit/websocket.wit`). This crate wraps the
//! generated bindings in a few obvious calls, with errors as values and an
//! iterator over messages:
//!
//! - [`WebSocket::connect`] and [`WebSocket::builder`] (subprotocols,
//!   headers) for a client;
//! - [`WebSocket::send_text`], [`WebSocket::send_binary`],
//!   [`WebSocket::fragments`] to send;
//! - [`WebSocket::messages`], an iterator that ends at the peer's close,
//!   and [`WebSocket::receive`] / [`WebSocket::receive_fragment`];
//! - [`WebSocket::close`], [`WebSocket::shutdown`], [`WebSocket::abort`] and
//!   [`WebSocket::close_status`], with the [`CloseCode`]s of RFC 6455 and
//!   WinHTTP;
//! - [`poll`] to wait on several sockets at once, [`poll_any`] for sockets
//!   and subscriptions together;
//! - topics: [`WebSocket::join`] and [`WebSocket::leave`], [`publish`] and
//!   [`publish_except`], and a [`Subscription`] of the guest's own;
//! - [`Handler`] and [`export_handler!`] for a server-side handler
//!   (`wsbox serve`).
//!
//! A client (`wsbox run --allow ws://127.0.0.1:9001 client.wasm`):
//!
//! ```no_run
//! use wsbox_guest::{CloseCode, Message, WebSocket};
//!
//! fn main() -> Result<(), wsbox_guest::Error> {
//!     let ws = WebSocket::connect("ws://127.0.0.1:9001/")?;
//!     ws.send_text("hello")?;
//!     if let Some(Message::Text(reply)) = ws.messages().next().transpose()? {
//!         println!("reply: {reply}");
//!     }
//!     ws.close(CloseCode::Normal, "done")?;
//!     println!("the server said {:?}", ws.close_status());
//!     Ok(())
//! }
//! ```
//!
//! An echo handler (`wsbox serve echo.wasm`), in a crate with
//! `crate-type = ["cdylib"]`:
//!
//! ```no_run
//! use wsbox_guest::{Handler, WebSocket};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn handle(ws: WebSocket) {
//!         ws.messages().map_while(Result::ok).for_each(|m| drop(ws.send(&m)));
//!         if let Ok(status) = ws.close_status() {
//!             let _ = ws.answer_close(&status);
//!         }
//!     }
//! }
//!
//! wsbox_guest::export_handler!(Echo);
//! ```
//!
//! The bindings come from `wsbox-guest-common` (the `client` world and the
//! shared `types`) and `wsbox-guest-server` (the `handler` export); [`raw`]
//! gives them for what the SDK does not cover.

#![warn(missing_docs)]

mod close;
mod error;
mod server;
mod socket;
mod topics;

pub use close::{CloseCode, CloseStatus, CloseStatusError};
pub use error::Error;
#[doc(hidden)]
pub use server::__private;
pub use server::{Handler, UpgradeRequest, UpgradeResponse};
pub use socket::{
    poll, Builder, Fragment, FragmentWriter, Incoming, IncomingFragment, Messages, WebSocket,
};
pub use topics::{poll_any, publish, publish_except, Subscription, SubscriptionMessages, Waitable};
/// The WIT `error-code` that an [`Error`] wraps, to match on.
///
/// ```no_run
/// # let e: wsbox_guest::Error = wsbox_guest::ErrorCode::Closed.into();
/// if let wsbox_guest::ErrorCode::HandshakeRejected(status) = e.code() {
///     println!("HTTP {status}");
/// }
/// ```
pub use wsbox_guest_common::ErrorCode;
/// A whole message: `Message::Text(String)` or `Message::Binary(Vec<u8>)`.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// ws.send(&wsbox_guest::Message::Text("hi".into()))?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub use wsbox_guest_common::Message;
/// The kind of a message: `MessageKind::Text` or `MessageKind::Binary`.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// ws.fragments(wsbox_guest::MessageKind::Binary).finish(&[1, 2, 3])?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub use wsbox_guest_common::MessageKind;

/// The generated bindings of the `client` world (`wsbox-guest-common`), for
/// what the SDK does not cover.
///
/// ```no_run
/// let raw = wsbox_guest::raw::connect("ws://127.0.0.1:9001/");
/// ```
pub mod raw {
    pub use wsbox_guest_common::*;
}
