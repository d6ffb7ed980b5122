//! Close codes and close statuses.

use std::fmt;

use wsbox_guest_common::{CloseStatus as RawCloseStatus, QueryCloseStatusError};

/// A WebSocket close code (RFC 6455 section 7.4, the IANA registry, and
/// WinHTTP's `WINHTTP_WEB_SOCKET_CLOSE_STATUS`), with the host's names: the
/// same variants as `wsbox::CloseCode` (tungstenite's).
///
/// Converts from and into the `u16` on the wire; a code without a name
/// falls into its range ([`Iana`](CloseCode::Iana),
/// [`Library`](CloseCode::Library), [`Reserved`](CloseCode::Reserved) or
/// [`Bad`](CloseCode::Bad)), so the conversion round-trips:
///
/// ```
/// use wsbox_guest::CloseCode;
///
/// assert_eq!(CloseCode::from(1001), CloseCode::Away);
/// assert_eq!(u16::from(CloseCode::Normal), 1000);
/// assert_eq!(CloseCode::from(4321), CloseCode::Library(4321));
/// assert_eq!(CloseCode::Library(1000), CloseCode::Normal);
/// ```
///
/// Equality compares the numbers, so `CloseCode::Library(1000)` equals
/// `CloseCode::Normal`. The names of earlier versions (`GoingAway`,
/// `TooBig`, `Other(code)`, ...) still compile, deprecated, in expressions
/// (not in patterns).
#[derive(Debug, Clone, Copy)]
pub enum CloseCode {
    /// 1000, normal closure. WinHTTP: `SUCCESS_CLOSE_STATUS`.
    Normal,
    /// 1001, the endpoint is going away (server shutdown, page left).
    /// WinHTTP: `ENDPOINT_TERMINATED_CLOSE_STATUS`.
    Away,
    /// 1002, protocol error. WinHTTP: `PROTOCOL_ERROR_CLOSE_STATUS`.
    Protocol,
    /// 1003, a data type the endpoint cannot accept. WinHTTP:
    /// `INVALID_DATA_TYPE_CLOSE_STATUS`.
    Unsupported,
    /// 1005, no status code in the close frame. Received only, never sent:
    /// send an empty close frame with `close(None, "")` instead. WinHTTP:
    /// `EMPTY_CLOSE_STATUS`.
    Status,
    /// 1006, the connection ended without a close frame. Never sent, and
    /// never received from wsbox either, which reports it as
    /// [`CloseStatusError::Aborted`]. WinHTTP: `ABORTED_CLOSE_STATUS`.
    Abnormal,
    /// 1007, data inconsistent with its type (text that is not UTF-8).
    /// WinHTTP: `INVALID_PAYLOAD_CLOSE_STATUS`.
    Invalid,
    /// 1008, a message that violates the endpoint's policy. WinHTTP:
    /// `POLICY_VIOLATION_CLOSE_STATUS`.
    Policy,
    /// 1009, a message too big to process. WinHTTP:
    /// `MESSAGE_TOO_BIG_CLOSE_STATUS`.
    Size,
    /// 1010, the client expected an extension the server did not
    /// negotiate. WinHTTP: `UNSUPPORTED_EXTENSIONS_CLOSE_STATUS`.
    Extension,
    /// 1011, the server hit an unexpected condition. WinHTTP:
    /// `SERVER_ERROR_CLOSE_STATUS`.
    Error,
    /// 1012, the service is restarting.
    Restart,
    /// 1013, try again later (overload).
    Again,
    /// 1015, the TLS handshake failed. Received only, never sent. WinHTTP:
    /// `SECURE_HANDSHAKE_ERROR_CLOSE_STATUS`.
    Tls,
    /// 1016-2999: reserved by RFC 6455; may not be sent.
    Reserved(u16),
    /// 3000-3999: registered with IANA for libraries and frameworks.
    Iana(u16),
    /// 4000-4999: private use by applications.
    Library(u16),
    /// 0-999, 1004, 1014 and 5000 and up: not close codes; may not be sent.
    Bad(u16),
}

