//! Connection scale: open many concurrent connections, send one message on
//! each, and hold them all open until told to let go, so that the server's
//! resident memory can be read while they are held.

use crate::load::{close, connect, Client, CONNECT_CONCURRENCY};
use anyhow::{bail, Result};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What opening the connections measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleResult {
    /// Connections opened, echoed once and held.
    pub connections: usize,
    /// Connections that failed (refused, dropped, no echo).
    pub failed: usize,
    /// Wall time to open all of them and get every first echo, in seconds.
    pub open_seconds: f64,
    /// From starting the TCP connect to the 101 response, median, µs.
    pub handshake_p50_us: u32,
    /// The same, 99th percentile, µs.
    pub handshake_p99_us: u32,
    /// From starting the TCP connect to the first echo, median, µs.
    pub first_echo_p50_us: u32,
    /// The same, 99th percentile, µs.
    pub first_echo_p99_us: u32,
}

impl ScaleResult {
    /// One line, `key=value` separated by spaces, for the driver to parse.
    pub fn to_line(&self) -> String {
        format!(
            "connections={} failed={} open_seconds={:.6} handshake_p50_us={} handshake_p99_us={} first_echo_p50_us={} first_echo_p99_us={}",
            self.connections,
            self.failed,
            self.open_seconds,
            self.handshake_p50_us,
            self.handshake_p99_us,
            self.first_echo_p50_us,
            self.first_echo_p99_us
        )
    }

    /// Parses [`ScaleResult::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<ScaleResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(ScaleResult {
            connections: field("connections")?.parse()?,
            failed: field("failed")?.parse()?,
            open_seconds: field("open_seconds")?.parse()?,
            handshake_p50_us: field("handshake_p50_us")?.parse()?,
            handshake_p99_us: field("handshake_p99_us")?.parse()?,
            first_echo_p50_us: field("first_echo_p50_us")?.parse()?,
            first_echo_p99_us: field("first_echo_p99_us")?.parse()?,
        })
    }
}

/// Opens `connections` connections to `url` (at most `concurrency` being
/// set up at a time; [`CONNECT_CONCURRENCY`] is the benchmark's), sends one 32-byte
/// message on each and waits for its echo. Then calls `held` with the
/// result while every connection that worked stays open, and closes them
/// all when the future it returns completes. Connections that fail are
/// counted (the first error goes to stderr); it is an error only when none
/// worked.
pub async fn run<F, Fut>(
    url: &str,
    connections: usize,
    concurrency: usize,
    held: F,
) -> Result<ScaleResult>
where
    F: FnOnce(ScaleResult) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let outcomes: Vec<Result<(Client, u32, u32)>> = futures_util::stream::iter(0..connections)
        .map(|_| open_one(url))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut opened = Vec::with_capacity(outcomes.len());
    let mut failed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(o) => opened.push(o),
            Err(e) => {
                if failed == 0 {
                    eprintln!("scale: a connection failed: {e:#}");
                }
                failed += 1;
            }
        }
    }
    if opened.is_empty() {
        bail!("all {connections} connections failed");
    }
    let open_seconds = start.elapsed().as_secs_f64();
    let mut handshakes: Vec<u32> = opened.iter().map(|o| o.1).collect();
    let mut echoes: Vec<u32> = opened.iter().map(|o| o.2).collect();
    handshakes.sort_unstable();
    echoes.sort_unstable();
    let result = ScaleResult {
        connections: opened.len(),
        failed,
        open_seconds,
        handshake_p50_us: crate::percentile(&handshakes, 0.50),
        handshake_p99_us: crate::percentile(&handshakes, 0.99),
        first_echo_p50_us: crate::percentile(&echoes, 0.50),
        first_echo_p99_us: crate::percentile(&echoes, 0.99),
    };
    held(result.clone()).await;
    futures_util::stream::iter(opened)
        .for_each_concurrent(CONNECT_CONCURRENCY, |(ws, _, _)| close(ws))
        .await;
    Ok(result)
}

/// One connection: connect, send, wait for the echo. Returns it with the
/// handshake and first-echo times in µs.
async fn open_one(url: &str) -> Result<(Client, u32, u32)> {
    let micros = |t: Instant| u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
    let start = Instant::now();
    let mut ws = connect(url).await?;
    let handshake = micros(start);
    ws.send(Message::Binary(vec![7u8; 32].into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b.len() == 32 => break,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => bail!("unexpected reply {other:?}"),
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the server dropped the connection"),
        }
    }
    Ok((ws, handshake, micros(start)))
}
