//! `native-echo [--listen ADDR]`: the native tokio-tungstenite echo server
//! the benchmark compares `wsbox serve` with. Prints
//! `listening on ws://ADDR` on stdout.

use clap::Parser;
use std::io::Write;

/// A plain tokio-tungstenite echo server.
#[derive(Parser)]
struct Args {
    /// Where to listen (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = wsbox_bench::raise_nofile_limit();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    wsbox_bench::native::serve(listener).await?;
    Ok(())
}
