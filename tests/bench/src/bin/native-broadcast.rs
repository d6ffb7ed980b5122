//! `native-broadcast [--listen ADDR]`: the native tokio-tungstenite
//! broadcast server the fan-out figure compares `wsbox serve` with
//! ([`wsbox_bench::broadcast`]). Prints `listening on ws://ADDR` on stdout.

use clap::Parser;
use std::io::Write;

/// A plain tokio-tungstenite broadcast server: `/pub` publishes, every
/// other path receives.
#[derive(Parser)]
struct Args {
    /// Where to listen (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One socket per receiver: the fan-out figure holds 10,000.
    let _ = wsbox_bench::raise_nofile_limit();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    wsbox_bench::broadcast::serve(listener).await?;
    Ok(())
}
