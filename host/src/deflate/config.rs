//! The permessage-deflate settings of one endpoint, in either role.

/// permessage-deflate (RFC 7692) settings. The same settings serve both
/// roles: as a client they make the offer, as a server they decide the
/// answer to a client's offer.
///
/// The defaults are those of Node `ws` (the server most peers meet) and of
/// the browsers' offers: context takeover in both directions and 32 KiB
/// windows (15 bits), which compress small JSON-like messages best, since
/// each message may refer to the ones before it. The cost is state held for
/// the life of the connection, measured: 371 KiB for the compressor at 15
/// bits (245 KiB at 9), 46 KiB for the inflater at any window size. Python
/// `websockets` trades some ratio for memory with 12-bit windows (259 KiB).
/// Without context takeover in a direction, that direction holds no state
/// between messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Whether to use permessage-deflate at all: a client offers it, a
    /// server accepts a client's offer. Default: off, as in Node `ws`'s
    /// server, Bun and uWebSockets, because of its memory cost per
    /// connection.
    pub enabled: bool,
    /// The server resets its compression context after each message, so it
    /// holds no compressor state between messages. A client asks for it in
    /// its offer; a server always answers with it. Default: false (the
    /// server keeps its context, the better ratio).
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message, so the
    /// server holds no inflater state between messages. A client announces
    /// it in its offer and then does it; a server always asks for it in its
    /// answer. Default: false (the client keeps its context).
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server may compress with, as a power of
    /// two, 8 to 15. A client below 15 asks for it in its offer; a server
    /// compresses with at most this much and answers with it. A smaller
    /// window spares the compressor 4 bytes per window byte; the inflater
    /// keeps 32 KiB whatever the size. Default: 15 (32 KiB), the RFC's
    /// default.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client may compress with, as a power of
    /// two, 8 to 15. A client always offers `client_max_window_bits` (so that
    /// a server may lower it), with this value when below 15; a server below
    /// 15 answers with it when the client's offer allows the parameter (8 as
    /// 9, unless the client offered 8 itself: zlib-based clients cannot
    /// compress with 8 bits), and otherwise accepts the client's 15 bits
    /// rather than go without compression. Default: 15 (32 KiB).
    pub client_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed: on small
    /// payloads deflate's overhead can exceed its gain. Default: 1024, as
    /// Node `ws`'s `threshold`.
    pub threshold: usize,
}

impl DeflateConfig {
    /// The defaults, each stated on its field (the CLI shows them from
    /// here).
    pub const DEFAULT: DeflateConfig = DeflateConfig {
        enabled: false,
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        threshold: 1024,
    };
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::DEFAULT
    }
}

impl DeflateConfig {
    /// The settings with the extension turned on and every other field at
    /// its default.
    pub fn enabled() -> Self {
        DeflateConfig {
            enabled: true,
            ..DeflateConfig::default()
        }
    }

    /// Checks the window bits, so that a bad value fails at start-up.
    /// Negotiation clamps them to 8-15 in any case.
    pub fn check(&self) -> Result<(), String> {
        for (name, bits) in [
            ("server_max_window_bits", self.server_max_window_bits),
            ("client_max_window_bits", self.client_max_window_bits),
        ] {
            if !(8..=15).contains(&bits) {
                return Err(format!(
                    "permessage-deflate {name} is {bits}: give a window size in bits from 8 to 15"
                ));
            }
        }
        Ok(())
    }

    /// Whether a whole message of `len` bytes is worth compressing.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_with_takeover_and_full_windows() {
        let config = DeflateConfig::default();
        assert!(!config.enabled);
        assert!(!config.server_no_context_takeover);
        assert!(!config.client_no_context_takeover);
        assert_eq!(config.server_max_window_bits, 15);
        assert_eq!(config.client_max_window_bits, 15);
        assert_eq!(config.threshold, 1024);
        assert!(DeflateConfig::enabled().enabled);
    }

    #[test]
    fn check_accepts_8_to_15_only() {
        for bits in 8..=15 {
            let config = DeflateConfig {
                server_max_window_bits: bits,
                client_max_window_bits: bits,
                ..DeflateConfig::enabled()
            };
            assert_eq!(config.check(), Ok(()));
        }
        for bits in [0, 7, 16, 255] {
            let server = DeflateConfig {
                server_max_window_bits: bits,
                ..DeflateConfig::enabled()
            };
            let err = server.check().unwrap_err();
            assert!(
                err.contains("server_max_window_bits") && err.contains("8 to 15"),
                "{err}"
            );
            let client = DeflateConfig {
                client_max_window_bits: bits,
                ..DeflateConfig::enabled()
            };
            assert!(client
                .check()
                .unwrap_err()
                .contains("client_max_window_bits"));
        }
    }

    #[test]
    fn threshold_is_the_smallest_compressed_size() {
        let config = DeflateConfig::enabled();
        assert!(!config.should_compress(0));
        assert!(!config.should_compress(1023));
        assert!(config.should_compress(1024));
        let all = DeflateConfig {
            threshold: 0,
            ..DeflateConfig::enabled()
        };
        assert!(all.should_compress(0));
    }
}
