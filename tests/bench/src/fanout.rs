//! Fan-out: one publisher and many receivers of a broadcast server
//! (`loadgen fanout`).
//!
//! The receivers connect first, spread round robin over the given
//! receiver URLs (so that two nodes get half each). The publisher then
//! sends a probe message every [`PROBE_EVERY`] until every receiver has
//! seen one: from then on every receiver is subscribed, whatever the
//! server does between its 101 and its join. Then it sends `warmup +
//! messages` binary messages, each carrying its sequence number and its
//! send time (nanoseconds of this process's monotonic clock), keeping at
//! most `window` messages outstanding: a message is done once every
//! receiver got it. Each receiver records the publish-to-receive latency of
//! every message after the warm-up.
//!
//! The receivers do not use tungstenite: each reads its socket into a
//! buffer of its own and looks only at the frame headers and the first 16
//! bytes of each message, without copying or allocating per message, so
//! that the load generator spends as little as it can per delivery (it
//! shares the machine's cores with the server). They answer pings (wsbox's
//! keepalive pings a client that sends nothing) and the server's close.

use crate::deflate::client_frame;
use crate::load::{close, connect, CONNECT_CONCURRENCY};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// The sequence number of a probe message.
const PROBE: u64 = u64::MAX;

/// How often the publisher sends a probe until every receiver has one.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// How long the receivers may take to all see a probe.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// How long the run may go without a message being done before it stops
/// and counts what is missing as lost.
const STALL: Duration = Duration::from_secs(10);

/// One fan-out run.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// The publisher's URL, e.g. `ws://127.0.0.1:8080/pub`.
    pub publisher: String,
    /// The receivers' URLs, used round robin.
    pub receiver_urls: Vec<String>,
    /// Receiver connections.
    pub receivers: usize,
    /// Bytes per message (at least 16).
    pub size: usize,
    /// Messages measured.
    pub messages: usize,
    /// Messages sent before them, not measured.
    pub warmup: usize,
    /// Messages outstanding at most (not yet received by every receiver).
    pub window: usize,
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct FanoutResult {
    /// Receiver connections.
    pub receivers: usize,
    /// Messages measured.
    pub messages: usize,
    /// Measured messages received, over all receivers.
    pub deliveries: u64,
    /// From sending the first measured message to the last delivery.
    pub seconds: f64,
    /// Publish-to-receive latency, median, µs.
    pub p50_us: u32,
    /// The same, 99th percentile, µs.
    pub p99_us: u32,
    /// Measured deliveries missing at the end (`receivers × messages −
    /// deliveries`).
    pub lost: u64,
    /// Receivers the server closed (or dropped) during the run.
    pub closed: usize,
    /// Every message received from the first warm-up message on (to divide
    /// CPU time by).
    pub total_deliveries: u64,
    /// This process's CPU time (user + system) from the first warm-up
    /// message to the end, in seconds.
    pub cpu_seconds: f64,
    /// How long opening the receivers and seeing them all subscribed took.
    pub ready_seconds: f64,
}

impl FanoutResult {
    /// Deliveries per second.
    pub fn per_second(&self) -> f64 {
        crate::rate(self.deliveries, self.seconds)
    }

    /// The load generator's CPU time per delivery, µs.
    pub fn cpu_us_per_delivery(&self) -> f64 {
        if self.total_deliveries == 0 {
            0.0
        } else {
            self.cpu_seconds * 1e6 / self.total_deliveries as f64
        }
    }

    /// One line, `key=value` separated by spaces, for the driver to parse.
    pub fn to_line(&self) -> String {
        format!(
            "receivers={} messages={} deliveries={} seconds={:.6} deliveries_per_second={:.1} p50_us={} p99_us={} lost={} closed={} total_deliveries={} cpu_seconds={:.6} ready_seconds={:.6}",
            self.receivers,
            self.messages,
            self.deliveries,
            self.seconds,
            self.per_second(),
            self.p50_us,
            self.p99_us,
            self.lost,
            self.closed,
            self.total_deliveries,
            self.cpu_seconds,
            self.ready_seconds
        )
    }

