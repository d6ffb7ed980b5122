//! Errors as values.

use std::fmt;

use wsbox_guest_common::{Describe, ErrorCode};

/// An error from a websocket operation: the WIT `error-code`, as a value.
/// The connection is unchanged by the failed call unless the variant says
/// otherwise (see `wit/websocket.wit`).
///
/// Displays in WIT's kebab case, with the detail after a colon:
/// `invalid-parameter: reason without a code`, `handshake-rejected: 403`,
/// `closed`.
///
/// ```no_run
/// use wsbox_guest::{ErrorCode, WebSocket};
///
/// match WebSocket::connect("ws://127.0.0.1:9001/") {
///     Ok(ws) => drop(ws),
///     Err(e) if matches!(e.code(), ErrorCode::Denied(_)) => eprintln!("not allowed: {e}"),
///     Err(e) => eprintln!("connect: {e}"),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Error(ErrorCode);

impl Error {
    /// The WIT `error-code` behind this error, to match on.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// use wsbox_guest::ErrorCode;
    ///
    /// if let Err(e) = ws.send_text("hi") {
    ///     if matches!(e.code(), ErrorCode::Closed) {
    ///         println!("the connection is over");
    ///     }
    /// }
    /// ```
    pub fn code(&self) -> &ErrorCode {
        &self.0
    }

    /// The WIT `error-code`, by value.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// let code: wsbox_guest::ErrorCode = ws.send_text("hi").unwrap_err().into_code();
    /// ```
    pub fn into_code(self) -> ErrorCode {
        self.0
    }

    /// Whether this is `closed`: the connection is over, and
    /// [`WebSocket::close_status`](crate::WebSocket::close_status) tells how.
    ///
    /// ```no_run
    /// # let ws = wsbox_guest::WebSocket::connect("ws://127.0.0.1:9001/").unwrap();
    /// if ws.send_text("hi").is_err_and(|e| e.is_closed()) {
    ///     println!("{:?}", ws.close_status());
    /// }
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self.0, ErrorCode::Closed)
    }
}

/// ```
/// let e = wsbox_guest::Error::from(wsbox_guest::ErrorCode::Timeout);
/// assert_eq!(e.to_string(), "timeout");
/// ```
impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Error(code)
    }
}

/// ```
/// use wsbox_guest::{Error, ErrorCode};
///
/// let e = Error::from(ErrorCode::HandshakeRejected(403));
/// assert_eq!(e.to_string(), "handshake-rejected: 403");
/// ```
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl std::error::Error for Error {}
