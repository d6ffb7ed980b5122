//! The client's side of the upgrade: the request it sends and the check of
//! the server's 101 answer (RFC 6455 sections 4.1 and 4.2.2).

use super::{first, list, write_header};
use crate::bindings::types::ErrorCode;

/// An upgrade request, as the client sends it.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// The request target: the path and the query.
    pub target: &'a str,
    /// `host[:port]`, as in the URL.
    pub authority: &'a str,
    /// The `Sec-WebSocket-Key`.
    pub key: &'a str,
    /// Subprotocols to offer, in order of preference.
    pub protocols: &'a [String],
    /// The `Sec-WebSocket-Extensions` offer, if any.
    pub extensions: Option<&'a str>,
    /// Extra headers, checked already.
    pub headers: &'a [(String, String)],
}

impl Request<'_> {
    /// The request head.
    pub(crate) fn to_head(&self) -> String {
        let mut head = format!("GET {} HTTP/1.1\r\n", self.target);
        write_header(&mut head, "Host", self.authority);
        write_header(&mut head, "Upgrade", "websocket");
        write_header(&mut head, "Connection", "Upgrade");
        write_header(&mut head, "Sec-WebSocket-Key", self.key);
        write_header(&mut head, "Sec-WebSocket-Version", "13");
        if !self.protocols.is_empty() {
            write_header(
                &mut head,
                "Sec-WebSocket-Protocol",
                &self.protocols.join(", "),
            );
        }
        if let Some(extensions) = self.extensions {
            write_header(&mut head, "Sec-WebSocket-Extensions", extensions);
        }
        for (name, value) in self.headers {
            write_header(&mut head, name, value);
        }
        head.push_str("\r\n");
        head
    }
}

/// What the server's 101 answer chose.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The subprotocol, one that was offered.
    pub protocol: Option<String>,
    /// Every `Sec-WebSocket-Extensions` value, for the extension's own
    /// check.
    pub extensions: Vec<String>,
}

/// Checks the server's answer head to the request with `key` that offered
/// `protocols`.
pub(crate) fn check_answer(
    head: &[u8],
    key: &str,
    protocols: &[String],
) -> Result<Answer, ErrorCode> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let bad = |what: String| ErrorCode::ProtocolError(format!("invalid upgrade response: {what}"));
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete head".into())),
        Err(e) => return Err(bad(e.to_string())),
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(ErrorCode::HandshakeRejected(status));
    }
    let headers = response.headers;
    if !first(headers, "upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket")) {
        return Err(bad("no `Upgrade: websocket`".into()));
    }
    if !list(headers, "connection")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(bad("no `Connection: upgrade`".into()));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if first(headers, "sec-websocket-accept").map(str::trim) != Some(expected.as_str()) {
        return Err(bad("wrong Sec-WebSocket-Accept".into()));
    }
    let protocol = match first(headers, "sec-websocket-protocol").map(str::trim) {
        None => None,
        Some(p) if protocols.iter().any(|o| o == p) => Some(p.to_string()),
        Some(p) => {
            return Err(bad(format!(
                "the server chose subprotocol {p:?}, which was not offered"
            )))
        }
    };
    let extensions = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect();
    Ok(Answer {
        protocol,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn answer(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_request_carries_every_part() {
        let protocols = ["chat".to_string(), "v2".to_string()];
        let headers = [("Authorization".to_string(), "Bearer x".to_string())];
        let head = Request {
            target: "/room?x=1",
            authority: "example.com:8080",
            key: KEY,
            protocols: &protocols,
            extensions: Some("permessage-deflate"),
            headers: &headers,
        }
        .to_head();
        assert_eq!(
            head,
            "GET /room?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, v2\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\nAuthorization: Bearer x\r\n\r\n"
        );
    }

    #[test]
    fn answers_are_checked() {
        let offered = ["chat".to_string()];
        assert_eq!(
            check_answer(&answer("Sec-WebSocket-Protocol: chat\r\n"), KEY, &offered),
            Ok(Answer {
                protocol: Some("chat".into()),
                extensions: vec![]
            })
        );
        let rejected = b"HTTP/1.1 403 Forbidden\r\n\r\n";
        assert_eq!(
            check_answer(rejected, KEY, &offered),
            Err(ErrorCode::HandshakeRejected(403))
        );
        for (extra, why) in [
            ("Sec-WebSocket-Protocol: other\r\n", "not offered"),
            ("", ""),
        ] {
            let result = check_answer(&answer(extra), KEY, &offered);
            if why.is_empty() {
                assert!(result.is_ok());
            } else {
                assert!(matches!(result, Err(ErrorCode::ProtocolError(m)) if m.contains(why)));
            }
        }
        let wrong_key = check_answer(&answer(""), "AAAAAAAAAAAAAAAAAAAAAA==", &offered);
        assert!(matches!(wrong_key, Err(ErrorCode::ProtocolError(m)) if m.contains("Accept")));
        let extensions = check_answer(
            &answer("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            KEY,
            &offered,
        )
        .unwrap();
        assert_eq!(extensions.extensions, ["permessage-deflate"]);
    }
}
