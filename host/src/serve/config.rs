//! The settings of `wsbox serve`, with their documented defaults.

use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;

/// Where guest output goes: called with the client's address and one line.
pub type GuestOutput = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Settings of `wsbox serve`.
#[derive(Clone)]
pub struct ServeConfig {
    /// Limits per websocket and per instance, and the outbound policy for
    /// connections the handlers open themselves.
    pub websocket: Config,
    /// How many connections may be open at once; past it, upgrades get 503.
    /// Default: 1024. [`Server::new`] refuses a number whose live instances
    /// would not fit in the kernel's memory-mapping limit
    /// (`vm.max_map_count`), measured for the component and allocator at
    /// start-up ([`Error::TooManyConnections`]).
    pub max_connections: usize,
    /// How long a client may take to send its upgrade request; a slower one
    /// is dropped, so a slowloris client cannot hold a slot. Default: 10 s.
    pub handshake_timeout: Duration,
    /// How many connections may be in their handshake at once (accepted,
    /// but not yet answered with 101 or a refusal); past it, new TCP
    /// connections are closed at once, so slow or idle clients cannot
    /// take every file descriptor. Default: 256.
    pub max_handshakes: usize,
    /// How long graceful shutdown waits for handlers to finish after 1001
    /// went out on every connection. Default: 15 s.
    pub shutdown_timeout: Duration,
    /// Where the guests' stdout and stderr lines go, with control
    /// characters escaped. Default: this process's stderr, as
    /// `[ADDRESS] LINE`.
    pub guest_output: GuestOutput,
    /// How many bytes of lines one instance may log, stdout and stderr
    /// together (counted after escaping); past it, one notice and the rest
    /// is dropped. Default: 1 MiB.
    pub guest_log_bytes: usize,
    /// How many lines one instance may log, stdout and stderr together;
    /// past it, one notice and the rest is dropped. Default: 10,000.
    pub guest_log_lines: usize,
    /// Allocate instances from wasmtime's pooling allocator, sized for
    /// `max_connections`, instead of with `mmap` per instance: faster
    /// instantiation, and more live instances than the default allocator's
    /// memory mappings allow. Default: off.
    pub pooling: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            websocket: Config::default(),
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            shutdown_timeout: Duration::from_secs(15),
            guest_output: Arc::new(|remote, line| eprintln!("[{remote}] {line}")),
            guest_log_bytes: 1 << 20,
            guest_log_lines: 10_000,
            pooling: false,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("websocket", &self.websocket)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshakes", &self.max_handshakes)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("guest_log_bytes", &self.guest_log_bytes)
            .field("guest_log_lines", &self.guest_log_lines)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}
