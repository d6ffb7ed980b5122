//! `loadgen`: the benchmark's load generator, a process of its own.
//!
//! - `loadgen echo URL --connections C --size S --seconds T`: echo
//!   throughput and round-trip latency; prints one `key=value` line.
//! - `loadgen scale URL --connections N`: opens N connections, one echo on
//!   each, prints one `key=value` line, holds them until stdin closes (or a
//!   line arrives), then closes them.
//! - `loadgen client URL SIZE COUNT WINDOW WARMUP`: the native outbound
//!   client, the same loop as the `bench-client` guest; prints `start` after
//!   the warm-up, then one `key=value` line.
//! - `loadgen deflate URL --connections C --size S ...`: echo of JSON-like
//!   text, offering permessage-deflate; prints one `key=value` line.
//! - `loadgen deflate-hold URL --connections N --size S`: opens N
//!   connections offering permessage-deflate, one echo on each, prints one
//!   `key=value` line, holds them until stdin closes (or a line arrives).
//! - `loadgen fanout URL_PUB URL_SUB... --receivers N --size S --messages M
//!   --window W`: one publisher, N receivers spread round robin over the
//!   URL_SUBs; prints `measuring` once every receiver is subscribed, then
//!   one `key=value` line when the messages are done (before closing).

use clap::{Parser, Subcommand};
use std::io::Write;
use std::time::Duration;
use wsbox_bench::load::{self, LoadConfig};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo throughput and latency.
    Echo {
        /// The echo server.
        url: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Messages each connection keeps in flight.
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
        /// Payload bytes per message.
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Warm-up before measuring, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        warmup_ms: u64,
        /// Measured time, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        duration_ms: u64,
    },
    /// Many concurrent connections, one echo each, held until stdin closes.
    Scale {
        /// The echo server.
        url: String,
        /// Connections to open and hold.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Connections being opened at a time.
        #[arg(long, default_value_t = wsbox_bench::load::CONNECT_CONCURRENCY)]
        concurrency: usize,
    },
    /// Echo of JSON-like text, offering permessage-deflate.
    Deflate {
        /// The echo server.
        url: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Messages each connection keeps in flight.
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
        /// Bytes per text message.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Warm-up before measuring, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        warmup_ms: u64,
        /// Measured time, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        duration_ms: u64,
    },
    /// Connections offering permessage-deflate, one echo each, held until
    /// stdin closes.
    DeflateHold {
        /// The echo server.
        url: String,
        /// Connections to open and hold.
        #[arg(long, default_value_t = 500)]
        connections: usize,
        /// Bytes of the one JSON-like text message echoed on each.
        #[arg(long, default_value_t = 16 * 1024)]
        size: usize,
        /// Connections being opened (and echoing) at a time.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// One publisher, many receivers: deliveries per second and
    /// publish-to-receive latency.
    Fanout {
        /// Where the publisher connects.
        url_pub: String,
        /// Where the receivers connect, round robin.
        #[arg(required = true)]
        url_sub: Vec<String>,
        /// Receiver connections.
        #[arg(long, default_value_t = 1000)]
        receivers: usize,
        /// Bytes per message (at least 16: sequence number and send time).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Messages measured.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Messages sent first, not measured (default: a tenth of
        /// --messages).
        #[arg(long)]
        warmup: Option<usize>,
        /// Messages outstanding at most (not yet received by every
        /// receiver).
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
    /// The native outbound client (the `bench-client` guest's loop).
    Client {
        /// The echo server.
        url: String,
        /// Payload bytes per message.
        size: usize,
        /// Round trips timed.
        count: usize,
        /// Messages in flight.
        window: usize,
        /// Round trips before timing.
        #[arg(default_value_t = 0)]
        warmup: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    wsbox_bench::raise_nofile_limit()?;
    match args.command {
        Command::Echo {
            url,
            connections,
            in_flight,
            size,
            warmup_ms,
            duration_ms,
        } => {
            let result = load::run(&LoadConfig {
                url,
                connections,
                in_flight,
                size,
                warmup: Duration::from_millis(warmup_ms),
                duration: Duration::from_millis(duration_ms),
            })
            .await?;
            println!("{}", result.to_line());
        }
        Command::Scale {
            url,
            connections,
            concurrency,
        } => {
            wsbox_bench::scale::run(&url, connections, concurrency, |result| {
                print_and_hold(result.to_line())
            })
            .await?;
        }
        Command::Deflate {
            url,
            connections,
            in_flight,
            size,
            warmup_ms,
            duration_ms,
        } => {
            let result = wsbox_bench::deflate::run(&wsbox_bench::deflate::DeflateLoadConfig {
                url,
                connections,
                in_flight,
                size,
                warmup: Duration::from_millis(warmup_ms),
                duration: Duration::from_millis(duration_ms),
            })
            .await?;
            println!("{}", result.to_line());
        }
        Command::DeflateHold {
            url,
            connections,
            size,
            concurrency,
        } => {
            wsbox_bench::deflate::hold(&url, connections, concurrency, size, |result| {
                print_and_hold(result.to_line())
            })
            .await?;
        }
        Command::Fanout {
            url_pub,
            url_sub,
            receivers,
            size,
            messages,
            warmup,
            window,
        } => {
            let config = wsbox_bench::fanout::FanoutConfig {
                publisher: url_pub,
                receiver_urls: url_sub,
                receivers,
                size,
                messages,
                warmup: warmup.unwrap_or(messages / 10),
                window,
            };
            wsbox_bench::fanout::run(
                &config,
                || {
                    println!("measuring");
                    let _ = std::io::stdout().flush();
                },
                |result| {
                    println!("{}", result.to_line());
                    let _ = std::io::stdout().flush();
                },
            )
            .await?;
        }
        Command::Client {
            url,
            size,
            count,
            window,
            warmup,
        } => {
            let config = wsbox_bench::client::ClientConfig {
                url,
                size,
                count,
                window,
                warmup,
            };
            let result = wsbox_bench::client::run(&config, || {
                println!("start");
                let _ = std::io::stdout().flush();
            })
            .await?;
            println!("{}", result.to_line());
        }
    }
    Ok(())
}

/// Prints `line` (the connections are open) and waits until stdin closes
/// or a line arrives: the driver's signal to let the connections go.
async fn print_and_hold(line: String) {
    println!("{line}");
    let _ = std::io::stdout().flush();
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)
    })
    .await;
}
