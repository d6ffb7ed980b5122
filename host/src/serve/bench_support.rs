//! What `wsbox serve` pays for each connection's fresh instance, measurable
//! without a connection: the benchmark's instantiation figure (issue 5,
//! `tests/bench`).
//!
//! [`HandlerPre::new`] compiles and pre-instantiates a handler the way
//! [`Server::new`](crate::Server::new) does (the same engine settings, with
//! or without the pooling allocator, the same linker: the code is shared), and
//! [`HandlerPre::instantiate`] makes the store and instance a connection gets
//! before `upgrade` is called.
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

use super::{handler::Handler, ServeConfig};
use crate::error::{Error, Result};
use crate::sandbox::{self, InstanceState};
use std::path::Path;
use std::time::Duration;
use wasmtime::Store;
use wasmtime_wasi::WasiCtxBuilder;

/// A handler component compiled and pre-instantiated as `wsbox serve` does
/// it, with the engine sized from `config` as `Server::new` sizes it.
pub struct HandlerPre {
    handler: Handler,
}

/// One live handler instance and its store; dropping it frees both (with the
/// pooling allocator, its slot goes back to the pool).
pub struct HandlerInstance {
    _store: Store<InstanceState>,
}

impl HandlerPre {
    /// Compiles `component` and checks that it is a `server`-world handler.
    pub fn new(component: impl AsRef<Path>, config: &ServeConfig) -> Result<HandlerPre> {
        Ok(HandlerPre {
            handler: Handler::load(component.as_ref(), config)?,
        })
    }

    /// How long reading and compiling the component took.
    pub fn compile_time(&self) -> Duration {
        self.handler.compile
    }

    /// A fresh store and instance, as a connection gets them before
    /// `upgrade` (guest output goes nowhere here, where `wsbox serve` sends
    /// it to its log).
    pub async fn instantiate(&self) -> Result<HandlerInstance> {
        let mut store = self.handler.store(WasiCtxBuilder::new().build());
        sandbox::cpu(&store)
            .run(self.handler.pre.instantiate_async(&mut store))
            .await
            .map_err(|e| Error::runtime("cannot instantiate the handler", e))?;
        Ok(HandlerInstance { _store: store })
    }
}
