//! The `wsbox` command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wsbox::units::{Dur, Size};
use wsbox::{
    Broker, ClusterConfig, Config, Exit, InstanceLimits, Limits, Output, Policy, Runner,
    ServeConfig, Server,
};

/// Real WebSockets for sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "wsbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a client guest: a `wasi:cli` command component of the
    /// `wsbox:websocket/client` world. Its exit code becomes wsbox's.
    Run(RunArgs),
    /// Serve WebSocket connections, each with a fresh instance of a
    /// `wsbox:websocket/server` handler component.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// The address to listen on; the bound address is printed at start-up.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Most connections open at once; past it, upgrades get 503. Refused at
    /// start-up if that many instances would not fit in vm.max_map_count.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How long a client may take to send its upgrade request.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(ServeConfig::DEFAULT_HANDSHAKE_TIMEOUT))]
    handshake_timeout: Dur,
    /// Most connections in their handshake at once (accepted, not yet
    /// answered); past it, new connections are closed at once.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_HANDSHAKES)]
    max_handshakes: usize,
    /// How long a graceful shutdown (SIGINT, SIGTERM) waits for handlers
    /// after sending 1001 on every connection.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(ServeConfig::DEFAULT_SHUTDOWN_TIMEOUT))]
    shutdown_timeout: Dur,
    /// Allocate instances from wasmtime's pooling allocator, sized for
    /// --max-connections (faster instantiation; needed past ~9,000 live
    /// instances on Linux's default vm.max_map_count).
    #[arg(long)]
    pooling: bool,
    /// Bytes of output lines one handler instance may log, stdout and
    /// stderr together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = Size(ServeConfig::DEFAULT_GUEST_LOG_BYTES))]
    guest_log_bytes: Size,
    /// Output lines one handler instance may log, stdout and stderr
    /// together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_GUEST_LOG_LINES)]
    guest_log_lines: usize,
    /// At shutdown, print on stderr one line of JSON with the
    /// accept-to-handler, request-to-handler and instantiation latencies
    /// (count, p50, p99, max in microseconds) and the host's task panics.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// The handler component file (.wasm).
    component: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    limits: LimitArgs,
    /// The component file (.wasm).
    component: PathBuf,
    /// Arguments for the guest.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The library's defaults, which the flags show and start from.
const LIMITS: Limits = Limits::DEFAULT;
const INSTANCE: InstanceLimits = InstanceLimits::DEFAULT;

/// Flags shared by every command that runs guests.
#[derive(Args)]
struct LimitArgs {
    /// Allow connections to scheme://host[:port] (ws, wss or *; `*` as a
    /// whole host label or as the port). Repeatable. Without any, every
    /// connect is denied.
    #[arg(long = "allow", value_name = "PATTERN")]
    allow: Vec<String>,
    /// Largest inbound message; a larger one closes with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.max_message_size))]
    max_message_size: Size,
    /// Largest inbound frame payload.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.max_frame_size))]
    max_frame_size: Size,
    /// Inbound bytes buffered per websocket before the host stops reading.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.inbound_buffer))]
    inbound_buffer: Size,
    /// How long a send, fragment or ping may wait for a peer that does not
    /// read; past it the call gets `timeout` and the connection is aborted.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.send_timeout))]
    send_timeout: Dur,
    /// How long a connect (DNS, TCP, TLS, upgrade) may take.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.connect_timeout))]
    connect_timeout: Dur,
    /// How long to wait for the peer's close frame (and for the guest's
    /// answer to the peer's close).
    #[arg(long, value_name = "DURATION", default_value_t = Dur(LIMITS.close_timeout))]
    close_timeout: Dur,
    /// Inbound bytes buffered for all the websockets of one instance.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.instance_inbound_buffer))]
    instance_inbound_buffer: Size,
    /// Most websockets one instance may have at once, each counted until
    /// its TCP connection is gone.
    #[arg(long, value_name = "N", default_value_t = LIMITS.max_websockets)]
    max_websockets: usize,
    /// Topic bytes that may wait for one receiver: a joined websocket past
    /// it is closed with 1013, a subscription past it ends.
    #[arg(long, value_name = "BYTES", default_value_t = Size(LIMITS.topic_buffer))]
    topic_buffer: Size,
    /// Most joins and subscriptions one instance may hold together.
    #[arg(long, value_name = "N", default_value_t = LIMITS.max_topics)]
    max_topics: usize,
    /// Most resource handles (websockets, pollables, streams) one instance
    /// may hold; past it, the call that would add one traps.
    #[arg(long, value_name = "N", default_value_t = INSTANCE.max_handles)]
    max_handles: usize,
    /// Most memory one instance may have: all its linear memories and
    /// tables together; past it, it traps.
    #[arg(long, value_name = "BYTES", default_value_t = Size(INSTANCE.max_memory))]
    max_memory: Size,
    /// How long a guest may run without returning to the host before it
    /// traps, in CPU time: waiting inside host calls does not count.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(INSTANCE.cpu_deadline))]
    cpu_deadline: Dur,
    /// How much CPU time one instance may use in all before it traps
    /// (default: no budget).
    #[arg(long, value_name = "DURATION")]
    cpu_budget: Option<Dur>,
    /// Extra PEM CA certificates to trust for wss://.
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// Link topics with every wsbox process on this NATS server
    /// (nats://HOST:PORT). Repeatable, for fail-over. Without it, topics
    /// stay within this process.
    #[arg(long = "cluster", value_name = "URL")]
    cluster: Vec<String>,
    /// The first tokens of the NATS subjects of topics, to keep several
    /// applications apart on one NATS.
    #[arg(long, value_name = "PREFIX", default_value = "wsbox")]
    cluster_prefix: String,
}

