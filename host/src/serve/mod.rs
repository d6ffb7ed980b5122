//! `wsbox serve`: every incoming WebSocket connection gets a fresh, isolated
//! instance of a `server`-world handler, which decides on the upgrade and
//! then owns the connection (the IIS `IWebSocketContext` half).
//!
//! One job per file: `config` (the settings), `handler` (the compiled,
//! pre-instantiated component), `budget` (how many instances fit in the
//! kernel's memory mappings), `connection` (one connection from accept to
//! the instance's end), `guest_log` (the instances' output); and the parts
//! of a production server around them: `route` (which handler serves a
//! path, and the table a reload replaces), `tls`, `origin`, `metrics_http`
//! (`/metrics` over the crate's [`Metrics`]), `manifest`.

#[cfg(feature = "bench")]
pub mod bench_support;
mod budget;
mod config;
mod connection;
mod guest_log;
pub(crate) mod handler;
pub(crate) mod manifest;
pub(crate) mod metrics_http;
pub(crate) mod origin;
mod route;
pub(crate) mod tls;

pub use config::{GuestLine, GuestOutput, ServeConfig};
pub use manifest::{Manifest, ManifestError};
pub use origin::{OriginPattern, OriginPatternError, OriginPolicy, OriginRefused};
pub use route::Route;
pub use tls::TlsError;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::stats::{Latencies, ServeStats};
use budget::MapBudget;
use route::{LoadedRoute, Table};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use wasmtime::Engine;

/// Loaded handler components, one per route, ready to serve.
///
/// ```no_run
/// # async fn demo() -> wsbox::Result<()> {
/// let server = wsbox::Server::new("echo.wasm", wsbox::ServeConfig::default())?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// server.serve(listener, async { tokio::signal::ctrl_c().await.unwrap() }).await
/// # }
/// ```
///
/// Every route's component is compiled with one engine, shared by the
/// routes and by the versions a reload brings: one epoch thread, and with
/// `pooling`, one pool sized for `max_connections` whatever the routes.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ServeConfig,
    engine: Engine,
    /// With the pooling allocator, the memory each pool slot holds: no
    /// route may give its instances more.
    pool_memory: Option<usize>,
    /// The routes in service; a reload replaces the table.
    routes: RwLock<Arc<Table>>,
    pub(crate) slots: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) metrics: Arc<Metrics>,
    /// Set while `serve` accepts connections.
    accepting: AtomicBool,
    pub(crate) accept_to_handle: Latencies,
    pub(crate) request_to_handle: Latencies,
    pub(crate) instantiate: Latencies,
}

impl Inner {
    /// The route in service for a request target.
    pub(crate) fn route(&self, target: &str) -> Option<Arc<LoadedRoute>> {
        self.table().find(target)
    }

    /// Accepting, and every route's cluster connected (if it has one).
    fn ready(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
            && self
                .table()
                .iter()
                .all(|route| route.handler.websocket.broker.connected())
    }

