//! Figure 2, connection scale: a fresh server per target and row holds N
//! connections (`loadgen scale`); its resident memory and mappings are read
//! while they are held, and the wsbox servers say their own latencies at
//! shutdown (`wsbox serve --stats`).

use super::process::{maps, rss_kib, Holding, Server, Target};
use super::{serve_stats, Args, Setup};
use crate::report::{ScaleRow, SEQUENTIAL};
use crate::scale::ScaleResult;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What the figure measured, and how.
pub(super) struct ScaleFigure {
    /// Connections held per row.
    pub(super) connections: usize,
    /// The servers, as started for this figure.
    pub(super) targets: Vec<Target>,
    /// One per target and way of opening the connections.
    pub(super) rows: Vec<ScaleRow>,
}

/// Each target but Node with the connections opened
/// [`CONNECT_CONCURRENCY`](crate::load::CONNECT_CONCURRENCY) at a time,
/// then the pooling wsbox and native with them opened one at a time, where
/// the accept-to-handler latency is the server's own, not queueing behind
/// other handshakes on two cores.
pub(super) fn figure(args: &Args, setup: &Setup, targets: &[Target]) -> ScaleFigure {
    let connections = if args.smoke {
        args.scale.min(100)
    } else {
        args.scale
    };
    let targets = scale_targets(targets, connections);
    let mut rows = Vec::new();
    if connections > 0 {
        let runs = targets
            .iter()
            .map(|t| (t, crate::load::CONNECT_CONCURRENCY))
            .chain(
                targets
                    .iter()
                    .filter(|t| t.name == "native" || t.args.iter().any(|a| a == "--pooling"))
                    .map(|t| (t, 1)),
            );
        for (t, concurrency) in runs {
            eprint!(
                "bench: {connections} connections held, {concurrency} opened at a time → {} … ",
                t.name
            );
            let _ = std::io::stderr().flush();
            let row = row(&setup.loadgen, t, &setup.logs, connections, concurrency);
            match &row.result {
                Ok(r) => eprintln!(
                    "{} held, {} failed, open {:.2} s",
                    r.connections, r.failed, r.open_seconds
                ),
                Err(e) => eprintln!("failed: {e}"),
            }
            rows.push(row);
        }
    }
    ScaleFigure {
        connections,
        targets,
        rows,
    }
}

/// The targets but Node. The pooling allocator reserves its slots, and
/// their memory mappings, for --max-connections at start-up (two per fibre
/// stack), and `wsbox serve` refuses a maximum that vm.max_map_count cannot
/// hold; so for this figure the wsbox servers are sized for exactly the
/// connections held, and report their accept-to-handler latency (--stats).
fn scale_targets(targets: &[Target], connections: usize) -> Vec<Target> {
    let max = connections.max(16).to_string();
    targets
        .iter()
        .filter(|t| !t.name.starts_with("node"))
        .map(|t| {
            let mut t = t.clone();
            if let Some(i) = t.args.iter().position(|a| a == "--max-connections") {
                t.args[i + 1] = max.clone();
                t.args.insert(i, "--stats".into());
            }
            t
        })
        .collect()
}

/// Starts a fresh `target`, reads its idle RSS, holds `connections`
/// connections with `loadgen scale` (opened `concurrency` at a time), reads
/// its RSS again; then, for `wsbox serve --stats`, stops it and reads what
/// it measured.
fn row(
    loadgen: &Path,
    target: &Target,
    logs: &Path,
    connections: usize,
    concurrency: usize,
) -> ScaleRow {
    let mut row = ScaleRow {
        target: if concurrency == 1 {
            format!("{}{SEQUENTIAL}", target.name)
        } else {
            target.name.clone()
        },
        result: Err("not run".into()),
        idle_rss_kib: None,
        held_rss_kib: None,
        held_maps: None,
        accept_to_handle_us: None,
        request_to_handle_us: None,
        instantiate_us: None,
        note: None,
    };
    let mut server = match target.start(logs) {
        Ok(s) => s,
        Err(e) => {
            row.result = Err(format!("{e:#}"));
            return row;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    row.idle_rss_kib = rss_kib(server.pid());
    if !hold(
        loadgen,
        &mut server,
        target,
        logs,
        connections,
        concurrency,
        &mut row,
    ) {
        return row;
    }
    if target.args.iter().any(|a| a == "--stats") {
        server_stats(&mut server, target, logs, &mut row);
    }
    row
}

/// Holds the connections with `loadgen scale` and fills in `row`; false
/// when `loadgen` did not run.
fn hold(
    loadgen: &Path,
    server: &mut Server,
    target: &Target,
    logs: &Path,
    connections: usize,
    concurrency: usize,
    row: &mut ScaleRow,
) -> bool {
    let holding = Holding::start(
        Command::new(loadgen)
            .args(["scale", &server.url])
            .args(["--connections", &connections.to_string()])
            .args(["--concurrency", &concurrency.to_string()]),
    );
    let holding = match holding {
        Ok(h) => h,
        Err(e) => {
            row.result = Err(e);
            return false;
        }
    };
    if let Some(line) = holding.held() {
        row.held_rss_kib = rss_kib(server.pid());
        row.held_maps = maps(server.pid());
        row.result = ScaleResult::from_line(line).map_err(|e| e.to_string());
    }
    if let Some(died) = died(server, target, logs) {
        row.note = Some(died);
        row.held_rss_kib = None;
        row.held_maps = None;
    }
    if let Err(e) = holding.release() {
        row.result = Err(e);
    }
    true
}

/// Whether the server died while the connections were opened or held, and
/// why, as its log says.
fn died(server: &mut Server, target: &Target, logs: &Path) -> Option<String> {
    let status = server.child.try_wait().ok()??;
    let log = target.log(logs);
    let last = std::fs::read_to_string(&log)
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.contains("memory allocation") || l.contains("panicked"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    Some(format!(
        "the server died: {status}; {last} (see {})",
        log.display()
    ))
}

/// Stops `wsbox serve --stats` with SIGTERM, so that it prints what it
/// measured, and puts that in `row`: the latencies, and a note when the
/// server counted panics or said nothing.
fn server_stats(server: &mut Server, target: &Target, logs: &Path, row: &mut ScaleRow) {
    server.terminate(Duration::from_secs(30));
    let log = target.log(logs);
    let stats = std::fs::read_to_string(&log)
        .map_err(anyhow::Error::from)
        .and_then(|l| serve_stats::from_log(&l));
    let p50_p99 = |p: Option<wsbox::Percentiles>| p.map(|p| (micros(p.p50), micros(p.p99)));
    match stats {
        Ok(stats) => {
            row.accept_to_handle_us = p50_p99(stats.serve.accept_to_handle);
            row.request_to_handle_us = p50_p99(stats.serve.request_to_handle);
            row.instantiate_us = p50_p99(stats.serve.instantiate);
            if stats.panics > 0 && row.note.is_none() {
                row.note = Some(format!(
                    "the server counted {} panics of its tasks (see {})",
                    stats.panics,
                    log.display()
                ));
            }
        }
        Err(e) if row.note.is_none() => {
            row.note = Some(format!(
                "no --stats from the server: {e:#} (see {})",
                log.display()
            ));
        }
        Err(_) => {}
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