impl LimitArgs {
    /// The configuration, with its broker connected to the cluster when
    /// `--cluster` names one.
    async fn config(&self) -> Result<Config> {
        let broker = if self.cluster.is_empty() {
            Broker::local()
        } else {
            Broker::connect(&ClusterConfig {
                servers: self.cluster.clone(),
                prefix: self.cluster_prefix.clone(),
            })
            .await?
        };
        let config = Config {
            policy: Policy::from_patterns(&self.allow)?,
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
    fn instance(&self) -> InstanceLimits {
        InstanceLimits {
            max_handles: self.max_handles,
            max_memory: self.max_memory.0,
            cpu_deadline: self.cpu_deadline.0,
            cpu_budget: self.cpu_budget.map(|d| d.0),
        }
    }
}

async fn run(args: RunArgs) -> Result<ExitCode> {
    let config = Arc::new(args.limits.config().await?);
    let runner = Runner::new()?;
    let component = runner.load(&args.component)?;
    let name = args
        .component
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    let guest_args: Vec<String> = std::iter::once(name).chain(args.args).collect();
    let limits = args.limits.instance();
    let out = runner
        .run_limited(&component, config, &limits, &guest_args, Output::Inherit)
        .await
        .context("running the guest")?;
    match out.exit {
        Exit::Code(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        Exit::Trap(trap) => bail!("the guest trapped: {trap}"),
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let websocket = args.limits.config().await?;
    let broker = websocket.broker.clone();
    let config = ServeConfig {
        websocket,
        instance: args.limits.instance(),
        max_connections: args.max_connections,
        handshake_timeout: args.handshake_timeout.0,
        max_handshakes: args.max_handshakes,
        shutdown_timeout: args.shutdown_timeout.0,
        guest_log_bytes: args.guest_log_bytes.0,
        guest_log_lines: args.guest_log_lines,
        pooling: args.pooling,
        ..ServeConfig::default()
    };
    let server = Server::new(&args.component, config)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("wsbox serve: listening on ws://{address}");
    std::io::Write::flush(&mut std::io::stdout())?;
    server.serve(listener, shutdown_signal()).await?;
    broker.flush().await;
    if args.stats {
        /// The line's JSON (README, `wsbox serve`): the server's figures
        /// and the host's task panics.
        #[derive(serde::Serialize)]
        struct Stats {
            #[serde(flatten)]
            serve: wsbox::ServeStats,
            panics: u64,
        }
        let stats = Stats {
            serve: server.stats(),
            panics: wsbox::panics(),
        };
        eprintln!("wsbox serve: stats {}", serde_json::to_string(&stats)?);
    }
    eprintln!("wsbox serve: shut down");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // `run` drives one guest, whose calls are sequential: one thread saves
    // the cross-thread wake-ups between its socket tasks and the guest.
    // `serve` runs many connections and wants every core.
    let runtime = match &cli.command {
        Command::Run(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Serve(_) => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsbox: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Serve(args) => serve(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsbox: {}", one_line(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

/// An error's chain as one line, as the CLI prints every error: a cause from
/// wasmtime may span lines (a wasm backtrace).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
