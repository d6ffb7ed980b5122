//! The command line's arguments: `wsbox run` and `wsbox serve` flags, their defaults from the library, and the websocket configuration they make.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use wsbox::units::{Dur, Size};
use wsbox::{
    Broker, ClusterConfig, Config, DeflateConfig, InstanceLimits, KeepaliveConfig, Limits, Policy,
    ServeConfig,
};

use super::plan::Given;

/// Real WebSockets for sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "wsbox", version, about)]
pub(crate) struct Cli {
    /// How wsbox logs on stderr: `text` (lines for people) or `json` (one
    /// JSON object per line, guest output included, with the client's
    /// address and route as fields).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run a client guest: a `wasi:cli` command component of the
    /// `wsbox:websocket/client` world. Its exit code becomes wsbox's.
    Run(RunArgs),
    /// Serve WebSocket connections, each with a fresh instance of a
    /// `wsbox:websocket/server` handler component.
    Serve(ServeArgs),
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on [default: 127.0.0.1:8080, or the manifest's
    /// `listen`]; the bound address is printed at start-up.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Serve several routes, each its own component, from a TOML manifest
    /// (see the README). A flag given on the command line wins over the
    /// manifest's key of the same name.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the manifest (or the component) as serving it would: read it,
    /// compile and instantiate every component, load the TLS files; then
    /// exit, 0 if it can serve.
    #[arg(long)]
    pub(crate) check: bool,
    /// Reload when the manifest or a component file changes (checked every
    /// second), as SIGHUP does: new connections get the new version, open
    /// ones keep theirs.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Serve wss://: the server's PEM certificate, then its intermediates.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Accept upgrades only from browser pages of this origin,
    /// scheme://host[:port] (`*` as a whole host label or as the port);
    /// repeatable. Others get 403 before any instance is made. Without
    /// any, every origin is accepted.
    #[arg(long = "allow-origin", value_name = "PATTERN")]
    pub(crate) allow_origin: Vec<String>,
    /// Refuse (403) upgrade requests without an Origin header too.
    #[arg(long)]
    pub(crate) require_origin: bool,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address
    /// (HOST:PORT; port 0 picks one, printed at start-up).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<String>,
    /// Most connections open at once; past it, upgrades get 503. Refused at
    /// start-up if that many instances would not fit in vm.max_map_count.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: usize,
    /// How long a client may take to send its upgrade request (TLS
    /// handshake included).
    #[arg(long, value_name = "DURATION", default_value_t = Dur(ServeConfig::DEFAULT_HANDSHAKE_TIMEOUT))]
    pub(crate) handshake_timeout: Dur,
    /// Most connections in their handshake at once (accepted, not yet
    /// answered); past it, new connections are closed at once.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_HANDSHAKES)]
    pub(crate) max_handshakes: usize,
    /// How long a graceful shutdown (SIGINT, SIGTERM) waits for handlers
    /// after sending 1001 on every connection.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(ServeConfig::DEFAULT_SHUTDOWN_TIMEOUT))]
    pub(crate) shutdown_timeout: Dur,
    /// Allocate instances from wasmtime's pooling allocator, sized for
    /// --max-connections (faster instantiation; needed past ~9,000 live
    /// instances on Linux's default vm.max_map_count).
    #[arg(long)]
    pub(crate) pooling: bool,
    /// Bytes of output lines one handler instance may log, stdout and
    /// stderr together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = Size(ServeConfig::DEFAULT_GUEST_LOG_BYTES))]
    pub(crate) guest_log_bytes: Size,
    /// Output lines one handler instance may log, stdout and stderr
    /// together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_GUEST_LOG_LINES)]
    pub(crate) guest_log_lines: usize,
    /// At shutdown, print on stderr one line of JSON with the
    /// accept-to-handler, request-to-handler and instantiation latencies
    /// (count, p50, p99, max in microseconds) and the host's task panics.
    #[arg(long)]
    pub(crate) stats: bool,
    /// Ping a peer silent for this long (0s: never); with nothing back
    /// within --keepalive-timeout, abort the connection.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.interval))]
    pub(crate) keepalive: Dur,
    /// How long to wait for anything from the peer after a keepalive ping.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.timeout))]
    pub(crate) keepalive_timeout: Dur,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// The handler component file (.wasm); without --config, it serves
    /// every path.
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    pub(crate) component: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Ping a peer silent for this long (0s: never); with nothing back
    /// within --keepalive-timeout, abort the connection.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KeepaliveConfig::OFF))]
    pub(crate) keepalive: Dur,
    /// How long to wait for anything from the peer after a keepalive ping.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.timeout))]
    pub(crate) keepalive_timeout: Dur,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// The component file (.wasm).
    pub(crate) component: PathBuf,
    /// Arguments for the guest.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
}

/// The library's defaults, which the flags show and start from.
pub(crate) const LIMITS: Limits = Limits::DEFAULT;
pub(crate) const INSTANCE: InstanceLimits = InstanceLimits::DEFAULT;
pub(crate) const DEFLATE: DeflateConfig = DeflateConfig::DEFAULT;
pub(crate) const KEEPALIVE: KeepaliveConfig = KeepaliveConfig::SERVE_DEFAULT;

/// Flags shared by every command that runs guests.
#[derive(Args)]
pub(crate) struct LimitArgs {
    /// Allow connections to scheme://host[:port] (ws, wss or *; `*` as a
    /// whole host label or as the port). Repeatable. Without any, every
    /// connect is denied.
    #[arg(long = "allow", value_name = "PATTERN")]
    pub(crate) allow: Vec<String>,
    /// Largest inbound message; a larger one closes with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.max_message_size))]
    pub(crate) max_message_size: Size,
    /// Largest inbound frame payload.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.max_frame_size))]
    pub(crate) max_frame_size: Size,
    /// Inbound bytes buffered per websocket before the host stops reading.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.inbound_buffer))]
    pub(crate) inbound_buffer: Size,
    /// How long a send, fragment or ping may wait for a peer that does not
    /// read; past it the call gets `timeout` and the connection is aborted.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.send_timeout))]
    pub(crate) send_timeout: Dur,
    /// How long a connect (DNS, TCP, TLS, upgrade) may take.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.connect_timeout))]
    pub(crate) connect_timeout: Dur,
    /// How long to wait for the peer's close frame (and for the guest's
    /// answer to the peer's close).
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.close_timeout))]
    pub(crate) close_timeout: Dur,
    /// Inbound bytes buffered for all the websockets of one instance.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.instance_inbound_buffer))]
    pub(crate) instance_inbound_buffer: Size,
    /// Most websockets one instance may have at once, each counted until
    /// its TCP connection is gone.
    #[arg(long, value_name = "N", default_value_t = LIMITS.max_websockets)]
    pub(crate) max_websockets: usize,
    /// Topic bytes that may wait for one receiver: a joined websocket past
    /// it is closed with 1013, a subscription past it ends.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.topic_buffer))]
    pub(crate) topic_buffer: Size,
    /// Most joins and subscriptions one instance may hold together.
    #[arg(long, value_name = "N", default_value_t = LIMITS.max_topics)]
    pub(crate) max_topics: usize,
    /// Most resource handles (websockets, pollables, streams) one instance
    /// may hold; past it, the call that would add one traps.
    #[arg(long, value_name = "N", default_value_t = INSTANCE.max_handles)]
    pub(crate) max_handles: usize,
    /// Most memory one instance may have: all its linear memories and
    /// tables together; past it, it traps.
    #[arg(long, value_name = "BYTES", default_value_t = Size(INSTANCE.max_memory))]
    pub(crate) max_memory: Size,
    /// How long a guest may run without returning to the host before it
    /// traps, in CPU time: waiting inside host calls does not count.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(INSTANCE.cpu_deadline))]
    pub(crate) cpu_deadline: Dur,
    /// How much CPU time one instance may use in all before it traps
    /// (default: no budget).
    #[arg(long, value_name = "DURATION")]
    pub(crate) cpu_budget: Option<Dur>,
    /// Use permessage-deflate (RFC 7692): `run` offers it on every connect,
    /// `serve` accepts clients' offers. Costs about 370 KiB per connection
    /// with the default context takeover.
    #[arg(long)]
    pub(crate) deflate: bool,
    /// Messages shorter than this are sent uncompressed.
    #[arg(long, value_name = "BYTES", default_value_t = Size(DEFLATE.threshold))]
    pub(crate) deflate_threshold: Size,
    /// The server resets its compression context after every message (it
    /// then holds no compressor state between messages).
    #[arg(long)]
    pub(crate) deflate_server_no_context_takeover: bool,
    /// The client resets its compression context after every message (the
    /// server then holds no inflater state between messages).
    #[arg(long)]
    pub(crate) deflate_client_no_context_takeover: bool,
    /// The largest window the server compresses with, in bits (8-15).
    #[arg(long, value_name = "BITS", default_value_t = DEFLATE.server_max_window_bits)]
    pub(crate) deflate_server_max_window_bits: u8,
    /// The largest window the client compresses with, in bits (8-15).
    #[arg(long, value_name = "BITS", default_value_t = DEFLATE.client_max_window_bits)]
    pub(crate) deflate_client_max_window_bits: u8,
    /// Extra PEM CA certificates to trust for wss://.
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Link topics with every wsbox process on this NATS server
    /// (nats://HOST:PORT). Repeatable, for fail-over. Without it, topics
    /// stay within this process.
    #[arg(long = "cluster", value_name = "URL")]
    pub(crate) cluster: Vec<String>,
    /// The first tokens of the NATS subjects of topics, to keep several
    /// applications apart on one NATS.
    #[arg(long, value_name = "PREFIX", default_value = ClusterConfig::DEFAULT_PREFIX)]
    pub(crate) cluster_prefix: String,
}

