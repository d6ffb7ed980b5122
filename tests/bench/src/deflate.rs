//! Echo throughput with permessage-deflate (RFC 7692), for the compression
//! figure. tokio-tungstenite has no permessage-deflate, so this client
//! speaks it itself over raw TCP: it offers the extension, compresses every
//! message it sends (zlib level 6, as Node `ws` and Python `websockets`
//! do) and inflates what comes back, keeping or resetting each direction's
//! context as negotiated. It counts the bytes on the wire both ways.
//!
//! The messages are JSON-like text: arrays of records with random ids,
//! names, words and numbers (each message different), as an application
//! would send; see [`json_messages`].

use anyhow::{bail, Context, Result};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use crate::load::CONNECT_CONCURRENCY;
use crate::round_trips::RoundTrips;

/// The sync flush's tail, removed from each message and appended back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Distinct messages per size; connections cycle through them.
const POOL: usize = 64;

/// One cell of the compression figure: the echo figure's settings, `size`
/// being the bytes of each JSON-like text message.
pub type DeflateLoadConfig = crate::load::LoadConfig;

/// What one cell measured.
#[derive(Clone, Debug, PartialEq)]
pub struct DeflateLoadResult {
    /// Round trips completed within the measured window.
    pub messages: u64,
    /// Round trips in the whole run, warm-up and drain included.
    pub total_messages: u64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Round-trip time, median, in microseconds.
    pub p50_us: u32,
    /// Round-trip time, 99th percentile, in microseconds.
    pub p99_us: u32,
    /// Whether the server accepted permessage-deflate.
    pub compressed: bool,
    /// Bytes the client wrote after the handshakes, over the whole run.
    pub bytes_out: u64,
    /// Bytes the client read after the handshakes, over the whole run.
    pub bytes_in: u64,
}

impl DeflateLoadResult {
    /// Round trips per second.
    pub fn per_second(&self) -> f64 {
        crate::rate(self.messages, self.seconds)
    }

    /// Bytes on the wire per message from the client to the server.
    pub fn out_per_message(&self) -> f64 {
        self.bytes_out as f64 / self.total_messages.max(1) as f64
    }

    /// Bytes on the wire per message from the server to the client.
    pub fn in_per_message(&self) -> f64 {
        self.bytes_in as f64 / self.total_messages.max(1) as f64
    }

    /// One line, `key=value` separated by spaces, for the driver to parse.
    pub fn to_line(&self) -> String {
        format!(
            "messages={} total_messages={} seconds={:.6} per_second={:.1} p50_us={} p99_us={} compressed={} bytes_out={} bytes_in={}",
            self.messages,
            self.total_messages,
            self.seconds,
            self.per_second(),
            self.p50_us,
            self.p99_us,
            self.compressed,
            self.bytes_out,
            self.bytes_in
        )
    }

    /// Parses [`DeflateLoadResult::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<DeflateLoadResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(DeflateLoadResult {
            messages: field("messages")?.parse()?,
            total_messages: field("total_messages")?.parse()?,
            seconds: field("seconds")?.parse()?,
            p50_us: field("p50_us")?.parse()?,
            p99_us: field("p99_us")?.parse()?,
            compressed: field("compressed")?.parse()?,
            bytes_out: field("bytes_out")?.parse()?,
            bytes_in: field("bytes_in")?.parse()?,
        })
    }
}

