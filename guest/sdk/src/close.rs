//! Close codes and close statuses.

use std::fmt;

use wsbox_guest_common::{CloseStatus as RawCloseStatus, QueryCloseStatusError};

/// A WebSocket close code (RFC 6455 section 7.4, the IANA registry, and
/// WinHTTP's `WINHTTP_WEB_SOCKET_CLOSE_STATUS`).
///
/// Converts from and into the `u16` on the wire; a code without a name
/// becomes [`CloseCode::Other`], so the conversion round-trips:
///
/// ```
/// use wsbox_guest::CloseCode;
///
/// assert_eq!(CloseCode::from(1001), CloseCode::GoingAway);
/// assert_eq!(u16::from(CloseCode::Normal), 1000);
/// assert_eq!(CloseCode::from(4321), CloseCode::Other(4321));
/// assert_eq!(CloseCode::Other(1000), CloseCode::Normal);
/// ```
///
/// Equality compares the numbers, so `CloseCode::Other(1000)` equals
/// `CloseCode::Normal`.
#[derive(Debug, Clone, Copy)]
pub enum CloseCode {
    /// 1000, normal closure. WinHTTP: `SUCCESS_CLOSE_STATUS`.
    Normal,
    /// 1001, the endpoint is going away (server shutdown, page left).
    /// WinHTTP: `ENDPOINT_TERMINATED_CLOSE_STATUS`.
    GoingAway,
    /// 1002, protocol error. WinHTTP: `PROTOCOL_ERROR_CLOSE_STATUS`.
    ProtocolError,
    /// 1003, a data type the endpoint cannot accept. WinHTTP:
    /// `INVALID_DATA_TYPE_CLOSE_STATUS`.
    Unsupported,
    /// 1005, no status code in the close frame. Received only, never sent:
    /// send an empty close frame with `close(None, "")` instead. WinHTTP:
    /// `EMPTY_CLOSE_STATUS`.
    NoStatus,
    /// 1006, the connection ended without a close frame. Never sent, and
    /// never received from wsbox either, which reports it as
    /// [`CloseStatusError::Aborted`]. WinHTTP: `ABORTED_CLOSE_STATUS`.
    Abnormal,
    /// 1007, data inconsistent with its type (text that is not UTF-8).
    /// WinHTTP: `INVALID_PAYLOAD_CLOSE_STATUS`.
    InvalidData,
    /// 1008, a message that violates the endpoint's policy. WinHTTP:
    /// `POLICY_VIOLATION_CLOSE_STATUS`.
    PolicyViolation,
    /// 1009, a message too big to process. WinHTTP:
    /// `MESSAGE_TOO_BIG_CLOSE_STATUS`.
    TooBig,
    /// 1010, the client expected an extension the server did not
    /// negotiate. WinHTTP: `UNSUPPORTED_EXTENSIONS_CLOSE_STATUS`.
    MandatoryExtension,
    /// 1011, the server hit an unexpected condition. WinHTTP:
    /// `SERVER_ERROR_CLOSE_STATUS`.
    InternalError,
    /// 1012, the service is restarting.
    ServiceRestart,
    /// 1013, try again later (overload).
    TryAgainLater,
    /// 1015, the TLS handshake failed. Received only, never sent. WinHTTP:
    /// `SECURE_HANDSHAKE_ERROR_CLOSE_STATUS`.
    TlsHandshake,
    /// Any other code: 3000-3999 (registered), 4000-4999 (private use), or
    /// a code that may only be received.
    Other(u16),
}

impl CloseCode {
    /// The code on the wire.
    ///
    /// ```
    /// assert_eq!(wsbox_guest::CloseCode::TooBig.code(), 1009);
    /// ```
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidData => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::TlsHandshake => 1015,
            CloseCode::Other(code) => code,
        }
    }

    /// Whether the code may go out in a close frame: exactly 1000-1003,
    /// 1007-1013 and 3000-4999. The host refuses any other code with
    /// `invalid-parameter`.
    ///
    /// ```
    /// use wsbox_guest::CloseCode;
    ///
    /// assert!(CloseCode::Normal.is_sendable());
    /// assert!(CloseCode::Other(4000).is_sendable());
    /// assert!(!CloseCode::NoStatus.is_sendable());
    /// assert!(!CloseCode::Other(1004).is_sendable());
    /// ```
    pub const fn is_sendable(self) -> bool {
        matches!(self.code(), 1000..=1003 | 1007..=1013 | 3000..=4999)
    }
}

/// ```
/// assert_eq!(wsbox_guest::CloseCode::from(1011), wsbox_guest::CloseCode::InternalError);
/// ```
impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::ProtocolError,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::NoStatus,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidData,
            1008 => CloseCode::PolicyViolation,
            1009 => CloseCode::TooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            1015 => CloseCode::TlsHandshake,
            code => CloseCode::Other(code),
        }
    }
}

/// ```
/// assert_eq!(u16::from(wsbox_guest::CloseCode::GoingAway), 1001);
/// ```
impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.code()
    }
}

impl PartialEq for CloseCode {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for CloseCode {}

impl std::hash::Hash for CloseCode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code().hash(state)
    }
}

/// The number: `1000`.
///
/// ```
/// assert_eq!(wsbox_guest::CloseCode::Normal.to_string(), "1000");
/// ```
impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.code().fmt(f)
    }
}

/// The status of a close frame the peer sent (RFC 6455 section 5.5.1).
/// WinHTTP: `WinHttpWebSocketQueryCloseStatus`. IIS: `GetCloseStatus`.
///
/// Displays as the code, then the reason quoted and escaped:
///
/// ```
/// use wsbox_guest::{CloseCode, CloseStatus};
///
/// let status = CloseStatus { code: CloseCode::Normal, reason: "bye".into() };
/// assert_eq!(status.to_string(), r#"1000 "bye""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseStatus {
    /// The close code; [`CloseCode::NoStatus`] (1005) when the frame had no
    /// payload.
    pub code: CloseCode,
    /// The reason, at most 123 bytes; empty when there was none.
    pub reason: String,
}

impl From<RawCloseStatus> for CloseStatus {
    fn from(raw: RawCloseStatus) -> Self {
        CloseStatus {
            code: raw.code.into(),
            reason: raw.reason,
        }
    }
}

impl fmt::Display for CloseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.code, self.reason)
    }
}

/// Why [`WebSocket::close_status`](crate::WebSocket::close_status) has no
/// status to give.
///
/// Displays in WIT's kebab case:
///
/// ```
/// assert_eq!(wsbox_guest::CloseStatusError::NotReceived.to_string(), "not-received");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseStatusError {
    /// No close frame from the peer yet: the connection is open, or only our
    /// own close went out through `shutdown`.
    NotReceived,
    /// The connection ended without a close frame from the peer (RFC 6455's
    /// 1006): a reset, end of stream, close timeout, protocol error or
    /// `abort`.
    Aborted,
}

impl From<QueryCloseStatusError> for CloseStatusError {
    fn from(raw: QueryCloseStatusError) -> Self {
        match raw {
            QueryCloseStatusError::NotReceived => CloseStatusError::NotReceived,
            QueryCloseStatusError::Aborted => CloseStatusError::Aborted,
        }
    }
}

impl fmt::Display for CloseStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseStatusError::NotReceived => "not-received",
            CloseStatusError::Aborted => "aborted",
        })
    }
}

impl std::error::Error for CloseStatusError {}