impl LimitArgs {
    /// The configuration, with its broker connected to the cluster when
    /// `--cluster` names one.
    pub(crate) async fn config(&self) -> Result<Config> {
        for (flag, bits) in [
            (
                "--deflate-server-max-window-bits",
                self.deflate_server_max_window_bits,
            ),
            (
                "--deflate-client-max-window-bits",
                self.deflate_client_max_window_bits,
            ),
        ] {
            if !(8..=15).contains(&bits) {
                bail!("{flag} {bits} is out of range: give a window size in bits from 8 to 15");
            }
        }
        let broker = if self.cluster.is_empty() {
            Broker::local()
        } else {
            Broker::connect(&ClusterConfig {
                servers: self.cluster.clone(),
                prefix: self.cluster_prefix.clone(),
            })
            .await?
        };
        let deflate = DeflateConfig {
            enabled: self.deflate,
            server_no_context_takeover: self.deflate_server_no_context_takeover,
            client_no_context_takeover: self.deflate_client_no_context_takeover,
            server_max_window_bits: self.deflate_server_max_window_bits,
            client_max_window_bits: self.deflate_client_max_window_bits,
            threshold: self.deflate_threshold.0,
        };
        deflate.check().map_err(anyhow::Error::msg)?;
        let config = Config {
            policy: Policy::from_patterns(&self.allow)?,
            deflate,
            limits: Limits {
                max_message_size: self.max_message_size.0,
                max_frame_size: self.max_frame_size.0,
                inbound_buffer: self.inbound_buffer.0,
                send_timeout: self.send_timeout.0,
                connect_timeout: self.connect_timeout.0,
                close_timeout: self.close_timeout.0,
                instance_inbound_buffer: self.instance_inbound_buffer.0,
                max_websockets: self.max_websockets,
                topic_buffer: self.topic_buffer.0,
                max_topics: self.max_topics,
                keepalive: None,
            },
            tls: self
                .ca_file
                .as_deref()
                .map(wsbox::client_config_with_ca)
                .transpose()?,
            broker,
            ..Config::default()
        };
        Ok(config)
    }

