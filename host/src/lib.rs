//! wsbox gives sandboxed WebAssembly components real WebSockets.
//!
//! Guests import `wsbox:websocket/types` (see `wit/websocket.wit`): a
//! `websocket` resource with WinHTTP's and IIS's close semantics. This crate
//! implements it on wasmtime with real sockets:
//!
//! - [`add_to_linker_async`] adds the interfaces to an embedder's own
//!   [`Linker`], over store data that implements [`WebSocketView`], and
//!   [`WebSocketCtxView::new_websocket_with`] hands a guest a websocket the
//!   embedder accepted itself, permessage-deflate included
//!   ([`accept_deflate`]); [`WebSocketCtx::finish`] ends an instance's
//!   connections;
//! - [`Runner`] runs a `client`-world command component, as `wsbox run`
//!   does;
//! - [`Config`] holds the outbound [`Policy`] (deny by default), the
//!   [`Limits`] and the [`Broker`] of `wsbox:websocket/topics`, local or
//!   linked to a NATS cluster ([`ClusterConfig`]);
//! - [`Server`] serves a `server`-world handler per [`Route`], as
//!   `wsbox serve` does: TLS ([`tls_server_config`]), origins
//!   ([`OriginPolicy`]), [`Metrics`], a [`Manifest`], and
//!   [`Server::reload`] without dropping connections.
//!
//! [`Linker`]: wasmtime::component::Linker
#![deny(missing_docs)]

#[allow(missing_docs)] // generated code: the WIT docs carry over, the glue has none
pub mod bindings;
mod budget;
mod client;
pub mod close_code;
mod config;
mod connection;
mod cpu;
mod deflate;
mod error;
mod escape;
mod frame_header;
pub mod handshake;
mod keepalive;
mod lifecycle;
mod limiter;
mod metrics;
pub mod policy;
mod reader;
mod runner;
mod sandbox;
mod serve;
mod sink;
mod site;
mod stats;
mod task;
mod tls;
mod topics;
mod topics_impl;
mod types;
mod types_impl;
pub mod units;
mod utf8;
mod view;

pub use close_code::CloseCode;
pub use config::{
    Config, ConnectDecision, ConnectHooks, ConnectRequest, Deciding, Limits, Resolver, Resolving,
    SystemResolver,
};
pub use connection::Role;
pub use deflate::{
    accept as accept_deflate, Accepted as DeflateAccepted, DeflateConfig, Params as DeflateParams,
    StreamParams as DeflateStreamParams,
};
pub use error::{Error, HostError, HostResult, Result};
pub use keepalive::KeepaliveConfig;
pub use metrics::Metrics;
pub use policy::{AllowPattern, Policy};
pub use runner::{Exit, Output, RunOutput, Runner};
pub use sandbox::{InstanceLimits, InstanceState};
#[cfg(feature = "bench")]
#[doc(hidden)] // the benchmark's plumbing (tests/bench), not an API
pub use serve::bench_support;
pub use serve::tls::server_config as tls_server_config;
pub use serve::{
    GuestLine, GuestOutput, Manifest, ManifestError, OriginPattern, OriginPatternError,
    OriginPolicy, OriginRefused, Route, ServeConfig, Server, TlsError,
};
pub use stats::{Percentiles, ServeStats};
pub use task::{panics, supervised};
pub use tls::client_config_with_ca;
pub use topics::{Broker, ClusterConfig, Subscription, MAX_TOPIC_BYTES};
pub use types::{State, WebSocket};
#[allow(deprecated)]
pub use view::add_to_linker;
pub use view::{add_to_linker_async, Upgraded, WebSocketCtx, WebSocketCtxView, WebSocketView};
