//! The manifest's TOML as serde reads it: the tables and keys, and the
//! values written as for the flags (sizes, counts, durations), before
//! [`Manifest::parse`](super::Manifest::parse) checks them.

use crate::units::{parse_duration, parse_size};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use toml::Spanned;

/// A size: `"16MiB"` or a number of bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Size(pub(super) usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"16MiB\" or 65536")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                parse_size(s).map(Size).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Size)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{n} is not a size: write a number of bytes above 0, or e.g. \"16MiB\""
                        ))
                    })
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A count: a whole number, 0 or more.
#[derive(Debug, Clone, Copy)]
pub(super) struct Count(pub(super) usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number such as 128, without quotes")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                usize::try_from(n).map(Count).map_err(|_| {
                    E::custom(format!(
                        "{n} is not a count: write a whole number, 0 or more"
                    ))
                })
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// A duration: `"10s"`, `"500ms"`, `"2m"`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span(pub(super) Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"10s\", \"500ms\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Span, E> {
                parse_duration(s).map(Span).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SpanVisitor)
    }
}

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawManifest {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) metrics: Option<Spanned<String>>,
    pub(super) tls: Option<RawTls>,
    pub(super) max_connections: Option<Count>,
    pub(super) max_handshakes: Option<Count>,
    pub(super) handshake_timeout: Option<Span>,
    pub(super) shutdown_timeout: Option<Span>,
    pub(super) keepalive: Option<Span>,
    pub(super) keepalive_timeout: Option<Spanned<Span>>,
    pub(super) pooling: Option<bool>,
    pub(super) guest_log_bytes: Option<Size>,
    pub(super) guest_log_lines: Option<Count>,
    #[serde(default)]
    pub(super) route: Vec<RawRoute>,
}

/// `[tls]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: Spanned<String>,
    pub(super) key: Spanned<String>,
}

/// One `[[route]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRoute {
    pub(super) path: Spanned<String>,
    pub(super) component: Spanned<String>,
    #[serde(default)]
    pub(super) allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_origin: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) require_origin: bool,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) max_message_size: Option<Size>,
    pub(super) max_frame_size: Option<Size>,
    pub(super) inbound_buffer: Option<Size>,
    pub(super) send_timeout: Option<Span>,
    pub(super) connect_timeout: Option<Span>,
    pub(super) close_timeout: Option<Span>,
    pub(super) instance_inbound_buffer: Option<Size>,
    pub(super) max_websockets: Option<Count>,
    pub(super) max_handles: Option<Count>,
    pub(super) max_memory: Option<Size>,
    pub(super) cpu_deadline: Option<Span>,
}
