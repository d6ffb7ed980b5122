//! The compression figure: JSON-like text echoed through `wsbox serve
//! --deflate`, `wsbox serve` without compression and Node `ws` with
//! `perMessageDeflate`, by `loadgen deflate` (its own process, which offers
//! permessage-deflate and counts the bytes on the wire), with the server's
//! CPU per message; then the memory a held connection costs with and
//! without context takeover (`loadgen deflate-hold`, a fresh server per
//! target).

use super::process::{cpu_seconds, rss_kib, Holding, Target};
use super::{Args, Setup};
use crate::deflate::{DeflateLoadResult, HoldResult};
use crate::report::{CompressionRow, MemoryRow};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the figure measured, and how.
pub(super) struct CompressionFigure {
    /// Connections per throughput cell.
    pub(super) connections: usize,
    /// Connections held per memory row.
    pub(super) held: usize,
    /// The servers of the throughput table.
    pub(super) targets: Vec<Target>,
    /// The servers of the memory table.
    pub(super) memory_targets: Vec<Target>,
    /// One per size and target.
    pub(super) rows: Vec<CompressionRow>,
    /// One per memory target.
    pub(super) memory: Vec<MemoryRow>,
    /// Targets left out, and why.
    pub(super) notes: Vec<String>,
}

/// The message sizes.
pub(super) const SIZES: [usize; 2] = [1024, 16 * 1024];

/// The wsbox flags without context takeover in either direction.
const NO_TAKEOVER: [&str; 3] = [
    "--deflate",
    "--deflate-server-no-context-takeover",
    "--deflate-client-no-context-takeover",
];

/// Runs the figure, unless `--no-compression`.
pub(super) fn figure(args: &Args, setup: &Setup) -> CompressionFigure {
    let connections = if args.smoke {
        10
    } else {
        args.compression_connections
    };
    let held = if args.smoke { 20 } else { args.deflate_held };
    let mut figure = CompressionFigure {
        connections,
        held,
        targets: Vec::new(),
        memory_targets: Vec::new(),
        rows: Vec::new(),
        memory: Vec::new(),
        notes: Vec::new(),
    };
    if args.no_compression {
        return figure;
    }
    let wsbox = |name: &str, extra: &[&str]| Target {
        name: name.into(),
        program: setup.wsbox.clone(),
        args: setup.wsbox_args(extra),
    };
    let node_dir = setup.target_dir.join("bench-node");
    let node = |options: &str, name: &str| -> Option<Target> {
        if args.no_node {
            return None;
        }
        super::process::node_deflate_target(&node_dir, options, name).ok()
    };
    figure.targets = vec![wsbox("wsbox-deflate", &["--deflate"]), wsbox("wsbox", &[])];
    let node_deflate = node("{}", "node-ws-deflate");
    match &node_deflate {
        Some(t) => figure.targets.push(t.clone()),
        None => figure
            .notes
            .push("Node `ws`: skipped (--no-node, or node/npm missing).".into()),
    }
    // The same without context takeover, with glibc told to give large
    // freed blocks back at once (no dynamic mmap threshold): what the
    // connections hold themselves, without the heap's fragmentation.
    let mut unmapped = wsbox("wsbox-deflate-no-takeover, glibc unmapping", &NO_TAKEOVER);
    unmapped.args.splice(
        0..0,
        [
            "MALLOC_MMAP_THRESHOLD_=32768".to_string(),
            "MALLOC_TRIM_THRESHOLD_=0".to_string(),
            setup.wsbox.display().to_string(),
        ],
    );
    unmapped.program = "env".into();
    figure.memory_targets = vec![
        wsbox("wsbox", &[]),
        wsbox("wsbox-deflate", &["--deflate"]),
        wsbox("wsbox-deflate-no-takeover", &NO_TAKEOVER),
        unmapped,
    ];
    if let Some(t) = node_deflate {
        if let Some(plain) = node("false", "node-ws") {
            figure.memory_targets.push(plain);
        }
        figure.memory_targets.push(t);
        if let Some(t) = node(
            "{ serverNoContextTakeover: true, clientNoContextTakeover: true }",
            "node-ws-deflate-no-takeover",
        ) {
            figure.memory_targets.push(t);
        }
    }
    throughput(args, setup, &mut figure);
    memory(setup, &mut figure);
    figure
}

