//! `wsbox serve`: every incoming WebSocket connection gets a fresh, isolated
//! instance of a `server`-world handler, which decides on the upgrade and
//! then owns the connection (the IIS `IWebSocketContext` half).
//!
//! Per connection: read the HTTP/1.1 request (within the handshake
//! timeout), take a connection slot (none left: 503), instantiate from the
//! pre-instantiated component, call `upgrade`, answer 101 or the guest's
//! status, then call `handle` with the websocket. A trap costs only its own
//! connection: 500 during `upgrade`, close code 1011 during `handle`.

use crate::bindings::types::{AcceptOptions, UpgradeRequest, UpgradeResponse};
use crate::bindings::ServerPre;
use crate::config::Config;
use crate::connection::Role;
use crate::error::{Error, Result};
use crate::guest_log;
use crate::runner::{load_component, one_line};
use crate::sandbox::{self, InstanceState};
use crate::stats::{Latencies, ServeStats};
use crate::view::WebSocketView;
use bytes::BytesMut;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// The longest HTTP request head the server reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

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

/// A handler component compiled and pre-instantiated, as every
/// connection's instance is made from it.
pub(crate) struct Handler {
    engine: Engine,
    pub(crate) pre: ServerPre<InstanceState>,
    pub(crate) websocket: Arc<Config>,
    /// How long reading and compiling the component took (for
    /// `bench_support`, which only the `bench` feature builds).
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub(crate) compile: Duration,
}

impl Handler {
    /// Makes the engine `config` asks for (with the pooling allocator sized
    /// for `max_connections`, or not), compiles the component and checks
    /// that it is a `server`-world handler.
    pub(crate) fn load(path: &Path, config: &ServeConfig) -> Result<Handler> {
        let instances = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
        let engine = sandbox::engine(
            config
                .pooling
                .then_some((instances, &config.websocket.limits)),
        )?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| crate::add_to_linker(&mut linker))
            .map_err(|e| Error::Runtime(format!("{e:#}")))?;
        let start = Instant::now();
        let component = load_component(&engine, path)?;
        let compile = start.elapsed();
        let wrong = |e: wasmtime::Error| Error::WrongWorld {
            path: path.display().to_string(),
            world: "wsbox:websocket/server",
            reason: one_line(&e),
        };
        let pre =
            ServerPre::new(linker.instantiate_pre(&component).map_err(wrong)?).map_err(wrong)?;
        Ok(Handler {
            engine,
            pre,
            websocket: Arc::new(config.websocket.clone()),
            compile,
        })
    }

    /// A store for one instance, with `wasi` as its WASI context.
    pub(crate) fn store(&self, wasi: WasiCtx) -> Store<InstanceState> {
        sandbox::store(&self.engine, wasi, self.websocket.clone())
    }
}

struct Inner {
    handler: Handler,
    config: ServeConfig,
    slots: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    accept_to_handle: Latencies,
    request_to_handle: Latencies,
    instantiate: Latencies,
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
            budget.check(&config, POOLED_INSTANCE_ESTIMATE)?;
        }
        let path = component.as_ref();
        let handler = Handler::load(path, &config)?;
        let per_instance = measure_instance(&handler, &config, path)?;
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
                        let connection = self.inner.clone().connection(tcp, remote, accepted, handshake, stopped.clone());
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

/// Mappings kept free for the process itself: thread stacks, large
/// buffers, the memory allocator's arenas.
const MAPPING_HEADROOM: usize = 1024;

/// Instances made at start-up to measure the mappings one costs.
const PROBES: usize = 8;

/// Mappings every connection slot costs besides its instance: a fibre
/// stack and its guard page (made per call with the default allocator, for
/// every slot up front with the pooling allocator).
const STACK_MAPPINGS: usize = 2;

/// What an instance of a Rust sample guest costs in the pooling allocator,
/// measured; used only to say how many slots fit when the pool itself does
/// not.
const POOLED_INSTANCE_ESTIMATE: usize = 4;

