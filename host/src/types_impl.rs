//! The generated `Host*` traits, implemented on [`WebSocketCtxView`].

use crate::bindings::types::{
    CloseStatus, ConnectOptions, ErrorCode, Fragment, Host, HostWebsocket, Incoming,
    IncomingFragment, Message, QueryCloseStatusError,
};
use crate::client;
use crate::close_code::CloseCode;
use crate::connection::Role;
use crate::error::{HostError, HostResult};
use crate::types::WebSocket;
use crate::view::{Upgraded, WebSocketCtxView};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::DynPollable;

impl Host for WebSocketCtxView<'_> {
    fn convert_error_code(&mut self, err: HostError) -> wasmtime::Result<ErrorCode> {
        err.into_code()
    }
}

impl HostWebsocket for WebSocketCtxView<'_> {
    async fn connect(
        &mut self,
        url: String,
        options: ConnectOptions,
    ) -> HostResult<Resource<WebSocket>> {
        let config = self.ctx.config.clone();
        let target = client::parse_url(&url)?;
        target.check(&config.policy)?;
        client::check_options(&options)?;
        let slot = self.ctx.take_slot()?;
        let upgraded = tokio::time::timeout(
            config.limits.connect_timeout,
            client::open(&target, &options, &config),
        )
        .await
        .map_err(|_| ErrorCode::Timeout)??;
        tracing::debug!(%url, protocol = ?upgraded.protocol, "connected");
        let settled = Upgraded {
            leftover: upgraded.leftover,
            role: Role::Client,
            protocol: upgraded.protocol,
            deflate: upgraded.deflate,
        };
        Ok(self.push(upgraded.stream, settled, slot)?)
    }

    async fn protocol(&mut self, ws: Resource<WebSocket>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&ws)?.protocol())
    }

    async fn send(&mut self, ws: Resource<WebSocket>, message: Message) -> HostResult<()> {
        self.table.get_mut(&ws)?.send(message).await
    }

    async fn send_fragment(
        &mut self,
        ws: Resource<WebSocket>,
        fragment: Fragment,
    ) -> HostResult<()> {
        self.table.get_mut(&ws)?.send_fragment(fragment).await
    }

    async fn ping(&mut self, ws: Resource<WebSocket>, payload: Vec<u8>) -> HostResult<()> {
        self.table.get_mut(&ws)?.ping(payload).await
    }

    async fn receive(&mut self, ws: Resource<WebSocket>) -> HostResult<Incoming> {
        self.table.get_mut(&ws)?.receive().await
    }

    async fn receive_fragment(
        &mut self,
        ws: Resource<WebSocket>,
        max_bytes: u32,
    ) -> HostResult<IncomingFragment> {
        self.table.get_mut(&ws)?.receive_fragment(max_bytes).await
    }

    async fn subscribe(
        &mut self,
        ws: Resource<WebSocket>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, ws)
    }

    async fn close(
        &mut self,
        ws: Resource<WebSocket>,
        code: Option<u16>,
        reason: String,
    ) -> HostResult<()> {
        let code = code.map(CloseCode::from);
        self.table.get_mut(&ws)?.close(code, reason).await
    }

    async fn shutdown(
        &mut self,
        ws: Resource<WebSocket>,
        code: Option<u16>,
        reason: String,
    ) -> HostResult<()> {
        let code = code.map(CloseCode::from);
        self.table.get_mut(&ws)?.shutdown(code, reason).await
    }

    async fn abort(&mut self, ws: Resource<WebSocket>) -> wasmtime::Result<()> {
        self.table.get_mut(&ws)?.abort();
        Ok(())
    }

    async fn query_close_status(
        &mut self,
        ws: Resource<WebSocket>,
    ) -> wasmtime::Result<Result<CloseStatus, QueryCloseStatusError>> {
        Ok(self.table.get(&ws)?.query_close_status())
    }

    async fn drop(&mut self, ws: Resource<WebSocket>) -> wasmtime::Result<()> {
        self.table.delete(ws)?;
        Ok(())
    }
}
