//! Figure 1, echo throughput and latency: every target started once, then
//! `loadgen echo` against each in turn, cell by cell (connections × size),
//! with the server's CPU time per round trip.

use super::process::{cpu_seconds, Server, Target};
use super::{Args, Setup};
use crate::load::LoadResult;
use crate::report::{self, Cell, Measured};
use anyhow::{bail, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The echo matrix over `targets`, empty with `--no-echo`. A target that
/// does not start is left out, with a note; the native one must start.
pub(super) fn figure(
    args: &Args,
    setup: &Setup,
    targets: &[Target],
    notes: &mut Vec<String>,
) -> Result<Vec<Cell>> {
    if args.no_echo {
        return Ok(Vec::new());
    }
    let mut servers = Vec::new();
    for t in targets {
        match t.start(&setup.logs) {
            Ok(s) => {
                eprintln!("bench: {} at {}", t.name, s.url);
                servers.push((t.clone(), s));
            }
            Err(e) => notes.push(format!("{}: did not start: {e:#}.", t.name)),
        }
    }
    if !servers.iter().any(|(t, _)| t.name == "native") {
        bail!("the native echo server did not start");
    }
    let (connections, sizes): (&[usize], &[usize]) = if args.smoke {
        (&[1, 10], &[32, 1024])
    } else {
        (&[1, 100, 1000], &[32, 1024, 64 * 1024])
    };
    let mut cells = Vec::new();
    for &c in connections {
        for &size in sizes {
            cells.push(matrix_cell(args, &setup.loadgen, &servers, c, size));
        }
    }
    Ok(cells)
}

/// One cell of the matrix: every server in turn.
fn matrix_cell(
    args: &Args,
    loadgen: &Path,
    servers: &[(Target, Server)],
    connections: usize,
    size: usize,
) -> Cell {
    let mut measured = Vec::new();
    for (t, s) in servers {
        eprint!(
            "bench: {connections} connections × {} → {} … ",
            report::size_label(size),
            t.name
        );
        let _ = std::io::stderr().flush();
        let mut m = cell(loadgen, s, args, connections, size);
        m.target = t.name.clone();
        match &m.result {
            Ok(r) => eprintln!(
                "{:.0} msg/s, p50 {} µs, p99 {} µs",
                r.per_second(),
                r.p50_us,
                r.p99_us
            ),
            Err(e) => eprintln!("failed: {e}"),
        }
        measured.push(m);
    }
    Cell {
        connections,
        size,
        measured,
    }
}

/// Runs `loadgen echo` once against `server`.
pub(super) fn cell(
    loadgen: &Path,
    server: &Server,
    args: &Args,
    connections: usize,
    size: usize,
) -> Measured {
    let pid = server.pid();
    let before = cpu_seconds(pid);
    let out = Command::new(loadgen)
        .args(["echo", &server.url])
        .args(["--connections", &connections.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--in-flight", &args.in_flight.to_string()])
        .args(["--warmup-ms", &args.warmup_ms().to_string()])
        .args(["--duration-ms", &args.duration_ms().to_string()])
        .stdin(Stdio::null())
        .output();
    let after = cpu_seconds(pid);
    let result = match out {
        Err(e) => Err(format!("cannot run loadgen: {e}")),
        Ok(out) if !out.status.success() => Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("loadgen failed")
            .to_string()),
        Ok(out) => LoadResult::from_line(String::from_utf8_lossy(&out.stdout).trim())
            .map_err(|e| e.to_string()),
    };
    let server_cpu_us = match (&result, before, after) {
        (Ok(r), Some(b), Some(a)) if r.total_messages > 0 => {
            Some((a - b) * 1e6 / r.total_messages as f64)
        }
        _ => None,
    };
    Measured {
        target: String::new(),
        result,
        server_cpu_us,
    }
}
