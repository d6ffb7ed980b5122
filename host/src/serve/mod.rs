//! `wsbox serve`: every incoming WebSocket connection gets a fresh, isolated
//! instance of a `server`-world handler, which decides on the upgrade and
//! then owns the connection (the IIS `IWebSocketContext` half).
//!
//! One job per file: `config` (the settings), `handler` (the compiled,
//! pre-instantiated component), `budget` (how many instances fit in the
//! kernel's memory mappings), `connection` (one connection from accept to
//! the instance's end); and the parts of a production server around them:
//! `tls`, `origin`, `metrics` and `metrics_http`, `manifest`, `keepalive`.

mod budget;
mod config;
mod connection;
pub(crate) mod handler;

// Building blocks, not yet wired into the server.
#[allow(dead_code)]
pub(crate) mod keepalive;
#[allow(dead_code)]
pub(crate) mod manifest;
#[allow(dead_code)]
pub(crate) mod metrics;
#[allow(dead_code)]
pub(crate) mod metrics_http;
#[allow(dead_code)]
pub(crate) mod origin;
#[allow(dead_code)]
pub(crate) mod tls;

pub use config::{GuestOutput, ServeConfig};

use crate::error::Result;
use crate::stats::{Latencies, ServeStats};
use budget::MapBudget;
use handler::Handler;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// A loaded handler component, ready to serve.
///
/// ```no_run
/// # async fn demo() -> wsbox::Result<()> {
/// let server = wsbox::Server::new("echo.wasm", wsbox::ServeConfig::default())?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// server.serve(listener, async { tokio::signal::ctrl_c().await.unwrap() }).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) handler: Handler,
    pub(crate) config: ServeConfig,
    pub(crate) slots: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    pub(crate) accept_to_handle: Latencies,
    pub(crate) request_to_handle: Latencies,
    pub(crate) instantiate: Latencies,
}

impl Server {
    /// Compiles the component, checks that it is a `server`-world handler
    /// that can be instantiated, and that `max_connections` instances of it
    /// fit in the kernel's memory-mapping limit.
    pub fn new(component: impl AsRef<Path>, config: ServeConfig) -> Result<Server> {
        let budget = MapBudget::measure();
        if let (Some(budget), true) = (budget, config.pooling) {
            // The pool maps every slot's stack up front: a pool too big
            // for the limit cannot even be made.
            budget.check(&config, budget::POOLED_INSTANCE_ESTIMATE)?;
        }
        let path = component.as_ref();
        let handler = Handler::load(path, &config)?;
        let per_instance = budget::measure_instance(&handler, &config, path)?;
        if let (Some(budget), Some(per_instance)) = (budget, per_instance) {
            budget.check(&config, per_instance)?;
        }
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let handshakes = Arc::new(Semaphore::new(config.max_handshakes.max(1)));
        Ok(Server {
            inner: Arc::new(Inner {
                handler,
                config,
                slots,
                handshakes,
                accept_to_handle: Latencies::default(),
                request_to_handle: Latencies::default(),
                instantiate: Latencies::default(),
            }),
        })
    }

    /// What the server measured so far: accept-to-handler and instantiation
    /// latencies.
    pub fn stats(&self) -> ServeStats {
        ServeStats {
            accept_to_handle: self.inner.accept_to_handle.summary(),
            request_to_handle: self.inner.request_to_handle.summary(),
            instantiate: self.inner.instantiate.summary(),
        }
    }

    /// Serves connections from `listener` until `shutdown` completes. Then
    /// it stops accepting, sends 1001 (going away) on every open
    /// connection, and waits for the handlers to finish, at most the
    /// shutdown timeout.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, remote)) => {
                        let accepted = Instant::now();
                        let Ok(handshake) = self.inner.handshakes.clone().try_acquire_owned() else {
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