/// The kernel's limit on memory mappings, and how many the process had
/// before the engine was made.
#[derive(Clone, Copy)]
struct MapBudget {
    limit: usize,
    in_use: usize,
}

impl MapBudget {
    /// `None` where the kernel does not say (not Linux).
    fn measure() -> Option<MapBudget> {
        Some(MapBudget {
            limit: sandbox::max_map_count()?,
            in_use: sandbox::mappings()?,
        })
    }

    /// Refuses `config.max_connections` if that many slots of
    /// `per_instance` mappings each (plus their stacks) would not fit.
    fn check(self, config: &ServeConfig, per_instance: usize) -> Result<()> {
        let per_slot = per_instance + STACK_MAPPINGS;
        let room = self.limit.saturating_sub(self.in_use + MAPPING_HEADROOM);
        if config.max_connections <= room / per_slot {
            return Ok(());
        }
        // What to suggest leaves a mapping per connection to spare, for the
        // measurement to vary from run to run, and is a round number.
        let allowed = room / (per_slot + 1);
        Err(Error::TooManyConnections {
            requested: config.max_connections,
            allowed: if allowed >= 1000 {
                allowed / 100 * 100
            } else {
                allowed
            },
            per_connection: per_slot,
            needed: self.in_use + config.max_connections * per_slot,
            max_map_count: self.limit,
            in_use: self.in_use,
            pooling_hint: if config.pooling {
                ""
            } else {
                ", use --pooling"
            },
        })
    }
}

/// Instantiates the handler a few times, so that a component that cannot
/// be instantiated at all fails here, not on every connection, and returns
/// the memory mappings one more instance costs (`None` where the kernel does
/// not say).
fn measure_instance(handler: &Handler, config: &ServeConfig, path: &Path) -> Result<Option<usize>> {
    let instantiate = || {
        let mut store = handler.store(WasiCtxBuilder::new().build());
        let polled = {
            let cpu = sandbox::cpu(&store);
            let instantiated = std::pin::pin!(cpu.run(handler.pre.instantiate_async(&mut store)));
            instantiated.poll(&mut Context::from_waker(std::task::Waker::noop()))
        };
        match polled {
            Poll::Ready(Ok(_)) => Ok(Some((store, sandbox::mappings()))),
            Poll::Ready(Err(e)) => Err(Error::Runtime(format!(
                "cannot instantiate {}: {}",
                path.display(),
                one_line(&e)
            ))),
            // Only a start function that waits could get here; measure
            // nothing then.
            Poll::Pending => Ok(None),
        }
    };
    // The first instance may map what later ones share; the others give
    // the cost of one more. It varies (the kernel merges neighbouring
    // mappings when it can), so take the most any one of them cost.
    // A pool holds no more instances than connections.
    let probes = PROBES.min(config.max_connections.saturating_sub(1));
    let mut stores = Vec::with_capacity(probes + 1);
    let mut counts = Vec::with_capacity(probes + 1);
    for _ in 0..=probes {
        let Some((store, Some(count))) = instantiate()? else {
            return Ok(None);
        };
        stores.push(store);
        counts.push(count);
    }
    if probes == 0 {
        return Ok(None);
    }
    let most = counts
        .windows(2)
        .map(|pair| pair[1].saturating_sub(pair[0]))
        .max();
    Ok(most.map(|n| n.max(1)))
}

