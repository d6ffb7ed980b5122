//! One connection of `wsbox serve`, from `accept` to the end of its
//! instance: the TLS handshake when the server has a certificate, then,
//! within the handshake timeout, the upgrade request; its route (none: 404)
//! and origin (refused: 403); a connection slot (none left: 503); a fresh
//! instance of the route's handler and its `upgrade`; 101 or the guest's
//! status; then `handle` with the websocket. A trap costs only its own
//! connection: 500 during `upgrade`, close code 1011 during `handle`.
//! The steps after TLS run on any stream, plain or TLS.

use super::guest_log;
use super::route::LoadedRoute;
use super::Inner;
use crate::bindings::types::{AcceptOptions, UpgradeRequest, UpgradeResponse};
use crate::connection::Role;
use crate::cpu::CpuMeter;
use crate::escape::escape;
use crate::handshake::server::{parse_upgrade, switching_protocols, Refusal, Upgrade};
use crate::handshake::{self, HeadError};
use crate::metrics::{AliveInstance, HandshakeFailure, TrapKind};
use crate::sandbox::{self, InstanceState};
use crate::view::{Upgraded, WebSocketView};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use wasmtime::Store;
use wasmtime_wasi::WasiCtxBuilder;

/// A connection just accepted.
pub(crate) struct Accepted {
    pub tcp: TcpStream,
    pub remote: SocketAddr,
    /// When it was accepted.
    pub at: Instant,
    /// Its place among the connections in their handshake, held until it
    /// is answered.
    pub handshake: OwnedSemaphorePermit,
}

/// An instance whose `upgrade` accepted the connection.
struct Accepting {
    store: Store<InstanceState>,
    cpu: Arc<CpuMeter>,
    exports: crate::bindings::Server,
    options: AcceptOptions,
    /// Counts the instance alive until it is dropped.
    alive: AliveInstance,
}

/// What a connection is, for the steps after TLS.
struct Peer {
    remote: SocketAddr,
    /// When it was accepted.
    at: Instant,
    /// When its handshake must be over: the TLS handshake and the upgrade
    /// request share the handshake timeout.
    deadline: tokio::time::Instant,
    handshake: OwnedSemaphorePermit,
}

/// Serves one connection to its end. `stopped` says when the server shuts
/// down: the connection then gets 1001.
pub(crate) async fn run(server: Arc<Inner>, accepted: Accepted, stopped: watch::Receiver<bool>) {
    let Accepted {
        tcp,
        remote,
        at,
        handshake,
    } = accepted;
    let _ = tcp.set_nodelay(true);
    let peer = Peer {
        remote,
        at,
        deadline: tokio::time::Instant::from_std(at + server.config.handshake_timeout),
        handshake,
    };
    match server.tls.clone() {
        None => serve(server, tcp, peer, stopped).await,
        // Boxed, so that plain connections' state is not sized for TLS.
        Some(acceptor) => Box::pin(serve_tls(server, acceptor, tcp, peer, stopped)).await,
    }
}

/// The TLS handshake within the handshake deadline, then [`serve`].
async fn serve_tls(
    server: Arc<Inner>,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: Peer,
    stopped: watch::Receiver<bool>,
) {
    let remote = peer.remote;
    match tokio::time::timeout_at(peer.deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => serve(server, tls, peer, stopped).await,
        Ok(Err(e)) => {
            server.metrics.handshake_failed(HandshakeFailure::Tls);
            tracing::debug!(%remote, "the TLS handshake failed: {e}");
        }
        Err(_) => {
            server.metrics.handshake_failed(HandshakeFailure::Tls);
            tracing::debug!(%remote, "no TLS handshake within the handshake timeout");
        }
    }
}

