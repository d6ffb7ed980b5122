//! The native fan-out baseline: a tokio-tungstenite broadcast server
//! written as plainly as a user would write it. Messages from the
//! connection on `/pub` go into a `tokio::sync::broadcast` channel; every
//! other connection gets one task that forwards what the channel gives it
//! to its socket, one `send` per message. Like `wsbox serve`, it sets
//! `TCP_NODELAY`.
//!
//! A receiver that falls more than [`CAPACITY`] messages behind loses the
//! oldest ones (the channel's `Lagged`): it is counted ([`lagged`]), said
//! on stderr, and goes on with the newest. The benchmark keeps fewer
//! messages than that outstanding, so no receiver lags there.
//!
//! [`NODE_SERVER`] is the same server for Node `ws`.

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Error, Message};

/// Messages the channel holds for its slowest receiver.
pub const CAPACITY: usize = 1024;

static LAGGED: AtomicU64 = AtomicU64::new(0);

/// Messages skipped by receivers that lagged behind, so far.
pub fn lagged() -> u64 {
    LAGGED.load(Ordering::Relaxed)
}

/// Accepts connections on `listener` forever, each in a task of its own.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let (feed, _) = broadcast::channel::<Message>(CAPACITY);
    loop {
        let (tcp, _) = listener.accept().await?;
        let feed = feed.clone();
        tokio::spawn(async move {
            let _ = connection(tcp, feed).await;
        });
    }
}

/// Upgrades `tcp`; `/pub` publishes, any other path receives.
// The upgrade callback's error type is tungstenite's own.
#[allow(clippy::result_large_err)]
async fn connection(tcp: TcpStream, feed: broadcast::Sender<Message>) -> Result<(), Error> {
    let _ = tcp.set_nodelay(true);
    let mut path = String::new();
    let ws = tokio_tungstenite::accept_hdr_async(tcp, |request: &Request, response: Response| {
        path = request.uri().path().to_string();
        Ok(response)
    })
    .await?;
    if path == "/pub" {
        publish(ws, feed).await
    } else {
        let receiver = feed.subscribe();
        forward(ws, receiver).await
    }
}

/// Puts every text and binary message into the channel.
async fn publish(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    feed: broadcast::Sender<Message>,
) -> Result<(), Error> {
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            // An error only means that nobody is receiving.
            let _ = feed.send(message);
        }
    }
    Ok(())
}

/// Writes what the channel gives to the socket, until the client closes
/// (tungstenite answers the close and pings itself).
async fn forward(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    mut feed: broadcast::Receiver<Message>,
) -> Result<(), Error> {
    loop {
        tokio::select! {
            message = feed.recv() => match message {
                Ok(message) => ws.send(message).await?,
                Err(RecvError::Lagged(skipped)) => {
                    LAGGED.fetch_add(skipped, Ordering::Relaxed);
                    eprintln!("native-broadcast: a receiver lagged behind and skipped {skipped} messages");
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            incoming = ws.next() => match incoming {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// The Node counterpart, a script for npm `ws` at its defaults: the
/// publisher's (`/pub`) messages sent to every other open client in a loop
/// over `wss.clients`, as ws's README shows ("Server broadcast"). Prints
/// `listening on ws://ADDR` on stdout.
pub const NODE_SERVER: &str = r#"// Written by the wsbox benchmark (tests/bench): a plain `ws` broadcast server.
const { WebSocketServer, WebSocket } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('connection', (ws, req) => {
  if (req.url !== '/pub') return;
  ws.on('message', (data, isBinary) => {
    wss.clients.forEach((client) => {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});
"#;