/// A request that will not be upgraded, and how to answer it.
struct Refusal {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Refusal {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Refusal {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// A valid upgrade request.
struct Upgrade {
    path: String,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    key: String,
}

impl Inner {
    async fn connection(
        self: Arc<Self>,
        mut tcp: TcpStream,
        remote: SocketAddr,
        accepted: Instant,
        handshake: OwnedSemaphorePermit,
        mut stopped: watch::Receiver<bool>,
    ) {
        let _ = tcp.set_nodelay(true);
        let (head, leftover) =
            match tokio::time::timeout(self.config.handshake_timeout, read_head(&mut tcp)).await {
                Ok(Ok(read)) => read,
                Ok(Err(refusal)) => return respond(&mut tcp, refusal).await,
                Err(_) => {
                    tracing::debug!(%remote, "no upgrade request within the handshake timeout");
                    return;
                }
            };
        let requested = Instant::now();
        let upgrade = match parse_upgrade(&head) {
            Ok(upgrade) => upgrade,
            Err(refusal) => return respond(&mut tcp, refusal).await,
        };
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "over capacity ({} connections): 503", self.config.max_connections);
            let mut refusal = Refusal::new(503, "Too many connections; try again later.\n");
            refusal.headers.push(("Retry-After", "1".into()));
            return respond(&mut tcp, refusal).await;
        };
        let mut store = self.store(remote);
        let cpu = sandbox::cpu(&store);
        let instantiating = Instant::now();
        let handler = match cpu
            .run(self.handler.pre.instantiate_async(&mut store))
            .await
        {
            Ok(handler) => {
                self.instantiate.record(instantiating.elapsed());
                handler
            }
            Err(e) => {
                tracing::error!(%remote, "cannot instantiate the handler: {}", guest_log::escape(self.describe(&e)));
                return respond(&mut tcp, Refusal::new(500, "The handler failed.\n")).await;
            }
        };
        let request = UpgradeRequest {
            path: upgrade.path.clone(),
            headers: upgrade.headers.clone(),
            protocols: upgrade.protocols.clone(),
            remote_address: remote.to_string(),
        };
        let handler = handler.wsbox_websocket_handler();
        let options = match cpu.run(handler.call_upgrade(&mut store, &request)).await {
            Ok(UpgradeResponse::Accept(options)) => options,
            Ok(UpgradeResponse::Reject(status)) => {
                let status = if (400..=599).contains(&status) {
                    status
                } else {
                    tracing::error!(%remote, "the handler rejected with status {status}, which is not 4xx or 5xx: 500");
                    500
                };
                return respond(
                    &mut tcp,
                    Refusal::new(status, "The handler rejected the upgrade.\n"),
                )
                .await;
            }
            Err(e) => {
                tracing::error!(%remote, "the handler trapped in upgrade: {}", guest_log::escape(self.describe(&e)));
                return respond(&mut tcp, Refusal::new(500, "The handler failed.\n")).await;
            }
        };
        let answer = match switching_protocols(&upgrade, &options) {
            Ok(answer) => answer,
            Err(problem) => {
                tracing::error!(%remote, "the handler's accept is invalid: {problem}: 500");
                return respond(&mut tcp, Refusal::new(500, "The handler failed.\n")).await;
            }
        };
        let wrote = tokio::time::timeout(
            self.config.handshake_timeout,
            tcp.write_all(answer.as_bytes()),
        )
        .await;
        if !matches!(wrote, Ok(Ok(()))) {
            tracing::debug!(%remote, "the 101 answer could not be written in time");
            return;
        }
        drop(handshake);
        let (resource, link) = {
            let view = store.data_mut().websocket();
            let slot = match view.ctx.take_slot() {
                Ok(slot) => slot,
                Err(_) => return tracing::error!(%remote, "no websocket slot for the connection"),
            };
            let ws = view
                .ctx
                .start(tcp, leftover, Role::Server, options.protocol, slot);
            let link = ws.link();
            match view.table.push(ws) {
                Ok(resource) => (resource, link),
                Err(e) => return tracing::error!(%remote, "resource table: {e}"),
            }
        };
        let result = {
            self.accept_to_handle.record(accepted.elapsed());
            self.request_to_handle.record(requested.elapsed());
            let call = cpu.run(handler.call_handle(&mut store, resource));
            tokio::pin!(call);
            let mut going_away = false;
            loop {
                tokio::select! {
                    result = &mut call => break result,
                    changed = stopped.changed(), if !going_away => {
                        going_away = true;
                        if changed.is_ok() {
                            link.close_now(crate::CloseCode::Away);
                        }
                    }
                }
            }
        };
        if let Err(e) = &result {
            tracing::error!(%remote, "the handler trapped in handle: {}", guest_log::escape(self.describe(e)));
        }
        sandbox::finish(store, result.is_err()).await;
    }