/// `count` different JSON-like texts of exactly `size` bytes: arrays of
/// records such as `{"id":48213,"user":"user-0917","event":"click",
/// "tags":["alpha","delta"],"score":0.7312,"text":"quick brown ..."}`,
/// cut at `size`. Made from a fixed seed, so every run sends the same.
pub fn json_messages(size: usize, count: usize) -> Vec<Vec<u8>> {
    const WORDS: &[&str] = &[
        "alpha", "beta", "gamma", "delta", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
        "socket", "message", "server", "client", "event", "stream", "frame", "buffer", "window",
        "state", "value", "order", "price", "update", "login", "logout", "click", "view", "cart",
        "item", "user",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    (0..count)
        .map(|_| {
            let mut text = String::with_capacity(size + 256);
            text.push('[');
            while text.len() < size {
                let tags = [
                    WORDS[next(WORDS.len() as u64) as usize],
                    WORDS[next(WORDS.len() as u64) as usize],
                ];
                let words: Vec<&str> = (0..3 + next(6))
                    .map(|_| WORDS[next(WORDS.len() as u64) as usize])
                    .collect();
                text.push_str(&format!(
                    "{{\"id\":{},\"user\":\"user-{:04}\",\"event\":\"{}\",\"tags\":[\"{}\",\"{}\"],\"score\":0.{:04},\"text\":\"{}\"}},",
                    next(100_000),
                    next(10_000),
                    WORDS[next(WORDS.len() as u64) as usize],
                    tags[0],
                    tags[1],
                    next(10_000),
                    words.join(" ")
                ));
            }
            let mut bytes = text.into_bytes();
            bytes.truncate(size);
            bytes
        })
        .collect()
}

/// What the handshake agreed on, seen from the client.
#[derive(Clone, Copy, Debug, Default)]
struct Negotiated {
    /// Our window, in bits.
    client_bits: u8,
    /// We reset our context after each message.
    client_no_context_takeover: bool,
    /// The server resets its context after each message.
    server_no_context_takeover: bool,
}

/// One open connection.
struct Conn {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    /// Bytes read after the response head.
    leftover: Vec<u8>,
    deflate: Option<Negotiated>,
}

/// Connects to `url` (`ws://HOST:PORT/PATH`), with `TCP_NODELAY`, and
/// upgrades, offering permessage-deflate.
async fn open(url: &str) -> Result<Conn> {
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
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    write.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            bail!("the upgrade response head is too long");
        }
        let mut chunk = [0u8; 1024];
        let n = read.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection during the upgrade");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        bail!(
            "the server did not upgrade: {}",
            head.lines().next().unwrap_or("")
        );
    }
    let deflate = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, value)| parse_answer(value))
        .transpose()?;
    Ok(Conn {
        read,
        write,
        leftover: buf.split_off(end),
        deflate,
    })
}

/// The server's permessage-deflate answer.
fn parse_answer(value: &str) -> Result<Negotiated> {
    let mut params = value.split(';').map(str::trim);
    if params.next() != Some("permessage-deflate") {
        bail!("the server answered with another extension: {value}");
    }
    let mut n = Negotiated {
        client_bits: 15,
        ..Negotiated::default()
    };
    for param in params {
        let (name, arg) = param.split_once('=').unwrap_or((param, ""));
        match name.trim() {
            "server_no_context_takeover" => n.server_no_context_takeover = true,
            "client_no_context_takeover" => n.client_no_context_takeover = true,
            // Our inflater takes any window up to 15 bits.
            "server_max_window_bits" => {}
            "client_max_window_bits" => n.client_bits = arg.trim_matches('"').parse()?,
            other => bail!("unknown permessage-deflate parameter {other}"),
        }
    }
    Ok(n)
}

/// One side's compressor, as negotiated.
struct Deflater {
    stream: Compress,
    reset: bool,
}

impl Deflater {
    fn new(n: &Negotiated) -> Deflater {
        Deflater {
            // zlib cannot compress with 8 bits; 9 fits an 8-bit window.
            stream: Compress::new_with_window_bits(
                Compression::new(6),
                false,
                n.client_bits.clamp(9, 15),
            ),
            reset: n.client_no_context_takeover,
        }
    }

    /// The payload of one compressed message.
    fn message(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut used = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            let before = self.stream.total_in();
            self.stream
                .compress_vec(&data[used..], &mut out, FlushCompress::Sync)?;
            used += (self.stream.total_in() - before) as usize;
            if used == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if !out.ends_with(&TAIL) {
            bail!("the sync flush did not end in 00 00 ff ff");
        }
        out.truncate(out.len() - TAIL.len());
        if self.reset {
            self.stream.reset();
        }
        Ok(out)
    }
}

/// Inflates the server's compressed messages.
struct Inflater {
    stream: Decompress,
    reset: bool,
}

impl Inflater {
    fn new(n: &Negotiated) -> Inflater {
        Inflater {
            stream: Decompress::new(false),
            reset: n.server_no_context_takeover,
        }
    }

    fn message(&mut self, payload: &[u8], expected: usize) -> Result<Vec<u8>> {
        let mut input = Vec::with_capacity(payload.len() + TAIL.len());
        input.extend_from_slice(payload);
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(expected + 64);
        let start = self.stream.total_in();
        loop {
            let used = (self.stream.total_in() - start) as usize;
            self.stream
                .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)?;
            let used = (self.stream.total_in() - start) as usize;
            if used == input.len() && out.len() < out.capacity() {
                break;
            }
            if out.len() > expected + 1024 {
                bail!("the echo inflates to more than was sent");
            }
            out.reserve(out.capacity());
        }
        if self.reset {
            self.stream.reset(false);
        }
        Ok(out)
    }
}

