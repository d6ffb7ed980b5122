//! An embedder of wsbox: it serves HTTP with hyper and hands every WebSocket
//! upgrade to a fresh instance of a handler component, in a store that holds
//! `wasi:cli` (wasmtime-wasi), `wasi:http` (wasmtime-wasi-http) and
//! `wsbox:websocket` together, linked by one `Linker`. The handler may make
//! HTTP requests through `wasi:http/outgoing-handler`, to the authorities
//! given on the command line only.
//!
//! ```sh
//! cargo run -p wsbox --example http_and_websockets -- \
//!     target/guests/wasm32-wasip2/release/http_bridge.wasm 127.0.0.1:8080 127.0.0.1:8000
//! ```
//!
//! serves the `http-bridge` guest (`guest/http-bridge`) on 127.0.0.1:8080 and
//! lets it GET from 127.0.0.1:8000. `tests/tests/embedder.rs` runs
//! [`Embedder::serve`] against real peers.
//!
//! An embedder applies its own sandbox to its stores: a memory limit
//! (`Store::limiter`), a CPU deadline (epoch interruption), a cap on the
//! resource table (`wsbox::InstanceLimits` lists what `wsbox serve` applies).
//! This example leaves them out to stay short.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Engine, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};
use wsbox::bindings::types::{AcceptOptions, UpgradeRequest, UpgradeResponse};
use wsbox::bindings::{Server, ServerPre};
use wsbox::{
    CloseCode, Config, DeflateConfig, Role, Upgraded, WebSocketCtx, WebSocketCtxView, WebSocketView,
};

/// One instance's store data. WASI, `wasi:http` and the websockets share
/// its resource table.
pub struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: AllowList,
    websockets: WebSocketCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl WebSocketView for State {
    fn websocket(&mut self) -> WebSocketCtxView<'_> {
        WebSocketCtxView {
            ctx: &mut self.websockets,
            table: &mut self.table,
        }
    }
}

/// The outbound HTTP policy. `wasi:http`'s default hooks let a guest reach
/// any address; these let it reach only the listed authorities
/// (`host:port`), and deny the rest with `http-request-denied`.
struct AllowList(Arc<[String]>);

/// What `WasiHttpHooks::send_request` returns.
type Sending = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for AllowList {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sending {
        let authority = request.uri().authority().map(|a| a.as_str());
        if !authority.is_some_and(|a| self.0.iter().any(|allowed| allowed == a)) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, connection) =
                wasmtime_wasi_http::default_send_request(request, options).await?;
            let connection: Box<dyn Future<Output = _> + Send> = Box::new(connection);
            Ok((response.map(BodyExt::boxed_unsync), connection))
        })
    }
}

/// The HTTP server: one engine, one linker, the handler pre-instantiated.
pub struct Embedder {
    handler: ServerPre<State>,
    websockets: Arc<Config>,
    http_allowed: Arc<[String]>,
}

impl Embedder {
    /// Compiles the handler component at `path` and links it: `wasi:cli`,
    /// `wasi:http` and `wsbox:websocket` in one `Linker`. Its outbound HTTP
    /// may reach `http_allowed` (`host:port` each) only; its outbound
    /// websockets, none (`Config::default()`'s policy denies all). Its
    /// websockets accept permessage-deflate when the client offers it.
    pub fn new(path: &Path, http_allowed: &[String]) -> Result<Embedder> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        wsbox::add_to_linker_async(&mut linker)?;
        let component = Component::from_file(&engine, path)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let handler = ServerPre::new(linker.instantiate_pre(&component)?).with_context(|| {
            format!(
                "{} is not a wsbox:websocket handler (it must export wsbox:websocket/handler)",
                path.display()
            )
        })?;
        Ok(Embedder {
            handler,
            websockets: Arc::new(Config {
                deflate: DeflateConfig::enabled(),
                ..Config::default()
            }),
            http_allowed: http_allowed.into(),
        })
    }

    /// Serves HTTP/1.1 connections from `listener` until the task is
    /// dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (tcp, remote) = listener.accept().await?;
            let embedder = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    embedder.clone().respond(request, remote)
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10)) // against slowloris
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
                if let Err(e) = served {
                    eprintln!("[{remote}] the connection failed: {e}");
                }
            });
        }
    }

    /// Answers one request: a WebSocket upgrade goes to a fresh instance of
    /// the handler; anything else gets 426.
    async fn respond(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        if !has_token(&request, header::UPGRADE, "websocket") {
            return Ok(text(
                StatusCode::UPGRADE_REQUIRED,
                "This server speaks WebSocket only: send a GET with Upgrade: websocket.\n",
            ));
        }
        let key = match websocket_key(&request) {
            Ok(key) => key,
            Err(why) => return Ok(text(StatusCode::BAD_REQUEST, why)),
        };
        let (store, handler, options) = match self.upgrade(&request, remote).await {
            Ok(accepted) => accepted,
            Err(refused) => return Ok(refused),
        };
        // permessage-deflate, when the client offers it and the config
        // enables it: the answer goes in the 101, the parameters to the
        // websocket.
        let offers = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let deflate = wsbox::accept_deflate(&self.websockets.deflate, offers);
        let extensions = deflate.as_ref().map(|d| d.response.as_str());
        let answer = match switching_protocols(&request, &key, &options, extensions) {
            Ok(answer) => answer,
            Err(why) => {
                eprintln!("[{remote}] the handler's accept is invalid: {why}");
                return Ok(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The handler failed.\n",
                ));
            }
        };
        // hyper hands over the connection once the 101 is written.
        let upgrade = hyper::upgrade::on(&mut request);
        // hyper keeps any bytes read past the request head inside the
        // upgraded stream, so there is no leftover to hand over.
        let upgraded = Upgraded::new(Role::Server)
            .with_protocol(options.protocol)
            .with_deflate(deflate.map(|d| d.params));
        tokio::spawn(async move {
            match upgrade.await {
                Ok(io) => handle(store, handler, TokioIo::new(io), upgraded, remote).await,
                Err(e) => eprintln!("[{remote}] the upgrade failed: {e}"),
            }
        });
        Ok(answer)
    }

    /// Instantiates the handler in a new store and asks its `upgrade`, as
    /// `wsbox serve` does: the instance, or the answer that refuses.
    async fn upgrade(
        &self,
        request: &Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<(Store<State>, Server, AcceptOptions), Response<Full<Bytes>>> {
        let failed = |what: &str, e: wasmtime::Error| {
            eprintln!("[{remote}] the handler failed in {what}: {e:#}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "The handler failed.\n")
        };
        let state = State {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            http_hooks: AllowList(self.http_allowed.clone()),
            websockets: WebSocketCtx::new(self.websockets.clone()),
        };
        let mut store = Store::new(self.handler.engine(), state);
        let handler = self
            .handler
            .instantiate_async(&mut store)
            .await
            .map_err(|e| failed("instantiation", e))?;
        let upgrade = UpgradeRequest {
            path: request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.to_string(), value)
                })
                .collect(),
            protocols: offered_protocols(request),
            remote_address: remote.to_string(),
        };
        let decided = handler
            .wsbox_websocket_handler()
            .call_upgrade(&mut store, &upgrade)
            .await
            .map_err(|e| failed("upgrade", e))?;
        match decided {
            UpgradeResponse::Accept(options) => Ok((store, handler, options)),
            UpgradeResponse::Reject(status) => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Err(text(status, "The handler rejected the upgrade.\n"))
            }
        }
    }
}