    /// Parses [`FanoutResult::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<FanoutResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(FanoutResult {
            receivers: field("receivers")?.parse()?,
            messages: field("messages")?.parse()?,
            deliveries: field("deliveries")?.parse()?,
            seconds: field("seconds")?.parse()?,
            p50_us: field("p50_us")?.parse()?,
            p99_us: field("p99_us")?.parse()?,
            lost: field("lost")?.parse()?,
            closed: field("closed")?.parse()?,
            total_deliveries: field("total_deliveries")?.parse()?,
            cpu_seconds: field("cpu_seconds")?.parse()?,
            ready_seconds: field("ready_seconds")?.parse()?,
        })
    }
}

/// Nanoseconds since this process first asked: the clock the messages
/// carry.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// This process's user + system CPU time, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero `rusage` is valid, and getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What the receivers share with the publisher.
struct Shared {
    receivers: u32,
    /// Receivers that have seen a probe.
    ready: AtomicUsize,
    /// Per message, the receivers that got it.
    counters: Vec<AtomicU32>,
    /// Messages every receiver got.
    completed: AtomicUsize,
    /// One permit per message that may still go out.
    window: Semaphore,
    warmup: u64,
}

/// One receiver's socket, after the upgrade.
struct Receiver {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    buf: Vec<u8>,
    /// The unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

/// What one receiver saw.
#[derive(Default)]
struct Seen {
    /// Publish-to-receive latencies of the measured messages, µs.
    latencies: Vec<u32>,
    /// Messages received from the first warm-up message on.
    total: u64,
    /// When the last one arrived.
    last_ns: u64,
    /// The server closed or dropped the connection.
    closed: bool,
}

/// Connects to `url` (`ws://HOST:PORT/PATH`) with `TCP_NODELAY` and
/// upgrades. `buffer` bytes are read at a time.
async fn open_receiver(url: &str, buffer: usize) -> Result<Receiver> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("{url}: only ws:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let tcp = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tcp.set_nodelay(true)?;
    let (mut read, mut write) = tcp.into_split();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    write.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; buffer];
    let mut end = 0;
    let head_end = loop {
        if let Some(i) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if end == buf.len() {
            bail!("the upgrade response head is too long");
        }
        let n = read.read(&mut buf[end..]).await?;
        if n == 0 {
            bail!("{url}: the server closed the connection during the upgrade");
        }
        end += n;
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let head = String::from_utf8_lossy(&buf[..head_end]);
        bail!(
            "{url}: the server did not upgrade: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(Receiver {
        read,
        write,
        buf,
        start: head_end,
        end,
    })
}

/// A frame header at the start of `b`: FIN, opcode, header length, payload
/// length; `None` until it is all there.
fn frame_header(b: &[u8]) -> Result<Option<(bool, u8, usize, usize)>> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[1] & 0x80 != 0 {
        bail!("a masked frame from the server");
    }
    let (len, at) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            usize::try_from(u64::from_be_bytes(b[2..10].try_into()?))?,
            10,
        ),
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    Ok(Some((b[0] & 0x80 != 0, b[0] & 0x0f, at, len)))
}

