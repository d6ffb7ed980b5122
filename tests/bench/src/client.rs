//! The outbound figure: a client echoing against a native server, with a
//! small fixed window of messages in flight on one connection. The same loop
//! runs in two clients: the `bench-client` guest (`guest/bench-client`, run
//! by `wsbox run`) and [`run`] here, a tokio-tungstenite client written as
//! plainly as a user would (`loadgen client`). Both time their own loop and
//! print one [`ClientResult::to_line`] line, after a `start` line that marks
//! the end of the warm-up.

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What one client run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientResult {
    /// Round trips timed (after the warm-up).
    pub messages: u64,
    /// Wall time of those round trips, in seconds.
    pub seconds: f64,
    /// Round-trip time, median, in microseconds.
    pub p50_us: u32,
    /// Round-trip time, 99th percentile, in microseconds.
    pub p99_us: u32,
}

impl ClientResult {
    /// Round trips per second.
    pub fn per_second(&self) -> f64 {
        crate::rate(self.messages, self.seconds)
    }

    /// One line, `key=value` separated by spaces (the guest prints the same
    /// keys).
    pub fn to_line(&self) -> String {
        format!(
            "messages={} seconds={:.6} per_second={:.1} p50_us={} p99_us={}",
            self.messages,
            self.seconds,
            self.per_second(),
            self.p50_us,
            self.p99_us
        )
    }

    /// Parses [`ClientResult::to_line`]'s output, or the guest's.
    pub fn from_line(line: &str) -> Result<ClientResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(ClientResult {
            messages: field("messages")?.parse()?,
            seconds: field("seconds")?.parse()?,
            p50_us: field("p50_us")?.parse()?,
            p99_us: field("p99_us")?.parse()?,
        })
    }
}

/// One client run's parameters: the guest's `URL SIZE COUNT WINDOW WARMUP`.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The echo server.
    pub url: String,
    /// Payload bytes per message.
    pub size: usize,
    /// Round trips timed.
    pub count: usize,
    /// Messages in flight.
    pub window: usize,
    /// Round trips before timing.
    pub warmup: usize,
}

impl ClientConfig {
    /// The guest's arguments, after the program name.
    pub fn guest_args(&self) -> Vec<String> {
        vec![
            self.url.clone(),
            self.size.to_string(),
            self.count.to_string(),
            self.window.to_string(),
            self.warmup.to_string(),
        ]
    }
}

/// The native client: connects (with `TCP_NODELAY`, as wsbox's client
/// does), runs the warm-up, calls `started`, runs the timed round trips and
/// closes with 1000.
pub async fn run(config: &ClientConfig, started: impl FnOnce()) -> Result<ClientResult> {
    if config.count == 0 || config.window == 0 {
        bail!("count and window must be at least 1");
    }
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&config.url, None, true)
        .await
        .with_context(|| format!("connecting to {}", config.url))?;
    let payload: bytes::Bytes = (0..config.size).map(|i| (i % 251) as u8).collect();
    let mut latencies = Vec::with_capacity(config.count);
    echo(
        &mut ws,
        &payload,
        config.warmup,
        config.window,
        &mut Vec::new(),
    )
    .await?;
    started();
    let start = Instant::now();
    echo(
        &mut ws,
        &payload,
        config.count,
        config.window,
        &mut latencies,
    )
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    ws.close(None).await?;
    while let Some(Ok(_)) = ws.next().await {}
    Ok(ClientResult {
        messages: config.count as u64,
        seconds,
        p50_us: crate::percentile(&latencies, 0.50),
        p99_us: crate::percentile(&latencies, 0.99),
    })
}

/// The guest's loop: send `window` messages, then one more after each echo,
/// until `count` echoes came back.
async fn echo(
    ws: &mut crate::load::Client,
    payload: &bytes::Bytes,
    count: usize,
    window: usize,
    latencies: &mut Vec<u32>,
) -> Result<()> {
    let mut sent_at = VecDeque::with_capacity(window);
    let mut sent = 0;
    while sent < count.min(window) {
        sent_at.push_back(Instant::now());
        ws.send(Message::Binary(payload.clone())).await?;
        sent += 1;
    }
    for _ in 0..count {
        let reply = loop {
            match ws.next().await {
                Some(Ok(Message::Binary(data))) => break data.len(),
                Some(Ok(Message::Text(text))) => break text.len(),
                Some(Ok(Message::Close(frame))) => bail!("the server closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the server dropped the connection"),
            }
        };
        let now = Instant::now();
        if reply != payload.len() {
            bail!("echo of {reply} bytes for {}", payload.len());
        }
        if let Some(at) = sent_at.pop_front() {
            latencies.push(u32::try_from(now.duration_since(at).as_micros()).unwrap_or(u32::MAX));
        }
        if sent < count {
            sent_at.push_back(Instant::now());
            ws.send(Message::Binary(payload.clone())).await?;
            sent += 1;
        }
    }
    Ok(())
}