/// A frame from the server.
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Reads frames from the server, counting bytes.
struct FrameReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    bytes: Arc<AtomicU64>,
}

impl FrameReader {
    async fn next(&mut self) -> Result<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = self.read.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server dropped the connection");
            }
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next data message, whole: `(rsv1, payload)`.
    async fn message(&mut self) -> Result<(bool, Vec<u8>)> {
        let mut message: Option<(bool, Vec<u8>)> = None;
        loop {
            let frame = self.next().await?;
            match frame.opcode {
                0x8 => bail!("the server closed the connection"),
                0x9 | 0xa => continue,
                0x0 => {
                    let Some((_, data)) = message.as_mut() else {
                        bail!("a continuation frame without a message");
                    };
                    data.extend_from_slice(&frame.payload);
                }
                _ => message = Some((frame.rsv1, frame.payload)),
            }
            if frame.fin {
                if let Some(m) = message.take() {
                    return Ok(m);
                }
            }
        }
    }
}

/// A whole frame at the start of `buf`, and its length on the wire.
fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (buf[0], buf[1]);
    if second & 0x80 != 0 {
        bail!("a masked frame from the server");
    }
    let (len, mut at) = match second & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    let payload = buf[at..at + len].to_vec();
    at += len;
    Ok(Some((
        Frame {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            opcode: first & 0x0f,
            payload,
        },
        at,
    )))
}

/// A client frame: FIN, `rsv1`, `opcode`, masked.
pub(crate) fn client_frame(opcode: u8, rsv1: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Sends a close frame with 1000 and waits (at most 5 s) for the server's
/// close or the end of TCP.
async fn close(mut write: OwnedWriteHalf, mut reader: FrameReader) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if write
            .write_all(&client_frame(
                0x8,
                false,
                &1000u16.to_be_bytes(),
                [1, 2, 3, 4],
            ))
            .await
            .is_err()
        {
            return;
        }
        while let Ok(frame) = reader.next().await {
            if frame.opcode == 0x8 {
                break;
            }
        }
    })
    .await;
}

/// Runs one cell: opens the connections, drives them, closes them and
/// reports.
pub async fn run(config: &DeflateLoadConfig) -> Result<DeflateLoadResult> {
    if config.connections == 0 || config.in_flight == 0 {
        bail!("connections and in-flight must be at least 1");
    }
    let pool = Arc::new(json_messages(config.size, POOL));
    let conns: Vec<Conn> = futures_util::stream::iter(0..config.connections)
        .map(|_| open(&config.url))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let compressed = conns.iter().all(|c| c.deflate.is_some());
    let bytes_out = Arc::new(AtomicU64::new(0));
    let bytes_in = Arc::new(AtomicU64::new(0));
    let from = Instant::now() + config.warmup;
    let until = from + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        tasks.spawn(drive(
            conn,
            pool.clone(),
            i,
            config.in_flight,
            (from, until),
            (bytes_out.clone(), bytes_in.clone()),
        ));
    }
    let limit = config.warmup + config.duration + Duration::from_secs(60);
    let trips = RoundTrips::join(tasks, limit).await?;
    Ok(DeflateLoadResult {
        messages: trips.counted,
        total_messages: trips.total,
        seconds: config.duration.as_secs_f64(),
        p50_us: crate::percentile(&trips.latencies, 0.50),
        p99_us: crate::percentile(&trips.latencies, 0.99),
        compressed,
        bytes_out: bytes_out.load(Ordering::Relaxed),
        bytes_in: bytes_in.load(Ordering::Relaxed),
    })
}