/// Gives the upgraded connection to the instance's `handle`, then ends the
/// instance: what the guest left open is closed (1011 after a trap) and
/// its close frames get out before the task ends.
async fn handle(
    mut store: Store<State>,
    handler: Server,
    io: TokioIo<hyper::upgrade::Upgraded>,
    upgraded: Upgraded,
    remote: SocketAddr,
) {
    let websocket = store
        .data_mut()
        .websocket()
        .new_websocket_with(io, upgraded);
    let trapped = match websocket {
        Ok(websocket) => {
            let handled = handler
                .wsbox_websocket_handler()
                .call_handle(&mut store, websocket)
                .await;
            if let Err(e) = &handled {
                eprintln!("[{remote}] the handler trapped in handle: {e:#}");
            }
            handled.is_err()
        }
        Err(e) => {
            eprintln!("[{remote}] cannot give the handler its websocket: {e:#}");
            false
        }
    };
    let websockets = &mut store.data_mut().websockets;
    if trapped {
        websockets.set_drop_code(CloseCode::Error);
    }
    let ended = websockets.finish();
    drop(store);
    ended.await;
}

/// Whether header `name` lists `token` (case-insensitive), as `Upgrade`
/// and `Connection` do.
fn has_token(request: &Request<Incoming>, name: HeaderName, token: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Key` of a valid RFC 6455 upgrade request, or why it
/// is not one.
fn websocket_key(request: &Request<Incoming>) -> Result<HeaderValue, &'static str> {
    if request.method() != hyper::Method::GET {
        return Err("A WebSocket upgrade is a GET.\n");
    }
    if !has_token(request, header::CONNECTION, "upgrade") {
        return Err("A WebSocket upgrade needs Connection: Upgrade.\n");
    }
    if request.headers().get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
    {
        return Err("Only Sec-WebSocket-Version: 13 is supported.\n");
    }
    request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or("A WebSocket upgrade needs a Sec-WebSocket-Key.\n")
}

/// The subprotocols the client offered, in its order.
fn offered_protocols(request: &Request<Incoming>) -> Vec<String> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The 101 answer for the handler's accept, with wsbox's own headers and
/// header rules (`wsbox::handshake::accept_headers`), or why it cannot be
/// sent: a subprotocol the client did not offer, or a header the handshake
/// sets or HTTP cannot carry.
fn switching_protocols(
    request: &Request<Incoming>,
    key: &HeaderValue,
    options: &AcceptOptions,
    extensions: Option<&str>,
) -> Result<Response<Full<Bytes>>, String> {
    let key = key
        .to_str()
        .map_err(|_| "the Sec-WebSocket-Key is not text".to_string())?;
    let headers = wsbox::handshake::accept_headers(
        key,
        &offered_protocols(request),
        options.protocol.as_deref(),
        extensions,
        &options.headers,
    )?;
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in headers {
        answer = answer.header(name, value);
    }
    answer
        .body(Full::default())
        .map_err(|e| format!("the 101 answer: {e}"))
}

/// A response with a plain-text body.
fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `http_and_websockets COMPONENT [LISTEN [HOST:PORT...]]`: serves
/// `COMPONENT` on `LISTEN` (127.0.0.1:8080), its outbound HTTP allowed to
/// each `HOST:PORT`.
#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: http_and_websockets COMPONENT [LISTEN [HOST:PORT...]]";
    let component = args.next().context(usage)?;
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let http_allowed: Vec<String> = args.collect();
    let embedder = Arc::new(Embedder::new(Path::new(&component), &http_allowed)?);
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on ws://{}", listener.local_addr()?);
    embedder.serve(listener).await
}
