//! Hostile peers: raw TCP that does the HTTP upgrade by hand and then sends
//! whatever bytes a test scripts (bad frames, garbage, resets), and reads
//! back the close code the other side answered with.

use std::io::Cursor;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tungstenite::protocol::frame::FrameHeader;

/// One frame: `first` is the first header byte (FIN, RSV bits and opcode);
/// the payload is masked with `mask` when given.
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close frame's payload: the code and the reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// Drops the connection with a TCP reset rather than a FIN.
pub fn reset(tcp: TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// How long a raw peer waits for the other side's HTTP head or TCP.
const WAIT: Duration = crate::WAIT;

/// The HTTP head the other side sends, up to the empty line (or whatever
/// came before TCP ended); fails the test if it takes longer than [`WAIT`].
async fn read_head(tcp: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, tcp.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            Ok(_) => break,
            Err(_) => panic!(
                "no complete HTTP head within {WAIT:?}; got {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    head
}

/// Reads the client's upgrade request and answers 101.
pub async fn accept(tcp: &mut TcpStream) {
    accept_with(tcp, "").await;
}

/// Reads the client's upgrade request and answers 101 with `extra` header
/// lines (each ending in CR LF), e.g. a `Sec-WebSocket-Extensions` answer.
/// Returns the request head.
pub async fn accept_with(tcp: &mut TcpStream, extra: &str) -> String {
    let head = String::from_utf8_lossy(&read_head(tcp).await).into_owned();
    let key = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Sec-WebSocket-Key: ")
                .or_else(|| l.strip_prefix("sec-websocket-key: "))
        })
        .unwrap_or_default()
        .trim()
        .to_string();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    );
    tokio::time::timeout(WAIT, tcp.write_all(answer.as_bytes()))
        .await
        .expect("the 101 answer was written in time")
        .unwrap();
    head
}

/// Connects to a server and upgrades; panics unless it answers 101.
pub async fn connect(port: u16, path: &str) -> TcpStream {
    connect_with(port, path, "").await.0
}

/// Connects to a server and upgrades with `extra` request header lines
/// (each ending in CR LF), e.g. a `Sec-WebSocket-Extensions` offer; panics
/// unless it answers 101. Returns the stream and the answer's head.
pub async fn connect_with(port: u16, path: &str, extra: &str) -> (TcpStream, String) {
    let mut tcp = tokio::time::timeout(WAIT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("TCP connected in time")
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tokio::time::timeout(WAIT, tcp.write_all(request.as_bytes()))
        .await
        .expect("the upgrade request was written in time")
        .unwrap();
    let head = String::from_utf8_lossy(&read_head(&mut tcp).await).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (tcp, head)
}

/// One frame from the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The first header byte: FIN, RSV bits and opcode.
    pub first: u8,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Whether RSV1 (permessage-deflate's "compressed" bit) is set.
    pub fn rsv1(&self) -> bool {
        self.first & 0x40 != 0
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        self.first & 0x0f
    }
}

/// The next frame from `tcp`, with `buf` holding bytes read ahead (keep it
/// for the next call); `None` when TCP ends first. Fails the test after
/// [`WAIT`].
pub async fn read_frame<R: AsyncRead + Unpin>(tcp: &mut R, buf: &mut Vec<u8>) -> Option<Frame> {
    let mut chunk = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut cursor = Cursor::new(&buf[..]);
        if let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) {
            let start = cursor.position() as usize;
            let end = start + len as usize;
            if buf.len() >= end {
                let mut payload = buf[start..end].to_vec();
                if let Some(mask) = header.mask {
                    payload
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b ^= mask[i % 4]);
                }
                let first = buf[0];
                buf.drain(..end);
                return Some(Frame { first, payload });
            }
        }
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return None,
            Err(_) => panic!("no frame and no end of TCP within {WAIT:?}"),
        }
    }
}

