//! The README's demo: runs the `echo-client` sample guest in the sandbox
//! against a tokio-tungstenite echo server on 127.0.0.1, and prints both
//! sides of the exchange and the close status the guest saw.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use wsbox::{Config, Exit, Output, Policy, Runner};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await?;
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        println!("[server] {peer} upgraded");
        while let Some(msg) = ws.next().await {
            match msg? {
                tungstenite::Message::Close(frame) => {
                    println!("[server] close frame from the guest: {frame:?}");
                    while ws.next().await.is_some() {}
                    break;
                }
                msg if msg.is_text() || msg.is_binary() => {
                    println!("[server] echoing {msg}");
                    ws.send(msg).await?;
                }
                _ => {}
            }
        }
        anyhow::Ok(())
    });

    let url = format!("ws://127.0.0.1:{port}/demo");
    let guest = wsbox_testbed::guest("echo-client");
    println!("[wsbox] running {} against {url}", guest.display());
    let config = Config {
        policy: Policy::from_patterns(&[format!("ws://127.0.0.1:{port}")])?,
        ..Config::default()
    };
    let runner = Runner::new()?;
    let component = runner.load(&guest)?;
    let args = [
        "echo-client",
        &url,
        "hello from the sandbox",
        "query-close-status works",
    ]
    .map(String::from);
    let out = runner
        .run(&component, Arc::new(config), &args, Output::Inherit)
        .await?;
    server.await??;
    match out.exit {
        Exit::Code(0) => {
            println!("[wsbox] the guest exited with 0");
            Ok(())
        }
        other => anyhow::bail!("the guest ended with {other:?}"),
    }
}
