//! The `wsbox` command line.

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wsbox::units::{Dur, Size};
use wsbox::{
    Broker, ClusterConfig, Config, DeflateConfig, Exit, GuestLine, InstanceLimits, KeepaliveConfig,
    Limits, Manifest, OriginPolicy, Output, Policy, Route, Runner, ServeConfig, Server,
};

/// Real WebSockets for sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "wsbox", version, about)]
struct Cli {
    /// How wsbox logs on stderr: `text` (lines for people) or `json` (one
    /// JSON object per line, guest output included, with the client's
    /// address and route as fields).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// The address to listen on [default: 127.0.0.1:8080, or the manifest's
    /// `listen`]; the bound address is printed at start-up.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Serve several routes, each its own component, from a TOML manifest
    /// (see the README). A flag given on the command line wins over the
    /// manifest's key of the same name.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the manifest (or the component) as serving it would: read it,
    /// compile and instantiate every component, load the TLS files; then
    /// exit, 0 if it can serve.
    #[arg(long)]
    check: bool,
    /// Reload when the manifest or a component file changes (checked every
    /// second), as SIGHUP does: new connections get the new version, open
    /// ones keep theirs.
    #[arg(long)]
    watch: bool,
    /// Serve wss://: the server's PEM certificate, then its intermediates.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Accept upgrades only from browser pages of this origin,
    /// scheme://host[:port] (`*` as a whole host label or as the port);
    /// repeatable. Others get 403 before any instance is made. Without
    /// any, every origin is accepted.
    #[arg(long = "allow-origin", value_name = "PATTERN")]
    allow_origin: Vec<String>,
    /// Refuse (403) upgrade requests without an Origin header too.
    #[arg(long)]
    require_origin: bool,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address
    /// (HOST:PORT; port 0 picks one, printed at start-up).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Most connections open at once; past it, upgrades get 503. Refused at
    /// start-up if that many instances would not fit in vm.max_map_count.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How long a client may take to send its upgrade request (TLS
    /// handshake included).
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
    /// Ping a peer silent for this long (0s: never); with nothing back
    /// within --keepalive-timeout, abort the connection.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.interval))]
    keepalive: Dur,
    /// How long to wait for anything from the peer after a keepalive ping.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.timeout))]
    keepalive_timeout: Dur,
    #[command(flatten)]
    limits: LimitArgs,
    /// The handler component file (.wasm); without --config, it serves
    /// every path.
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    component: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Ping a peer silent for this long (0s: never); with nothing back
    /// within --keepalive-timeout, abort the connection.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    keepalive: Dur,
    /// How long to wait for anything from the peer after a keepalive ping.
    #[arg(long, value_name = "DURATION", default_value_t = Dur(KEEPALIVE.timeout))]
    keepalive_timeout: Dur,
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
const DEFLATE: DeflateConfig = DeflateConfig::DEFAULT;
const KEEPALIVE: KeepaliveConfig = KeepaliveConfig::SERVE_DEFAULT;

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
    /// Use permessage-deflate (RFC 7692): `run` offers it on every connect,
    /// `serve` accepts clients' offers. Costs about 370 KiB per connection
    /// with the default context takeover.
    #[arg(long)]
    deflate: bool,
    /// Messages shorter than this are sent uncompressed.
    #[arg(long, value_name = "BYTES", default_value_t = Size(DEFLATE.threshold))]
    deflate_threshold: Size,
    /// The server resets its compression context after every message (it
    /// then holds no compressor state between messages).
    #[arg(long)]
    deflate_server_no_context_takeover: bool,
    /// The client resets its compression context after every message (the
    /// server then holds no inflater state between messages).
    #[arg(long)]
    deflate_client_no_context_takeover: bool,
    /// The largest window the server compresses with, in bits (8-15).
    #[arg(long, value_name = "BITS", default_value_t = DEFLATE.server_max_window_bits)]
    deflate_server_max_window_bits: u8,
    /// The largest window the client compresses with, in bits (8-15).
    #[arg(long, value_name = "BITS", default_value_t = DEFLATE.client_max_window_bits)]
    deflate_client_max_window_bits: u8,
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
    let mut config = args.limits.config().await?;
    config.limits.keepalive = KeepaliveConfig::new(args.keepalive.0, args.keepalive_timeout.0)
        .map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
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

/// Which flags were given on the command line (not left at their
/// default): those win over the manifest.
struct Given<'a>(Option<&'a ArgMatches>);