    /// The sandbox limits of every instance.
    pub(crate) fn instance(&self) -> InstanceLimits {
        InstanceLimits {
            max_handles: self.max_handles,
            max_memory: self.max_memory.0,
            cpu_deadline: self.cpu_deadline.0,
            cpu_budget: self.cpu_budget.map(|d| d.0),
        }
    }
}

impl LimitArgs {
    /// Sets on `limits` and `instance` each limit flag given on the command
    /// line.
    pub(crate) fn override_given(
        &self,
        limits: &mut Limits,
        instance: &mut InstanceLimits,
        given: &Given,
    ) {
        let mine = self.instance();
        macro_rules! given {
            ($target:expr, $($field:ident = $value:expr),* $(,)?) => {$(
                if given.has(stringify!($field)) {
                    $target.$field = $value;
                }
            )*};
        }
        given!(
            limits,
            max_message_size = self.max_message_size.0,
            max_frame_size = self.max_frame_size.0,
            inbound_buffer = self.inbound_buffer.0,
            send_timeout = self.send_timeout.0,
            connect_timeout = self.connect_timeout.0,
            close_timeout = self.close_timeout.0,
            instance_inbound_buffer = self.instance_inbound_buffer.0,
            max_websockets = self.max_websockets,
        );
        given!(
            instance,
            max_handles = mine.max_handles,
            max_memory = mine.max_memory,
            cpu_deadline = mine.cpu_deadline,
        );
    }
}
