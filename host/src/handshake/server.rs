//! The server's side of the upgrade: parsing the client's request, the 101
//! answer with the handler's choices, and the answers that refuse
//! (RFC 6455 sections 4.2.1 and 4.2.2).

use super::{check_headers, first, list, write_header};
use crate::bindings::types::AcceptOptions;

/// A request that will not be upgraded, and how to answer it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// Headers besides the ones every answer has.
    pub headers: Vec<(&'static str, String)>,
    /// A one-line body that says what to do.
    pub body: String,
}

impl Refusal {
    /// A refusal with `status` and a body of `body`.
    pub(crate) fn new(status: u16, body: impl Into<String>) -> Self {
        Refusal {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a header.
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The whole answer: head and body, `Connection: close`.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            426 => "Upgrade Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "",
        };
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        write_header(&mut head, "Content-Type", "text/plain; charset=utf-8");
        write_header(&mut head, "Content-Length", &self.body.len().to_string());
        write_header(&mut head, "Connection", "close");
        for (name, value) in &self.headers {
            write_header(&mut head, name, value);
        }
        head.push_str("\r\n");
        head.push_str(&self.body);
        head.into_bytes()
    }
}

/// A valid upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upgrade {
    /// The request target, query string included.
    pub path: String,
    /// Every header, in order, names as the client spelled them.
    pub headers: Vec<(String, String)>,
    /// The offered subprotocols, in the client's order.
    pub protocols: Vec<String>,
    /// Every `Sec-WebSocket-Extensions` value, for the extensions' own
    /// negotiation.
    pub extensions: Vec<String>,
    /// The `Sec-WebSocket-Key`.
    pub key: String,
}

/// Parses a request head into an upgrade, or says how to refuse it.
pub(crate) fn parse_upgrade(head: &[u8]) -> Result<Upgrade, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(Refusal::new(400, "Malformed HTTP request.\n"));
    }
    let has_token = |name: &str, token: &str| {
        list(request.headers, name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    };
    if !has_token("upgrade", "websocket") {
        return Err(Refusal::new(
            426,
            "This is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket).\n",
        )
        .with("Upgrade", "websocket")
        .with("Sec-WebSocket-Version", "13"));
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return Err(Refusal::new(
            400,
            "A WebSocket upgrade is an HTTP/1.1 GET request.\n",
        ));
    }
    if !has_token("connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "The upgrade request lacks `Connection: Upgrade`.\n",
        ));
    }
    if first(request.headers, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err(
            Refusal::new(426, "Only WebSocket version 13 is supported.\n")
                .with("Sec-WebSocket-Version", "13"),
        );
    }
    let key = first(request.headers, "sec-websocket-key")
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let key_ok = key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !key_ok {
        return Err(Refusal::new(
            400,
            "The upgrade request lacks a valid Sec-WebSocket-Key.\n",
        ));
    }
    let lossy = |h: &httparse::Header| String::from_utf8_lossy(h.value).into_owned();
    Ok(Upgrade {
        path: request.path.unwrap_or("/").to_string(),
        headers: request
            .headers
            .iter()
            .map(|h| (h.name.to_string(), lossy(h)))
            .collect(),
        protocols: list(request.headers, "sec-websocket-protocol")
            .into_iter()
            .map(String::from)
            .collect(),
        extensions: request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(lossy)
            .collect(),
        key,
    })
}

/// The 101 answer to `upgrade` with the handler's `options` and the
/// extensions the host accepted, or why the options cannot be sent.
pub(crate) fn switching_protocols(
    upgrade: &Upgrade,
    options: &AcceptOptions,
    extensions: Option<&str>,
) -> Result<String, String> {
    let headers = accept_headers(
        &upgrade.key,
        &upgrade.protocols,
        options.protocol.as_deref(),
        extensions,
        &options.headers,
    )?;
    let mut answer = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in &headers {
        write_header(&mut answer, name, value);
    }
    answer.push_str("\r\n");
    Ok(answer)
}

