//! What `wsbox serve` pays for each connection's fresh instance, measurable
//! without a connection: the benchmark's instantiation figure (issue 5,
//! `tests/bench`).
//!
//! [`HandlerPre::new`] compiles and pre-instantiates a handler the way
//! [`Server::new`](crate::Server::new) does (the same engine settings, with
//! or without the pooling allocator, the same linker), and
//! [`HandlerPre::instantiate`] makes the store and instance a connection gets
//! before `upgrade` is called. Keep it in step with `server.rs`.
//!
//! ```no_run
//! # async fn demo() -> wsbox::Result<()> {
//! use wsbox::bench_support::HandlerPre;
//! let config = wsbox::ServeConfig { pooling: true, ..Default::default() };
//! let pre = HandlerPre::new("echo.wasm", &config)?;
//! let start = std::time::Instant::now();
//! let instance = pre.instantiate().await?;
//! println!("compiled in {:?}, instantiated in {:?}", pre.compile_time(), start.elapsed());
//! drop(instance);
//! # Ok(()) }
//! ```

use crate::bindings::ServerPre;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runner::{load_component, one_line};
use crate::sandbox::{self, InstanceState};
use crate::server::ServeConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;

/// A handler component compiled and pre-instantiated as `wsbox serve` does
/// it, with the engine sized from `config` as `Server::new` sizes it.
pub struct HandlerPre {
    engine: Engine,
    pre: ServerPre<InstanceState>,
    websocket: Arc<Config>,
    compile: Duration,
}

/// One live handler instance and its store; dropping it frees both (with the
/// pooling allocator, its slot goes back to the pool).
pub struct HandlerInstance {
    _store: Store<InstanceState>,
}

impl HandlerPre {
    /// Compiles `component` and checks that it is a `server`-world handler.
    pub fn new(component: impl AsRef<Path>, config: &ServeConfig) -> Result<HandlerPre> {
        let instances = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
        let engine = sandbox::engine(
            config
                .pooling
                .then_some((instances, &config.websocket.limits)),
        )?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| crate::add_to_linker(&mut linker))
            .map_err(|e| Error::Runtime(format!("{e:#}")))?;
        let path = component.as_ref();
        let start = Instant::now();
        let component = load_component(&engine, path)?;
        let compile = start.elapsed();
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            path: path.display().to_string(),
            world: "wsbox:websocket/server",
            reason: one_line(&e),
        };
        let pre =
            ServerPre::new(linker.instantiate_pre(&component).map_err(wrong)?).map_err(wrong)?;
        Ok(HandlerPre {
            engine,
            pre,
            websocket: Arc::new(config.websocket.clone()),
            compile,
        })
    }

    /// How long reading and compiling the component took.
    pub fn compile_time(&self) -> Duration {
        self.compile
    }

    /// A fresh store and instance, as a connection gets them before
    /// `upgrade` (guest output goes nowhere here, where `wsbox serve` sends
    /// it to its log).
    pub async fn instantiate(&self) -> Result<HandlerInstance> {
        let mut store = sandbox::store(
            &self.engine,
            WasiCtxBuilder::new().build(),
            self.websocket.clone(),
        );
        self.pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Error::Runtime(sandbox::describe_trap(&e, &self.websocket.limits)))?;
        Ok(HandlerInstance { _store: store })
    }
}
