//! The server's Prometheus metrics: one registry, and a method for each thing the server counts.
//!
//! Every label value is bounded: routes come from the manifest (never the
//! request's path), statuses, reasons and kinds are fixed enums, and a close
//! code outside the codes a close frame may carry is counted as `invalid`.
//! See [`Metrics`] for the list.

use crate::close_code::CloseCode;
use crate::cpu::CpuLimitExceeded;
use crate::sandbox::TrapCause;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

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

/// An HTTP status as a label: 100-599 as the number, anything else
/// `invalid`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum StatusLabel {
    /// A status in 100-599.
    Code(u16),
    /// Any other number.
    Invalid,
}

impl From<u16> for StatusLabel {
    fn from(status: u16) -> Self {
        if (100..=599).contains(&status) {
            StatusLabel::Code(status)
        } else {
            StatusLabel::Invalid
        }
    }
}

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            StatusLabel::Code(code) => write!(encoder, "{code}"),
            StatusLabel::Invalid => encoder.write_str("invalid"),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: StatusLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    reason: HandshakeFailure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AbortLabels {
    reason: AbortReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: Direction,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    direction: Direction,
    code: CloseLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: TrapKind,
}

/// The server's metrics, all named `wsbox_…`:
///
/// | metric | type | labels |
/// |---|---|---|
/// | `wsbox_connections_open` | gauge | `route` |
/// | `wsbox_connections_total` | counter | `route` |
/// | `wsbox_upgrades_total` (answers to upgrade requests: 101 and refusals) | counter | `status` |
/// | `wsbox_handshake_failures_total` (ended before an answer) | counter | `reason`: `timeout`, `closed`, `over_limit`, `tls` |
/// | `wsbox_messages_total` | counter | `direction`: `in`, `out` |
/// | `wsbox_message_bytes_total` (payload bytes) | counter | `direction` |
/// | `wsbox_close_codes_total` | counter | `direction`, `code` |
/// | `wsbox_aborts_total` | counter | `reason`: see [`AbortReason`] |
/// | `wsbox_traps_total` | counter | `kind`: `cpu-deadline`, `cpu-budget`, `memory`, `other` |
/// | `wsbox_instantiate_seconds` | histogram | |
/// | `wsbox_accept_to_handler_seconds` | histogram | |
/// | `wsbox_instances_alive` | gauge | |
/// | `wsbox_topic_deliveries_total` | counter | |
/// | `wsbox_slow_consumer_closes_total` | counter | |
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Family<RouteLabels, Gauge>,
    connections: Family<RouteLabels, Counter>,
    upgrades: Family<StatusLabels, Counter>,
    handshake_failures: Family<HandshakeLabels, Counter>,
    messages: Family<DirectionLabels, Counter>,
    message_bytes: Family<DirectionLabels, Counter>,
    close_codes: Family<CloseLabels, Counter>,
    aborts: Family<AbortLabels, Counter>,
    traps: Family<KindLabels, Counter>,
    instantiate: Histogram,
    accept_to_handler: Histogram,
    instances_alive: Gauge,
    topic_deliveries: Counter,
    slow_consumer_closes: Counter,
}

