//! The report's first table: issue 15's targets, issue 5's outbound one
//! and issue 13's fan-out ones, against what this run measured.

use super::{
    client_per_second, fanout_targets, per_second, size_label, Cell, FanoutRow, OutboundRow,
    ScaleRow, SEQUENTIAL,
};
use std::fmt::Write;

/// Issue 15's targets, issue 5's outbound target and issue 13's fan-out
/// targets (`wsbox` one node
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
    out.push_str("| target (issue 15 unless named) | measured | met |\n|---|---:|---|\n");
    echo_rows(&mut out, cells, baseline, wsbox);
    scale_rows(&mut out, scale, wsbox);
    accept_rows(&mut out, scale, wsbox, baseline);
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

/// Echo throughput against `baseline`.
fn echo_rows(out: &mut String, cells: &[Cell], baseline: &str, wsbox: &str) {
    let ratio = |connections: usize, size: usize| -> Option<f64> {
        let cell = cells
            .iter()
            .find(|c| c.connections == connections && c.size == size)?;
        let of = |t: &str| per_second(cell.measured.iter().find(|m| m.target == t));
        Some(of(wsbox)? / of(baseline).filter(|b| *b > 0.0)?)
    };
    for (connections, size, want) in [(100, 1024, 0.95), (100, 64 * 1024, 1.00), (1000, 32, 0.90)] {
        let r = ratio(connections, size);
        let _ = writeln!(
            out,
            "| {wsbox} / {baseline} echo throughput ≥ {want:.2} at {} × {connections} connections | {} | {} |",
            size_label(size),
            r.map_or("–".into(), |r| format!("{r:.2}")),
            verdict(r.map(|r| r >= want))
        );
    }
}

/// Connections held, memory per connection, and memory mappings per
/// connection (`vm.max_map_count`, 65,530 by default, must hold 19,000
/// connections: at most 3 each).
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
        "| ≤ 48 KiB resident memory per held connection ({wsbox}) | {} | {} |",
        per_conn.map_or("–".into(), |k| format!("{k:.1} KiB")),
        verdict(per_conn.map(|k| k <= 48.0))
    );
    let maps = row.and_then(|(row, r)| Some(row.held_maps? as f64 / r.connections.max(1) as f64));
    let _ = writeln!(
        out,
        "| ≤ 3 memory mappings per held connection, so that 19,000 fit the default `vm.max_map_count` of 65,530 ({wsbox}; all the process's mappings ÷ connections held) | {} | {} |",
        maps.map_or("–".into(), |m| format!("{m:.2}")),
        verdict(maps.map(|m| m <= 3.0))
    );
}

/// Accept-to-handler latency as the server measured it, with the
/// connections opened one after the other; and, with many opened at a
/// time, connect-to-first-echo against `baseline` in the same storm.
fn accept_rows(out: &mut String, scale: &[ScaleRow], wsbox: &str, baseline: &str) {
    let sequential = format!("{wsbox}{SEQUENTIAL}");
    let accept = scale
        .iter()
        .find(|r| r.target == sequential && r.result.is_ok())
        .and_then(|r| r.accept_to_handle_us);
    let _ = writeln!(
        out,
        "| accept-to-handler-running p50 ≤ 100 µs, p99 ≤ 1 ms at 10,000 connections ({wsbox}, measured by the server from `accept` to calling `handle`; connections opened one after the other) | {} | {} |",
        accept.map_or("–".into(), |(p50, p99)| format!("{p50} µs / {p99} µs")),
        match accept {
            Some((p50, p99)) => verdict(Some(p50 <= 100 && p99 <= 1000)),
            None => "not measured",
        }
    );
    let first_echo = |target: &str| {
        scale
            .iter()
            .find(|r| r.target == target)
            .and_then(|r| r.result.as_ref().ok())
            .map(|r| r.first_echo_p50_us)
    };
    let ratio = first_echo(wsbox)
        .zip(first_echo(baseline).filter(|b| *b > 0))
        .map(|(w, b)| w as f64 / b as f64);
    let _ = writeln!(
        out,
        "| connect-to-first-echo p50 ≤ 1.5 × {baseline}'s, {} connections being opened at a time ({wsbox}, 10,000 connections) | {} | {} |",
        crate::load::CONNECT_CONCURRENCY,
        match (first_echo(wsbox), first_echo(baseline), ratio) {
            (Some(w), Some(b), Some(r)) => format!("{w} µs / {b} µs = {r:.2}"),
            _ => "–".into(),
        },
        verdict(ratio.map(|r| r <= 1.5))
    );
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
    format!("| outbound client guest ≥ 0.90 of a native client (messages/s, 1 connection; issue 5) | {measured} | {met} |\n")
}