/// permessage-deflate's payload for `data` as one whole message: a raw
/// deflate stream, sync-flushed, without its `00 00 ff ff` tail (RFC 7692
/// section 7.2.1), from a fresh context.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = compress_piece(
        &mut flate2::Compress::new(flate2::Compression::default(), false),
        data,
    );
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// Compresses `data` with `stream` and a sync flush (keeping the tail).
pub fn compress_piece(stream: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut used = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        let before = stream.total_in();
        stream
            .compress_vec(&data[used..], &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        used += (stream.total_in() - before) as usize;
        if used == data.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// Inflates a permessage-deflate message's payload (the tail appended) with
/// a fresh context: right for the first message, or without context
/// takeover.
pub fn inflate(payload: &[u8]) -> Vec<u8> {
    Inflater::new().message(payload)
}

/// The receiving side of one direction of permessage-deflate with context
/// takeover: each message may refer to the ones before it.
pub struct Inflater(flate2::Decompress);

impl Inflater {
    /// A fresh context.
    pub fn new() -> Inflater {
        Inflater(flate2::Decompress::new(false))
    }

    /// Inflates the next message's payload (the tail appended).
    pub fn message(&mut self, payload: &[u8]) -> Vec<u8> {
        let stream = &mut self.0;
        let mut input = payload.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let start = stream.total_in();
        let mut out = Vec::with_capacity(payload.len() * 4 + 64);
        loop {
            if out.capacity() == out.len() {
                out.reserve(out.capacity());
            }
            let used = (stream.total_in() - start) as usize;
            stream
                .decompress_vec(&input[used..], &mut out, flate2::FlushDecompress::Sync)
                .expect("a valid deflate stream");
            if (stream.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

/// What the other side did after the script: the close code it sent
/// (`Some(None)` for a close frame without a code), or `None` if TCP ended
/// without a close frame. Data frames before the close are skipped.
pub async fn close_code(tcp: &mut TcpStream) -> Option<Option<u16>> {
    close_code_after(tcp, &mut Vec::new()).await
}

/// [`close_code`], after [`read_frame`] calls that read ahead into `buf`.
pub async fn close_code_after(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Option<u16>> {
    loop {
        let frame = read_frame(tcp, buf).await?;
        if frame.opcode() == 0x8 {
            let payload = frame.payload;
            return Some(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            );
        }
    }
}

/// A raw server on 127.0.0.1:0 that runs `script` on its first connection
/// and returns what the client answered.
pub struct RawServer {
    /// Its port.
    pub port: u16,
    answer: tokio::task::JoinHandle<Option<Option<u16>>>,
}

impl RawServer {
    /// Accepts one connection and runs `script` on it (the script does the
    /// upgrade with [`accept`] if it wants one). The script returns the
    /// stream to read the client's answer from, or `None` after a reset.
    pub async fn start<F, Fut>(script: F) -> RawServer
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Option<TcpStream>> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tcp = script(tcp).await?;
            close_code(&mut tcp).await
        });
        RawServer { port, answer }
    }

    /// A server that upgrades, then writes `bytes`.
    pub async fn sending(bytes: Vec<u8>) -> RawServer {
        RawServer::start(move |mut tcp| async move {
            accept(&mut tcp).await;
            tcp.write_all(&bytes).await.unwrap();
            Some(tcp)
        })
        .await
    }

    /// A server that upgrades, writes `bytes`, then ends its side of TCP
    /// (FIN) and reads the client's answer.
    pub async fn sending_then_fin(bytes: Vec<u8>) -> RawServer {
        RawServer::start(move |mut tcp| async move {
            accept(&mut tcp).await;
            let _ = tcp.write_all(&bytes).await;
            let _ = tcp.shutdown().await;
            Some(tcp)
        })
        .await
    }

    /// What the client answered (see [`close_code`]).
    pub async fn answer(self) -> Option<Option<u16>> {
        tokio::time::timeout(Duration::from_secs(60), self.answer)
            .await
            .expect("the script finished")
            .expect("the script did not panic")
    }
}
