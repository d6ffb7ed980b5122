//! Topics: publish to every connection that joined a topic, and receive a
//! topic's messages yourself (`wsbox:websocket/topics`).

use wsbox_guest_common::topics::{self as raw, Subscription as RawSubscription};
use wsbox_guest_common::{Message, Pollable};

use crate::{Error, WebSocket};

/// Publishes `message` to `topic`: every websocket joined to it and every
/// open [`Subscription`] of it get it, on this node and, with `--cluster`,
/// on every node. Returns once it is in every local receiver's buffer and
/// handed to the cluster. uWebSockets and Bun: `app.publish(topic, data)`.
///
/// An `other` error means the message was delivered on this node but did
/// not reach the cluster.
///
/// ```no_run
/// use wsbox_guest::Message;
///
/// wsbox_guest::publish("news", &Message::Text("hello, everyone".into()))?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub fn publish(topic: &str, message: &Message) -> Result<(), Error> {
    Ok(raw::publish(topic, message, None)?)
}

/// Publishes `message` to `topic`, leaving out `except` (typically the
/// sender). uWebSockets and Bun: `ws.publish(topic, data)`.
///
/// ```no_run
/// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
/// use wsbox_guest::Message;
///
/// wsbox_guest::publish_except("room", &Message::Text("hi all".into()), &ws)?;
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub fn publish_except(topic: &str, message: &Message, except: &WebSocket) -> Result<(), Error> {
    Ok(raw::publish(topic, message, Some(except.as_raw()))?)
}

impl WebSocket {
    /// From now on, the host writes every message published to `topic` to
    /// this websocket, without calling the guest. Joining twice is a no-op.
    /// uWebSockets and Bun: `ws.subscribe(topic)`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.join("room/lobby")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn join(&self, topic: &str) -> Result<(), Error> {
        Ok(raw::join(self.as_raw(), topic)?)
    }

    /// Undoes [`join`](Self::join); leaving a topic never joined is a
    /// no-op. uWebSockets and Bun: `ws.unsubscribe(topic)`.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// ws.leave("room/lobby")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn leave(&self, topic: &str) -> Result<(), Error> {
        Ok(raw::leave(self.as_raw(), topic)?)
    }
}

/// The guest's own receiver of one topic: every message published to it
/// from the opening on, including this instance's own. Dropping it ends it.
/// If its unreceived messages pass the host's budget (`--topic-buffer`), it
/// ends: the next receive is `limit-exceeded`, the ones after `closed`.
///
/// ```no_run
/// use wsbox_guest::Subscription;
///
/// let news = Subscription::open("news")?;
/// for message in news.messages() {
///     println!("{:?}", message?);
/// }
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    raw: RawSubscription,
}

impl Subscription {
    /// Opens a subscription to `topic`.
    ///
    /// ```no_run
    /// let news = wsbox_guest::Subscription::open("news")?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn open(topic: &str) -> Result<Subscription, Error> {
        Ok(Subscription {
            raw: RawSubscription::open(topic)?,
        })
    }

    /// Waits for the next message.
    ///
    /// ```no_run
    /// # let news = wsbox_guest::Subscription::open("news").unwrap();
    /// let message = news.receive()?;
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn receive(&self) -> Result<Message, Error> {
        Ok(self.raw.receive()?)
    }

    /// The messages, as they come: an iterator that yields the
    /// `limit-exceeded` error if the subscription ends that way, and then
    /// ends.
    ///
    /// ```no_run
    /// # let news = wsbox_guest::Subscription::open("news").unwrap();
    /// for message in news.messages().take(10) {
    ///     println!("{:?}", message?);
    /// }
    /// # Ok::<(), wsbox_guest::Error>(())
    /// ```
    pub fn messages(&self) -> SubscriptionMessages<'_> {
        SubscriptionMessages {
            subscription: self,
            done: false,
        }
    }

    /// The subscription of the raw bindings.
    ///
    /// ```no_run
    /// # let news = wsbox_guest::Subscription::open("news").unwrap();
    /// let pollable = news.as_raw().subscribe();
    /// ```
    pub fn as_raw(&self) -> &RawSubscription {
        &self.raw
    }
}

/// The iterator of [`Subscription::messages`].
#[derive(Debug)]
pub struct SubscriptionMessages<'a> {
    subscription: &'a Subscription,
    done: bool,
}

impl Iterator for SubscriptionMessages<'_> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.subscription.receive() {
            Ok(message) => Some(Ok(message)),
            Err(e) if e.is_closed() => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Something [`poll_any`] can wait on: a [`WebSocket`] or a
/// [`Subscription`].
pub trait Waitable {
    /// A pollable that is ready when a receive would not wait.
    fn pollable(&self) -> Pollable;
}

impl Waitable for WebSocket {
    fn pollable(&self) -> Pollable {
        self.as_raw().subscribe()
    }
}

impl Waitable for Subscription {
    fn pollable(&self) -> Pollable {
        self.raw.subscribe()
    }
}

/// Waits until at least one of `items` (websockets and subscriptions
/// together) has something to receive, and returns the indices of the
/// ready ones. `wasi:io/poll.poll` underneath.
///
/// ```no_run
/// use wsbox_guest::{poll_any, Subscription, Waitable, WebSocket};
///
/// let ws = WebSocket::connect("ws://127.0.0.1:9001/")?;
/// let news = Subscription::open("news")?;
/// for ready in poll_any(&[&ws as &dyn Waitable, &news]) {
///     match ready {
///         0 => println!("socket: {:?}", ws.receive()?),
///         _ => println!("news: {:?}", news.receive()?),
///     }
/// }
/// # Ok::<(), wsbox_guest::Error>(())
/// ```
pub fn poll_any(items: &[&dyn Waitable]) -> Vec<usize> {
    let pollables: Vec<Pollable> = items.iter().map(|item| item.pollable()).collect();
    let list: Vec<&Pollable> = pollables.iter().collect();
    wsbox_guest_common::poll(&list)
        .into_iter()
        .map(|ready| ready as usize)
        .collect()
}
