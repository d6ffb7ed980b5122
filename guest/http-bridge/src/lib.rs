//! `http-bridge`: a handler that uses `wsbox:websocket` and `wasi:http`
//! together (the `server-with-http` world). It accepts upgrades to `/` only
//! (others get 404), with the subprotocol `bridge.v1` when the client offers
//! it. For each text message, a URL, it
//! makes an HTTP GET and sends back `"<status> <body length>"`, or
//! `"error: <why>"`; it answers the client's close with the client's own
//! code, like `echo`. `wsbox serve` cannot run it (it has no `wasi:http`):
//! the embedder in `host/examples/http_and_websockets.rs` does.

use wsbox_guest::{Handler, Message, UpgradeRequest, UpgradeResponse, WebSocket};

// Only `wasi:http` and the `wasi:io` streams it uses are generated here: the
// websocket interfaces, the `handler` export and `wasi:io/poll` come from the
// SDK's bindings, so `export_handler!` exports this handler.
wit_bindgen::generate!({
    path: "../../wit",
    world: "wsbox:websocket/server-with-http",
    with: {
        "wsbox:websocket/types@0.1.0": wsbox_guest_common::wsbox::websocket::types,
        "wsbox:websocket/topics@0.1.0": wsbox_guest_common::wsbox::websocket::topics,
        "wsbox:websocket/handler@0.1.0": wsbox_guest_server::exports::wsbox::websocket::handler,
        "wasi:io/poll@0.2.12": wsbox_guest_common::wasi::io::poll,
    },
    generate_all,
});

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, IncomingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

struct Bridge;

impl Handler for Bridge {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        if request.route() != "/" {
            return UpgradeResponse::reject(404);
        }
        if request.offers("bridge.v1") {
            return UpgradeResponse::accept().protocol("bridge.v1");
        }
        UpgradeResponse::accept()
    }

    fn handle(ws: WebSocket) {
        for message in ws.messages() {
            let Ok(message) = message else { return };
            let reply = match message {
                Message::Text(url) => match get(&url) {
                    Ok((status, length)) => format!("{status} {length}"),
                    Err(why) => format!("error: {why}"),
                },
                Message::Binary(_) => "error: send the URL as a text message".to_string(),
            };
            if ws.send_text(&reply).is_err() {
                return;
            }
        }
        if let Ok(status) = ws.close_status() {
            let _ = ws.answer_close(&status);
        }
    }
}

wsbox_guest::export_handler!(Bridge);

/// GETs `url`: its status and the length of its body.
fn get(url: &str) -> Result<(u16, u64), String> {
    let (scheme, authority, path) = split_url(url)?;
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |part: &str| format!("the host refused the {part} of {url:?}");
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| invalid("path"))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| describe(&e))?;
    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(e))) => return Err(describe(&e)),
            Some(Err(())) => return Err("the response was already taken".to_string()),
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| "the response has no body".to_string())?;
    let length = body_length(&body)?;
    drop(IncomingBody::finish(body));
    Ok((status, length))
}

/// Reads a response body to its end and counts its bytes.
fn body_length(body: &IncomingBody) -> Result<u64, String> {
    let stream = body
        .stream()
        .map_err(|()| "the body's stream was already taken".to_string())?;
    let mut length = 0u64;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => length += chunk.len() as u64,
            Err(StreamError::Closed) => return Ok(length),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body failed: {}", e.to_debug_string()))
            }
        }
    }
}

/// `http://host:port/path?query` as its scheme, authority and path with
/// query (`/` when it has none).
fn split_url(url: &str) -> Result<(Scheme, &str, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!(
            "{url:?} is not a URL this bridge fetches: send one that starts with http:// or https://"
        ));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("{url:?} has no host: send http://HOST[:PORT]/PATH"));
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok((scheme, authority, path))
}

/// An HTTP failure in words, with WIT's name for it.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "the host denied the request (http-request-denied)".into(),
        ErrorCode::ConnectionRefused => "the connection was refused (connection-refused)".into(),
        ErrorCode::DnsError(_) => "the host name did not resolve (dns-error)".into(),
        ErrorCode::HttpRequestUriInvalid => "the URL is invalid (http-request-uri-invalid)".into(),
        other => format!("the request failed: {other:?}"),
    }
}
