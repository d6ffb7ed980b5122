//! The settings of `wsbox serve`, with their documented defaults.

use super::origin::OriginPolicy;
use crate::config::Config;
use crate::sandbox::InstanceLimits;
use std::sync::Arc;
use std::time::Duration;

/// One line of a handler instance's output, escaped (see
/// [`ServeConfig::guest_output`]).
#[derive(Debug, Clone, Copy)]
pub struct GuestLine<'a> {
    /// The client's address, `ip:port`.
    pub client: &'a str,
    /// The route that serves the client (its path prefix).
    pub route: &'a str,
    /// The line, without its line end, control characters escaped.
    pub text: &'a str,
}

/// Where guest output goes: called with each line.
pub type GuestOutput = Arc<dyn Fn(&GuestLine<'_>) + Send + Sync>;

/// Settings of `wsbox serve`.
#[derive(Clone)]
pub struct ServeConfig {
    /// Limits per websocket and per instance's websockets, and the
    /// outbound policy for connections the handlers open themselves.
    pub websocket: Config,
    /// The sandbox of every handler instance: memory, CPU and handles.
    pub instance: InstanceLimits,
    /// The browser origins that may open a WebSocket (`--allow-origin`,
    /// `--require-origin`); an upgrade from any other gets 403 before any
    /// instance is made. Default: every origin, and requests without one.
    /// Like `websocket` and `instance`, it is the one route's of
    /// [`Server::new`](crate::Server::new); [`Route`](crate::Route)s have
    /// their own.
    pub origins: OriginPolicy,
    /// Serve `wss://`: the rustls configuration of the listening side
    /// (e.g. from [`tls_server_config`](crate::tls_server_config)). The
    /// TLS handshake counts against `max_handshakes` and
    /// `handshake_timeout`. Default: none, plain `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How many connections may be open at once; past it, upgrades get 503.
    /// Default: 1024. [`Server::new`](crate::Server::new) refuses a number
    /// whose live instances would not fit in the kernel's memory-mapping
    /// limit (`vm.max_map_count`), measured for the component and allocator
    /// at start-up
    /// ([`Error::TooManyConnections`](crate::Error::TooManyConnections)).
    pub max_connections: usize,
    /// How long a client may take, from its accept, to send its upgrade
    /// request and read the 101 answer (TLS included); a slower one is
    /// dropped, so a slowloris client cannot hold a slot. Default: 10 s.
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

impl ServeConfig {
    /// The default of [`max_connections`](Self::max_connections).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// The default of [`handshake_timeout`](Self::handshake_timeout).
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default of [`max_handshakes`](Self::max_handshakes).
    pub const DEFAULT_MAX_HANDSHAKES: usize = 256;
    /// The default of [`shutdown_timeout`](Self::shutdown_timeout).
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
    /// The default of [`guest_log_bytes`](Self::guest_log_bytes).
    pub const DEFAULT_GUEST_LOG_BYTES: usize = 1 << 20;
    /// The default of [`guest_log_lines`](Self::guest_log_lines).
    pub const DEFAULT_GUEST_LOG_LINES: usize = 10_000;
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            websocket: Config::default(),
            instance: InstanceLimits::default(),
            origins: OriginPolicy::default(),
            tls: None,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: Self::DEFAULT_MAX_HANDSHAKES,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
            guest_output: Arc::new(|line: &GuestLine<'_>| {
                eprintln!("[{}] {}", line.client, line.text)
            }),
            guest_log_bytes: Self::DEFAULT_GUEST_LOG_BYTES,
            guest_log_lines: Self::DEFAULT_GUEST_LOG_LINES,
            pooling: false,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("websocket", &self.websocket)
            .field("instance", &self.instance)
            .field("origins", &self.origins)
            .field("tls", &self.tls.is_some())
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
