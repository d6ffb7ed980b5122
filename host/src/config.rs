//! Host configuration for websockets: the outbound policy, limits and TLS.

use crate::policy::Policy;
use crate::topics::Broker;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Limits applied to every websocket. The defaults are the documented CLI
/// defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest inbound message, in bytes. A larger one closes the
    /// connection with 1009 and `receive` returns `message-too-big`.
    /// Default: 16 MiB.
    pub max_message_size: usize,
    /// The largest inbound frame payload, in bytes; handled like an
    /// oversized message. Default: 16 MiB.
    pub max_frame_size: usize,
    /// How many inbound bytes the host buffers per websocket before it stops
    /// reading the socket (TCP backpressure). Default: 1 MiB.
    pub inbound_buffer: usize,
    /// How long a `send`, `send-fragment` or `ping` may wait for the socket
    /// (a peer that stops reading fills it); past it the call returns
    /// `timeout` and the connection is aborted, since a frame may be half
    /// written. The host's own pongs have the same bound. Default: 30 s,
    /// as WinHTTP's send timeout.
    pub send_timeout: Duration,
    /// How long `connect` may take: DNS, TCP, TLS and the upgrade.
    /// Default: 30 s.
    pub connect_timeout: Duration,
    /// How long `close` waits for the peer's close frame, how long the host
    /// waits for the guest to answer the peer's close before it echoes it,
    /// and how long it waits for the peer after a close it sent on its own.
    /// Default: 10 s, as WinHTTP.
    pub close_timeout: Duration,
    /// How many inbound bytes the host buffers for all the websockets of
    /// one instance together; past it, the instance's sockets stop being
    /// read until the guest receives. Default: 16 MiB.
    pub instance_inbound_buffer: usize,
    /// How many websockets one instance may have at once, counted until
    /// their TCP connection is gone (a dropped websocket still counts while
    /// its closing handshake runs). Default: 128.
    pub max_websockets: usize,
    /// How many resource handles (websockets, pollables, WASI streams) one
    /// instance may hold; past it, the call that would add one traps.
    /// Default: 4096.
    pub max_handles: usize,
    /// The most memory one instance may have, in bytes: all its linear
    /// memories and tables together (8 bytes per table element). A growth
    /// past it traps that instance only. Default: 256 MiB.
    pub max_memory: usize,
    /// How long a guest may run without returning to the host (a host call,
    /// or the end of the export it runs); past it the guest traps. Counted
    /// in the CPU time the guest ran: time spent waiting inside host calls
    /// such as `receive`, or descheduled on a busy machine, does not count.
    /// Default: 10 s.
    pub cpu_deadline: Duration,
    /// How much CPU time one instance may use in all (its guest code and the
    /// host calls it makes, never time spent waiting); past it the guest
    /// traps. Default: none.
    pub cpu_budget: Option<Duration>,
    /// How many bytes of topic messages may wait for one receiver: the
    /// frames not yet written to a joined websocket (past it, the host
    /// closes it with 1013 `slow consumer`), or the messages not yet
    /// received from a subscription (past it, the subscription ends with
    /// `limit-exceeded`). Default: 1 MiB.
    pub topic_buffer: usize,
    /// How many joins and subscriptions one instance may hold together;
    /// past it, `join` and `open` get `limit-exceeded`. Default: 64.
    pub max_topics: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            inbound_buffer: 1 << 20,
            send_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(10),
            instance_inbound_buffer: 16 << 20,
            max_websockets: 128,
            max_handles: 4096,
            max_memory: 256 << 20,
            cpu_deadline: Duration::from_secs(10),
            cpu_budget: None,
            topic_buffer: 1 << 20,
            max_topics: 64,
        }
    }
}

/// Everything the host needs to give guests websockets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which destinations `connect` may reach. Default: none.
    pub policy: Policy,
    /// Limits per websocket and per instance.
    pub limits: Limits,
    /// Extra PEM CA certificates trusted for `wss://`, on top of the webpki
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// Turns host names into addresses. Default: the system resolver.
    pub resolver: Arc<dyn Resolver>,
    /// The topics every instance made with this configuration shares, and
    /// their link to the cluster if any. Default: a [`Broker::local`] of
    /// its own (clones of the configuration share it).
    pub broker: Broker,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            limits: Limits::default(),
            ca_file: None,
            resolver: Arc::new(SystemResolver),
            broker: Broker::local(),
        }
    }
}

/// The future a [`Resolver`] returns.
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a host name into socket addresses for `connect`. The host checks
/// every address it gets against the outbound policy before it connects, so
/// a resolver cannot lead a guest to an internal address the policy does not
/// name. Embedders and tests may supply their own.
///
/// ```
/// use std::net::SocketAddr;
/// use wsbox::{Resolver, Resolving};
///
/// /// Resolves every name to one fixed address.
/// struct Fixed(SocketAddr);
///
/// impl Resolver for Fixed {
///     fn resolve<'a>(&'a self, _host: &'a str, port: u16) -> Resolving<'a> {
///         let addr = SocketAddr::new(self.0.ip(), port);
///         Box::pin(async move { Ok(vec![addr]) })
///     }
/// }
/// ```
pub trait Resolver: Send + Sync {
    /// The addresses of `host`, with `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a>;
}

impl fmt::Debug for dyn Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}