impl CloseCode {
    /// The code on the wire.
    ///
    /// ```
    /// assert_eq!(wsbox_guest::CloseCode::Size.code(), 1009);
    /// ```
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Restart => 1012,
            CloseCode::Again => 1013,
            CloseCode::Tls => 1015,
            CloseCode::Reserved(code)
            | CloseCode::Iana(code)
            | CloseCode::Library(code)
            | CloseCode::Bad(code) => code,
        }
    }

    /// Whether the code may be in a close frame on the wire: exactly
    /// 1000-1003, 1007-1013 and 3000-4999, the host's rule. The host refuses
    /// any other code with `invalid-parameter`.
    ///
    /// ```
    /// use wsbox_guest::CloseCode;
    ///
    /// assert!(CloseCode::Normal.is_allowed());
    /// assert!(CloseCode::Library(4000).is_allowed());
    /// assert!(!CloseCode::Status.is_allowed());
    /// assert!(!CloseCode::from(1004).is_allowed());
    /// ```
    pub const fn is_allowed(self) -> bool {
        matches!(self.code(), 1000..=1003 | 1007..=1013 | 3000..=4999)
    }

    /// The code with this number, by name or range (`From<u16>`, in a
    /// `const fn`).
    const fn from_u16(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::Status,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::Invalid,
            1008 => CloseCode::Policy,
            1009 => CloseCode::Size,
            1010 => CloseCode::Extension,
            1011 => CloseCode::Error,
            1012 => CloseCode::Restart,
            1013 => CloseCode::Again,
            1015 => CloseCode::Tls,
            1016..=2999 => CloseCode::Reserved(code),
            3000..=3999 => CloseCode::Iana(code),
            4000..=4999 => CloseCode::Library(code),
            _ => CloseCode::Bad(code),
        }
    }

    /// The old name of [`is_allowed`](Self::is_allowed).
    #[deprecated(note = "use `is_allowed`, the host's name")]
    pub const fn is_sendable(self) -> bool {
        self.is_allowed()
    }
}

/// The names of earlier versions, kept so that code using them still
/// compiles (in expressions; a pattern needs the new name).
///
/// ```
/// #![allow(deprecated)]
/// use wsbox_guest::CloseCode;
///
/// assert_eq!(CloseCode::GoingAway, CloseCode::Away);
/// assert_eq!(CloseCode::TooBig, CloseCode::Size);
/// assert_eq!(CloseCode::Other(4321), CloseCode::Library(4321));
/// assert!(CloseCode::NoStatus.code() == 1005 && !CloseCode::NoStatus.is_sendable());
/// ```
#[allow(non_upper_case_globals, non_snake_case)]
impl CloseCode {
    /// 1001: use [`CloseCode::Away`].
    #[deprecated(note = "use `CloseCode::Away`, the host's name")]
    pub const GoingAway: CloseCode = CloseCode::Away;
    /// 1002: use [`CloseCode::Protocol`].
    #[deprecated(note = "use `CloseCode::Protocol`, the host's name")]
    pub const ProtocolError: CloseCode = CloseCode::Protocol;
    /// 1005: use [`CloseCode::Status`].
    #[deprecated(note = "use `CloseCode::Status`, the host's name")]
    pub const NoStatus: CloseCode = CloseCode::Status;
    /// 1007: use [`CloseCode::Invalid`].
    #[deprecated(note = "use `CloseCode::Invalid`, the host's name")]
    pub const InvalidData: CloseCode = CloseCode::Invalid;
    /// 1008: use [`CloseCode::Policy`].
    #[deprecated(note = "use `CloseCode::Policy`, the host's name")]
    pub const PolicyViolation: CloseCode = CloseCode::Policy;
    /// 1009: use [`CloseCode::Size`].
    #[deprecated(note = "use `CloseCode::Size`, the host's name")]
    pub const TooBig: CloseCode = CloseCode::Size;
    /// 1010: use [`CloseCode::Extension`].
    #[deprecated(note = "use `CloseCode::Extension`, the host's name")]
    pub const MandatoryExtension: CloseCode = CloseCode::Extension;
    /// 1011: use [`CloseCode::Error`].
    #[deprecated(note = "use `CloseCode::Error`, the host's name")]
    pub const InternalError: CloseCode = CloseCode::Error;
    /// 1012: use [`CloseCode::Restart`].
    #[deprecated(note = "use `CloseCode::Restart`, the host's name")]
    pub const ServiceRestart: CloseCode = CloseCode::Restart;
    /// 1013: use [`CloseCode::Again`].
    #[deprecated(note = "use `CloseCode::Again`, the host's name")]
    pub const TryAgainLater: CloseCode = CloseCode::Again;
    /// 1015: use [`CloseCode::Tls`].
    #[deprecated(note = "use `CloseCode::Tls`, the host's name")]
    pub const TlsHandshake: CloseCode = CloseCode::Tls;

    /// Any code by its number: use [`CloseCode::from`], which sorts it into
    /// its name or range.
    #[deprecated(note = "use `CloseCode::from(code)`")]
    pub const fn Other(code: u16) -> CloseCode {
        CloseCode::from_u16(code)
    }
}

/// ```
/// use wsbox_guest::CloseCode;
///
/// assert_eq!(CloseCode::from(1011), CloseCode::Error);
/// assert!(matches!(CloseCode::from(3000), CloseCode::Iana(3000)));
/// assert!(matches!(CloseCode::from(2000), CloseCode::Reserved(2000)));
/// assert!(matches!(CloseCode::from(1004), CloseCode::Bad(1004)));
/// ```
impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode::from_u16(code)
    }
}

/// ```
/// assert_eq!(u16::from(wsbox_guest::CloseCode::Away), 1001);
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
    /// The close code; [`CloseCode::Status`] (1005) when the frame had no
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
