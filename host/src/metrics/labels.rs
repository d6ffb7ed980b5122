//! The metrics' labels: each value from a fixed set (a route from the
//! manifest, an HTTP status, a close code, a reason or a kind), so that no
//! peer or guest can grow the number of series.

use crate::close_code::CloseCode;
use crate::cpu::CpuLimitExceeded;
use crate::sandbox::TrapCause;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write;
use std::sync::Arc;

/// Which way a message or close frame went.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Direction {
    /// From the peer to the guest.
    In,
    /// From the guest (or the host) to the peer.
    Out,
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

/// Why a connection ended before its upgrade was answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// No full request within the handshake timeout.
    Timeout,
    /// The client closed before its request was complete.
    Closed,
    /// Too many connections were in their handshake: closed at once.
    OverLimit,
    /// The TLS handshake failed or timed out.
    Tls,
}

impl EncodeLabelValue for HandshakeFailure {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::OverLimit => "over_limit",
            HandshakeFailure::Tls => "tls",
        })
    }
}

/// Why a connection ended without a closing handshake.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum AbortReason {
    /// The peer broke RFC 6455 (the host sent 1002 or 1007).
    Protocol,
    /// A message or frame over the limit (the host sent 1009).
    TooBig,
    /// TCP ended without a close frame.
    Ended,
    /// The socket failed.
    Io,
    /// A write did not finish within the send timeout.
    SendTimeout,
    /// The peer did not answer a close within the close timeout.
    CloseTimeout,
    /// No pong or other frame within the keepalive timeout after a ping.
    Keepalive,
    /// The guest called `abort`.
    Guest,
}

impl EncodeLabelValue for AbortReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            AbortReason::Protocol => "protocol",
            AbortReason::TooBig => "too_big",
            AbortReason::Ended => "ended",
            AbortReason::Io => "io",
            AbortReason::SendTimeout => "send_timeout",
            AbortReason::CloseTimeout => "close_timeout",
            AbortReason::Keepalive => "keepalive",
            AbortReason::Guest => "guest",
        })
    }
}

impl From<&crate::lifecycle::Failure> for AbortReason {
    fn from(failure: &crate::lifecycle::Failure) -> Self {
        use crate::lifecycle::Failure;
        match failure {
            Failure::Protocol(_) => AbortReason::Protocol,
            Failure::TooBig => AbortReason::TooBig,
            Failure::Ended => AbortReason::Ended,
            Failure::Io(_) => AbortReason::Io,
            Failure::WriteTimeout => AbortReason::SendTimeout,
            Failure::CloseTimeout => AbortReason::CloseTimeout,
            Failure::Aborted => AbortReason::Guest,
            Failure::Silent => AbortReason::Keepalive,
        }
    }
}

/// What made an instance trap.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TrapKind {
    /// It ran past its CPU deadline without returning to the host.
    CpuDeadline,
    /// It used up its CPU budget.
    CpuBudget,
    /// It grew its memory past the limit.
    Memory,
    /// Anything else.
    Other,
}

impl TrapKind {
    /// The kind of `err`, by the same rule as the trap's log line
    /// ([`TrapCause`]).
    pub fn of(err: &wasmtime::Error) -> TrapKind {
        match TrapCause::of(err) {
            TrapCause::Cpu(CpuLimitExceeded::Deadline(_)) => TrapKind::CpuDeadline,
            TrapCause::Cpu(CpuLimitExceeded::Budget(_)) => TrapKind::CpuBudget,
            TrapCause::Memory(_) => TrapKind::Memory,
            TrapCause::Other => TrapKind::Other,
        }
    }
}

impl EncodeLabelValue for TrapKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            TrapKind::CpuDeadline => "cpu-deadline",
            TrapKind::CpuBudget => "cpu-budget",
            TrapKind::Memory => "memory",
            TrapKind::Other => "other",
        })
    }
}

/// A close code as a label: one a close frame may carry (1000-1003,
/// 1007-1013, 3000-4999), one the host reports for a close without a frame
/// or code (1005, 1006, 1015), or `invalid`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CloseLabel {
    /// A code worth its own label.
    Code(u16),
    /// Any other number.
    Invalid,
}

impl From<CloseCode> for CloseLabel {
    fn from(code: CloseCode) -> Self {
        let reported = matches!(
            code,
            CloseCode::Status | CloseCode::Abnormal | CloseCode::Tls
        );
        if reported || code.is_allowed() {
            CloseLabel::Code(code.into())
        } else {
            CloseLabel::Invalid
        }
    }
}

impl EncodeLabelValue for CloseLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            CloseLabel::Code(code) => write!(encoder, "{code}"),
            CloseLabel::Invalid => encoder.write_str("invalid"),
        }
    }
}

/// An HTTP status as a label: one of [`StatusLabel::NAMED`] as the number,
/// any other `other` (a handler's `reject` may choose any of 400-599).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum StatusLabel {
    /// A status of [`StatusLabel::NAMED`].
    Code(u16),
    /// Any other number.
    Other,
}

impl StatusLabel {
    /// The statuses that are labels of their own: 101, the refusals the
    /// host makes (400, 403, 404, 426, 431, 500, 503) and those handlers
    /// commonly choose (401, 409, 429).
    pub const NAMED: [u16; 11] = [101, 400, 401, 403, 404, 409, 426, 429, 431, 500, 503];
}

impl From<u16> for StatusLabel {
    fn from(status: u16) -> Self {
        if StatusLabel::NAMED.contains(&status) {
            StatusLabel::Code(status)
        } else {
            StatusLabel::Other
        }
    }
}

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            StatusLabel::Code(code) => write!(encoder, "{code}"),
            StatusLabel::Other => encoder.write_str("other"),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub(super) route: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StatusLabels {
    pub(super) status: StatusLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HandshakeLabels {
    pub(super) reason: HandshakeFailure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AbortLabels {
    pub(super) reason: AbortReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DirectionLabels {
    pub(super) direction: Direction,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CloseLabels {
    pub(super) direction: Direction,
    pub(super) code: CloseLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: TrapKind,
}