impl Receiver {
    /// Reads messages until the last one (`total` messages in all) has
    /// come, the server closes, or `stop` turns true.
    async fn receive(
        &mut self,
        shared: &Shared,
        total: u64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Seen> {
        let mut seen = Seen {
            latencies: Vec::with_capacity(total.saturating_sub(shared.warmup) as usize),
            ..Seen::default()
        };
        let mut probed = false;
        // The first 16 bytes of the message being received.
        let mut head = [0u8; 16];
        let mut head_len = 0;
        loop {
            while let Some((fin, opcode, at, len)) = frame_header(&self.buf[self.start..self.end])?
            {
                if at + len > self.buf.len() {
                    bail!("a frame of {len} bytes, larger than the read buffer");
                }
                if self.start + at + len > self.end {
                    break;
                }
                let payload = self.start + at..self.start + at + len;
                self.start = payload.end;
                match opcode {
                    0x0..=0x2 => {
                        if opcode != 0 {
                            head_len = 0;
                        }
                        let take = len.min(16 - head_len);
                        head[head_len..head_len + take]
                            .copy_from_slice(&self.buf[payload.start..payload.start + take]);
                        head_len += take;
                        if !fin {
                            continue;
                        }
                        if head_len < 16 {
                            bail!("a message of fewer than 16 bytes");
                        }
                        let seq = u64::from_le_bytes(head[..8].try_into()?);
                        if seq == PROBE {
                            if !probed {
                                probed = true;
                                shared.ready.fetch_add(1, Ordering::AcqRel);
                            }
                            continue;
                        }
                        let now = now_ns();
                        let sent = u64::from_le_bytes(head[8..].try_into()?);
                        let counter = shared
                            .counters
                            .get(usize::try_from(seq)?)
                            .with_context(|| format!("a message numbered {seq}"))?;
                        if counter.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
                            shared.completed.fetch_add(1, Ordering::AcqRel);
                            shared.window.add_permits(1);
                        }
                        seen.total += 1;
                        seen.last_ns = now;
                        if seq >= shared.warmup {
                            let us = now.saturating_sub(sent) / 1000;
                            seen.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        if seq + 1 == total {
                            return Ok(seen);
                        }
                    }
                    0x9 => {
                        let pong = client_frame(0xa, false, &self.buf[payload], [0; 4]);
                        self.write.write_all(&pong).await?;
                    }
                    0xa => {}
                    0x8 => {
                        seen.closed = true;
                        return Ok(seen);
                    }
                    other => bail!("a frame with opcode {other}"),
                }
            }
            // Keep the unparsed bytes, at the front once the buffer is
            // mostly used.
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.buf.len() - self.end < self.buf.len() / 2 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            let end = self.end;
            let read = tokio::select! {
                read = self.read.read(&mut self.buf[end..]) => read,
                _ = stop.wait_for(|stop| *stop) => return Ok(seen),
            };
            // A reset counts as the server dropping the connection.
            let Ok(read) = read else {
                seen.closed = true;
                return Ok(seen);
            };
            if read == 0 {
                seen.closed = true;
                return Ok(seen);
            }
            self.end += read;
        }
    }

    /// Sends a close frame with 1000 and waits (at most 5 s) for the
    /// server's close or the end of TCP.
    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let frame = client_frame(0x8, false, &1000u16.to_be_bytes(), [1, 2, 3, 4]);
            if self.write.write_all(&frame).await.is_err() {
                return;
            }
            let mut chunk = [0u8; 4096];
            while let Ok(n) = self.read.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// A message of `size` bytes: the sequence number and the send time, then
/// filler.
fn message(seq: u64, size: usize) -> Message {
    let mut data = vec![0x5a; size];
    data[..8].copy_from_slice(&seq.to_le_bytes());
    data[8..16].copy_from_slice(&now_ns().to_le_bytes());
    Message::Binary(Bytes::from(data))
}

/// Runs one fan-out: opens the receivers, waits until they are all
/// subscribed, calls `measuring` and publishes; when every message is done
/// (or nothing has moved for 10 s), calls `finished` with the result,
/// then closes every connection.
pub async fn run<F: FnOnce()>(
    config: &FanoutConfig,
    measuring: F,
    finished: impl FnOnce(&FanoutResult),
) -> Result<FanoutResult> {
    if config.receivers == 0 || config.window == 0 || config.receiver_urls.is_empty() {
        bail!("receivers, window and receiver URLs must be at least 1");
    }
    if config.size < 16 {
        bail!("messages carry 16 bytes of sequence and time: --size must be at least 16");
    }
    let total = (config.warmup + config.messages) as u64;
    let shared = Arc::new(Shared {
        receivers: u32::try_from(config.receivers)?,
        ready: AtomicUsize::new(0),
        counters: (0..total).map(|_| AtomicU32::new(0)).collect(),
        completed: AtomicUsize::new(0),
        window: Semaphore::new(config.window),
        warmup: config.warmup as u64,
    });
    let started = Instant::now();
    let buffer = (2 * (config.size + 14)).max(8 * 1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut opening = futures_util::stream::iter(0..config.receivers)
        .map(|i| {
            open_receiver(
                &config.receiver_urls[i % config.receiver_urls.len()],
                buffer,
            )
        })
        .buffer_unordered(CONNECT_CONCURRENCY);
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(receiver) = opening.next().await {
        let mut receiver = receiver?;
        let shared = shared.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let seen = receiver.receive(&shared, total, &mut stop).await;
            (receiver, seen)
        });
    }
    drop(opening);
    // Nothing comes to the publisher (it is not a receiver), and it is
    // never silent long enough to be pinged, so it only sends.
    let mut publisher = connect(&config.publisher).await?;

    // Probes until every receiver has one.
    let deadline = Instant::now() + READY_WITHIN;
    while shared.ready.load(Ordering::Acquire) < config.receivers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} receivers got a message within {READY_WITHIN:?}",
                shared.ready.load(Ordering::Acquire),
                config.receivers
            );
        }
        publisher.send(message(PROBE, config.size)).await?;
        let next = Instant::now() + PROBE_EVERY;
        while Instant::now() < next && shared.ready.load(Ordering::Acquire) < config.receivers {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let ready_seconds = started.elapsed().as_secs_f64();
    measuring();

    let cpu_start = cpu_seconds();
    let mut first_ns = now_ns();
    let mut stalled = false;
    for seq in 0..total {
        match tokio::time::timeout(STALL, shared.window.acquire()).await {
            Ok(permit) => permit?.forget(),
            Err(_) => {
                stalled = true;
                break;
            }
        }
        if seq == config.warmup as u64 {
            first_ns = now_ns();
        }
        publisher.send(message(seq, config.size)).await?;
    }
    // Wait for every message to be done, or for nothing to move.
    let mut progress = (shared.completed.load(Ordering::Acquire), Instant::now());
    while !stalled && (progress.0 as u64) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = shared.completed.load(Ordering::Acquire);
        if now != progress.0 {
            progress = (now, Instant::now());
        } else if progress.1.elapsed() > STALL {
            stalled = true;
        }
    }
    let cpu = cpu_seconds() - cpu_start;
    let _ = stop_tx.send(true);

    let mut receivers = Vec::with_capacity(config.receivers);
    let mut latencies = Vec::new();
    let (mut total_deliveries, mut last_ns, mut closed) = (0u64, first_ns, 0);
    while let Some(done) = tasks.join_next().await {
        let (receiver, seen) = done?;
        let seen = seen?;
        latencies.extend_from_slice(&seen.latencies);
        total_deliveries += seen.total;
        last_ns = last_ns.max(seen.last_ns);
        closed += usize::from(seen.closed);
        receivers.push(receiver);
    }
    latencies.sort_unstable();
    let deliveries = latencies.len() as u64;
    let result = FanoutResult {
        receivers: config.receivers,
        messages: config.messages,
        deliveries,
        seconds: last_ns.saturating_sub(first_ns) as f64 / 1e9,
        p50_us: crate::percentile(&latencies, 0.50),
        p99_us: crate::percentile(&latencies, 0.99),
        lost: ((config.receivers * config.messages) as u64).saturating_sub(deliveries),
        closed,
        total_deliveries,
        cpu_seconds: cpu,
        ready_seconds,
    };
    finished(&result);

    futures_util::stream::iter(receivers)
        .for_each_concurrent(CONNECT_CONCURRENCY * 4, Receiver::close)
        .await;
    close(publisher).await;
    Ok(result)
}
