//! Echo throughput and latency: `connections` WebSocket connections to an
//! echo server, each keeping `in_flight` binary messages of `size` bytes in
//! flight, for `warmup` and then `duration`. Only round trips that complete
//! within the measured window count.

use crate::round_trips::RoundTrips;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket client connection as the load generator holds it.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many connections are opened at once while setting up.
pub const CONNECT_CONCURRENCY: usize = 64;

/// One cell of the echo benchmark.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo server, e.g. `ws://127.0.0.1:8080/`.
    pub url: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Messages each connection keeps in flight.
    pub in_flight: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Time run before measuring.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
}

/// What one cell measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadResult {
    /// Round trips completed within the measured window.
    pub messages: u64,
    /// Round trips completed in the whole run, warm-up and drain included
    /// (to divide the server's CPU time by).
    pub total_messages: u64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Round-trip time, median, in microseconds.
    pub p50_us: u32,
    /// Round-trip time, 99th percentile, in microseconds.
    pub p99_us: u32,
    /// How long opening all the connections took, in seconds.
    pub connect_seconds: f64,
}

impl LoadResult {
    /// Round trips per second.
    pub fn per_second(&self) -> f64 {
        crate::rate(self.messages, self.seconds)
    }

    /// One line, `key=value` separated by spaces, for the driver to parse.
    pub fn to_line(&self) -> String {
        format!(
            "messages={} total_messages={} seconds={:.6} per_second={:.1} p50_us={} p99_us={} connect_seconds={:.6}",
            self.messages,
            self.total_messages,
            self.seconds,
            self.per_second(),
            self.p50_us,
            self.p99_us,
            self.connect_seconds
        )
    }

    /// Parses [`LoadResult::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<LoadResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(LoadResult {
            messages: field("messages")?.parse()?,
            total_messages: field("total_messages")?.parse()?,
            seconds: field("seconds")?.parse()?,
            p50_us: field("p50_us")?.parse()?,
            p99_us: field("p99_us")?.parse()?,
            connect_seconds: field("connect_seconds")?.parse()?,
        })
    }
}

/// Opens one client connection with `TCP_NODELAY`.
pub async fn connect(url: &str) -> Result<Client> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

/// Runs one cell: opens the connections, drives them, closes them cleanly
/// and reports.
pub async fn run(config: &LoadConfig) -> Result<LoadResult> {
    if config.connections == 0 || config.in_flight == 0 {
        bail!("connections and in-flight must be at least 1");
    }
    let payload = Bytes::from(
        (0..config.size)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let connect_start = Instant::now();
    let clients: Vec<Client> = futures_util::stream::iter(0..config.connections)
        .map(|_| connect(&config.url))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    let connect_seconds = connect_start.elapsed().as_secs_f64();

    let from = Instant::now() + config.warmup;
    let until = from + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for ws in clients {
        let payload = payload.clone();
        let in_flight = config.in_flight;
        tasks.spawn(drive(ws, payload, in_flight, from, until));
    }
    let limit = config.warmup + config.duration + Duration::from_secs(60);
    let trips = RoundTrips::join(tasks, limit).await?;
    Ok(LoadResult {
        messages: trips.counted,
        total_messages: trips.total,
        seconds: config.duration.as_secs_f64(),
        p50_us: crate::percentile(&trips.latencies, 0.50),
        p99_us: crate::percentile(&trips.latencies, 0.99),
        connect_seconds,
    })
}

/// Drives one connection: keeps `in_flight` messages out until `until`,
/// counts the replies that arrive in `[from, until)`, waits for the
/// outstanding ones, then closes with 1000.
async fn drive(
    ws: Client,
    payload: Bytes,
    in_flight: usize,
    from: Instant,
    until: Instant,
) -> Result<RoundTrips> {
    let size = payload.len();
    let (mut sink, mut stream) = ws.split();
    // Echo servers answer in order, so the send times queue up in order.
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
    let window = Arc::new(Semaphore::new(in_flight));
    let writer = {
        let window = window.clone();
        async move {
            loop {
                window.acquire().await?.forget();
                if Instant::now() >= until {
                    break;
                }
                let _ = sent_tx.send(Instant::now());
                sink.send(Message::Binary(payload.clone())).await?;
            }
            drop(sent_tx);
            Ok::<_, anyhow::Error>(sink)
        }
    };
    let reader = async move {
        let mut trips = RoundTrips::default();
        while let Some(sent) = sent_rx.recv().await {
            let reply = loop {
                match stream.next().await {
                    Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => break m,
                    Some(Ok(Message::Close(frame))) => bail!("the server closed: {frame:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("the server dropped the connection"),
                }
            };
            if reply.len() != size {
                bail!("echo of {} bytes for {size}", reply.len());
            }
            trips.reply(sent, (from, until));
            window.add_permits(1);
        }
        Ok::<_, anyhow::Error>((stream, trips))
    };
    let (sink, (stream, trips)) = tokio::try_join!(writer, reader)?;
    let ws = sink.reunite(stream).context("reuniting")?;
    close(ws).await;
    Ok(trips)
}

/// Closes with 1000 and waits (at most 5 s) for the server's close.
pub async fn close(mut ws: Client) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
