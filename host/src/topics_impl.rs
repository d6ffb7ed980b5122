//! The generated `topics` traits, implemented on [`WebSocketCtxView`].

use crate::bindings::topics::{Host, HostSubscription};
use crate::bindings::types::Message;
use crate::error::{invalid_state, HostResult};
use crate::topics::{Receiver, ReceiverKey, Subscription, TopicName};
use crate::types::{State, WebSocket};
use crate::view::WebSocketCtxView;
use std::sync::Arc;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::DynPollable;

/// The key a websocket is known by in the broker.
fn key(ws: &WebSocket) -> ReceiverKey {
    ReceiverKey::of(&ws.link())
}

impl Host for WebSocketCtxView<'_> {
    async fn join(&mut self, conn: Resource<WebSocket>, topic: String) -> HostResult<()> {
        let topic = TopicName::new(&topic)?;
        let ws = self.table.get(&conn)?;
        if ws.state() != State::Open {
            return Err(invalid_state(
                "the websocket is closing or closed; only an open websocket may join a topic",
            ));
        }
        let link = ws.link();
        let receiver: Arc<dyn Receiver> = link.clone();
        self.ctx
            .topics
            .join(ReceiverKey::of(&link), &receiver, &topic)
            .await?;
        link.joined(self.ctx.topics.broker());
        Ok(())
    }

    async fn leave(&mut self, conn: Resource<WebSocket>, topic: String) -> HostResult<()> {
        let topic = TopicName::new(&topic)?;
        let key = key(self.table.get(&conn)?);
        self.ctx.topics.leave(key, &topic);
        Ok(())
    }

    async fn publish(
        &mut self,
        topic: String,
        message: Message,
        except: Option<Resource<WebSocket>>,
    ) -> HostResult<()> {
        let topic = TopicName::new(&topic)?;
        let except = match except {
            Some(ws) => Some(key(self.table.get(&ws)?)),
            None => None,
        };
        Ok(self.ctx.topics.publish(&topic, &message, except).await?)
    }
}

impl HostSubscription for WebSocketCtxView<'_> {
    async fn open(&mut self, topic: String) -> HostResult<Resource<Subscription>> {
        let subscription = self.ctx.topics.open(&topic).await?;
        Ok(self.table.push(subscription)?)
    }

    async fn receive(&mut self, subscription: Resource<Subscription>) -> HostResult<Message> {
        Ok(self.table.get(&subscription)?.receive().await?)
    }

    async fn subscribe(
        &mut self,
        subscription: Resource<Subscription>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, subscription)
    }

    async fn drop(&mut self, subscription: Resource<Subscription>) -> wasmtime::Result<()> {
        self.table.delete(subscription)?;
        Ok(())
    }
}
