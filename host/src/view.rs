//! How an embedder's store data gives the host functions their state, and
//! the one call that adds the interface to a `Linker`.

use crate::config::Config;
use crate::connection::HostHandle;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// Per-instance websocket state: the configuration, the open count and the
/// connections' background tasks.
#[derive(Debug)]
pub struct WebSocketCtx {
    pub(crate) config: Arc<Config>,
    pub(crate) open: usize,
    tasks: Vec<JoinHandle<()>>,
    connections: Vec<HostHandle>,
    /// The inbound bytes all of this instance's websockets may buffer.
    pub(crate) inbound_budget: Arc<Semaphore>,
}

impl WebSocketCtx {
    /// State for one instance under `config`.
    pub fn new(config: Arc<Config>) -> Self {
        let budget = config
            .limits
            .instance_inbound_buffer
            .clamp(1, Semaphore::MAX_PERMITS);
        WebSocketCtx {
            inbound_budget: Arc::new(Semaphore::new(budget)),
            config,
            open: 0,
            tasks: Vec::new(),
            connections: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn track(&mut self, task: JoinHandle<()>, host: HostHandle) {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task);
        self.connections.retain(|c| !c.is_closed());
        self.connections.push(host);
    }

    /// Sends a close frame with `code` on every open websocket of this
    /// instance that has not sent one yet (graceful shutdown). The guest
    /// still receives the peers' answers.
    pub fn close_all(&self, code: u16) {
        for connection in &self.connections {
            connection.close_now(code);
        }
    }

    /// Sets the close code sent for websockets this instance lets go of
    /// without closing them (for instance 1011 after a trap).
    pub fn set_drop_code(&self, code: u16) {
        for connection in &self.connections {
            connection.set_drop_code(code);
        }
    }

    /// Takes the background tasks of this instance's connections. Take them
    /// before dropping the `Store`, then await them: dropping the store
    /// starts the closing handshake of every websocket the guest left open,
    /// and the tasks end when it is done (within the close timeout).
    pub fn take_tasks(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.tasks)
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

/// Adds `wsbox:websocket/types` to `linker`. WASI (for `wasi:io/poll`) is
/// added separately, with `wasmtime_wasi::p2::add_to_linker_async`.
///
/// ```no_run
/// # use wasmtime::component::Linker;
/// # fn f<T: wsbox::WebSocketView + wasmtime_wasi::WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
/// wasmtime_wasi::p2::add_to_linker_async(linker)?;
/// wsbox::add_to_linker(linker)?;
/// # Ok(()) }
/// ```
pub fn add_to_linker<T: WebSocketView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    crate::bindings::types::add_to_linker::<T, HasWebSocket>(linker, T::websocket)
}
