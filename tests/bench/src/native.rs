//! The native baseline: a tokio-tungstenite echo server written as plainly
//! as a user would write it (`accept_async`, then send every text and
//! binary message back). Like `wsbox serve`, it sets `TCP_NODELAY`.

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections on `listener` forever, echoing each one in a task of
/// its own.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = echo(tcp).await;
        });
    }
}

/// Upgrades `tcp` and echoes every text and binary message until the peer
/// closes (tungstenite answers the close and pings itself).
pub async fn echo(tcp: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let _ = tcp.set_nodelay(true);
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
