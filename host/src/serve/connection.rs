//! One connection of `wsbox serve`, from `accept` to the end of its
//! instance: read the upgrade request (within the handshake timeout), take
//! a connection slot (none left: 503), instantiate the handler, call
//! `upgrade`, answer 101 or the guest's status, then call `handle` with the
//! websocket. A trap costs only its own connection: 500 during `upgrade`,
//! close code 1011 during `handle`.

use super::Inner;
use crate::bindings::types::{AcceptOptions, UpgradeRequest, UpgradeResponse};
use crate::connection::Role;
use crate::cpu::CpuMeter;
use crate::guest_log;
use crate::handshake::server::{parse_upgrade, switching_protocols, Refusal, Upgrade};
use crate::handshake::{self, HeadError};
use crate::sandbox::{self, InstanceState};
use crate::view::{Upgraded, WebSocketView};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
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
}

/// Serves one connection to its end. `stopped` says when the server shuts
/// down: the connection then gets 1001.
pub(crate) async fn run(server: Arc<Inner>, accepted: Accepted, stopped: watch::Receiver<bool>) {
    let Accepted {
        mut tcp,
        remote,
        at,
        handshake,
    } = accepted;
    let _ = tcp.set_nodelay(true);
    let Some((upgrade, leftover, requested)) = request(&server, &mut tcp, remote).await else {
        return;
    };
    let Ok(_slot) = server.slots.clone().try_acquire_owned() else {
        tracing::warn!(%remote, "over capacity ({} connections): 503", server.config.max_connections);
        let busy =
            Refusal::new(503, "Too many connections; try again later.\n").with("Retry-After", "1");
        return respond(&mut tcp, busy).await;
    };
    let accepting = match decide(&server, &upgrade, remote).await {
        Ok(accepting) => accepting,
        Err(refusal) => return respond(&mut tcp, refusal).await,
    };
    let config = &server.handler.websocket.deflate;
    let deflate = if config.enabled {
        crate::deflate::accept(config, upgrade.extensions.iter().map(String::as_str))
    } else {
        None
    };
    let extensions = deflate.as_ref().map(|d| d.response.as_str());
    let answer = match switching_protocols(&upgrade, &accepting.options, extensions) {
        Ok(answer) => answer,
        Err(problem) => {
            tracing::error!(%remote, "the handler's accept is invalid: {problem}: 500");
            return respond(&mut tcp, Refusal::new(500, "The handler failed.\n")).await;
        }
    };
    let wrote = tokio::time::timeout(
        server.config.handshake_timeout,
        tcp.write_all(answer.as_bytes()),
    )
    .await;
    if !matches!(wrote, Ok(Ok(()))) {
        tracing::debug!(%remote, "the 101 answer could not be written in time");
        return;
    }
    drop(handshake);
    server.accept_to_handle.record(at.elapsed());
    server.request_to_handle.record(requested.elapsed());
    let upgraded = Upgraded {
        leftover,
        role: Role::Server,
        protocol: accepting.options.protocol.clone(),
        deflate: deflate.map(|d| d.params),
    };
    handle(&server, accepting, tcp, upgraded, remote, stopped).await;
}

/// Reads and parses the upgrade request within the handshake timeout;
/// refuses it (or drops a client that is too slow) and gives `None`
/// otherwise.
async fn request(
    server: &Inner,
    tcp: &mut TcpStream,
    remote: SocketAddr,
) -> Option<(Upgrade, BytesMut, Instant)> {
    let read = tokio::time::timeout(server.config.handshake_timeout, handshake::read_head(tcp));
    let (head, leftover) = match read.await {
        Ok(Ok(read)) => read,
        Ok(Err(HeadError::TooLarge)) => {
            let too_large = Refusal::new(431, "The request head is over 16 KiB.\n");
            respond(tcp, too_large).await;
            return None;
        }
        Ok(Err(HeadError::Ended | HeadError::Io(_))) => {
            respond(tcp, Refusal::new(400, "The request ended early.\n")).await;
            return None;
        }
        Err(_) => {
            tracing::debug!(%remote, "no upgrade request within the handshake timeout");
            return None;
        }
    };
    let requested = Instant::now();
    match parse_upgrade(&head) {
        Ok(upgrade) => Some((upgrade, leftover, requested)),
        Err(refusal) => {
            respond(tcp, refusal).await;
            None
        }
    }
}

/// Instantiates the handler and asks its `upgrade`; a refusal says what to
/// answer instead of 101.
async fn decide(
    server: &Inner,
    upgrade: &Upgrade,
    remote: SocketAddr,
) -> Result<Accepting, Refusal> {
    let failed = || Refusal::new(500, "The handler failed.\n");
    let mut store = {
        let mut wasi = WasiCtxBuilder::new();
        guest_log::attach(&mut wasi, remote, &server.config);
        server.handler.store(wasi.build())
    };
    let cpu = sandbox::cpu(&store);
    let instantiating = Instant::now();
    let exports = cpu
        .run(server.handler.pre.instantiate_async(&mut store))
        .await
        .map_err(|e| {
            tracing::error!(%remote, "cannot instantiate the handler: {}", describe(server, &e));
            failed()
        })?;
    server.instantiate.record(instantiating.elapsed());
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
        }),
        Ok(UpgradeResponse::Reject(status)) => {
            let status = if (400..=599).contains(&status) {
                status
            } else {
                tracing::error!(%remote, "the handler rejected with status {status}, which is not 4xx or 5xx: 500");
                500
            };
            Err(Refusal::new(status, "The handler rejected the upgrade.\n"))
        }
        Err(e) => {
            tracing::error!(%remote, "the handler trapped in upgrade: {}", describe(server, &e));
            Err(failed())
        }
    }
}

/// Gives the upgraded connection to the instance's `handle`, sends 1001
/// when the server shuts down meanwhile, and ends the instance.
async fn handle(
    server: &Inner,
    accepting: Accepting,
    tcp: TcpStream,
    upgraded: Upgraded,
    remote: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let Accepting {
        mut store,
        cpu,
        exports,
        ..
    } = accepting;
    let mut view = store.data_mut().websocket();
    let pushed = view
        .ctx
        .take_slot()
        .map_err(|_| wasmtime::Error::msg("no websocket slot"))
        .and_then(|slot| Ok(view.push(tcp, upgraded, slot)?))
        .and_then(|resource| Ok((view.table.get(&resource)?.link(), resource)));
    let (link, resource) = match pushed {
        Ok(pushed) => pushed,
        Err(e) => return tracing::error!(%remote, "cannot give the handler its websocket: {e}"),
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
        tracing::error!(%remote, "the handler trapped in handle: {}", describe(server, e));
    }
    sandbox::finish(store, result.is_err()).await;
}

/// A trap's description, escaped for the log.
fn describe(server: &Inner, err: &wasmtime::Error) -> String {
    guest_log::escape(sandbox::describe_trap(err, &server.handler.instance))
}

/// Writes a refusal and ends the connection, within a few seconds.
async fn respond(tcp: &mut TcpStream, refusal: Refusal) {
    let write = async {
        tcp.write_all(&refusal.to_bytes()).await?;
        tcp.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}
