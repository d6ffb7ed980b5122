//! The fan-out figure's table (one publisher, many receivers) and its
//! targets (issue 13).

use super::table_cell;
use crate::fanout::FanoutResult;
use std::fmt::Write;

/// One target's figures at one receiver count.
#[derive(Clone, Debug)]
pub struct FanoutRow {
    /// Receiver connections.
    pub receivers: usize,
    /// The target's name, e.g. `wsbox`, `native`.
    pub target: String,
    /// What the load generator measured, or why it failed.
    pub result: Result<FanoutResult, String>,
    /// The server's CPU time (user + system, all its processes) per
    /// delivery, in µs, from the first warm-up message to the last
    /// delivery, when it could be read.
    pub server_cpu_us: Option<f64>,
}

/// `1,000`, `10,000`.
pub fn count_label(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_second(rows: &[FanoutRow], receivers: usize, target: impl Fn(&str) -> bool) -> Option<f64> {
    rows.iter()
        .find(|r| r.receivers == receivers && target(&r.target))?
        .result
        .as_ref()
        .ok()
        .map(FanoutResult::per_second)
}

/// The table: one row per receiver count and target, with deliveries/s
/// over `baseline`'s at the same receiver count.
pub fn fanout_table(rows: &[FanoutRow], baseline: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| receivers | target | messages | deliveries/s | p50 µs | p99 µs | server CPU µs/delivery | loadgen CPU µs/delivery | lost | vs {baseline} |"
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let receivers = count_label(row.receivers);
        match &row.result {
            Ok(r) => {
                let ratio = per_second(rows, row.receivers, |t| t == baseline)
                    .filter(|b| *b > 0.0)
                    .map_or("–".into(), |b| format!("{:.2}", r.per_second() / b));
                let cpu = row.server_cpu_us.map_or("–".into(), |c| format!("{c:.2}"));
                let lost = if r.closed > 0 {
                    format!("{} ({} receivers closed)", r.lost, r.closed)
                } else {
                    r.lost.to_string()
                };
                let _ = writeln!(
                    out,
                    "| {receivers} | {} | {} | {:.0} | {} | {} | {cpu} | {:.2} | {lost} | {ratio} |",
                    row.target,
                    r.messages,
                    r.per_second(),
                    r.p50_us,
                    r.p99_us,
                    r.cpu_us_per_delivery(),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "| {receivers} | {} | failed: {} | | | | | | | |",
                    row.target,
                    table_cell(e)
                );
            }
        }
    }
    out
}

/// Issue 13's fan-out targets, rows of the targets table: `wsbox`'s
/// deliveries/s at least those of `native` and at least twice those of
/// the target whose name starts with `node`, at every receiver count
/// measured.
pub fn fanout_targets(rows: &[FanoutRow], wsbox: &str, native: &str, node: &str) -> String {
    let mut counts: Vec<usize> = Vec::new();
    for r in rows {
        if !counts.contains(&r.receivers) {
            counts.push(r.receivers);
        }
    }
    let mut out = String::new();
    for (other, want) in [(native, 1.0), (node, 2.0)] {
        let ratios: Vec<(usize, Option<f64>)> = counts
            .iter()
            .map(|&n| {
                let ours = per_second(rows, n, |t| t == wsbox);
                let theirs = per_second(rows, n, |t| t.starts_with(other)).filter(|b| *b > 0.0);
                (n, ours.zip(theirs).map(|(w, b)| w / b))
            })
            .collect();
        let measured = if ratios.is_empty() {
            "–".to_string()
        } else {
            ratios
                .iter()
                .map(|(n, r)| {
                    format!(
                        "{}: {}",
                        count_label(*n),
                        r.map_or("–".into(), |r| format!("{r:.2}"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let met = if ratios.is_empty() || ratios.iter().any(|(_, r)| r.is_none()) {
            "not measured"
        } else if ratios.iter().all(|(_, r)| r.is_some_and(|r| r >= want)) {
            "yes"
        } else {
            "**no**"
        };
        let _ = writeln!(
            out,
            "| fan-out deliveries/s, {wsbox} (one node) / {other} ≥ {want:.2}, one publisher, 1 KiB, by receivers (issue 13) | {measured} | {met} |"
        );
    }
    out
}
