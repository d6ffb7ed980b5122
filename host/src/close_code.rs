//! Close codes (RFC 6455 section 7.4) and the rule for which may be sent.

use std::fmt;

/// Every `u16` sorted into the named codes of RFC 6455 and the IANA
/// registry, and the ranges around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure. WinHTTP `WINHTTP_WEB_SOCKET_SUCCESS_CLOSE_STATUS`.
    Normal,
    /// 1001: going away (a server shutting down, a page navigated away).
    Away,
    /// 1002: protocol error.
    Protocol,
    /// 1003: a data type the endpoint cannot accept.
    Unsupported,
    /// 1005: no status code was present. Never sent on the wire.
    Status,
    /// 1006: closed without a close frame. Never sent on the wire.
    Abnormal,
    /// 1007: message data inconsistent with its type (invalid UTF-8).
    Invalid,
    /// 1008: policy violation.
    Policy,
    /// 1009: message too big.
    Size,
    /// 1010: the client expected an extension the server did not negotiate.
    Extension,
    /// 1011: the server hit an unexpected condition.
    Error,
    /// 1012: service restart.
    Restart,
    /// 1013: try again later.
    Again,
    /// 1015: TLS handshake failure. Never sent on the wire.
    Tls,
    /// 1004, 1014 and 1016-2999: reserved by RFC 6455 or unassigned.
    Reserved(u16),
    /// 3000-3999: registered with IANA for libraries and frameworks.
    Iana(u16),
    /// 4000-4999: private use by applications.
    Library(u16),
    /// 0-999 and 5000 and up: not close codes.
    Bad(u16),
}

impl CloseCode {
    /// Whether this code may appear in a close frame on the wire, in either
    /// direction: 1000-1003, 1007-1013 and 3000-4999. A received close frame
    /// with any other code is a protocol error (1002), and `close` or
    /// `shutdown` with one gives `invalid-parameter`.
    pub fn is_allowed(self) -> bool {
        !matches!(
            self,
            CloseCode::Status
                | CloseCode::Abnormal
                | CloseCode::Tls
                | CloseCode::Reserved(_)
                | CloseCode::Bad(_)
        )
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
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
            1004 | 1014 | 1016..=2999 => CloseCode::Reserved(code),
            3000..=3999 => CloseCode::Iana(code),
            4000..=4999 => CloseCode::Library(code),
            _ => CloseCode::Bad(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
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
            CloseCode::Reserved(c)
            | CloseCode::Iana(c)
            | CloseCode::Library(c)
            | CloseCode::Bad(c) => c,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// The longest close reason, in bytes: a control frame carries at most 125
/// bytes, two of which are the code.
pub const MAX_REASON_BYTES: usize = 123;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_the_allowed_set_is_exact() {
        for code in 0..=u16::MAX {
            let sorted = CloseCode::from(code);
            assert_eq!(u16::from(sorted), code);
            let allowed = matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999);
            assert_eq!(sorted.is_allowed(), allowed, "code {code}");
        }
    }
}