/// The headers of the `101 Switching Protocols` answer to an upgrade
/// request whose `Sec-WebSocket-Key` is `key` and which offered the
/// subprotocols `offered`: `Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
/// the chosen `protocol` (one of `offered`), the accepted `extensions` (the
/// `response` of [`accept_deflate`](crate::accept_deflate)), then the
/// handler's `headers`, which must pass [`check_headers`]. Or why they
/// cannot be sent. `wsbox serve` answers with these; an embedder that
/// answers upgrades with its own HTTP server (hyper) sets them on its 101.
pub fn accept_headers(
    key: &str,
    offered: &[String],
    protocol: Option<&str>,
    extensions: Option<&str>,
    headers: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let mut answer = vec![
        ("Upgrade".to_string(), "websocket".to_string()),
        ("Connection".to_string(), "Upgrade".to_string()),
        ("Sec-WebSocket-Accept".to_string(), accept),
    ];
    if let Some(protocol) = protocol {
        if !offered.iter().any(|p| p == protocol) {
            return Err(format!(
                "it chose subprotocol {protocol:?}, which the client did not offer (offered: {offered:?})"
            ));
        }
        answer.push(("Sec-WebSocket-Protocol".to_string(), protocol.to_string()));
    }
    if let Some(extensions) = extensions {
        answer.push((
            "Sec-WebSocket-Extensions".to_string(),
            extensions.to_string(),
        ));
    }
    check_headers(headers).map_err(|e| match e {
        crate::bindings::types::ErrorCode::InvalidParameter(why) => why,
        other => format!("{other:?}"),
    })?;
    answer.extend(headers.iter().cloned());
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &str) -> String {
        format!(
            "GET /chat?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    #[test]
    fn a_valid_request_is_parsed() {
        let upgrade = parse_upgrade(
            request(
                "Sec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(upgrade.path, "/chat?x=1");
        assert_eq!(upgrade.protocols, ["a", "b"]);
        assert_eq!(upgrade.extensions, ["permessage-deflate"]);
        assert_eq!(upgrade.headers.len(), 7);
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_status() {
        let statuses: Vec<u16> = [
            "not http\r\n\r\n".to_string(),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_string(),
            request("").replacen("GET", "POST", 1),
            request("").replacen("keep-alive, Upgrade", "keep-alive", 1),
            request("").replacen("Version: 13", "Version: 8", 1),
            request("").replacen("dGhlIHNhbXBsZSBub25jZQ==", "short", 1),
        ]
        .iter()
        .map(|head| parse_upgrade(head.as_bytes()).unwrap_err().status)
        .collect();
        assert_eq!(statuses, [400, 426, 400, 400, 426, 400]);
    }

    #[test]
    fn the_101_carries_the_handlers_choices_and_refuses_bad_ones() {
        let upgrade =
            parse_upgrade(request("Sec-WebSocket-Protocol: chat\r\n").as_bytes()).unwrap();
        let options = AcceptOptions {
            protocol: Some("chat".into()),
            headers: vec![("X-Room".into(), "7".into())],
        };
        let answer = switching_protocols(&upgrade, &options, Some("permessage-deflate")).unwrap();
        assert_eq!(
            answer,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\nX-Room: 7\r\n\r\n"
        );
        let unoffered = AcceptOptions {
            protocol: Some("other".into()),
            headers: vec![],
        };
        assert!(switching_protocols(&upgrade, &unoffered, None).is_err());
        let reserved = AcceptOptions {
            protocol: None,
            headers: vec![("TE".into(), "x".into())],
        };
        let why = switching_protocols(&upgrade, &reserved, None).unwrap_err();
        assert!(why.contains("reserved"), "{why}");
    }

    #[test]
    fn a_refusal_is_a_whole_answer() {
        let refusal = Refusal::new(503, "busy\n").with("Retry-After", "1");
        assert_eq!(
            String::from_utf8(refusal.to_bytes()).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n"
        );
    }
}
