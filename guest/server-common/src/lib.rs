//! Bindings for the `wsbox:websocket/server` world: the `handler` export,
//! generated once. The SDK (`wsbox-guest`, `../sdk`) builds its `Handler`
//! trait and `export_handler!` macro on them; the sample handlers use the
//! SDK.
//!
//! The `types` and `topics` interfaces are not generated again: their bindings come from
//! `wsbox-guest-common` (the `client` world), so a handler uses the very
//! same `Websocket`, `Message`, ... types as the clients, and the same
//! `Describe` impls. Only the `handler` export is generated here.
//!
//! To use the raw bindings directly, a handler (a library crate with
//! `crate-type = ["cdylib"]`) implements `Guest` and exports it:
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
        "wsbox:websocket/topics@0.1.0": wsbox_guest_common::wsbox::websocket::topics,
        "wasi:io/poll@0.2.12": wsbox_guest_common::wasi::io::poll,
    },
    // Let other crates call `wsbox_guest_server::export!` (the SDK's
    // `export_handler!` does, `with_types_in` this crate).
    pub_export_macro: true,
    default_bindings_module: "wsbox_guest_server",
});

pub use exports::wsbox::websocket::handler::Guest;
pub use wsbox_guest_common::*;