impl Given<'_> {
    fn has(&self, id: &str) -> bool {
        self.0
            .and_then(|m| m.value_source(id))
            .is_some_and(|source| source == ValueSource::CommandLine)
    }
}

/// What `serve` serves, read from the flags and the manifest.
struct Plan {
    manifest: Option<Manifest>,
    routes: Vec<Route>,
}

impl ServeArgs {
    /// The flags that only a one-component server takes.
    fn check_flags_for_config(&self, given: &Given) -> Result<()> {
        let Some(file) = &self.config else {
            return Ok(());
        };
        for (id, flag) in [
            ("allow", "--allow"),
            ("allow_origin", "--allow-origin"),
            ("require_origin", "--require-origin"),
            ("ca_file", "--ca-file"),
        ] {
            if given.has(id) {
                bail!(
                    "{flag} applies to one component, but --config {} gives routes: set `{}` in \
                     each [[route]] of the manifest instead",
                    file.display(),
                    flag.trim_start_matches("--")
                );
            }
        }
        Ok(())
    }

    /// The routes: the manifest's, or the one component's; limit flags
    /// given on the command line win over each route's keys.
    fn plan(&self, base: &Config, given: &Given) -> Result<Plan> {
        let instance = self.limits.instance();
        let Some(file) = &self.config else {
            let component = self
                .component
                .clone()
                .context("give a component file, or --config wsbox.toml")?;
            let origins = OriginPolicy::new(&self.allow_origin, self.require_origin)?;
            let mut websocket = base.clone();
            websocket.limits.keepalive = self.keepalive_config(None, given)?;
            let route = Route {
                path: "/".into(),
                component,
                websocket,
                instance,
                origins,
            };
            return Ok(Plan {
                manifest: None,
                routes: vec![route],
            });
        };
        let manifest = Manifest::load(file)?;
        let keepalive = self.keepalive_config(Some(&manifest), given)?;
        let mut routes = Vec::new();
        for entry in manifest.routes.iter() {
            let mut route = entry.to_route(base, &instance)?;
            self.limits
                .override_given(&mut route.websocket.limits, &mut route.instance, given);
            route.websocket.limits.keepalive = keepalive;
            routes.push(route);
        }
        Ok(Plan {
            manifest: Some(manifest),
            routes,
        })
    }

    /// The server's settings: a flag given wins, then the manifest's key,
    /// then the flag's default.
    fn serve_config(
        &self,
        websocket: Config,
        manifest: Option<&Manifest>,
        given: &Given,
        log_format: LogFormat,
    ) -> Result<ServeConfig> {
        let settings = manifest.map(|m| m.server.clone()).unwrap_or_default();
        fn pick<T>(given: bool, flag: T, key: Option<T>) -> T {
            if given {
                flag
            } else {
                key.unwrap_or(flag)
            }
        }
        let tls_files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => manifest
                .and_then(|m| m.tls.clone())
                .map(|tls| (tls.cert, tls.key)),
        };
        let tls = tls_files
            .map(|(cert, key)| wsbox::tls_server_config(&cert, &key))
            .transpose()?;
        let mut config = ServeConfig {
            websocket,
            instance: self.limits.instance(),
            tls,
            max_connections: pick(
                given.has("max_connections"),
                self.max_connections,
                settings.max_connections,
            ),
            handshake_timeout: pick(
                given.has("handshake_timeout"),
                self.handshake_timeout.0,
                settings.handshake_timeout,
            ),
            max_handshakes: pick(
                given.has("max_handshakes"),
                self.max_handshakes,
                settings.max_handshakes,
            ),
            shutdown_timeout: pick(
                given.has("shutdown_timeout"),
                self.shutdown_timeout.0,
                settings.shutdown_timeout,
            ),
            guest_log_bytes: pick(
                given.has("guest_log_bytes"),
                self.guest_log_bytes.0,
                settings.guest_log_bytes,
            ),
            guest_log_lines: pick(
                given.has("guest_log_lines"),
                self.guest_log_lines,
                settings.guest_log_lines,
            ),
            pooling: self.pooling || settings.pooling.unwrap_or(false),
            ..ServeConfig::default()
        };
        if log_format == LogFormat::Json {
            config.guest_output = Arc::new(|line: &GuestLine<'_>| {
                tracing::info!(target: "wsbox::guest", client = line.client, route = line.route, "{}", line.text);
            });
        }
        Ok(config)
    }

    /// The keepalive of every connection: a flag given wins, then the
    /// manifest's key, then the flag's default.
    fn keepalive_config(
        &self,
        manifest: Option<&Manifest>,
        given: &Given,
    ) -> Result<Option<KeepaliveConfig>> {
        let settings = manifest.map(|m| &m.server);
        let pick = |id: &str, flag: Duration, key: Option<Duration>| {
            if given.has(id) {
                flag
            } else {
                key.unwrap_or(flag)
            }
        };
        let interval = pick(
            "keepalive",
            self.keepalive.0,
            settings.and_then(|s| s.keepalive),
        );
        let timeout = pick(
            "keepalive_timeout",
            self.keepalive_timeout.0,
            settings.and_then(|s| s.keepalive_timeout),
        );
        KeepaliveConfig::new(interval, timeout).map_err(anyhow::Error::msg)
    }

    fn listen(&self, manifest: Option<&Manifest>) -> String {
        self.listen
            .clone()
            .or_else(|| manifest.and_then(|m| m.listen.clone()))
            .unwrap_or_else(|| "127.0.0.1:8080".into())
    }

    fn metrics(&self, manifest: Option<&Manifest>) -> Option<String> {
        self.metrics
            .clone()
            .or_else(|| manifest.and_then(|m| m.metrics.clone()))
    }
}

