//! The compression figure's tables: echo of JSON-like text with and
//! without permessage-deflate, and the memory a held connection costs.

use super::{size_label, table_cell};
use crate::deflate::{DeflateLoadResult, HoldResult};
use std::fmt::Write;

/// One target's figures at one message size.
#[derive(Clone, Debug)]
pub struct CompressionRow {
    /// Bytes per message.
    pub size: usize,
    /// The target's name.
    pub target: String,
    /// What the load generator measured, or why it failed.
    pub result: Result<DeflateLoadResult, String>,
    /// The server's CPU time per round trip, in µs, when it could be read.
    pub server_cpu_us: Option<f64>,
}

/// One target's memory with connections held.
#[derive(Clone, Debug)]
pub struct MemoryRow {
    /// The target's name.
    pub target: String,
    /// What holding measured, or why it failed.
    pub result: Result<HoldResult, String>,
    /// The server's resident memory before the connections, KiB.
    pub idle_rss_kib: Option<u64>,
    /// The same with every connection held, KiB.
    pub held_rss_kib: Option<u64>,
}

impl MemoryRow {
    /// Resident memory per held connection, KiB.
    pub fn per_connection_kib(&self) -> Option<f64> {
        let r = self.result.as_ref().ok()?;
        let (idle, held) = (self.idle_rss_kib?, self.held_rss_kib?);
        (r.connections > 0).then(|| held.saturating_sub(idle) as f64 / r.connections as f64)
    }
}

fn per_second(rows: &[CompressionRow], size: usize, target: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.size == size && r.target == target)?
        .result
        .as_ref()
        .ok()
        .map(DeflateLoadResult::per_second)
}

/// The throughput table: one row per size and target, with its messages/s
/// over `baseline`'s at the same size.
pub fn compression_table(rows: &[CompressionRow], baseline: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| size | target | compressed | messages/s | p50 µs | p99 µs | server CPU µs/msg | wire bytes/msg to server | wire bytes/msg from server | vs {baseline} |"
    );
    out.push_str("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        match &row.result {
            Ok(r) => {
                let ratio = per_second(rows, row.size, baseline)
                    .filter(|b| *b > 0.0)
                    .map_or("–".into(), |b| format!("{:.2}", r.per_second() / b));
                let cpu = row.server_cpu_us.map_or("–".into(), |c| format!("{c:.1}"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {} | {} | {cpu} | {:.0} | {:.0} | {ratio} |",
                    size_label(row.size),
                    row.target,
                    if r.compressed { "yes" } else { "no" },
                    r.per_second(),
                    r.p50_us,
                    r.p99_us,
                    r.out_per_message(),
                    r.in_per_message(),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | failed: {} | | | | | | | |",
                    size_label(row.size),
                    row.target,
                    table_cell(e)
                );
            }
        }
    }
    out
}

/// The memory table: one row per target.
pub fn memory_table(rows: &[MemoryRow]) -> String {
    let mut out = String::new();
    out.push_str("| target | compressed | held | idle RSS | RSS held | RSS per connection |\n");
    out.push_str("|---|---|---:|---:|---:|---:|\n");
    let mib = |k: Option<u64>| k.map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    for row in rows {
        match &row.result {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    row.target,
                    if r.compressed { "yes" } else { "no" },
                    r.connections,
                    mib(row.idle_rss_kib),
                    mib(row.held_rss_kib),
                    row.per_connection_kib()
                        .map_or("–".into(), |k| format!("{k:.1} KiB")),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {} | failed: {} | | | | |",
                    row.target,
                    table_cell(e)
                );
            }
        }
    }
    out
}
