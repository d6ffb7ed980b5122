//! The report's first table: issue 5's targets, and issue 13's fan-out
//! ones, against what this run measured.

use super::{
    client_per_second, fanout_targets, per_second, size_label, Cell, FanoutRow, OutboundRow,
    ScaleRow, SEQUENTIAL,
};
use std::fmt::Write;

/// Issue 5's targets and issue 13's fan-out targets (`wsbox` one node
/// against `native` and `node-ws`), each against what this run measured:
/// met, not met, or not measured.
pub fn targets_section(
    cells: &[Cell],
    baseline: &str,
    wsbox: &str,
    scale: &[ScaleRow],
    outbound: &[OutboundRow],
    fanout: &[FanoutRow],
) -> String {
    let mut out = String::new();
    out.push_str("| target (issue 5 unless named) | measured | met |\n|---|---:|---|\n");
    echo_rows(&mut out, cells, baseline, wsbox);
    scale_rows(&mut out, scale, wsbox);
    accept_rows(&mut out, scale, wsbox);
    out.push_str(&outbound_target(outbound, "wsbox", baseline));
    out.push_str(&fanout_targets(fanout, "wsbox", "native", "node-ws"));
    out
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    }
}

/// Echo throughput against `baseline` at 100 connections.
fn echo_rows(out: &mut String, cells: &[Cell], baseline: &str, wsbox: &str) {
    let ratio = |connections: usize, size: usize| -> Option<f64> {
        let cell = cells
            .iter()
            .find(|c| c.connections == connections && c.size == size)?;
        let of = |t: &str| per_second(cell.measured.iter().find(|m| m.target == t));
        Some(of(wsbox)? / of(baseline).filter(|b| *b > 0.0)?)
    };
    for (size, want) in [(1024, 0.90), (64 * 1024, 0.95)] {
        let r = ratio(100, size);
        let _ = writeln!(
            out,
            "| {wsbox} / {baseline} echo throughput ≥ {want:.2} at {} × 100 connections | {} | {} |",
            size_label(size),
            r.map_or("–".into(), |r| format!("{r:.2}")),
            verdict(r.map(|r| r >= want))
        );
    }
}

/// Connections held, and memory per connection.
fn scale_rows(out: &mut String, scale: &[ScaleRow], wsbox: &str) {
    let row = scale
        .iter()
        .find(|r| r.target == wsbox)
        .and_then(|r| Some((r, r.result.as_ref().ok()?)));
    let held = row.map(|(_, r)| r.connections);
    let _ = writeln!(
        out,
        "| 10,000 concurrent connections held ({wsbox}) | {} | {} |",
        row.map_or("–".into(), |(_, r)| format!(
            "{} held, {} failed",
            r.connections, r.failed
        )),
        verdict(held.map(|h| h >= 10_000))
    );
    let per_conn = row.and_then(|(row, r)| {
        Some(
            row.held_rss_kib?.saturating_sub(row.idle_rss_kib?) as f64
                / r.connections.max(1) as f64,
        )
    });
    let _ = writeln!(
        out,
        "| ≤ 150 KiB resident memory per connection ({wsbox}) | {} | {} |",
        per_conn.map_or("–".into(), |k| format!("{k:.1} KiB")),
        verdict(per_conn.map(|k| k <= 150.0))
    );
}

/// Accept-to-handler latency, as the server measured it, with the
/// connections opened one after the other and many at a time.
fn accept_rows(out: &mut String, scale: &[ScaleRow], wsbox: &str) {
    let sequential = format!("{wsbox}{SEQUENTIAL}");
    for (name, how) in [
        (
            sequential.as_str(),
            "connections opened one after the other".to_string(),
        ),
        (
            wsbox,
            format!(
                "{} connections being opened at a time",
                crate::load::CONNECT_CONCURRENCY
            ),
        ),
    ] {
        let accept = scale
            .iter()
            .find(|r| r.target == name && r.result.is_ok())
            .and_then(|r| r.accept_to_handle_us);
        let _ = writeln!(
            out,
            "| accept-to-handler-running p50 ≤ 100 µs, p99 ≤ 1 ms at 10,000 connections ({wsbox}, measured by the server from `accept` to calling `handle`; {how}) | {} | {} |",
            accept.map_or("–".into(), |(p50, p99)| format!("{p50} µs / {p99} µs")),
            match accept {
                Some((p50, p99)) => verdict(Some(p50 <= 100 && p99 <= 1000)),
                None => "not measured",
            }
        );
    }
}

/// The outbound target's row: the wsbox / native ratio at every size
/// measured, met when all are at least 0.90.
pub fn outbound_target(rows: &[OutboundRow], wsbox: &str, baseline: &str) -> String {
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
    sizes.dedup();
    let ratios: Vec<(usize, Option<f64>)> = sizes
        .iter()
        .map(|&s| {
            let ratio = client_per_second(rows, s, wsbox)
                .zip(client_per_second(rows, s, baseline).filter(|b| *b > 0.0))
                .map(|(w, b)| w / b);
            (s, ratio)
        })
        .collect();
    let measured = if ratios.is_empty() {
        "–".to_string()
    } else {
        ratios
            .iter()
            .map(|(s, r)| {
                format!(
                    "{}: {}",
                    size_label(*s),
                    r.map_or("–".into(), |r| format!("{r:.2}"))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let met = if ratios.is_empty() || ratios.iter().any(|(_, r)| r.is_none()) {
        "not measured"
    } else if ratios.iter().all(|(_, r)| r.is_some_and(|r| r >= 0.90)) {
        "yes"
    } else {
        "**no**"
    };
    format!("| outbound client guest ≥ 0.90 of a native client (messages/s, 1 connection) | {measured} | {met} |\n")
}
