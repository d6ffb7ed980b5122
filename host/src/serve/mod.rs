//! The parts of `wsbox serve` around the connections: TLS, origins, metrics, the manifest and keepalive.

// Building blocks, not yet wired into the server.
#[allow(dead_code)]
pub(crate) mod keepalive;
#[allow(dead_code)]
pub(crate) mod manifest;
#[allow(dead_code)]
pub(crate) mod metrics;
#[allow(dead_code)]
pub(crate) mod metrics_http;
#[allow(dead_code)]
pub(crate) mod origin;
#[allow(dead_code)]
pub(crate) mod tls;
#[allow(dead_code)]
pub(crate) mod units;
