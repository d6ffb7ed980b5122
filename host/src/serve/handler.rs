//! The handler component: compiled once, checked to be a `server`-world
//! handler, and pre-instantiated, as every connection's instance is made
//! from it.

use super::ServeConfig;
use crate::bindings::ServerPre;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runner::load_component;
use crate::sandbox::{self, InstanceLimits, InstanceState};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

/// A handler component compiled and pre-instantiated, as every
/// connection's instance is made from it.
pub(crate) struct Handler {
    engine: Engine,
    pub(crate) pre: ServerPre<InstanceState>,
    pub(crate) websocket: Arc<Config>,
    /// The sandbox of each instance.
    pub(crate) instance: InstanceLimits,
    /// How long reading and compiling the component took.
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub(crate) compile: Duration,
}

impl Handler {
    /// Makes the engine `config` asks for (with the pooling allocator sized
    /// for `max_connections`, or not), compiles the component and checks
    /// that it is a `server`-world handler.
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub(crate) fn load(path: &Path, config: &ServeConfig) -> Result<Handler> {
        let instances = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
        let engine = sandbox::engine(config.pooling.then_some((instances, &config.instance)))?;
        Handler::load_with(
            &engine,
            path,
            Arc::new(config.websocket.clone()),
            config.instance.clone(),
        )
    }

    /// Compiles the component with `engine` and checks that it is a
    /// `server`-world handler; its instances get `websocket` and
    /// `instance`.
    pub(crate) fn load_with(
        engine: &Engine,
        path: &Path,
        websocket: Arc<Config>,
        instance: InstanceLimits,
    ) -> Result<Handler> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| crate::add_to_linker_async(&mut linker))
            .map_err(|e| Error::runtime("cannot add WASI and wsbox:websocket to the linker", e))?;
        let start = Instant::now();
        let component = load_component(engine, path)?;
        let compile = start.elapsed();
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            path: path.display().to_string(),
            world: "wsbox:websocket/server",
            source: e.into(),
        };
        let pre =
            ServerPre::new(linker.instantiate_pre(&component).map_err(wrong)?).map_err(wrong)?;
        Ok(Handler {
            engine: engine.clone(),
            pre,
            websocket,
            instance,
            compile,
        })
    }

    /// A store for one instance, with `wasi` as its WASI context.
    pub(crate) fn store(&self, wasi: WasiCtx) -> Store<InstanceState> {
        sandbox::store(&self.engine, wasi, self.websocket.clone(), &self.instance)
    }
}