    fn store(&self, remote: SocketAddr) -> Store<InstanceState> {
        let mut wasi = WasiCtxBuilder::new();
        guest_log::attach(&mut wasi, remote, &self.config);
        self.handler.store(wasi.build())
    }

    fn describe(&self, err: &wasmtime::Error) -> String {
        sandbox::describe_trap(err, &self.handler.websocket.limits)
    }
}

async fn read_head(tcp: &mut TcpStream) -> std::result::Result<(BytesMut, BytesMut), Refusal> {
    let mut buf = BytesMut::with_capacity(1024);
    // Where the search for the blank line goes on: each byte is looked at
    // about once, however the request arrives.
    let mut searched = 0;
    loop {
        if let Some(end) = buf[searched..].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf.split_to(searched + end + 4);
            return Ok((head, buf));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_REQUEST_HEAD {
            return Err(Refusal::new(431, "The request head is over 16 KiB.\n"));
        }
        match tcp.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(Refusal::new(400, "The request ended early.\n")),
            Ok(_) => {}
        }
    }
}

fn parse_upgrade(head: &[u8]) -> std::result::Result<Upgrade, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(Refusal::new(400, "Malformed HTTP request.\n"));
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let has_token = |name: &str, token: &str| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| {
                String::from_utf8_lossy(h.value)
                    .split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .any(|t| t == token)
    };
    if !has_token("upgrade", "websocket") {
        let mut refusal = Refusal::new(
            426,
            "This is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket).\n",
        );
        refusal.headers.push(("Upgrade", "websocket".into()));
        refusal.headers.push(("Sec-WebSocket-Version", "13".into()));
        return Err(refusal);
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return Err(Refusal::new(
            400,
            "A WebSocket upgrade is an HTTP/1.1 GET request.\n",
        ));
    }
    if !has_token("connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "The upgrade request lacks `Connection: Upgrade`.\n",
        ));
    }
    if header("sec-websocket-version").as_deref().map(str::trim) != Some("13") {
        let mut refusal = Refusal::new(426, "Only WebSocket version 13 is supported.\n");
        refusal.headers.push(("Sec-WebSocket-Version", "13".into()));
        return Err(refusal);
    }
    let key = header("sec-websocket-key")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let key_ok = key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !key_ok {
        return Err(Refusal::new(
            400,
            "The upgrade request lacks a valid Sec-WebSocket-Key.\n",
        ));
    }
    let protocols = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Upgrade {
        path: request.path.unwrap_or("/").to_string(),
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        protocols,
        key,
    })
}

/// The 101 answer, or why the handler's options cannot be sent.
fn switching_protocols(
    upgrade: &Upgrade,
    options: &AcceptOptions,
) -> std::result::Result<String, String> {
    let accept = tungstenite::handshake::derive_accept_key(upgrade.key.as_bytes());
    let mut answer =
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n");
    if let Some(protocol) = &options.protocol {
        if !upgrade.protocols.contains(protocol) {
            return Err(format!(
                "it chose subprotocol {protocol:?}, which the client did not offer (offered: {:?})",
                upgrade.protocols
            ));
        }
        answer.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    crate::client::check_headers(&options.headers).map_err(|e| format!("{e:?}"))?;
    for (name, value) in &options.headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    Ok(answer)
}

async fn respond(tcp: &mut TcpStream, refusal: Refusal) {
    let reason = match refusal.status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut text = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        refusal.status,
        refusal.body.len()
    );
    for (name, value) in &refusal.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&refusal.body);
    let write = async {
        tcp.write_all(text.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}
