//! How an embedder's store data gives the host functions their state, and
//! the one call that adds the interface to a `Linker`.

use crate::bindings::types::ErrorCode;
use crate::close_code::CloseCode;
use crate::config::Config;
use crate::connection::{self, Link, Role};
use crate::deflate::{Compressor, Params as DeflateParams};
use crate::error::HostResult;
use crate::types::{Deflate, WebSocket};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Per-instance websocket state: the configuration, the websocket slots and
/// the connections' background tasks.
#[derive(Debug)]
pub struct WebSocketCtx {
    pub(crate) config: Arc<Config>,
    /// One permit per websocket, held until its TCP connection is gone.
    slots: Arc<Semaphore>,
    tasks: Vec<JoinHandle<Option<()>>>,
    connections: Vec<Arc<Link>>,
    /// The inbound bytes all of this instance's websockets may buffer.
    pub(crate) inbound_budget: Arc<Semaphore>,
    /// This instance's joins and subscriptions.
    pub(crate) topics: crate::topics::InstanceTopics,
}

impl WebSocketCtx {
    /// State for one instance under `config`.
    pub fn new(config: Arc<Config>) -> Self {
        let limits = &config.limits;
        WebSocketCtx {
            inbound_budget: Arc::new(Semaphore::new(crate::reader::buffer_permits(
                limits.instance_inbound_buffer,
            ))),
            slots: Arc::new(Semaphore::new(
                limits.max_websockets.min(Semaphore::MAX_PERMITS),
            )),
            topics: crate::topics::InstanceTopics::new(&config),
            config,
            tasks: Vec::new(),
            connections: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A websocket slot, or `limit-exceeded` when the instance has the
    /// maximum number of connections whose TCP is not gone yet.
    pub(crate) fn take_slot(&self) -> HostResult<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ErrorCode::LimitExceeded(format!(
                "this instance already has {} websockets whose connections are not closed yet \
                 (the maximum; raise it with --max-websockets)",
                self.config.limits.max_websockets
            ))
            .into()
        })
    }

    /// Starts a connection over an upgraded stream, holding `slot` until
    /// its socket is closed; `deflate` is what the handshake negotiated of
    /// permessage-deflate.
    pub(crate) fn start<S>(
        &mut self,
        stream: S,
        upgraded: Upgraded,
        slot: OwnedSemaphorePermit,
    ) -> WebSocket
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let connection::Connection {
            link,
            inbound,
            task,
        } = connection::spawn(
            stream,
            upgraded.leftover,
            upgraded.role,
            &self.config,
            self.inbound_budget.clone(),
            slot,
            upgraded.deflate.map(|p| p.receive),
        );
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task);
        self.connections.retain(|c| !c.is_done());
        self.connections.push(link.clone());
        let deflate = upgraded.deflate.map(|params| Deflate {
            compressor: Compressor::new(params.send),
            config: self.config.deflate.clone(),
        });
        WebSocket::new(link, inbound, upgraded.protocol, deflate)
    }

    /// Sends a close frame with `code` on every open websocket of this
    /// instance that has not sent one yet (graceful shutdown). The guest
    /// still receives the peers' answers.
    pub fn close_all(&self, code: CloseCode) {
        for connection in &self.connections {
            connection.close_now(code);
        }
    }

    /// Sets the close code sent for websockets this instance lets go of
    /// without closing them (for instance 1011 after a trap).
    pub fn set_drop_code(&self, code: CloseCode) {
        for connection in &self.connections {
            connection.set_drop_code(code);
        }
    }

    /// Ends the instance's connections: every websocket still open is
    /// closed as if the guest had let go of it (1001 from a client, 1000
    /// from a handler, 1011 after [`set_drop_code`](Self::set_drop_code),
    /// or the echo of a close the peer sent first). The future it returns
    /// waits until their connections have ended, each within about twice
    /// the close timeout; one still running then is cut off. Call it when
    /// the guest's export returned or trapped, before or after dropping the
    /// `Store`: awaiting it makes sure the close frames got out.
    pub fn finish(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        for connection in &self.connections {
            connection.release();
        }
        let tasks = std::mem::take(&mut self.tasks);
        let wait = self.config.limits.close_timeout * 2 + std::time::Duration::from_secs(1);
        async move {
            let deadline = tokio::time::Instant::now() + wait;
            for mut task in tasks {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    tracing::warn!("a connection outlived its instance by {wait:?}: closing it");
                    task.abort();
                    let _ = task.await;
                }
            }
        }
    }
}

impl WebSocketCtxView<'_> {
    /// Starts a connection over an upgraded stream and puts its websocket
    /// in the table, without permessage-deflate: [`new_websocket_with`]
    /// with `Upgraded::new(role)`, `leftover` and `protocol`.
    ///
    /// [`new_websocket_with`]: Self::new_websocket_with
    pub fn new_websocket<S>(
        &mut self,
        stream: S,
        leftover: &[u8],
        role: Role,
        protocol: Option<String>,
    ) -> wasmtime::Result<Resource<WebSocket>>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let upgraded = Upgraded::new(role)
            .with_leftover(leftover)
            .with_protocol(protocol);
        self.new_websocket_with(stream, upgraded)
    }

    /// Starts a connection over an upgraded stream and puts its websocket
    /// in the table, for a guest to use: the way to hand a guest a
    /// websocket that the embedder accepted itself (as
    /// `wasmtime-wasi-http`'s `new_incoming_request` does for requests).
    /// `stream` has finished its HTTP/1.1 upgrade; `upgraded` says which
    /// end this is, the subprotocol and permessage-deflate parameters the
    /// handshake settled ([`accept_deflate`](crate::accept_deflate)), and
    /// any bytes read past the upgrade head. `wsbox serve` hands its
    /// handlers their websockets with this.
    ///
    /// Fails when the instance has `max_websockets` connections whose TCP
    /// is not gone yet (the error's source is the
    /// [`ErrorCode::LimitExceeded`]), or when its resource table is full.
    pub fn new_websocket_with<S>(
        &mut self,
        stream: S,
        upgraded: Upgraded,
    ) -> wasmtime::Result<Resource<WebSocket>>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let slot = match self.ctx.take_slot() {
            Ok(slot) => slot,
            Err(crate::HostError::Code(code)) => return Err(wasmtime::Error::new(code)),
            Err(crate::HostError::Trap(e)) => return Err(e),
        };
        Ok(self.push(stream, upgraded, slot)?)
    }

    /// Starts a connection with a slot already taken and puts its websocket
    /// in the table.
    pub(crate) fn push<S>(
        &mut self,
        stream: S,
        upgraded: Upgraded,
        slot: OwnedSemaphorePermit,
    ) -> Result<Resource<WebSocket>, wasmtime::component::ResourceTableError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let ws = self.ctx.start(stream, upgraded, slot);
        self.table.push(ws)
    }
}

