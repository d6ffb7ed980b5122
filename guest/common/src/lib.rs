//! Bindings for the `wsbox:websocket/client` world, generated once for all
//! the sample guests, plus the few helpers they share. The SDK
//! (`wsbox-guest`, `../sdk`) wraps them; `close-probe`, the reference guest,
//! uses them directly.
//!
//! A guest of your own needs only the `generate!` call below (with `path`
//! pointing at your copy of the `wit` folder) and
//! `cargo build --target wasm32-wasip2`: the result is a component.
//!
//! The server side uses these bindings too: `wsbox-guest-server` maps the
//! `types` interface of the `server` world onto them with `with`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "wsbox:websocket/client",
    // Also generate the WASI interfaces the world uses (`wasi:io/poll`).
    generate_all,
});

pub use wasi::io::poll::{poll, Pollable};
pub use wsbox::websocket::topics;
pub use wsbox::websocket::types::*;

/// Connects to `url` without subprotocols or extra headers.
pub fn connect(url: &str) -> Result<Websocket, ErrorCode> {
    Websocket::connect(
        url,
        &ConnectOptions {
            protocols: Vec::new(),
            headers: Vec::new(),
        },
    )
}

/// Text for a WIT value as the samples print it: variant names in WIT's
/// kebab case, payloads after a colon, for instance
/// `invalid-parameter: reason without a code` or `handshake-rejected: 403`.
/// (The generated `Display` impls print Rust's `Debug` form instead.)
pub trait Describe {
    fn describe(&self) -> String;
}

impl Describe for ErrorCode {
    fn describe(&self) -> String {
        let (name, detail) = match self {
            ErrorCode::InvalidUrl(m) => ("invalid-url", Some(m.clone())),
            ErrorCode::Denied(m) => ("denied", Some(m.clone())),
            ErrorCode::ConnectFailed(m) => ("connect-failed", Some(m.clone())),
            ErrorCode::HandshakeRejected(status) => {
                ("handshake-rejected", Some(status.to_string()))
            }
            ErrorCode::InvalidParameter(m) => ("invalid-parameter", Some(m.clone())),
            ErrorCode::InvalidState(m) => ("invalid-state", Some(m.clone())),
            ErrorCode::Closed => ("closed", None),
            ErrorCode::MessageTooBig => ("message-too-big", None),
            ErrorCode::ProtocolError(m) => ("protocol-error", Some(m.clone())),
            ErrorCode::LimitExceeded(m) => ("limit-exceeded", Some(m.clone())),
            ErrorCode::Timeout => ("timeout", None),
            ErrorCode::Other(m) => ("other", Some(m.clone())),
        };
        match detail {
            Some(detail) => format!("{name}: {detail}"),
            None => name.to_string(),
        }
    }
}

impl Describe for QueryCloseStatusError {
    fn describe(&self) -> String {
        match self {
            QueryCloseStatusError::NotReceived => "not-received",
            QueryCloseStatusError::Aborted => "aborted",
        }
        .to_string()
    }
}

/// `1000 "bye"`: the code, then the reason quoted and escaped.
impl Describe for CloseStatus {
    fn describe(&self) -> String {
        format!("{} {:?}", self.code, self.reason)
    }
}

/// The `main` of a sample command: runs `run` and turns its error into a
/// message on stderr and exit status 1.
pub fn exit_with(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