impl LimitArgs {
    /// Sets on `limits` and `instance` each limit flag given on the command
    /// line.
    fn override_given(&self, limits: &mut Limits, instance: &mut InstanceLimits, given: &Given) {
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

/// Says something about the server itself on stderr: a plain line, or a
/// JSON object with `--log-format json`.
fn notice(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprintln!("wsbox serve: {text}"),
        LogFormat::Json => tracing::info!(target: "wsbox::cli", "{text}"),
    }
}

/// Like [`notice`], for what went wrong.
fn warning(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprintln!("wsbox serve: {text}"),
        LogFormat::Json => tracing::warn!(target: "wsbox::cli", "{text}"),
    }
}

async fn serve(
    args: ServeArgs,
    matches: Option<ArgMatches>,
    format: LogFormat,
) -> Result<ExitCode> {
    let given = Given(matches.as_ref());
    args.check_flags_for_config(&given)?;
    let websocket = args.limits.config().await?;
    let broker = websocket.broker.clone();
    let plan = args.plan(&websocket, &given)?;
    let manifest = plan.manifest.as_ref();
    let config = args.serve_config(websocket.clone(), manifest, &given, format)?;
    let tls = config.tls.is_some();
    let listen = args.listen(manifest);
    let metrics = args.metrics(manifest);
    let watched = Arc::new(Mutex::new(watched_files(&args.config, &plan.routes)));
    let routes = plan.routes.len();
    let server = Server::with_routes(plan.routes, config)?;
    if args.check {
        let what = match &args.config {
            Some(file) => file.display().to_string(),
            None => args
                .component
                .as_deref()
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
        };
        println!(
            "wsbox serve: {what} can serve ({routes} route{})",
            if routes == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let metrics_listener = match &metrics {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot serve the metrics on {address}"))?,
        ),
        None => None,
    };
    let address = listener.local_addr()?;
    let scheme = if tls { "wss" } else { "ws" };
    println!("wsbox serve: listening on {scheme}://{address}");
    if let Some(metrics) = &metrics_listener {
        println!("wsbox serve: metrics on http://{}", metrics.local_addr()?);
    }
    std::io::Write::flush(&mut std::io::stdout())?;

    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = metrics_listener.map(|listener| {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .serve_metrics(listener, async {
                    let _ = metrics_stopped.await;
                })
                .await
        })
    });
    let (reload, reloads) = tokio::sync::mpsc::channel::<&'static str>(1);
    let mut background = tokio::task::JoinSet::new();
    background.spawn(on_sighup(reload.clone()));
    if args.watch {
        background.spawn(watch(watched.clone(), reload.clone()));
    }
    let args = Arc::new(args);
    let reloader = Reloader {
        args: args.clone(),
        matches,
        websocket,
        server: server.clone(),
        watched,
        format,
    };
    background.spawn(reloader.run(reloads));

    server.serve(listener, shutdown_signal()).await?;
    background.abort_all();
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
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
    notice(format, "shut down");
    Ok(ExitCode::SUCCESS)
}