/// What the upgrade settled for a connection about to start: which end it
/// is, the subprotocol, permessage-deflate, and the bytes read past the
/// upgrade head.
///
/// ```
/// # fn f(deflate: &wsbox::DeflateConfig, offers: &[&str]) {
/// use wsbox::{accept_deflate, Role, Upgraded};
///
/// let accepted = accept_deflate(deflate, offers.iter().copied());
/// // Answer the 101 with `Sec-WebSocket-Extensions: {accepted.response}`.
/// let upgraded = Upgraded::new(Role::Server)
///     .with_protocol(Some("chat".into()))
///     .with_deflate(accepted.map(|a| a.params));
/// # drop(upgraded); }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Upgraded {
    /// Bytes read past the upgrade head. Default: none.
    pub leftover: BytesMut,
    /// Which end of the connection the host is.
    pub role: Role,
    /// The subprotocol the handshake chose. Default: none.
    pub protocol: Option<String>,
    /// permessage-deflate, when negotiated. Default: off.
    pub deflate: Option<DeflateParams>,
}

impl Upgraded {
    /// A connection of `role`, with no subprotocol, no compression and no
    /// leftover bytes.
    pub fn new(role: Role) -> Self {
        Upgraded {
            leftover: BytesMut::new(),
            role,
            protocol: None,
            deflate: None,
        }
    }

    /// With bytes read past the upgrade head, which the connection reads
    /// first.
    pub fn with_leftover(mut self, leftover: &[u8]) -> Self {
        self.leftover = BytesMut::from(leftover);
        self
    }

    /// With the subprotocol the handshake chose.
    pub fn with_protocol(mut self, protocol: Option<String>) -> Self {
        self.protocol = protocol;
        self
    }

    /// With the permessage-deflate parameters the handshake settled
    /// (`None`: uncompressed).
    pub fn with_deflate(mut self, deflate: Option<DeflateParams>) -> Self {
        self.deflate = deflate;
        self
    }
}

/// What the host functions borrow from the store: the websocket state and
/// the resource table the websockets live in.
pub struct WebSocketCtxView<'a> {
    /// Per-instance websocket state.
    pub ctx: &'a mut WebSocketCtx,
    /// The instance's resource table, shared with WASI.
    pub table: &'a mut ResourceTable,
}

/// Implemented by an embedder's store data to give the host functions their
/// state, like `wasmtime_wasi::WasiView`.
///
/// ```
/// use std::sync::Arc;
/// use wasmtime::component::ResourceTable;
/// use wsbox::{Config, WebSocketCtx, WebSocketCtxView, WebSocketView};
///
/// struct MyState {
///     table: ResourceTable,
///     websockets: WebSocketCtx,
/// }
///
/// impl WebSocketView for MyState {
///     fn websocket(&mut self) -> WebSocketCtxView<'_> {
///         WebSocketCtxView { ctx: &mut self.websockets, table: &mut self.table }
///     }
/// }
///
/// let state = MyState {
///     table: ResourceTable::new(),
///     websockets: WebSocketCtx::new(Arc::new(Config::default())),
/// };
/// # drop(state);
/// ```
pub trait WebSocketView: Send {
    /// Borrows the websocket state and the resource table.
    fn websocket(&mut self) -> WebSocketCtxView<'_>;
}

struct HasWebSocket;

impl HasData for HasWebSocket {
    type Data<'a> = WebSocketCtxView<'a>;
}

/// Adds `wsbox:websocket/types` and `wsbox:websocket/topics` to an async
/// `linker`, as `wasmtime_wasi::p2::add_to_linker_async` adds WASI. WASI
/// itself (for `wasi:io/poll`) is added separately.
///
/// ```no_run
/// # use wasmtime::component::Linker;
/// # fn f<T: wsbox::WebSocketView + wasmtime_wasi::WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
/// wasmtime_wasi::p2::add_to_linker_async(linker)?;
/// wsbox::add_to_linker_async(linker)?;
/// # Ok(()) }
/// ```
pub fn add_to_linker_async<T: WebSocketView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    crate::bindings::types::add_to_linker::<T, HasWebSocket>(linker, T::websocket)?;
    crate::bindings::topics::add_to_linker::<T, HasWebSocket>(linker, T::websocket)
}

/// The former name of [`add_to_linker_async`].
#[deprecated(
    since = "0.1.0",
    note = "renamed to `add_to_linker_async`, as wasmtime names its async linkers"
)]
pub fn add_to_linker<T: WebSocketView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    add_to_linker_async(linker)
}