/// The steps after TLS: request, route, origin, slot, instance, 101, handle.
async fn serve<S>(server: Arc<Inner>, mut stream: S, peer: Peer, stopped: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let remote = peer.remote;
    let Some((upgrade, leftover, requested)) =
        request(&server, &mut stream, remote, peer.deadline).await
    else {
        return;
    };
    let Some(route) = server.route(&upgrade.path) else {
        tracing::info!(%remote, path = %escape(&upgrade.path), "no route serves the path: 404");
        let none = Refusal::new(404, "No route serves this path.\n");
        return respond(&server, &mut stream, none).await;
    };
    if let Err(refused) = route.origins.check_headers(&upgrade.headers) {
        tracing::info!(%remote, route = %route.path, "{refused}: 403");
        let forbidden = Refusal::new(403, "This origin may not open a WebSocket here.\n");
        return respond(&server, &mut stream, forbidden).await;
    }
    let Ok(_slot) = server.slots.clone().try_acquire_owned() else {
        tracing::warn!(%remote, route = %route.path, "over capacity ({} connections): 503", server.config.max_connections);
        let busy =
            Refusal::new(503, "Too many connections; try again later.\n").with("Retry-After", "1");
        return respond(&server, &mut stream, busy).await;
    };
    // Boxed: instantiating takes more state than the connection keeps
    // for its life, and only until the 101.
    let accepting = match Box::pin(decide(&server, &route, &upgrade, remote)).await {
        Ok(accepting) => accepting,
        Err(refusal) => return respond(&server, &mut stream, refusal).await,
    };
    let config = &route.handler.websocket.deflate;
    let deflate = if config.enabled {
        crate::deflate::accept(config, upgrade.extensions.iter().map(String::as_str))
    } else {
        None
    };
    let extensions = deflate.as_ref().map(|d| d.response.as_str());
    let answer = match switching_protocols(&upgrade, &accepting.options, extensions) {
        Ok(answer) => answer,
        Err(problem) => {
            tracing::error!(%remote, route = %route.path, "the handler's accept is invalid: {problem}: 500");
            let failed = Refusal::new(500, "The handler failed.\n");
            return respond(&server, &mut stream, failed).await;
        }
    };
    // What is left of the handshake deadline, not a fresh timeout: a
    // client that stops reading cannot hold the slot for longer.
    let wrote = tokio::time::timeout_at(peer.deadline, stream.write_all(answer.as_bytes())).await;
    if !matches!(wrote, Ok(Ok(()))) {
        server.metrics.handshake_failed(HandshakeFailure::Timeout);
        tracing::debug!(%remote, "the 101 answer could not be written in time");
        return;
    }
    server.metrics.upgrade_answered(101);
    drop(peer.handshake);
    let took = peer.at.elapsed();
    server.accept_to_handle.record(took);
    server.metrics.accept_to_handler(took);
    server.request_to_handle.record(requested.elapsed());
    let _open = server.metrics.connection_opened(&route.path);
    let upgraded = Upgraded {
        leftover,
        role: Role::Server,
        protocol: accepting.options.protocol.clone(),
        deflate: deflate.map(|d| d.params),
    };
    // Not kept for the connection's life: the request's headers and the
    // 101's text.
    drop((upgrade, answer));
    handle(
        &server, &route, accepting, stream, upgraded, remote, stopped,
    )
    .await;
}

/// Reads and parses the upgrade request by `deadline`; refuses it (or
/// drops a client that is too slow) and gives `None` otherwise.
async fn request<S>(
    server: &Inner,
    stream: &mut S,
    remote: SocketAddr,
    deadline: tokio::time::Instant,
) -> Option<(Upgrade, BytesMut, Instant)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = tokio::time::timeout_at(deadline, handshake::read_head(stream));
    let (head, leftover) = match read.await {
        Ok(Ok(read)) => read,
        Ok(Err(HeadError::TooLarge)) => {
            let too_large = Refusal::new(431, "The request head is over 16 KiB.\n");
            respond(server, stream, too_large).await;
            return None;
        }
        Ok(Err(HeadError::Ended | HeadError::Io(_))) => {
            server.metrics.handshake_failed(HandshakeFailure::Closed);
            write_refusal(stream, Refusal::new(400, "The request ended early.\n")).await;
            return None;
        }
        Err(_) => {
            server.metrics.handshake_failed(HandshakeFailure::Timeout);
            tracing::debug!(%remote, "no upgrade request within the handshake timeout");
            return None;
        }
    };
    let requested = Instant::now();
    match parse_upgrade(&head) {
        Ok(upgrade) => Some((upgrade, leftover, requested)),
        Err(refusal) => {
            respond(server, stream, refusal).await;
            None
        }
    }
}

