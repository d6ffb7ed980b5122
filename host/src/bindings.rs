//! Rust bindings generated from `wit/websocket.wit`, for the `server` world:
//! it imports `types` and `topics`, which is all a `client` world guest
//! imports too, and exports `handler`.
//!
//! `wasi:io` is mapped onto wasmtime-wasi's own bindings, so a `pollable`
//! returned by `subscribe` is wasmtime-wasi's [`DynPollable`] and works with
//! `wasi:io/poll.poll` like any other.
//!
//! [`DynPollable`]: wasmtime_wasi::p2::DynPollable

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wsbox:websocket/server",
    imports: { default: async | trappable },
    exports: { default: async },
    trappable_error_type: {
        "wsbox:websocket/types.error-code" => crate::error::HostError,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wsbox:websocket/types.websocket": crate::types::WebSocket,
        "wsbox:websocket/topics.subscription": crate::topics::Subscription,
    },
    require_store_data_send: true,
    additional_derives: [PartialEq, Eq],
});

pub use self::exports::wsbox::websocket::handler;
pub use self::wsbox::websocket::topics;
pub use self::wsbox::websocket::types;
