//! Close codes (RFC 6455 section 7.4): tungstenite's [`CloseCode`], the one
//! typed code of the host, and the longest close reason.
//!
//! [`CloseCode::is_allowed`] is the rule for which codes may be in a close
//! frame on the wire, in either direction: 1000-1003, 1007-1013 and
//! 3000-4999. A received close frame with any other code is a protocol error
//! (1002), and `close` or `shutdown` with one gives `invalid-parameter`. The
//! test below holds tungstenite to exactly that set.
//!
//! `From<u16>` sorts every number into a named code or a range: `Iana`
//! (3000-3999, registered for libraries and frameworks), `Library`
//! (4000-4999, private use), `Reserved` (1016-2999) and `Bad` (the rest,
//! 1004 and 1014 included); `u16::from` gives the number back.

pub use tungstenite::protocol::frame::coding::CloseCode;

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

    #[test]
    fn the_named_codes_are_the_numbers_of_rfc_6455() {
        let named = [
            (CloseCode::Normal, 1000),
            (CloseCode::Away, 1001),
            (CloseCode::Protocol, 1002),
            (CloseCode::Unsupported, 1003),
            (CloseCode::Status, 1005),
            (CloseCode::Abnormal, 1006),
            (CloseCode::Invalid, 1007),
            (CloseCode::Policy, 1008),
            (CloseCode::Size, 1009),
            (CloseCode::Extension, 1010),
            (CloseCode::Error, 1011),
            (CloseCode::Restart, 1012),
            (CloseCode::Again, 1013),
            (CloseCode::Tls, 1015),
        ];
        for (code, number) in named {
            assert_eq!(u16::from(code), number);
            assert_eq!(CloseCode::from(number), code);
            assert_eq!(code.to_string(), number.to_string());
        }
    }
}