/// The files whose change `--watch` reloads on: the manifest and every
/// route's component.
fn watched_files(manifest: &Option<PathBuf>, routes: &[Route]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = manifest.iter().cloned().collect();
    for route in routes {
        if !files.contains(&route.component) {
            files.push(route.component.clone());
        }
    }
    files
}

/// Reloads the manifest and the components on request, one at a time.
struct Reloader {
    args: Arc<ServeArgs>,
    matches: Option<ArgMatches>,
    websocket: Config,
    server: Server,
    watched: Arc<Mutex<Vec<PathBuf>>>,
    format: LogFormat,
}

impl Reloader {
    async fn run(self, mut reloads: tokio::sync::mpsc::Receiver<&'static str>) {
        while let Some(why) = reloads.recv().await {
            let given = Given(self.matches.as_ref());
            let plan = match self.args.plan(&self.websocket, &given) {
                Ok(plan) => plan,
                Err(e) => {
                    warning(
                        self.format,
                        &format!(
                            "reload ({why}) refused, the previous version stays in service: {e:#}"
                        ),
                    );
                    continue;
                }
            };
            if let Ok(mut watched) = self.watched.lock() {
                *watched = watched_files(&self.args.config, &plan.routes);
            }
            let paths: Vec<String> = plan.routes.iter().map(|r| r.path.clone()).collect();
            let server = self.server.clone();
            let reloaded = tokio::task::spawn_blocking(move || server.reload(plan.routes)).await;
            match reloaded {
                Ok(Ok(())) => notice(
                    self.format,
                    &format!(
                        "reloaded ({why}): new connections get the new version of {}",
                        paths.join(", ")
                    ),
                ),
                Ok(Err(e)) => warning(
                    self.format,
                    &format!(
                        "reload ({why}) refused, the previous version stays in service: {e:#}"
                    ),
                ),
                Err(e) => warning(
                    self.format,
                    &format!("reload ({why}) failed, the previous version stays in service: {e}"),
                ),
            }
        }
    }
}

/// Asks for a reload on every SIGHUP.
async fn on_sighup(reload: tokio::sync::mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        // One waiting is enough: it reads the files as they are then.
        let _ = reload.try_send("SIGHUP");
    }
}

/// How often `--watch` looks at the files.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Asks for a reload when a watched file changed and then stayed the same
/// for one more look (so that a file being written is not read half-way).
async fn watch(files: Arc<Mutex<Vec<PathBuf>>>, reload: tokio::sync::mpsc::Sender<&'static str>) {
    type Seen = HashMap<PathBuf, Option<(SystemTime, u64)>>;
    fn look(files: &[PathBuf]) -> Seen {
        let stamp = |path: &Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        files.iter().map(|f| (f.clone(), stamp(f))).collect()
    }
    let current = || files.lock().map(|f| f.clone()).unwrap_or_default();
    let mut served = look(&current());
    let mut last = served.clone();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = look(&current());
        let settled = now == last;
        last = now.clone();
        let same_files = now.len() == served.len() && now.keys().all(|k| served.contains_key(k));
        if !same_files {
            // A reload changed which files are served: they were just read.
            served = now;
            continue;
        }
        if settled && now != served {
            served = now;
            let _ = reload.send("a watched file changed").await;
        }
    }
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

/// Logs on stderr through `tracing`: `RUST_LOG` (default `warn`) chooses
/// what; with `json`, one object per line, and the guest's output and the
/// server's notices always in.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_env_filter(filter).init(),
        LogFormat::Json => {
            let filter = ["wsbox::guest=info", "wsbox::cli=info"]
                .iter()
                .filter_map(|d| d.parse().ok())
                .fold(filter, |filter, directive| filter.add_directive(directive));
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_env_filter(filter)
                .init()
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let format = cli.log_format;
    init_logging(format);
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
    let serve_matches = matches.subcommand_matches("serve").cloned();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Serve(args) => serve(args, serve_matches, format).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let line = one_line(&format!("{e:#}"));
            match format {
                LogFormat::Text => eprintln!("wsbox: {line}"),
                LogFormat::Json => tracing::error!(target: "wsbox::cli", "{line}"),
            }
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
