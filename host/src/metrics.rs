//! The host's Prometheus metrics: one registry, and a method for each thing the server and the websockets count.
//!
//! The websockets count into it through [`Config::metrics`](crate::Config::metrics)
//! (each through its [`Tally`]), the server through its own calls; so the
//! core depends on this module, never on `serve`.
//!
//! Every label value is bounded: routes come from the manifest (never the
//! request's path), statuses, reasons and kinds are fixed enums, and a close
//! code outside the codes a close frame may carry is counted as `invalid`.
//! See [`Metrics`] for the list.

use crate::close_code::CloseCode;
use labels::{
    AbortLabels, CloseLabels, DirectionLabels, HandshakeLabels, KindLabels, RouteLabels,
    StatusLabels,
};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Duration;

mod labels;

pub use labels::{AbortReason, Direction, HandshakeFailure, TrapKind};

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The server's metrics, all named `wsbox_…`:
///
/// | metric | type | labels |
/// |---|---|---|
/// | `wsbox_connections_open` | gauge | `route` |
/// | `wsbox_connections_total` | counter | `route` |
/// | `wsbox_upgrades_total` (answers to upgrade requests: 101 and refusals) | counter | `status`: 101, 400, 401, 403, 404, 409, 426, 429, 431, 500, 503, or `other` |
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
/// | `wsbox_panics_total` (the host's tasks, process-wide: [`panics`](crate::panics)) | counter | |
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

/// The process-wide count of [`panics`](crate::panics) as a counter, read
/// when the metrics are encoded.
#[derive(Debug)]
struct Panics;

impl EncodeMetric for Panics {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&crate::task::panics(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
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
        metrics.register_connections(&mut registry);
        metrics.register_traffic(&mut registry);
        metrics.register_instances(&mut registry);
        registry.register(
            "panics",
            "Host tasks that panicked in this process (each a wsbox bug)",
            Panics,
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Registers the metrics of connections: open, upgraded, upgrades
    /// answered, handshakes that failed.
    fn register_connections(&self, registry: &mut Registry) {
        registry.register(
            "connections_open",
            "WebSocket connections open now, by route",
            self.connections_open.clone(),
        );
        registry.register(
            "connections",
            "WebSocket connections upgraded, by route",
            self.connections.clone(),
        );
        registry.register(
            "upgrades",
            "Upgrade requests answered, by HTTP status (101 or a refusal)",
            self.upgrades.clone(),
        );
        registry.register(
            "handshake_failures",
            "Connections that ended before their upgrade was answered, by reason",
            self.handshake_failures.clone(),
        );
    }

    /// Registers the metrics of what goes over the connections: messages,
    /// close codes, aborts, traps.
    fn register_traffic(&self, registry: &mut Registry) {
        registry.register(
            "messages",
            "WebSocket messages, in (from peers) and out (to peers)",
            self.messages.clone(),
        );
        registry.register(
            "message_bytes",
            "Payload bytes of WebSocket messages, in and out",
            self.message_bytes.clone(),
        );
        registry.register(
            "close_codes",
            "Close codes sent (out) and received (in); codes no close frame may carry are `invalid`",
            self.close_codes.clone(),
        );
        registry.register(
            "aborts",
            "Connections that ended without a closing handshake, by reason",
            self.aborts.clone(),
        );
        registry.register(
            "traps",
            "Handler instances that trapped, by kind",
            self.traps.clone(),
        );
    }

    /// Registers the metrics of instances and topics: instantiation, accept
    /// to handler, alive, topic deliveries, slow consumers.
    fn register_instances(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "instantiate",
            "Time to instantiate a handler for a connection",
            Unit::Seconds,
            self.instantiate.clone(),
        );
        registry.register_with_unit(
            "accept_to_handler",
            "Time from accepting a connection to calling the handler's `handle`",
            Unit::Seconds,
            self.accept_to_handler.clone(),
        );
        registry.register(
            "instances_alive",
            "Handler instances alive now",
            self.instances_alive.clone(),
        );
        registry.register(
            "topic_deliveries",
            "Messages delivered to topic subscribers",
            self.topic_deliveries.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Topic subscribers closed for falling behind",
            self.slow_consumer_closes.clone(),
        );
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

/// One websocket's share of [`Metrics`]: its message counters resolved
/// once, so that counting a message is an atomic add.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    metrics: Arc<Metrics>,
    messages_in: Counter,
    bytes_in: Counter,
    messages_out: Counter,
    bytes_out: Counter,
}

impl Tally {
    /// The counters of a websocket counted into `metrics`.
    pub(crate) fn new(metrics: &Arc<Metrics>) -> Tally {
        let counter = |family: &Family<DirectionLabels, Counter>, direction| {
            family.get_or_create(&DirectionLabels { direction }).clone()
        };
        Tally {
            messages_in: counter(&metrics.messages, Direction::In),
            bytes_in: counter(&metrics.message_bytes, Direction::In),
            messages_out: counter(&metrics.messages, Direction::Out),
            bytes_out: counter(&metrics.message_bytes, Direction::Out),
            metrics: metrics.clone(),
        }
    }

    /// A data frame of `bytes` payload bytes (as on the wire) went
    /// `direction`; `fin` when it ended its message.
    pub(crate) fn frame(&self, direction: Direction, bytes: usize, fin: bool) {
        let (messages, total) = match direction {
            Direction::In => (&self.messages_in, &self.bytes_in),
            Direction::Out => (&self.messages_out, &self.bytes_out),
        };
        total.inc_by(bytes as u64);
        if fin {
            messages.inc();
        }
    }

    /// A topic's message of `bytes` payload bytes was written to the peer.
    pub(crate) fn topic_delivered(&self, bytes: usize) {
        self.frame(Direction::Out, bytes, true);
        self.metrics.topic_delivered(1);
    }

    /// A close frame went `direction`.
    pub(crate) fn close_code(&self, direction: Direction, code: CloseCode) {
        self.metrics.close_code(direction, code);
    }

    /// The connection ended without a closing handshake.
    pub(crate) fn aborted(&self, why: &crate::lifecycle::Failure) {
        self.metrics.aborted(why.into());
    }

    /// The websocket was closed with 1013 for falling behind its topics.
    pub(crate) fn slow_consumer_closed(&self) {
        self.metrics.slow_consumer_closed();
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
