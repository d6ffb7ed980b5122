//! The `wsbox` command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use wsbox::{
    Broker, ClusterConfig, Config, Exit, Limits, Output, Policy, Runner, ServeConfig, Server,
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
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// How long a client may take to send its upgrade request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Most connections in their handshake at once (accepted, not yet
    /// answered); past it, new connections are closed at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_handshakes: usize,
    /// How long a graceful shutdown (SIGINT, SIGTERM) waits for handlers
    /// after sending 1001 on every connection.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Allocate instances from wasmtime's pooling allocator, sized for
    /// --max-connections (faster instantiation; needed past ~9,000 live
    /// instances on Linux's default vm.max_map_count).
    #[arg(long)]
    pooling: bool,
    /// Bytes of output lines one handler instance may log, stdout and
    /// stderr together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    guest_log_bytes: usize,
    /// Output lines one handler instance may log, stdout and stderr
    /// together; past it, one notice, and the rest is dropped.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    guest_log_lines: usize,
    /// At shutdown, print on stderr the accept-to-handler,
    /// request-to-handler and instantiation latencies (count, p50, p99, max
    /// in microseconds).
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

/// Flags shared by every command that runs guests.
#[derive(Args)]
struct LimitArgs {
    /// Allow connections to scheme://host[:port] (ws, wss or *; `*` as a
    /// whole host label or as the port). Repeatable. Without any, every
    /// connect is denied.
    #[arg(long = "allow", value_name = "PATTERN")]
    allow: Vec<String>,
    /// Largest inbound message; a larger one closes with 1009.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// Largest inbound frame payload.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    max_frame_size: usize,
    /// Inbound bytes buffered per websocket before the host stops reading.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    inbound_buffer: usize,
    /// How long a send, fragment or ping may wait for a peer that does not
    /// read; past it the call gets `timeout` and the connection is aborted.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    send_timeout: Duration,
    /// How long a connect (DNS, TCP, TLS, upgrade) may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// How long to wait for the peer's close frame (and for the guest's
    /// answer to the peer's close).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    close_timeout: Duration,
    /// Inbound bytes buffered for all the websockets of one instance.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    instance_inbound_buffer: usize,
    /// Most websockets one instance may have open at once.
    #[arg(long, value_name = "N", default_value_t = 128)]
    max_websockets: usize,
    /// Most resource handles (websockets, pollables, streams) one instance
    /// may hold; past it, the call that would add one traps.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_handles: usize,
    /// Extra PEM CA certificates to trust for wss://.
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// Most memory one instance may have: all its linear memories and
    /// tables together; past it, it traps.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_size)]
    max_memory: usize,
    /// How long a guest may run without returning to the host before it
    /// traps, in CPU time: waiting inside host calls does not count.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    cpu_deadline: Duration,
    /// How much CPU time one instance may use in all before it traps
    /// (default: no budget).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    cpu_budget: Option<Duration>,
    /// Topic bytes that may wait for one receiver: a joined websocket past
    /// it is closed with 1013, a subscription past it ends.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_size)]
    topic_buffer: usize,
    /// Most joins and subscriptions one instance may hold together.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_topics: usize,
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
                max_message_size: self.max_message_size,
                max_frame_size: self.max_frame_size,
                inbound_buffer: self.inbound_buffer,
                send_timeout: self.send_timeout,
                connect_timeout: self.connect_timeout,
                close_timeout: self.close_timeout,
                instance_inbound_buffer: self.instance_inbound_buffer,
                max_websockets: self.max_websockets,
                max_handles: self.max_handles,
                max_memory: self.max_memory,
                cpu_deadline: self.cpu_deadline,
                cpu_budget: self.cpu_budget,
                topic_buffer: self.topic_buffer,
                max_topics: self.max_topics,
            },
            ca_file: self.ca_file.clone(),
            broker,
            ..Config::default()
        };
        wsbox::check_config(&config)?;
        Ok(config)
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write e.g. 65536, 64KiB or 16MiB"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: use B, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(scale)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        other => return Err(format!("unknown duration unit `{other}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{s}`: {e}"))
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
    let out = runner
        .run(&component, config, &guest_args, Output::Inherit)
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
        max_connections: args.max_connections,
        handshake_timeout: args.handshake_timeout,
        max_handshakes: args.max_handshakes,
        shutdown_timeout: args.shutdown_timeout,
        guest_log_bytes: args.guest_log_bytes,
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
            eprintln!("wsbox: {e:#}");
            ExitCode::from(2)
        }
    }
}