/// Latency buckets: 100 µs doubling up to about 3.3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wsbox");
        let metrics = Metrics {
            registry: Registry::default(),
            connections_open: Family::default(),
            connections: Family::default(),
            upgrades: Family::default(),
            handshake_failures: Family::default(),
            messages: Family::default(),
            message_bytes: Family::default(),
            close_codes: Family::default(),
            aborts: Family::default(),
            traps: Family::default(),
            instantiate: latency_histogram(),
            accept_to_handler: latency_histogram(),
            instances_alive: Gauge::default(),
            topic_deliveries: Counter::default(),
            slow_consumer_closes: Counter::default(),
        };
        let m = &metrics;
        registry.register(
            "connections_open",
            "WebSocket connections open now, by route",
            m.connections_open.clone(),
        );
        registry.register(
            "connections",
            "WebSocket connections upgraded, by route",
            m.connections.clone(),
        );
        registry.register(
            "upgrades",
            "Upgrade requests answered, by HTTP status (101 or a refusal)",
            m.upgrades.clone(),
        );
        registry.register(
            "handshake_failures",
            "Connections that ended before their upgrade was answered, by reason",
            m.handshake_failures.clone(),
        );
        registry.register(
            "messages",
            "WebSocket messages, in (from peers) and out (to peers)",
            m.messages.clone(),
        );
        registry.register(
            "message_bytes",
            "Payload bytes of WebSocket messages, in and out",
            m.message_bytes.clone(),
        );
        registry.register(
            "close_codes",
            "Close codes sent (out) and received (in); codes no close frame may carry are `invalid`",
            m.close_codes.clone(),
        );
        registry.register(
            "aborts",
            "Connections that ended without a closing handshake, by reason",
            m.aborts.clone(),
        );
        registry.register(
            "traps",
            "Handler instances that trapped, by kind",
            m.traps.clone(),
        );
        registry.register_with_unit(
            "instantiate",
            "Time to instantiate a handler for a connection",
            Unit::Seconds,
            m.instantiate.clone(),
        );
        registry.register_with_unit(
            "accept_to_handler",
            "Time from accepting a connection to calling the handler's `handle`",
            Unit::Seconds,
            m.accept_to_handler.clone(),
        );
        registry.register(
            "instances_alive",
            "Handler instances alive now",
            m.instances_alive.clone(),
        );
        registry.register(
            "topic_deliveries",
            "Messages delivered to topic subscribers",
            m.topic_deliveries.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Topic subscribers closed for falling behind",
            m.slow_consumer_closes.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The metrics in the Prometheus text format (0.0.4), for `/metrics`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// A connection on `route` was upgraded: counts it, and counts it open
    /// until the guard is dropped. `route` is the manifest's route (its path
    /// prefix), never the request's path.
    pub fn connection_opened(&self, route: &Arc<str>) -> OpenConnection {
        let labels = RouteLabels {
            route: route.clone(),
        };
        self.connections.get_or_create(&labels).inc();
        let open = self.connections_open.get_or_create_owned(&labels);
        open.inc();
        OpenConnection(open)
    }

    /// An upgrade request was answered with `status` (101, or a refusal).
    pub fn upgrade_answered(&self, status: u16) {
        let labels = StatusLabels {
            status: status.into(),
        };
        self.upgrades.get_or_create(&labels).inc();
    }

    /// A connection ended before its upgrade was answered.
    pub fn handshake_failed(&self, reason: HandshakeFailure) {
        self.handshake_failures
            .get_or_create(&HandshakeLabels { reason })
            .inc();
    }

    /// A whole message of `bytes` payload bytes went `direction`.
    pub fn message(&self, direction: Direction, bytes: usize) {
        let labels = DirectionLabels { direction };
        self.messages.get_or_create(&labels).inc();
        self.message_bytes
            .get_or_create(&labels)
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// A close frame with `code` went `direction` (1005 for one without a
    /// code).
    pub fn close_code(&self, direction: Direction, code: CloseCode) {
        let labels = CloseLabels {
            direction,
            code: code.into(),
        };
        self.close_codes.get_or_create(&labels).inc();
    }

    /// A connection ended without a closing handshake.
    pub fn aborted(&self, reason: AbortReason) {
        self.aborts.get_or_create(&AbortLabels { reason }).inc();
    }

    /// An instance trapped.
    pub fn trapped(&self, kind: TrapKind) {
        self.traps.get_or_create(&KindLabels { kind }).inc();
    }

    /// Instantiating a handler took `took`.
    pub fn instantiated(&self, took: Duration) {
        self.instantiate.observe(took.as_secs_f64());
    }

    /// From accept to the handler's `handle` took `took`.
    pub fn accept_to_handler(&self, took: Duration) {
        self.accept_to_handler.observe(took.as_secs_f64());
    }

    /// An instance was made: counts it alive until the guard is dropped.
    pub fn instance_alive(&self) -> AliveInstance {
        self.instances_alive.inc();
        AliveInstance(self.instances_alive.clone())
    }

    /// `n` messages were delivered to topic subscribers.
    pub fn topic_delivered(&self, n: u64) {
        self.topic_deliveries.inc_by(n);
    }

    /// A topic subscriber was closed for falling behind.
    pub fn slow_consumer_closed(&self) {
        self.slow_consumer_closes.inc();
    }
}

/// Counts one connection open while it lives.
#[derive(Debug)]
#[must_use = "the connection counts as open only while this guard lives"]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts one instance alive while it lives.
#[derive(Debug)]
#[must_use = "the instance counts as alive only while this guard lives"]
pub struct AliveInstance(Gauge);

impl Drop for AliveInstance {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
