//! The `bench` driver (issue 5): starts every target echo server as a
//! subprocess, runs `loadgen` (its own process) against each in turn, cell
//! by cell, and prints a Markdown report; `--out FILE` also writes it to
//! FILE. Each figure is a module of its own: `echo`, `scale`,
//! `outbound`, `instantiation`, `compression`, `fanout`; `report` writes
//! them out.
//!
//! It builds nothing: `wsbox`, `native-echo`, `native-broadcast` and
//! `loadgen` must be next to
//! the `bench` binary (`cargo build --release -p wsbox -p wsbox-bench` puts
//! them there, and the build of `wsbox-testbed`, a dependency, builds the
//! guests, among them `bench-client`, the outbound figure's client guest).
//! The instantiation figure runs in this process, with the wsbox library.

mod compression;
mod echo;
mod fanout;
mod instantiation;
mod outbound;
mod process;
mod report;
mod scale;
mod serve_stats;

use anyhow::{bail, Context, Result};
use clap::Parser;
use process::Target;
use std::path::PathBuf;
use std::time::Instant;

/// Runs the wsbox benchmark and prints a Markdown report.
#[derive(Parser, Clone)]
pub struct Args {
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A quick run: 1 and 10 connections, 32 B and 1 KiB, 300 ms per cell,
    /// 100 connections for the scale figure, 20 receivers and 50 messages
    /// for the fan-out figure.
    #[arg(long)]
    smoke: bool,
    /// Measured time per cell, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Warm-up per cell, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    warmup_ms: u64,
    /// Messages each connection keeps in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Connections for the connection-scale figure (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    scale: usize,
    /// The echo handler component (default: the test build's echo.wasm).
    #[arg(long)]
    guest: Option<PathBuf>,
    /// Skip the Node `ws` target.
    #[arg(long)]
    no_node: bool,
    /// Skip the `wsbox serve --pooling` target.
    #[arg(long)]
    no_pooling: bool,
    /// Another handler component for the instantiation and handler figure,
    /// as NAME=PATH (repeatable). The Rust `echo` handler is always first;
    /// the Python and JavaScript echo handlers (target/guests/python/echo.wasm
    /// and target/guests/js/echo.wasm, built when missing) are added as
    /// `python-echo` and `js-echo` when they can be built (not with --smoke).
    #[arg(long = "handler", value_name = "NAME=PATH")]
    handlers: Vec<String>,
    /// Instantiations one at a time per handler and allocator (0: skip the
    /// instantiation and handler figure).
    #[arg(long, default_value_t = 1000)]
    instantiations: usize,
    /// Instances made and held at once per handler and allocator.
    #[arg(long, default_value_t = 100)]
    held: usize,
    /// Alternating rounds of the outbound figure (0: skip it).
    #[arg(long, default_value_t = 3)]
    outbound_rounds: usize,
    /// Skip the echo throughput matrix (figure 1).
    #[arg(long)]
    no_echo: bool,
    /// Where to write the SVG charts (default: `charts/` next to `--out`;
    /// none without either).
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Skip the compression figure (permessage-deflate).
    #[arg(long)]
    no_compression: bool,
    /// Connections per cell of the compression figure.
    #[arg(long, default_value_t = 100)]
    compression_connections: usize,
    /// Connections held per target for the compression figure's memory
    /// table.
    #[arg(long, default_value_t = 500)]
    deflate_held: usize,
    /// Skip the fan-out figure.
    #[arg(long)]
    no_fanout: bool,
    /// Run the fan-out figure only (the same as `--no-echo --scale 0
    /// --outbound-rounds 0 --instantiations 0 --no-compression`).
    #[arg(long, conflicts_with = "no_fanout")]
    fanout_only: bool,
    /// Receiver counts of the fan-out figure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    fanout_receivers: Vec<usize>,
    /// Deliveries per fan-out cell: each cell publishes this divided by its
    /// receivers (at least 20 messages), plus a tenth of that as warm-up.
    #[arg(long, default_value_t = 2_000_000)]
    fanout_deliveries: usize,
    /// Messages the fan-out publisher keeps outstanding (not yet received
    /// by every receiver).
    #[arg(long, default_value_t = 16)]
    fanout_window: usize,
}

impl Args {
    /// The arguments with what `--fanout-only` leaves out turned off.
    fn narrowed(&self) -> Args {
        let mut args = self.clone();
        if args.fanout_only {
            args.no_echo = true;
            args.scale = 0;
            args.outbound_rounds = 0;
            args.instantiations = 0;
            args.no_compression = true;
        }
        args
    }

    /// Warm-up per echo cell.
    fn warmup_ms(&self) -> u64 {
        if self.smoke {
            100
        } else {
            self.warmup_ms
        }
    }

    /// Measured time per echo cell.
    fn duration_ms(&self) -> u64 {
        if self.smoke {
            300
        } else {
            self.duration_ms
        }
    }
}

