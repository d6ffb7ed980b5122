//! Host configuration for websockets: the outbound policy, limits and TLS.

use crate::deflate::DeflateConfig;
use crate::keepalive::KeepaliveConfig;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::topics::Broker;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Limits applied to every websocket and to the websockets of one instance
/// together. The defaults are the documented CLI defaults. The limits of
/// the instance's sandbox itself (memory, CPU, handles) are
/// [`InstanceLimits`](crate::InstanceLimits), which the runner and the
/// server apply to the stores they make.
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
    /// How many bytes of topic messages may wait for one receiver: the
    /// frames not yet written to a joined websocket (past it, the host
    /// closes it with 1013 `slow consumer`), or the messages not yet
    /// received from a subscription (past it, the subscription ends with
    /// `limit-exceeded`). Default: 1 MiB.
    pub topic_buffer: usize,
    /// How many joins and subscriptions one instance may hold together;
    /// past it, `join` and `open` get `limit-exceeded`. Default: 64.
    pub max_topics: usize,
    /// Pings a peer silent for this long, and aborts the connection when
    /// nothing comes back within the timeout (the guest sees an abort, as
    /// for a TCP reset). Default: off (`wsbox serve`: 30 s, then 10 s).
    pub keepalive: Option<KeepaliveConfig>,
}

impl Limits {
    /// The defaults, each stated on its field: the one place they are
    /// written (the CLI shows them from here).
    pub const DEFAULT: Limits = Limits {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        inbound_buffer: 1 << 20,
        send_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
        close_timeout: Duration::from_secs(10),
        instance_inbound_buffer: 16 << 20,
        max_websockets: 128,
        topic_buffer: 1 << 20,
        max_topics: 64,
        keepalive: None,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Everything the host needs to give guests websockets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which destinations `connect` may reach. Default: none.
    pub policy: Policy,
    /// Limits per websocket and per instance.
    pub limits: Limits,
    /// permessage-deflate (RFC 7692): whether `connect` offers it and a
    /// server accepts a client's offer, and with which parameters. Default:
    /// off.
    pub deflate: DeflateConfig,
    /// The TLS client configuration of `wss://` connects. Default (`None`):
    /// the webpki roots. [`client_config_with_ca`](crate::client_config_with_ca)
    /// adds CA certificates from a PEM file, as `--ca-file` does.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sees every outbound connect after the policy allowed it, and may
    /// refuse or reroute it. Default: none.
    pub hooks: Option<Arc<dyn ConnectHooks>>,
    /// Turns host names into addresses. Default: the system resolver.
    pub resolver: Arc<dyn Resolver>,
    /// The topics every instance made with this configuration shares, and
    /// their link to the cluster if any. Default: a [`Broker::local`] of
    /// its own (clones of the configuration share it).
    pub broker: Broker,
    /// Where the websockets count their messages, bytes, close codes,
    /// aborts and topic deliveries. Default: none; `wsbox serve` sets its
    /// server's (`Server::metrics`).
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            limits: Limits::default(),
            deflate: DeflateConfig::default(),
            tls: None,
            hooks: None,
            resolver: Arc::new(SystemResolver),
            broker: Broker::local(),
            metrics: None,
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

/// A guest's outbound connect, as [`ConnectHooks::connect`] sees it: the
/// outbound policy has allowed it, and nothing has touched the network yet.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The URL the guest asked for.
    pub url: String,
    /// `wss://`.
    pub secure: bool,
    /// The host part of the URL.
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// The subprotocols the guest offers.
    pub protocols: Vec<String>,
}

/// What a [`ConnectHooks`] decides for a connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Go on as the guest asked.
    Proceed,
    /// Connect to these addresses instead of resolving the host (a sidecar,
    /// a proxy). TLS and the `Host` header still name the URL's host. The
    /// policy's address check does not apply to them: the embedder chose
    /// them.
    Reroute(Vec<SocketAddr>),
    /// Refuse: the guest gets `denied` with this reason.
    Refuse(String),
}

/// The future [`ConnectHooks::connect`] returns.
pub type Deciding<'a> = Pin<Box<dyn Future<Output = ConnectDecision> + Send + 'a>>;

/// An embedder's say over outbound connects, like `wasmtime-wasi-http`'s
/// `WasiHttpHooks::send_request`: observe (log, count), reroute or refuse
/// each `connect` a guest makes, after the outbound policy allowed it.
///
/// ```
/// use wsbox::{ConnectDecision, ConnectHooks, ConnectRequest, Deciding};
///
/// /// Refuses every connect to port 25, and lets the rest through.
/// struct NoSmtp;
///
/// impl ConnectHooks for NoSmtp {
///     fn connect<'a>(&'a self, request: &'a ConnectRequest) -> Deciding<'a> {
///         Box::pin(async move {
///             if request.port == 25 {
///                 ConnectDecision::Refuse("no mail from here".into())
///             } else {
///                 ConnectDecision::Proceed
///             }
///         })
///     }
/// }
/// ```
pub trait ConnectHooks: Send + Sync {
    /// Decides on one connect.
    fn connect<'a>(&'a self, request: &'a ConnectRequest) -> Deciding<'a>;
}

impl fmt::Debug for dyn ConnectHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectHooks")
    }
}