    fn table(&self) -> Arc<Table> {
        match self.routes.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Server {
    /// Compiles the component, checks that it is a `server`-world handler
    /// that can be instantiated, and that `max_connections` instances of it
    /// fit in the kernel's memory-mapping limit. It serves every path, with
    /// `config`'s `websocket`, `instance` and `origins`.
    pub fn new(component: impl AsRef<Path>, config: ServeConfig) -> Result<Server> {
        let route = Route {
            path: "/".into(),
            component: component.as_ref().to_path_buf(),
            websocket: config.websocket.clone(),
            instance: config.instance.clone(),
            origins: config.origins.clone(),
        };
        Server::with_routes(vec![route], config)
    }

    /// Like [`Server::new`], with several routes, each its own component,
    /// websocket configuration, sandbox and origins; `config`'s
    /// `websocket`, `instance` and `origins` are not used.
    pub fn with_routes(routes: Vec<Route>, config: ServeConfig) -> Result<Server> {
        let budget = MapBudget::measure();
        if let (Some(budget), true) = (budget, config.pooling) {
            // The pool maps every slot's stack up front: a pool too big
            // for the limit cannot even be made.
            budget.check(&config, budget::POOLED_INSTANCE_ESTIMATE)?;
        }
        let pool_memory = config
            .pooling
            .then(|| routes.iter().map(|r| r.instance.max_memory).max())
            .flatten();
        let engine = match pool_memory {
            Some(max_memory) => {
                let instances = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
                let limits = crate::InstanceLimits {
                    max_memory,
                    ..config.instance.clone()
                };
                crate::sandbox::engine(Some((instances, &limits)))?
            }
            None => crate::sandbox::engine(None)?,
        };
        let metrics = Arc::new(Metrics::new());
        let table = Table::load(&engine, &routes, &metrics)?;
        let probes = budget::PROBES.min(config.max_connections.saturating_sub(1));
        let mut per_instance = None;
        for loaded in table.iter() {
            let cost = budget::measure_instance(&loaded.handler, probes, &loaded.component)?;
            per_instance = per_instance.max(cost);
        }
        if let (Some(budget), Some(per_instance)) = (budget, per_instance) {
            budget.check(&config, per_instance)?;
        }
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let handshakes = Arc::new(Semaphore::new(config.max_handshakes.max(1)));
        let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        Ok(Server {
            inner: Arc::new(Inner {
                config,
                engine,
                pool_memory,
                routes: RwLock::new(Arc::new(table)),
                slots,
                handshakes,
                tls,
                metrics,
                accepting: AtomicBool::new(false),
                accept_to_handle: Latencies::default(),
                request_to_handle: Latencies::default(),
                instantiate: Latencies::default(),
            }),
        })
    }

    /// Compiles `routes` and instantiates each component once; if all of
    /// them can serve, they replace the routes in service: new connections
    /// get the new versions, and the connections already open keep their
    /// instance of the old version until they end. If any cannot, nothing
    /// changes and the error says which and why.
    ///
    /// It compiles on the calling thread: from async code, call it in
    /// `tokio::task::spawn_blocking`.
    pub fn reload(&self, routes: Vec<Route>) -> Result<()> {
        if let Some(pool) = self.inner.pool_memory {
            if let Some(route) = routes.iter().find(|r| r.instance.max_memory > pool) {
                return Err(Error::Serve(format!(
                    "route `{}` asks for {} bytes of memory per instance, but the pool was made \
                     at start-up for {pool}: restart wsbox to raise max-memory with --pooling",
                    route.path, route.instance.max_memory
                )));
            }
        }
        let table = Table::load(&self.inner.engine, &routes, &self.inner.metrics)?;
        for loaded in table.iter() {
            budget::measure_instance(&loaded.handler, 0, &loaded.component)?;
        }
        let table = Arc::new(table);
        match self.inner.routes.write() {
            Ok(mut routes) => *routes = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
        Ok(())
    }

    /// The server's metrics (see [`Metrics`]), as `/metrics` serves them.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// Whether the server is ready for traffic: `serve` is accepting
    /// connections, and the topics' cluster is connected when there is
    /// one.
    pub fn ready(&self) -> bool {
        self.inner.ready()
    }

    /// Serves `/metrics` (the Prometheus text of [`Server::metrics`]),
    /// `/healthz` (200 while the process is up) and `/readyz` (200 when
    /// [`Server::ready`], else 503) on `listener` until `shutdown`
    /// completes.
    pub async fn serve_metrics(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let server = Arc::downgrade(&self.inner);
        let ready = Arc::new(move || server.upgrade().is_some_and(|inner| inner.ready()));
        metrics_http::serve(listener, self.inner.metrics.clone(), ready, shutdown).await
    }

    /// What the server measured so far: accept-to-handler and instantiation
    /// latencies, and the host's task panics in this process.
    pub fn stats(&self) -> ServeStats {
        ServeStats {
            accept_to_handle: self.inner.accept_to_handle.summary(),
            request_to_handle: self.inner.request_to_handle.summary(),
            instantiate: self.inner.instantiate.summary(),
            panics: crate::task::panics(),
        }
    }

    /// Serves connections from `listener` until `shutdown` completes, over
    /// TLS when the configuration has a certificate. Then it stops
    /// accepting, sends 1001 (going away) on every open connection, and
    /// waits for the handlers to finish, at most the shutdown timeout.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        self.inner.accepting.store(true, Ordering::SeqCst);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, remote)) => {
                        let accepted = Instant::now();
                        let Ok(handshake) = self.inner.handshakes.clone().try_acquire_owned() else {
                            self.inner.metrics.handshake_failed(crate::metrics::HandshakeFailure::OverLimit);
                            tracing::warn!(%remote, "{} connections are in their handshake (the maximum): closed", self.inner.config.max_handshakes);
                            continue;
                        };
                        let accepted = connection::Accepted { tcp, remote, at: accepted, handshake };
                        let connection = connection::run(self.inner.clone(), accepted, stopped.clone());
                        connections.spawn(crate::task::supervised("server connection", connection));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: back off a little.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        self.inner.accepting.store(false, Ordering::SeqCst);
        drop(listener);
        let _ = stop.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(self.inner.config.shutdown_timeout, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown timeout: dropping {} connections",
                connections.len()
            );
        }
        Ok(())
    }
}
