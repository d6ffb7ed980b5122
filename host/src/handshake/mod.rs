//! The HTTP/1.1 upgrade of RFC 6455 section 4, for both roles: reading a
//! head, the header rules a guest's or handler's extra headers must keep,
//! and writing `name: value` lines. `client` builds the request and checks
//! the 101 answer; `server` parses the request and builds the answers.
//! An embedder that answers upgrades with its own HTTP server uses
//! [`accept_headers`] for its 101 and [`check_headers`] for a handler's
//! headers, so that both servers keep the same rules.
//!
//! Heads are parsed with `httparse` and written by hand: they are a few
//! lines, and the server's accept-to-handler latency is measured by the
//! benchmark.

pub(crate) mod client;
pub(crate) mod server;

pub use server::accept_headers;

use crate::bindings::types::ErrorCode;
use bytes::BytesMut;
use std::fmt::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Header names a guest or handler may not set (compared in lowercase):
/// the ones the handshake itself writes, and the ones RFC 9110 gives to the
/// connection and the message framing (hop-by-hop, length, transfer
/// coding, trailers, `Expect`). Besides these, every `sec-websocket-*` and
/// `proxy-*` name is refused.
const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "upgrade",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "expect",
    "keep-alive",
];

/// Name prefixes a guest or handler may not set: the WebSocket handshake's
/// own headers and the proxy ones.
const RESERVED_PREFIXES: [&str; 2] = ["sec-websocket-", "proxy-"];

/// The most extra header bytes a guest's request, or a handler's 101
/// answer, may carry: the sum of `name: value\r\n` over its headers. It
/// keeps the whole handshake head well under the 16 KiB that servers
/// (and this host, reading a head) commonly accept.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The longest HTTP head the host reads, in either role.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Why a head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// It is longer than [`MAX_HEAD`].
    TooLarge,
    /// The stream ended before the blank line.
    Ended,
    /// The stream failed.
    Io(std::io::Error),
}

/// Reads an HTTP head, up to and including its blank line; returns it and
/// the bytes that followed it. Each byte is searched about once, however
/// the head arrives.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<(BytesMut, BytesMut), HeadError> {
    read_head_within(io, MAX_HEAD).await
}

/// [`read_head`] with a bound of `max` bytes instead of [`MAX_HEAD`].
pub(crate) async fn read_head_within<R: AsyncRead + Unpin>(
    io: &mut R,
    max: usize,
) -> Result<(BytesMut, BytesMut), HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut searched = 0;
    loop {
        if let Some(end) = buf[searched..].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf.split_to(searched + end + 4);
            return Ok((head, buf));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= max {
            return Err(HeadError::TooLarge);
        }
        match io.read_buf(&mut buf).await {
            Ok(0) => return Err(HeadError::Ended),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// Appends one `name: value` line.
pub(crate) fn write_header(head: &mut String, name: &str, value: &str) {
    let _ = write!(head, "{name}: {value}\r\n");
}

/// Whether `s` is an HTTP token (RFC 9110 section 5.6.2).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks extra handshake headers (of a request or of a 101 answer)
/// against RFC 9110: token names, none of the reserved ones, no control
/// character but HTAB in a value, and at most [`MAX_HEADER_BYTES`] in all.
/// An embedder answering upgrades itself checks its handler's headers with
/// it (or lets [`accept_headers`] do so).
pub fn check_headers(headers: &[(String, String)]) -> Result<(), ErrorCode> {
    let mut total: usize = 0;
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            return Err(ErrorCode::InvalidParameter(format!(
                "header name {name:?} is not an HTTP token"
            )));
        }
        if RESERVED_HEADERS.contains(&lower.as_str())
            || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(ErrorCode::InvalidParameter(format!(
                "header {name} is reserved for the handshake and the connection itself \
                 (Host, Upgrade, Connection, Content-Length, Transfer-Encoding, TE, Trailer, \
                 Expect, Keep-Alive, Sec-WebSocket-*, Proxy-*): remove it"
            )));
        }
        if let Some(byte) = value
            .bytes()
            .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(ErrorCode::InvalidParameter(format!(
                "the value of header {name} contains the control character 0x{byte:02x}; \
                 a header value may contain no control character but HTAB (RFC 9110 section 5.5)"
            )));
        }
        total = total.saturating_add(name.len() + value.len() + 4);
    }
    if total > MAX_HEADER_BYTES {
        return Err(ErrorCode::InvalidParameter(format!(
            "the extra headers take {total} bytes (counting `name: value\\r\\n`), \
             over the host's limit of {MAX_HEADER_BYTES} bytes (8 KiB): send fewer or shorter headers"
        )));
    }
    Ok(())
}

/// The comma-separated elements of every `name` header, trimmed, without
/// empty ones (RFC 9110 section 5.6.1).
pub(crate) fn list<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .collect()
}

/// The value of the first `name` header, if it is UTF-8.
pub(crate) fn first<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_is_found_however_it_arrives() {
        let text = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        for chunk in [1, 2, 3, 5, 64] {
            let (mut client, mut server) = tokio::io::duplex(chunk);
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for piece in text.chunks(chunk) {
                    // The reader stops after the head: the rest may not fit.
                    if client.write_all(piece).await.is_err() {
                        break;
                    }
                }
            });
            let (head, rest) = read_head(&mut server).await.unwrap();
            assert_eq!(&head[..], &text[..text.len() - 4], "chunk {chunk}");
            drop(server);
            writer.await.unwrap();
            // What follows the head may have arrived with it, or not yet.
            assert!(b"rest".starts_with(&rest), "chunk {chunk}: {rest:?}");
        }
    }

    #[tokio::test]
    async fn heads_that_never_end_or_stop_early_are_refused() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[b'a'; MAX_HEAD + 10]).await.unwrap();
        assert!(matches!(
            read_head(&mut server).await,
            Err(HeadError::TooLarge)
        ));
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        drop(client);
        assert!(matches!(
            read_head(&mut server).await,
            Err(HeadError::Ended)
        ));
    }

    #[test]
    fn lists_split_on_commas_across_lines() {
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut request = httparse::Request::new(&mut headers);
        let text =
            b"GET / HTTP/1.1\r\nSec-WebSocket-Protocol: a, b\r\nsec-websocket-protocol: ,c\r\n\r\n";
        request.parse(text).unwrap();
        assert_eq!(
            list(request.headers, "Sec-WebSocket-Protocol"),
            ["a", "b", "c"]
        );
        assert_eq!(
            first(request.headers, "SEC-WEBSOCKET-PROTOCOL"),
            Some("a, b")
        );
    }
}