/// Where the programs, the echo guest and the logs are.
struct Setup {
    wsbox: PathBuf,
    native: PathBuf,
    native_broadcast: PathBuf,
    loadgen: PathBuf,
    /// `target/`, where the guests and `bench-node` are.
    target_dir: PathBuf,
    /// One log file per server and client started.
    logs: PathBuf,
    /// The echo handler component.
    guest: PathBuf,
}

impl Setup {
    /// Finds the programs next to this one, and the guest; says how to
    /// build what is missing.
    fn find(args: &Args) -> Result<Setup> {
        let bin = std::env::current_exe()?
            .parent()
            .context("no directory for the bench binary")?
            .to_path_buf();
        let target_dir = bin
            .parent()
            .context("bench is not in target/PROFILE/")?
            .to_path_buf();
        let (wsbox, native, native_broadcast, loadgen) = (
            bin.join("wsbox"),
            bin.join("native-echo"),
            bin.join("native-broadcast"),
            bin.join("loadgen"),
        );
        for b in [&wsbox, &native, &native_broadcast, &loadgen] {
            if !b.exists() {
                bail!(
                    "{} is missing: build with `cargo build --release -p wsbox -p wsbox-bench` first",
                    b.display()
                );
            }
        }
        let guest = args
            .guest
            .clone()
            .unwrap_or_else(|| wsbox_testbed::guest("echo"));
        if !guest.exists() {
            bail!(
                "{} is missing: the sample guests are built by wsbox-testbed's build script \
                 (`cargo build -p wsbox-testbed`; needs `rustup target add wasm32-wasip2`)",
                guest.display()
            );
        }
        Ok(Setup {
            wsbox,
            native,
            native_broadcast,
            loadgen,
            logs: target_dir.join("bench-logs"),
            target_dir,
            guest,
        })
    }

    /// `wsbox serve` of the echo guest with `extra` options. The echo figure
    /// opens at most 1000 connections; `wsbox serve` refuses a
    /// --max-connections whose instances the default allocator's memory
    /// mappings could not hold (vm.max_map_count), so it is sized for them.
    fn wsbox_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "2000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(self.guest.display().to_string());
        a
    }

    /// `native-echo` on a free port, named `name`.
    fn native_target(&self, name: &str) -> Target {
        Target {
            name: name.into(),
            program: self.native.clone(),
            args: vec!["--listen".into(), "127.0.0.1:0".into()],
        }
    }
}

/// The echo figure's targets: wsbox, wsbox with pooling, native and Node
/// `ws`, as asked; with notes for those left out.
fn targets(args: &Args, setup: &Setup) -> (Vec<Target>, Vec<String>) {
    let mut targets = vec![
        Target {
            name: "wsbox".into(),
            program: setup.wsbox.clone(),
            args: setup.wsbox_args(&[]),
        },
        setup.native_target("native"),
    ];
    if !args.no_pooling {
        targets.insert(
            1,
            Target {
                name: "wsbox-pooling".into(),
                program: setup.wsbox.clone(),
                args: setup.wsbox_args(&["--pooling"]),
            },
        );
    }
    let mut notes = Vec::new();
    if args.no_node {
        notes.push("Node `ws`: skipped (--no-node).".to_string());
    } else if args.no_echo {
        // Node is a target of the echo figure only.
    } else {
        match process::node_target(&setup.target_dir.join("bench-node")) {
            Ok(t) => targets.push(t),
            Err(why) => notes.push(format!("Node `ws`: skipped: {why}.")),
        }
    }
    (targets, notes)
}

/// Runs every figure asked for, then prints the report (and writes it to
/// `--out`).
pub fn run(args: &Args) -> Result<()> {
    let args = &args.narrowed();
    let started = Instant::now();
    let load_before = process::loadavg();
    crate::raise_nofile_limit()?;
    let setup = Setup::find(args)?;
    let (targets, mut notes) = targets(args, &setup);
    let cells = echo::figure(args, &setup, &targets, &mut notes)?;
    let scale = scale::figure(args, &setup, &targets);
    let outbound = outbound::figure(args, &setup, &mut notes);
    let handlers = instantiation::figure(args, &setup)?;
    let compression = compression::figure(args, &setup);
    let fanout = fanout::figure(args, &setup);
    let out = report::write(&report::Run {
        args,
        started,
        load_before,
        targets: &targets,
        notes: &notes,
        cells: &cells,
        scale: &scale,
        outbound: &outbound,
        handlers: &handlers,
        compression: &compression,
        fanout: &fanout,
    });
    print!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    let charts = args.charts.clone().or_else(|| {
        let out = args.out.as_ref()?;
        Some(out.parent()?.join("charts"))
    });
    if let Some(dir) = charts {
        for path in crate::charts::write_all(&dir, &cells, &scale.rows, &fanout.rows)? {
            eprintln!("bench: wrote {}", path.display());
        }
    }
    Ok(())
}