/// Drives one connection, as `load::drive` does, with compression.
async fn drive(
    conn: Conn,
    pool: Arc<Vec<Vec<u8>>>,
    first: usize,
    in_flight: usize,
    (from, until): (Instant, Instant),
    (bytes_out, bytes_in): (Arc<AtomicU64>, Arc<AtomicU64>),
) -> Result<RoundTrips> {
    let Conn {
        read,
        mut write,
        leftover,
        deflate,
    } = conn;
    bytes_in.fetch_add(leftover.len() as u64, Ordering::Relaxed);
    let mut reader = FrameReader {
        read,
        buf: leftover,
        bytes: bytes_in,
    };
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<(Instant, usize)>();
    let window = Arc::new(Semaphore::new(in_flight));
    let writer = {
        let window = window.clone();
        let pool = pool.clone();
        let mut deflater = deflate.as_ref().map(Deflater::new);
        async move {
            let mut next = first;
            loop {
                window.acquire().await?.forget();
                if Instant::now() >= until {
                    break;
                }
                let index = next % pool.len();
                next += 1;
                let frame = match deflater.as_mut() {
                    Some(d) => client_frame(0x1, true, &d.message(&pool[index])?, [9, 8, 7, 6]),
                    None => client_frame(0x1, false, &pool[index], [9, 8, 7, 6]),
                };
                let _ = sent_tx.send((Instant::now(), index));
                write.write_all(&frame).await?;
                bytes_out.fetch_add(frame.len() as u64, Ordering::Relaxed);
            }
            drop(sent_tx);
            Ok::<_, anyhow::Error>(write)
        }
    };
    let read_side = async move {
        let mut inflater = deflate.as_ref().map(Inflater::new);
        let mut trips = RoundTrips::default();
        while let Some((sent, index)) = sent_rx.recv().await {
            let (rsv1, payload) = reader.message().await?;
            let expected = &pool[index];
            let data = match (rsv1, inflater.as_mut()) {
                (true, Some(i)) => i.message(&payload, expected.len())?,
                (true, None) => bail!("RSV1 without permessage-deflate"),
                (false, _) => payload,
            };
            if data != *expected {
                bail!(
                    "the echo differs from what was sent ({} bytes for {})",
                    data.len(),
                    expected.len()
                );
            }
            trips.reply(sent, (from, until));
            window.add_permits(1);
        }
        Ok::<_, anyhow::Error>((reader, trips))
    };
    let (write, (reader, trips)) = tokio::try_join!(writer, read_side)?;
    close(write, reader).await;
    Ok(trips)
}

/// What holding connections measured.
#[derive(Clone, Debug, PartialEq)]
pub struct HoldResult {
    /// Connections opened, echoed once and held.
    pub connections: usize,
    /// Whether every one negotiated permessage-deflate.
    pub compressed: bool,
}

impl HoldResult {
    /// One line, `key=value` separated by spaces, for the driver to parse.
    pub fn to_line(&self) -> String {
        format!(
            "connections={} compressed={}",
            self.connections, self.compressed
        )
    }

    /// Parses [`HoldResult::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<HoldResult> {
        let field = |key: &str| crate::line_field(line, key);
        Ok(HoldResult {
            connections: field("connections")?.parse()?,
            compressed: field("compressed")?.parse()?,
        })
    }
}

/// Opens `connections` connections, `concurrency` at a time, echoes one
/// JSON-like message of `size` bytes on each (so that both directions'
/// compression state exists where it is kept), then calls `held` while they
/// stay open, and closes them when the future it returns completes. One at
/// a time, a server that frees its compression state after each message
/// never has more than one connection's worth allocated, which its
/// allocator might otherwise keep and show as resident memory.
pub async fn hold<F, Fut>(
    url: &str,
    connections: usize,
    concurrency: usize,
    size: usize,
    held: F,
) -> Result<HoldResult>
where
    F: FnOnce(HoldResult) -> Fut,
    Fut: Future<Output = ()>,
{
    let message = json_messages(size, 1).remove(0);
    let opened: Vec<(bool, OwnedWriteHalf, FrameReader)> =
        futures_util::stream::iter(0..connections)
            .map(|_| {
                let message = message.clone();
                async move {
                    let conn = open(url).await?;
                    let Conn {
                        read,
                        mut write,
                        leftover,
                        deflate,
                    } = conn;
                    let mut reader = FrameReader {
                        read,
                        buf: leftover,
                        bytes: Arc::new(AtomicU64::new(0)),
                    };
                    let frame = match deflate.as_ref() {
                        Some(n) => client_frame(
                            0x1,
                            true,
                            &Deflater::new(n).message(&message)?,
                            [5, 6, 7, 8],
                        ),
                        None => client_frame(0x1, false, &message, [5, 6, 7, 8]),
                    };
                    write.write_all(&frame).await?;
                    let (rsv1, payload) = reader.message().await?;
                    let echo = match deflate.as_ref() {
                        Some(n) if rsv1 => Inflater::new(n).message(&payload, message.len())?,
                        _ => payload,
                    };
                    if echo != message {
                        bail!("the echo differs from what was sent");
                    }
                    Ok::<_, anyhow::Error>((deflate.is_some(), write, reader))
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
    let result = HoldResult {
        connections: opened.len(),
        compressed: opened.iter().all(|(compressed, _, _)| *compressed),
    };
    held(result.clone()).await;
    futures_util::stream::iter(opened)
        .for_each_concurrent(CONNECT_CONCURRENCY, |(_, w, r)| close(w, r))
        .await;
    Ok(result)
}