/// Each target started once, then each size against each in turn.
fn throughput(args: &Args, setup: &Setup, figure: &mut CompressionFigure) {
    let mut servers = Vec::new();
    for t in &figure.targets {
        match t.start(&setup.logs) {
            Ok(s) => servers.push((t.clone(), s)),
            Err(e) => figure
                .notes
                .push(format!("{}: did not start: {e:#}.", t.name)),
        }
    }
    for size in SIZES {
        for (t, server) in &servers {
            eprint!(
                "bench: compression, {} connections × {} → {} … ",
                figure.connections,
                crate::report::size_label(size),
                t.name
            );
            let _ = std::io::stderr().flush();
            let before = cpu_seconds(server.pid());
            let out = Command::new(&setup.loadgen)
                .args(["deflate", &server.url])
                .args(["--connections", &figure.connections.to_string()])
                .args(["--size", &size.to_string()])
                .args(["--in-flight", &args.in_flight.to_string()])
                .args(["--warmup-ms", &args.warmup_ms().to_string()])
                .args(["--duration-ms", &args.duration_ms().to_string()])
                .stdin(Stdio::null())
                .output();
            let after = cpu_seconds(server.pid());
            let result = match out {
                Err(e) => Err(format!("cannot run loadgen: {e}")),
                Ok(out) if !out.status.success() => Err(String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("loadgen failed")
                    .to_string()),
                Ok(out) => {
                    DeflateLoadResult::from_line(String::from_utf8_lossy(&out.stdout).trim())
                        .map_err(|e| e.to_string())
                }
            };
            let server_cpu_us = match (&result, before, after) {
                (Ok(r), Some(b), Some(a)) if r.total_messages > 0 => {
                    Some((a - b) * 1e6 / r.total_messages as f64)
                }
                _ => None,
            };
            match &result {
                Ok(r) => eprintln!(
                    "{:.0} msg/s, {:.0} / {:.0} wire bytes per message{}",
                    r.per_second(),
                    r.out_per_message(),
                    r.in_per_message(),
                    if r.compressed { ", compressed" } else { "" }
                ),
                Err(e) => eprintln!("failed: {e}"),
            }
            figure.rows.push(CompressionRow {
                size,
                target: t.name.clone(),
                result,
                server_cpu_us,
            });
        }
    }
}

/// A fresh server per memory target: idle RSS, then RSS with the
/// connections held.
fn memory(setup: &Setup, figure: &mut CompressionFigure) {
    for t in &figure.memory_targets {
        eprint!(
            "bench: {} connections held with compression → {} … ",
            figure.held, t.name
        );
        let _ = std::io::stderr().flush();
        let row = memory_row(&setup.loadgen, t, &setup.logs, figure.held);
        match row.per_connection_kib() {
            Some(k) => eprintln!("{k:.1} KiB per connection"),
            None => eprintln!("{:?}", row.result),
        }
        figure.memory.push(row);
    }
}

fn memory_row(loadgen: &Path, target: &Target, logs: &Path, connections: usize) -> MemoryRow {
    let mut row = MemoryRow {
        target: target.name.clone(),
        result: Err("not run".into()),
        idle_rss_kib: None,
        held_rss_kib: None,
    };
    let server = match target.start(logs) {
        Ok(s) => s,
        Err(e) => {
            row.result = Err(format!("{e:#}"));
            return row;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    row.idle_rss_kib = rss_kib(server.pid());
    let holding = Holding::start(
        Command::new(loadgen)
            .args(["deflate-hold", &server.url])
            .args(["--connections", &connections.to_string()])
            .args(["--size", &(16 * 1024).to_string()]),
    );
    let holding = match holding {
        Ok(h) => h,
        Err(e) => {
            row.result = Err(e);
            return row;
        }
    };
    if let Some(line) = holding.held() {
        row.held_rss_kib = rss_kib(server.pid());
        row.result = HoldResult::from_line(line).map_err(|e| e.to_string());
    }
    if let Err(e) = holding.release() {
        row.result = Err(e);
    }
    row
}