/// Instantiates the route's handler and asks its `upgrade`; a refusal
/// says what to answer instead of 101.
async fn decide(
    server: &Inner,
    route: &LoadedRoute,
    upgrade: &Upgrade,
    remote: SocketAddr,
) -> Result<Accepting, Refusal> {
    let failed = || Refusal::new(500, "The handler failed.\n");
    let handler = &route.handler;
    let mut store = {
        let mut wasi = WasiCtxBuilder::new();
        guest_log::attach(&mut wasi, remote, &route.path, &server.config);
        handler.store(wasi.build())
    };
    let alive = server.metrics.instance_alive();
    let cpu = sandbox::cpu(&store);
    let instantiating = Instant::now();
    let exports = cpu
        .run(handler.pre.instantiate_async(&mut store))
        .await
        .map_err(|e| {
            server.metrics.trapped(TrapKind::of(&e));
            tracing::error!(%remote, route = %route.path, "cannot instantiate the handler: {}", describe(route, &e));
            failed()
        })?;
    let took = instantiating.elapsed();
    server.instantiate.record(took);
    server.metrics.instantiated(took);
    let request = UpgradeRequest {
        path: upgrade.path.clone(),
        headers: upgrade.headers.clone(),
        protocols: upgrade.protocols.clone(),
        remote_address: remote.to_string(),
    };
    let decided = cpu
        .run(
            exports
                .wsbox_websocket_handler()
                .call_upgrade(&mut store, &request),
        )
        .await;
    match decided {
        Ok(UpgradeResponse::Accept(options)) => Ok(Accepting {
            store,
            cpu,
            exports,
            options,
            alive,
        }),
        Ok(UpgradeResponse::Reject(status)) => {
            let status = if (400..=599).contains(&status) {
                status
            } else {
                tracing::error!(%remote, route = %route.path, "the handler rejected with status {status}, which is not 4xx or 5xx: 500");
                500
            };
            Err(Refusal::new(status, "The handler rejected the upgrade.\n"))
        }
        Err(e) => {
            server.metrics.trapped(TrapKind::of(&e));
            tracing::error!(%remote, route = %route.path, "the handler trapped in upgrade: {}", describe(route, &e));
            Err(failed())
        }
    }
}

/// Gives the upgraded connection to the instance's `handle`, sends 1001
/// when the server shuts down meanwhile, and ends the instance.
async fn handle<S>(
    server: &Inner,
    route: &LoadedRoute,
    accepting: Accepting,
    stream: S,
    upgraded: Upgraded,
    remote: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Accepting {
        mut store,
        cpu,
        exports,
        alive,
        options,
    } = accepting;
    // Already in the 101; not kept for the connection's life.
    drop(options);
    let mut view = store.data_mut().websocket();
    let pushed = view
        .new_websocket_with(stream, upgraded)
        .and_then(|resource| Ok((view.table.get(&resource)?.link(), resource)));
    let (link, resource) = match pushed {
        Ok(pushed) => pushed,
        Err(e) => {
            return tracing::error!(%remote, route = %route.path, "cannot give the handler its websocket: {e}")
        }
    };
    let result = {
        let call = cpu.run(
            exports
                .wsbox_websocket_handler()
                .call_handle(&mut store, resource),
        );
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
        server.metrics.trapped(TrapKind::of(e));
        tracing::error!(%remote, route = %route.path, "the handler trapped in handle: {}", describe(route, e));
    }
    sandbox::finish(store, result.is_err()).await;
    drop(alive);
}

/// A trap's description, escaped for the log.
fn describe(route: &LoadedRoute, err: &wasmtime::Error) -> String {
    escape(sandbox::describe_trap(err, &route.handler.instance))
}

/// Answers the upgrade request with a refusal, counted, and ends the
/// connection.
async fn respond<S: AsyncWrite + Unpin>(server: &Inner, stream: &mut S, refusal: Refusal) {
    server.metrics.upgrade_answered(refusal.status);
    write_refusal(stream, refusal).await;
}

/// Writes a refusal and ends the connection, within a few seconds.
async fn write_refusal<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) {
    let write = async {
        stream.write_all(&refusal.to_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}
